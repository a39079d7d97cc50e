/* test_pool.c - worker threads: every job comes back through the eventfd, counts, drain, FIFO, join. */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "unit.h"

#include "pool.h"

/* Hang guard only: a job that never comes back fails the test instead of stalling the suite. */
#define HANG_GUARD_MS 60000

/* A gate the test opens; jobs that wait on it keep their worker busy. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	int started; /* blocking jobs that have begun */
};

static struct gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0 };

static void gate_reset(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = false;
	gate.started = 0;
	pthread_mutex_unlock(&gate.lock);
}

static void gate_open(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

/* Wait until n blocking jobs are running. */
static void gate_wait_started(int n)
{
	pthread_mutex_lock(&gate.lock);
	while (gate.started < n)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

/* The order in which jobs ran, shared by the workers. */
static pthread_mutex_t ran_lock = PTHREAD_MUTEX_INITIALIZER;
static int ran_order[64];
static int n_ran;

struct tjob {
	struct pool_job base; /* first, so a pool_job * is a tjob * */
	int id;
	bool blocks;          /* wait for the gate before returning */
	int runs;             /* how many times work() ran it */
	bool finished;
	pthread_t thread;
};

static void work(struct pool_job *j)
{
	struct tjob *t = (struct tjob *)j;
	t->thread = pthread_self();
	if (t->blocks) {
		pthread_mutex_lock(&gate.lock);
		gate.started++;
		pthread_cond_broadcast(&gate.cond);
		while (!gate.open)
			pthread_cond_wait(&gate.cond, &gate.lock);
		pthread_mutex_unlock(&gate.lock);
	}
	pthread_mutex_lock(&ran_lock);
	if (n_ran < (int)(sizeof(ran_order) / sizeof(ran_order[0])))
		ran_order[n_ran++] = t->id;
	pthread_mutex_unlock(&ran_lock);
	t->runs++;
	t->finished = true;
}

static void ran_reset(void)
{
	pthread_mutex_lock(&ran_lock);
	n_ran = 0;
	pthread_mutex_unlock(&ran_lock);
}

static void job_init(struct tjob *t, int id, bool blocks)
{
	memset(t, 0, sizeof(*t));
	t->base.work = work;
	t->id = id;
	t->blocks = blocks;
}

/* Wait for the eventfd, then take what pool_done gives; appends to out[], returns how many. */
static int collect(struct pool *p, int efd, struct tjob **out, int max)
{
	struct pollfd pfd = { .fd = efd, .events = POLLIN };
	int r = poll(&pfd, 1, HANG_GUARD_MS);
	if (r != 1)
		fail_msg("the pool's eventfd never became readable");
	int n = 0;
	for (struct pool_job *j = pool_done(p); j; j = j->next) {
		if (n == max)
			fail_msg("pool_done returned more jobs than were submitted");
		out[n++] = (struct tjob *)j;
	}
	return n;
}

/* Collect until want jobs came back, in the order pool_done listed them. */
static void collect_all(struct pool *p, int efd, struct tjob **out, int want)
{
	int got = 0;
	while (got < want)
		got += collect(p, efd, out + got, want - got);
}

static bool readable_now(int efd)
{
	struct pollfd pfd = { .fd = efd, .events = POLLIN };
	return poll(&pfd, 1, 0) == 1;
}

static void test_every_job_comes_back_once(void **state)
{
	(void)state;
	enum { N = 40 };
	struct tjob jobs[N];
	struct tjob *back[N];
	int efd = -1;
	struct pool *p = pool_new(3, &efd);
	assert_non_null(p);
	assert_true(efd >= 0);
	assert_false(readable_now(efd)); /* nothing finished yet */
	assert_null(pool_done(p));

	ran_reset();
	for (int i = 0; i < N; i++) {
		job_init(&jobs[i], i, false);
		pool_submit(p, &jobs[i].base);
	}
	collect_all(p, efd, back, N);

	pthread_t self = pthread_self();
	int seen[N] = { 0 };
	for (int i = 0; i < N; i++) {
		int id = back[i]->id;
		assert_ptr_equal(back[i], &jobs[id]);
		seen[id]++;
	}
	for (int i = 0; i < N; i++) {
		if (seen[i] != 1 || jobs[i].runs != 1)
			fail_msg("job %d came back %d times and ran %d times", i, seen[i], jobs[i].runs);
		assert_true(jobs[i].finished);
		assert_false(pthread_equal(jobs[i].thread, self)); /* ran on a worker */
	}
	/* Everything is collected: a last pool_done clears the eventfd and finds nothing. */
	assert_null(pool_done(p));
	assert_false(readable_now(efd));
	assert_int_equal(pool_queued(p), 0);
	assert_int_equal(pool_running(p), 0);
	pool_free(p);
}

static void test_counts_and_drain(void **state)
{
	(void)state;
	struct tjob blockers[2], waiting[3];
	struct tjob *back[2];
	int efd = -1;
	struct pool *p = pool_new(2, &efd);
	assert_non_null(p);

	gate_reset();
	ran_reset();
	for (int i = 0; i < 2; i++) {
		job_init(&blockers[i], 100 + i, true);
		pool_submit(p, &blockers[i].base);
	}
	gate_wait_started(2); /* both workers are now inside a job */
	for (int i = 0; i < 3; i++) {
		job_init(&waiting[i], i, false);
		pool_submit(p, &waiting[i].base);
	}
	assert_int_equal(pool_running(p), 2);
	assert_int_equal(pool_queued(p), 3);

	/* The unstarted jobs come back, oldest first, and will never run. */
	struct pool_job *left = pool_drain(p);
	int n = 0;
	for (struct pool_job *j = left; j; j = j->next, n++) {
		assert_true(n < 3);
		assert_ptr_equal(j, &waiting[n].base);
	}
	assert_int_equal(n, 3);
	assert_int_equal(pool_queued(p), 0);
	assert_int_equal(pool_running(p), 2);
	assert_null(pool_drain(p)); /* nothing left to drain */

	gate_open();
	collect_all(p, efd, back, 2);
	assert_true((back[0] == &blockers[0] && back[1] == &blockers[1]) ||
		    (back[0] == &blockers[1] && back[1] == &blockers[0]));
	assert_int_equal(pool_running(p), 0);
	assert_int_equal(pool_queued(p), 0);
	pool_free(p);
	for (int i = 0; i < 3; i++)
		assert_int_equal(waiting[i].runs, 0);
}

/* The eventfd also says when a job starts, so the loop's status can show it running. */
static void test_eventfd_readable_when_a_job_starts(void **state)
{
	(void)state;
	struct tjob busy;
	struct tjob *back[1];
	int efd = -1;
	struct pool *p = pool_new(1, &efd);
	assert_non_null(p);

	gate_reset();
	ran_reset();
	job_init(&busy, 1, true);
	pool_submit(p, &busy.base);
	gate_wait_started(1);
	assert_true(readable_now(efd));
	assert_int_equal(pool_running(p), 1);
	assert_null(pool_done(p)); /* started, not finished: nothing to take, and the fd is cleared */
	assert_false(readable_now(efd));

	gate_open();
	collect_all(p, efd, back, 1);
	assert_ptr_equal(back[0], &busy);
	pool_free(p);
}

static void test_one_worker_runs_in_submission_order(void **state)
{
	(void)state;
	enum { N = 12 };
	struct tjob first, jobs[N];
	struct tjob *back[N + 1];
	int efd = -1;
	struct pool *p = pool_new(1, &efd);
	assert_non_null(p);

	gate_reset();
	ran_reset();
	/* Hold the only worker, so every later job is queued before any runs. */
	job_init(&first, -1, true);
	pool_submit(p, &first.base);
	gate_wait_started(1);
	for (int i = 0; i < N; i++) {
		job_init(&jobs[i], i, false);
		pool_submit(p, &jobs[i].base);
	}
	assert_int_equal(pool_queued(p), N);
	gate_open();
	collect_all(p, efd, back, N + 1);

	assert_ptr_equal(back[0], &first);
	pthread_mutex_lock(&ran_lock);
	assert_int_equal(n_ran, N + 1);
	assert_int_equal(ran_order[0], -1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(ran_order[i + 1], i); /* ran in FIFO order */
		assert_ptr_equal(back[i + 1], &jobs[i]); /* and came back oldest first */
	}
	pthread_mutex_unlock(&ran_lock);
	pool_free(p);
}

struct freer {
	struct pool *p;
	bool freed;
	pthread_mutex_t lock;
};

static void *free_pool(void *arg)
{
	struct freer *f = arg;
	pool_free(f->p);
	pthread_mutex_lock(&f->lock);
	f->freed = true;
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static void test_free_waits_for_running_jobs(void **state)
{
	(void)state;
	struct tjob busy;
	int efd = -1;
	struct freer f = { .lock = PTHREAD_MUTEX_INITIALIZER };
	f.p = pool_new(2, &efd);
	assert_non_null(f.p);

	gate_reset();
	ran_reset();
	job_init(&busy, 7, true);
	pool_submit(f.p, &busy.base);
	gate_wait_started(1);

	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, free_pool, &f), 0);
	/* Give pool_free time to return if it wrongly did not wait; it must not have. */
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	nanosleep(&pause, NULL);
	pthread_mutex_lock(&f.lock);
	bool early = f.freed;
	pthread_mutex_unlock(&f.lock);
	assert_false(early);
	assert_false(busy.finished);

	gate_open();
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(f.freed);
	assert_true(busy.finished); /* the running job ran to its end before the pool went */
	assert_int_equal(busy.runs, 1);
}

static void test_free_idle_pool(void **state)
{
	(void)state;
	int efd = -1;
	struct pool *p = pool_new(4, &efd);
	assert_non_null(p);
	assert_int_equal(pool_queued(p), 0);
	assert_int_equal(pool_running(p), 0);
	pool_free(p); /* idle workers wake and are joined; LeakSanitizer checks the rest */
	pool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_job_comes_back_once),
		cmocka_unit_test(test_counts_and_drain),
		cmocka_unit_test(test_eventfd_readable_when_a_job_starts),
		cmocka_unit_test(test_one_worker_runs_in_submission_order),
		cmocka_unit_test(test_free_waits_for_running_jobs),
		cmocka_unit_test(test_free_idle_pool),
	};
	return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
