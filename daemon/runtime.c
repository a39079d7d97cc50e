/* runtime.c - the service: sd-event loop, merchants and their timers, jobs on the pool,
 * reload, graceful stop, sd_notify (DESIGN.md §2). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "check.h"
#include "ctl.h"
#include "kleepd.h"
#include "log.h"
#include "reproject.h"
#include "source.h"

#define FIRST_RUN_SPREAD_USEC (5 * 1000000ull)   /* first runs spread over 5 s */
#define JITTER_PERCENT 10                          /* each interval +/- 10% */
#define RETRY_FIRST_USEC (30 * 1000000ull)         /* after a failure: 30 s, doubling */
#define TIMER_ACCURACY_USEC (250 * 1000ull)

/* Log context of a merchant-level line. */
#define MCTX(ms) (&(struct log_ctx){ .merchant = (ms)->id })

static uint64_t now_usec(void)
{
	return tstamp_mono_usec();
}

/* A random number in [0, n), good enough for spreading timers. */
static uint64_t jitter(uint64_t n)
{
	static _Thread_local unsigned int seed;
	if (!seed)
		seed = (unsigned int)(now_usec() ^ (uintptr_t)&seed);
	if (n == 0)
		return 0;
	uint64_t r = ((uint64_t)rand_r(&seed) << 31) ^ (uint64_t)rand_r(&seed);
	return r % n;
}

static struct cfg *cfg_ref(struct cfg *c)
{
	c->refs++;
	return c;
}

static void cfg_unref(struct cfg *c)
{
	if (c && --c->refs == 0) {
		config_free(c->c);
		free(c);
	}
}

/* "12 merchants, 2 syncing, 1 failing, 0 queued": for STATUS= and kleepctl status. */
static void status_summary(struct daemon *d, char *line, size_t size)
{
	int syncing = 0, failing = 0, merchants = 0;
	for (size_t i = 0; i < d->n_ms; i++) {
		struct mstate *ms = d->ms[i];
		if (ms->removed)
			continue;
		merchants++;
		if (ms->job && atomic_load(&ms->job->started))
			syncing++;
		for (int s = 0; s < STREAM_COUNT; s++)
			if (ms->s[s].enabled && ms->s[s].error_class[0]) {
				failing++;
				break;
			}
	}
	snprintf(line, size, "%d merchant%s, %d syncing, %d failing, %d queued", merchants,
		 merchants == 1 ? "" : "s", syncing, failing, pool_queued(d->pool));
}

#define STATUS_INTERVAL_USEC 1000000ull /* a thousand merchants start and end jobs fast */

static void notify_status(struct daemon *d);

static int on_status_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
	(void)src, (void)usec;
	notify_status(userdata);
	return 0;
}

/*
 * Keep STATUS= current without flooding the notify socket: a changed line
 * goes out at once when the last one is a second old, otherwise a timer
 * sends the line current then.
 */
static void notify_status(struct daemon *d)
{
	char line[256];
	status_summary(d, line, sizeof(line));
	if (strcmp(line, d->status_line) == 0)
		return;
	uint64_t now = now_usec();
	if (d->status_sent_usec && now < d->status_sent_usec + STATUS_INTERVAL_USEC) {
		uint64_t at = d->status_sent_usec + STATUS_INTERVAL_USEC;
		if (!d->status_timer)
			sd_event_add_time(d->e, &d->status_timer, CLOCK_MONOTONIC, at, 0, on_status_timer, d);
		else {
			sd_event_source_set_time(d->status_timer, at);
			sd_event_source_set_enabled(d->status_timer, SD_EVENT_ONESHOT);
		}
		return;
	}
	snprintf(d->status_line, sizeof(d->status_line), "%s", line);
	d->status_sent_usec = now;
	sd_notifyf(0, "STATUS=%s", line);
}

/* ---- jobs ---------------------------------------------------------------- */

/* On a worker thread: golive or rebind, with the merchant's mirror to itself; closes mr. */
static void rebind_work(struct job *job, struct merchant *mr)
{
	struct log_ctx lc = { job->conf->id, NULL, 0 };
	char archive[4096];
	if (job->kind == JOB_GOLIVE)
		job->rc = source_golive(&mr->st, mr->db_path, job->conf, &lc, archive, sizeof(archive),
					job->res.message, sizeof(job->res.message));
	else
		job->rc = source_rebind(mr->st, job->conf, &lc, job->res.message,
					sizeof(job->res.message));
	job->res.outcome = job->rc == 0 ? "success" : "failed";
	merchant_close(mr);
}

/* On a worker thread: open the mirror, run, read back the stream's state. */
static void job_work(struct pool_job *pj)
{
	struct job *job = (struct job *)pj;
	struct merchant *mr;
	char err[sizeof(job->res.message)];

	atomic_store(&job->started, true);
	job->started_usec = now_usec();
	if (atomic_load(job->stop)) {
		job->rc = -EAGAIN;
		job->res.outcome = "interrupted";
		goto out;
	}
	job->rc = merchant_open(job->cfg->c, job->conf, &mr, err, sizeof(err));
	if (job->rc < 0) {
		job->res.outcome = "failed";
		job->res.error_class = errclass_name(merchant_open_class(job->rc));
		snprintf(job->res.message, sizeof(job->res.message), "%s", err);
		struct log_ctx lc = { job->conf->id, stream_name(job->s), 0 };
		log_err(&lc, "%s", err);
		goto out;
	}
	if (job->kind == JOB_GOLIVE || job->kind == JOB_REBIND) {
		rebind_work(job, mr);
		goto out;
	}
	if (job->kind == JOB_REPROJECT) {
		job->rc = -EINVAL;
		snprintf(job->res.message, sizeof(job->res.message), "merchant %s has no [wshop]: nothing "
			 "of the API to reproject", job->conf->id);
		if (mr->profile)
			job->rc = reproject_run(mr->st, mr->profile, job->conf, &job->res.rows_in,
						job->res.message, sizeof(job->res.message));
		job->res.outcome = job->rc == 0 ? "success" : "failed";
		if (job->rc == 0)
			snprintf(job->res.message, sizeof(job->res.message), "%lld records reprojected",
				 (long long)job->res.rows_in);
		merchant_close(mr);
		goto out;
	}
	job->rc = merchant_run(mr, job->s, job->full, job->stop, &job->progress, &job->res);
	job->have_state = store_state_get(mr->st, stream_name(job->s), &job->state) == 0;
	merchant_close(mr);
out:
	job->finished_usec = now_usec();
}

static void stream_schedule(struct daemon *d, struct mstate *ms, enum stream s, uint64_t at);

static void job_free(struct job *job)
{
	json_decref(job->report);
	store_state_clear(&job->state);
	cfg_unref(job->cfg);
	free(job);
}

static void stream_take_state(struct stream_rt *rt, const struct store_state *st)
{
	snprintf(rt->last_success, sizeof(rt->last_success), "%s", st->last_success ? st->last_success : "");
	snprintf(rt->last_attempt, sizeof(rt->last_attempt), "%s", st->last_attempt ? st->last_attempt : "");
	snprintf(rt->cursor, sizeof(rt->cursor), "%s", st->cursor_time ? st->cursor_time : "");
	snprintf(rt->error_class, sizeof(rt->error_class), "%s", st->error_class ? st->error_class : "");
	free(rt->last_error);
	rt->last_error = st->last_error ? strdup(st->last_error) : NULL;
	free(rt->endpoint);
	rt->endpoint = st->endpoint ? strdup(st->endpoint) : NULL;
	rt->unauthorized = st->unauthorized;
	rt->rows_total = st->rows_total;
}

/* Answer and free waiters whose run will not happen. */
static void waiters_drop(struct waiter **list, const char *why)
{
	while (*list) {
		struct waiter *w = *list;
		*list = w->next;
		if (w->client)
			control_waiter_drop(w, why);
		free(w);
	}
}

static void mstate_free(struct mstate *ms)
{
	/* Operators still waiting for a reproject get an answer from control_free or a closed socket. */
	waiters_drop(&ms->reproject, "the merchant was removed before the job ran");
	waiters_drop(&ms->golive, "the merchant was removed before the job ran");
	waiters_drop(&ms->rebind, "the merchant was removed before the job ran");
	for (int s = 0; s < STREAM_COUNT; s++)
		waiters_drop(&ms->s[s].waiters, "the merchant was removed before the run started");
	for (int s = 0; s < STREAM_COUNT; s++) {
		sd_event_source_disable_unref(ms->s[s].timer);
		free(ms->s[s].last_error);
		free(ms->s[s].endpoint);
	}
	free(ms);
}

static void dispatch(struct daemon *d, struct mstate *ms);

/* A removed merchant's last job ended: its timers are gone and only the list refers to it. */
static void mstate_forget(struct daemon *d, struct mstate *ms)
{
	for (size_t i = 0; i < d->n_ms; i++)
		if (d->ms[i] == ms) {
			d->ms[i] = d->ms[--d->n_ms];
			break;
		}
	mstate_free(ms);
}

/*
 * A golive or rebind ended.  On success every stream runs now: after a golive
 * in full, into the fresh mirror, whose empty state status shows at once; a
 * failure was logged by lib/source.c and is the waiter's answer.
 */
static void rebind_done(struct daemon *d, struct job *job)
{
	struct mstate *ms = job->ms;
	bool golive = job->kind == JOB_GOLIVE;
	if (job->rc != 0)
		return;
	for (int s = 0; s < STREAM_COUNT && golive; s++) {
		stream_take_state(&ms->s[s], &(struct store_state){ 0 });
		ms->s[s].failures = 0;
	}
	runtime_sync_now(d, ms, -1, golive); /* dispatched when this job is retired */
}

/* Back on the loop: record the outcome, schedule the next run, start the merchant's next job. */
static void job_done(struct daemon *d, struct job *job)
{
	if (job->kind == JOB_CHECK) {
		control_job_done(d->ctl, job);
		job_free(job);
		return;
	}
	struct mstate *ms = job->ms;
	if (job->kind == JOB_GOLIVE || job->kind == JOB_REBIND)
		rebind_done(d, job);
	else if (job->kind == JOB_REPROJECT) {
		struct log_ctx lc = { ms->id, NULL, 0 };
		log_msg(job->rc == 0 ? LOG_NOTICE : LOG_ERR, &lc, NULL, "reproject: %s", job->res.message);
	}
	if (job->kind != JOB_SYNC) {
		control_job_done(d->ctl, job);
		ms->job = NULL;
		job_free(job);
		if (ms->removed)
			mstate_forget(d, ms);
		else
			dispatch(d, ms);
		return;
	}
	struct stream_rt *rt = &ms->s[job->s];

	if (job->have_state)
		stream_take_state(rt, &job->state);
	else if (job->res.error_class) /* the mirror could not even be opened */
		snprintf(rt->error_class, sizeof(rt->error_class), "%s", job->res.error_class);
	rt->runs++;
	rt->last_run_id = job->res.run_id;
	rt->last_duration_s = (double)(job->finished_usec - job->started_usec) / 1e6;
	bool ok = job->rc == 0, stopped = job->rc == -EAGAIN;
	if (!ok && !stopped)
		rt->errors++;
	rt->failures = ok ? 0 : stopped ? rt->failures : rt->failures + 1;
	control_job_done(d->ctl, job);
	ms->job = NULL;

	if (ms->removed) {
		job_free(job);
		mstate_forget(d, ms);
		return;
	}
	if (!d->stopping && rt->enabled) {
		/* A failure retries sooner than the interval, backing off; an
		 * unauthorized endpoint waits a whole interval: only the
		 * merchant can fix it. */
		uint64_t wait = rt->interval_usec;
		if (!ok && !stopped && !rt->unauthorized) {
			uint64_t b = RETRY_FIRST_USEC << (rt->failures > 10 ? 10 : rt->failures - 1);
			if (b < wait)
				wait = b;
		}
		uint64_t spread = wait * JITTER_PERCENT / 100;
		stream_schedule(d, ms, job->s, now_usec() + wait - spread + jitter(2 * spread + 1));
	}
	job_free(job);
	dispatch(d, ms);
}

static int on_pool(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct daemon *d = userdata;
	(void)src, (void)fd, (void)revents;
	struct pool_job *list = pool_done(d->pool);
	while (list) {
		struct pool_job *next = list->next;
		job_done(d, (struct job *)list);
		list = next;
	}
	notify_status(d);
	/* Exit only once nothing is left: a job that ended since pool_done()
	 * keeps the eventfd readable, and its turn comes first. */
	if (d->stopping && pool_idle(d->pool))
		sd_event_exit(d->e, 0);
	return 0;
}

/* Start the merchant's next due stream, reference data first, then the SFTP scan. */
static struct job *job_new(struct daemon *d, struct mstate *ms, int kind)
{
	struct job *job = calloc(1, sizeof(*job));
	if (!job) {
		log_err(NULL, "out of memory starting a job");
		return NULL;
	}
	job->pj.work = job_work;
	job->kind = kind;
	job->ms = ms;
	job->cfg = cfg_ref(d->cfg);
	job->conf = ms->conf;
	job->stop = &d->stop;
	job->queued_usec = now_usec();
	return job;
}

/* A golive or rebind asked for: the merchant's next job, before the syncs, even when paused. */
static bool dispatch_rebind(struct daemon *d, struct mstate *ms)
{
	struct waiter **list = ms->golive ? &ms->golive : ms->rebind ? &ms->rebind : NULL;
	if (!list)
		return false;
	struct job *job = job_new(d, ms, list == &ms->golive ? JOB_GOLIVE : JOB_REBIND);
	if (!job)
		return true;
	job->waiters = *list;
	*list = NULL;
	ms->job = job;
	pool_submit(d->pool, &job->pj);
	return true;
}

static void dispatch(struct daemon *d, struct mstate *ms)
{
	if (ms->job || ms->removed || d->stopping || dispatch_rebind(d, ms))
		return;
	if (ms->reproject) {
		/* Asked for by an operator: before the syncs, even when paused. */
		struct job *job = job_new(d, ms, JOB_REPROJECT);
		if (!job)
			return;
		job->waiters = ms->reproject;
		ms->reproject = NULL;
		ms->job = job;
		pool_submit(d->pool, &job->pj);
		return;
	}
	if (ms->paused)
		return;
	for (int k = 0; k <= STREAM_API_COUNT; k++) {
		enum stream s = k < STREAM_API_COUNT ? sync_order[k] : STREAM_SFTP;
		struct stream_rt *rt = &ms->s[s];
		if (!rt->enabled || !rt->due)
			continue;
		struct job *job = job_new(d, ms, JOB_SYNC);
		if (!job)
			return;
		job->s = s;
		job->full = rt->full;
		job->waiters = rt->waiters;
		rt->waiters = NULL;
		rt->due = rt->full = false;
		ms->job = job;
		pool_submit(d->pool, &job->pj);
		notify_status(d);
		return;
	}
}

/*
 * A stream's timer fired.  The merchant's other streams due within the timer
 * accuracy come due with it (their timers would fire in the next loop turns),
 * so that dispatch sees them together and runs reference data first.
 */
static int on_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct mstate *ms = userdata;
	for (int s = 0; s < STREAM_COUNT; s++) {
		struct stream_rt *rt = &ms->s[s];
		if (rt->timer != src && !(rt->enabled && rt->next_usec &&
					  rt->next_usec <= usec + 2 * TIMER_ACCURACY_USEC))
			continue;
		rt->due = true;
		rt->next_usec = 0;
		if (rt->timer != src)
			sd_event_source_set_enabled(rt->timer, SD_EVENT_OFF);
	}
	dispatch(ms->d, ms);
	return 0;
}

static void stream_schedule(struct daemon *d, struct mstate *ms, enum stream s, uint64_t at)
{
	struct stream_rt *rt = &ms->s[s];
	rt->next_usec = at;
	if (rt->timer) {
		sd_event_source_set_time(rt->timer, at);
		sd_event_source_set_enabled(rt->timer, SD_EVENT_ONESHOT);
		return;
	}
	if (sd_event_add_time(d->e, &rt->timer, CLOCK_MONOTONIC, at, TIMER_ACCURACY_USEC, on_timer,
			      ms) < 0) {
		struct log_ctx lc = { ms->id, stream_name(s), 0 };
		log_err(&lc, "cannot arm the timer");
	}
}

/* On a worker thread: the onboarding check, beside any sync of the same merchant. */
static void check_work(struct pool_job *pj)
{
	struct job *job = (struct job *)pj;
	atomic_store(&job->started, true);
	job->started_usec = now_usec();
	job->rc = check_run(job->cfg->c, job->conf, job->stop, &job->report);
	if (job->rc < 0) {
		job->res.outcome = "failed";
		snprintf(job->res.message, sizeof(job->res.message), "cannot open the mirror: %s",
			 strerror(-job->rc));
	}
	job->finished_usec = now_usec();
}

void runtime_reproject(struct daemon *d, struct mstate *ms, struct waiter *waiter)
{
	waiter->next = ms->reproject;
	ms->reproject = waiter;
	dispatch(d, ms);
}

void runtime_rebind(struct daemon *d, struct mstate *ms, bool golive, struct waiter *waiter)
{
	struct waiter **list = golive ? &ms->golive : &ms->rebind;
	waiter->next = *list;
	*list = waiter;
	dispatch(d, ms);
}

int runtime_check(struct daemon *d, struct mstate *ms, struct waiter *waiter)
{
	struct job *job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->pj.work = check_work;
	job->kind = JOB_CHECK;
	job->cfg = cfg_ref(d->cfg);
	job->conf = ms->conf;
	job->stop = &d->stop;
	job->waiters = waiter;
	job->queued_usec = now_usec();
	pool_submit(d->pool, &job->pj);
	return 0;
}

/* ---- merchants ----------------------------------------------------------- */

static uint64_t stream_interval(const struct merchant_conf *m, enum stream s)
{
	return s == STREAM_SFTP ? m->sftp.poll_usec : m->wshop.poll_usec[s];
}

static bool stream_enabled(const struct merchant_conf *m, enum stream s)
{
	return s == STREAM_SFTP ? m->has_sftp : m->has_wshop;
}

static const char *SQL_STATUS_LOAD =
	"SELECT stream, last_success, last_attempt, cursor_time, error_class, last_error, endpoint,"
	"       unauthorized, rows_total FROM sync_state";

/*
 * What the mirror already says of each stream, so status is right from the
 * start and a restart does not re-run what ran a minute ago.  Only when the
 * database file exists: a new merchant's file is made by its first job.
 */
static void mstate_load(struct daemon *d, struct mstate *ms)
{
	char path[4096];
	sqlite3 *db;
	sqlite3_stmt *q = NULL;
	snprintf(path, sizeof(path), "%s/%s.db", d->cfg->c->daemon.state_dir, ms->id);
	/* Read-only and without migrating: this runs on the loop, for every
	 * merchant at start.  Migrations and reaping are the first job's. */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return;
	}
	sqlite3_busy_timeout(db, 1000);
	if (sqlite3_prepare_v2(db, SQL_STATUS_LOAD, -1, &q, NULL) == SQLITE_OK) {
		while (sqlite3_step(q) == SQLITE_ROW) {
			int s = stream_from_name((const char *)sqlite3_column_text(q, 0));
			if (s < 0)
				continue;
			struct store_state st = { 0 };
			const char *v;
#define COL(i, field) \
	if ((v = (const char *)sqlite3_column_text(q, i))) \
		st.field = (char *)v
			COL(1, last_success);
			COL(2, last_attempt);
			COL(3, cursor_time);
			COL(4, error_class);
			COL(5, last_error);
			COL(6, endpoint);
#undef COL
			st.unauthorized = sqlite3_column_int(q, 7) != 0;
			st.rows_total = sqlite3_column_int64(q, 8);
			stream_take_state(&ms->s[s], &st); /* copies: st's strings stay the statement's */
		}
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* Timers of one merchant from its settings: first runs spread, later ones from the last success. */
static void mstate_arm(struct daemon *d, struct mstate *ms, bool settings_changed)
{
	time_t wall = time(NULL);
	uint64_t now = now_usec();
	/* One offset per merchant for first runs: merchants spread out, while
	 * one merchant's streams come due together and run reference data first. */
	uint64_t first = now + jitter(FIRST_RUN_SPREAD_USEC);
	for (int s = 0; s < STREAM_COUNT; s++) {
		struct stream_rt *rt = &ms->s[s];
		bool was = rt->enabled;
		uint64_t old_interval = rt->interval_usec;
		rt->enabled = stream_enabled(ms->conf, s);
		rt->interval_usec = rt->enabled ? stream_interval(ms->conf, s) : 0;
		if (!rt->enabled) {
			if (rt->timer)
				sd_event_source_set_enabled(rt->timer, SD_EVENT_OFF);
			rt->due = rt->full = false;
			rt->next_usec = 0;
			waiters_drop(&rt->waiters, "the stream was turned off by a reload");
			continue;
		}
		if (was && !settings_changed)
			continue;
		if (was && old_interval == rt->interval_usec && (rt->next_usec || rt->due))
			continue;
		uint64_t at = first;
		time_t last;
		if (rt->last_success[0] && tstamp_parse(rt->last_success, &last) == 0) {
			uint64_t age = wall > last ? (uint64_t)(wall - last) * 1000000u : 0;
			if (age < rt->interval_usec)
				at = now + (rt->interval_usec - age) + jitter(rt->interval_usec / 10 + 1);
		}
		stream_schedule(d, ms, s, at);
	}
}

static struct mstate *mstate_new(struct daemon *d, const struct merchant_conf *m)
{
	struct mstate *ms = calloc(1, sizeof(*ms));
	if (!ms)
		return NULL;
	ms->d = d;
	ms->conf = m;
	snprintf(ms->id, sizeof(ms->id), "%s", m->id);
	mstate_load(d, ms);
	return ms;
}

struct mstate *runtime_merchant(struct daemon *d, const char *id)
{
	for (size_t i = 0; i < d->n_ms; i++)
		if (!d->ms[i]->removed && strcmp(d->ms[i]->id, id) == 0)
			return d->ms[i];
	return NULL;
}

/*
 * A reload points ms elsewhere (another environment, API address or SFTP
 * root): its streams run now, so that a mirror bound to the old source
 * refuses at once, before any request, and status says so.
 */
static void source_moved(struct daemon *d, struct mstate *ms)
{
	log_notice(MCTX(ms), "the configuration points to another source: checking the mirror's");
	runtime_sync_now(d, ms, -1, false);
}

/* Bring the merchant list in line with d->cfg: add, update, remove. */
static int merchants_apply(struct daemon *d)
{
	const struct config *c = d->cfg->c;
	size_t cap = d->n_ms + c->n_merchants;
	struct mstate **list = realloc(d->ms, (cap ? cap : 1) * sizeof(*list));
	if (!list)
		return -ENOMEM;
	d->ms = list;

	for (size_t i = 0; i < d->n_ms; i++) {
		struct mstate *ms = d->ms[i];
		if (ms->removed)
			continue;
		const struct merchant_conf *m = config_merchant(c, ms->id);
		if (m) {
			bool moved = !source_conf_same(ms->conf, m);
			ms->conf = m;
			mstate_arm(d, ms, true);
			if (moved)
				source_moved(d, ms);
			continue;
		}
		/* Removed: no more timers; freed now, or when its job ends. */
		log_notice(MCTX(ms), "merchant removed from the configuration");
		ms->removed = true;
		for (int s = 0; s < STREAM_COUNT; s++) {
			ms->s[s].timer = sd_event_source_disable_unref(ms->s[s].timer);
			ms->s[s].due = false;
		}
		if (!ms->job) {
			d->ms[i--] = d->ms[--d->n_ms];
			mstate_free(ms);
		}
	}
	for (size_t i = 0; i < c->n_merchants; i++) {
		if (runtime_merchant(d, c->merchants[i].id))
			continue;
		/* Removed while its job still runs, and back already: the same
		 * state again, so the merchant still has at most one job. */
		struct mstate *back = NULL;
		for (size_t k = 0; k < d->n_ms && !back; k++)
			if (d->ms[k]->removed && strcmp(d->ms[k]->id, c->merchants[i].id) == 0)
				back = d->ms[k];
		if (back) {
			back->removed = false;
			back->conf = &c->merchants[i];
			mstate_arm(d, back, true);
			log_info(MCTX(back), "merchant added back");
			continue;
		}
		struct mstate *ms = mstate_new(d, &c->merchants[i]);
		if (!ms)
			return -ENOMEM;
		d->ms[d->n_ms++] = ms;
		mstate_arm(d, ms, true);
		log_info(MCTX(ms), "merchant added");
	}
	return 0;
}

int runtime_sync_now(struct daemon *d, struct mstate *ms, int s, bool full)
{
	int n = 0;
	for (int k = 0; k < STREAM_COUNT; k++) {
		if ((s >= 0 && k != s) || !ms->s[k].enabled)
			continue;
		ms->s[k].due = true;
		ms->s[k].full = ms->s[k].full || full;
		n++;
	}
	if (n)
		dispatch(d, ms);
	return n;
}

void runtime_pause(struct daemon *d, struct mstate *ms, bool paused)
{
	ms->paused = paused;
	log_notice(MCTX(ms), paused ? "paused" : "resumed");
	if (!paused)
		dispatch(d, ms);
	notify_status(d);
}

int runtime_reload(struct daemon *d, char *err, size_t errlen)
{
	struct config *c;
	char *buf = NULL;
	size_t len = 0;
	FILE *errs = open_memstream(&buf, &len);
	if (!errs)
		return -ENOMEM;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_usec());
	int r = config_load(d->config_path, &c, errs);
	fclose(errs);
	if (r < 0) {
		/* Keep the old configuration; say every FILE:LINE problem. */
		char *save = NULL;
		for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			log_err(NULL, "reload refused: %s", line);
		snprintf(err, errlen, "the new configuration has errors; the old one stays: %s",
			 buf && *buf ? buf : "");
		size_t n = strlen(err);
		if (n && err[n - 1] == '\n')
			err[n - 1] = 0;
		free(buf);
		sd_notify(0, "READY=1");
		return -EINVAL;
	}
	free(buf);
	struct cfg *nc = calloc(1, sizeof(*nc));
	if (!nc) {
		config_free(c);
		sd_notify(0, "READY=1");
		return -ENOMEM;
	}
	nc->c = c;
	nc->refs = 1;
	/* Folders and the pool size are the running process's: they change at restart. */
	struct daemon_conf *nd = &c->daemon, *od = &d->cfg->c->daemon;
	if (strcmp(nd->state_dir, od->state_dir) != 0 || strcmp(nd->runtime_dir, od->runtime_dir) != 0 ||
	    nd->workers != od->workers) {
		log_warning(NULL, "reload: state_dir, runtime_dir and workers take effect at the next "
				  "restart; keeping %s, %s and %d workers", od->state_dir, od->runtime_dir,
			    od->workers);
		char *keep_state = strdup(od->state_dir), *keep_run = strdup(od->runtime_dir);
		if (keep_state && keep_run) {
			free(nd->state_dir);
			free(nd->runtime_dir);
			nd->state_dir = keep_state;
			nd->runtime_dir = keep_run;
			keep_state = keep_run = NULL;
		}
		free(keep_state);
		free(keep_run);
		nd->workers = od->workers;
	}
	struct cfg *old = d->cfg;
	d->cfg = nc;
	log_set_level(c->daemon.log_level);
	r = merchants_apply(d);
	cfg_unref(old);
	log_notice(NULL, "configuration reloaded: %zu merchants", c->n_merchants);
	notify_status(d);
	sd_notify(0, "READY=1");
	return r;
}

/* ---- status and metrics -------------------------------------------------- */

const char *runtime_stream_state(const struct mstate *ms, enum stream s)
{
	const struct stream_rt *rt = &ms->s[s];
	if (!rt->enabled)
		return "disabled";
	if (ms->job && ms->job->kind == JOB_SYNC && ms->job->s == s)
		return atomic_load(&ms->job->started) ? "running" : "queued";
	if (ms->paused)
		return "paused";
	if (rt->unauthorized)
		return "unauthorized";
	if (rt->error_class[0])
		return "failing";
	return "idle";
}

/* A string for status, or null; text that is not valid UTF-8 (a file name
 * from a merchant's server) is shown with '?' rather than dropping the stream. */
static json_t *str_or_null(const char *s)
{
	if (!s || !*s)
		return json_null();
	json_t *v = json_string(s);
	if (!v) {
		char *copy = strdup(s);
		if (copy) {
			ctl_utf8_mend(copy);
			v = json_string(copy);
			free(copy);
		}
	}
	return v ? v : json_null();
}

static json_t *stream_status(struct daemon *d, struct mstate *ms, enum stream s)
{
	struct stream_rt *rt = &ms->s[s];
	time_t wall = time(NULL), t;
	uint64_t now = now_usec();
	json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:o,s:I,s:o,s:o,s:o}",
			      "stream", stream_name(s), "state", runtime_stream_state(ms, s),
			      "last_success", str_or_null(rt->last_success),
			      "last_attempt", str_or_null(rt->last_attempt),
			      "cursor", str_or_null(rt->cursor), "rows_total", (json_int_t)rt->rows_total,
			      "error_class", str_or_null(rt->error_class),
			      "last_error", str_or_null(rt->last_error),
			      "endpoint", str_or_null(rt->endpoint));
	if (!o)
		return NULL;
	json_object_set_new(o, "interval_s", json_integer((json_int_t)(rt->interval_usec / 1000000u)));
	if (rt->last_success[0] && tstamp_parse(rt->last_success, &t) == 0)
		json_object_set_new(o, "age_s", json_integer(wall > t ? (json_int_t)(wall - t) : 0));
	else
		json_object_set_new(o, "age_s", json_null());
	if (rt->next_usec && !ms->paused) {
		int64_t in = (int64_t)(rt->next_usec > now ? rt->next_usec - now : 0) / 1000000;
		tstamp_t next;
		tstamp_format(wall + (time_t)in, next);
		json_object_set_new(o, "next_run", json_string(next));
		json_object_set_new(o, "next_in_s", json_integer(in));
	} else {
		json_object_set_new(o, "next_run", json_null());
		json_object_set_new(o, "next_in_s", json_null());
	}
	if (ms->job && ms->job->kind == JOB_SYNC && ms->job->s == s && atomic_load(&ms->job->started))
		json_object_set_new(o, "progress",
				    json_pack("{s:I,s:I}", "pages",
					      (json_int_t)atomic_load(&ms->job->progress.pages), "rows",
					      (json_int_t)atomic_load(&ms->job->progress.rows)));
	(void)d;
	return o;
}

/* "source": where the configuration points, for status (the mirror's own is in a stopped stream's error). */
static void status_source(const struct mstate *ms, json_t *o)
{
	struct source src;
	char text[SOURCE_TEXT_MAX];
	if (o && source_from_conf(ms->conf, &src, text, sizeof(text)) == 0) {
		source_describe(&src, text, sizeof(text));
		json_object_set_new(o, "source", json_string(text));
	}
}

static json_t *merchant_status(struct daemon *d, struct mstate *ms)
{
	json_t *streams = json_array();
	for (int k = 0; k <= STREAM_API_COUNT; k++) {
		enum stream s = k < STREAM_API_COUNT ? sync_order[k] : STREAM_SFTP;
		if (ms->s[s].enabled)
			json_array_append_new(streams, stream_status(d, ms, s));
	}
	char db[4200];
	snprintf(db, sizeof(db), "%s/%s.db", d->cfg->c->daemon.state_dir, ms->id);
	json_t *o = json_pack("{s:s,s:s,s:b,s:s,s:o}", "merchant", ms->id, "environment",
			      source_environment_name(ms->conf->environment), "paused", ms->paused,
			      "db", db, "streams", streams);
	status_source(ms, o);
	return o;
}

json_t *runtime_status(struct daemon *d, struct mstate *ms)
{
	json_t *list = json_array();
	for (size_t i = 0; i < d->n_ms; i++)
		if (!d->ms[i]->removed && (!ms || d->ms[i] == ms))
			json_array_append_new(list, merchant_status(d, d->ms[i]));
	char summary[256];
	status_summary(d, summary, sizeof(summary));
	return json_pack("{s:s,s:s,s:I,s:i,s:i,s:o}", "version", KLEEP_VERSION, "summary",
			 summary, "uptime_s", (json_int_t)((now_usec() - d->started_usec) / 1000000u),
			 "jobs_running", pool_running(d->pool), "queue", pool_queued(d->pool),
			 "merchants", list);
}

char *runtime_metrics(struct daemon *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	size_t live = 0;
	for (size_t i = 0; i < d->n_ms; i++)
		live += !d->ms[i]->removed;
	fprintf(f, "# TYPE kleep_merchants gauge\n# HELP kleep_merchants Merchants configured.\n"
		   "kleep_merchants %zu\n", live);
	fprintf(f, "# TYPE kleep_jobs_running gauge\n# HELP kleep_jobs_running Jobs running now.\n"
		   "kleep_jobs_running %d\n", pool_running(d->pool));
	fprintf(f, "# TYPE kleep_queue_length gauge\n# HELP kleep_queue_length Jobs waiting for a worker.\n"
		   "kleep_queue_length %d\n", pool_queued(d->pool));
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "kleep_last_success_timestamp_seconds", "gauge", "When the stream last synced whole." },
		{ "kleep_rows", "gauge", "Records mirrored for the stream." },
		{ "kleep_runs", "counter", "Runs since kleepd started." },
		{ "kleep_errors", "counter", "Failed runs since kleepd started." },
		{ "kleep_last_run_duration_seconds", "gauge", "Duration of the last run." },
		{ "kleep_unauthorized", "gauge", "1 when the API user may not call the stream's endpoint." },
	};
	for (size_t k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
		fprintf(f, "# TYPE %s %s\n# HELP %s %s\n", fam[k].name, fam[k].type, fam[k].name, fam[k].help);
		for (size_t i = 0; i < d->n_ms; i++) {
			struct mstate *ms = d->ms[i];
			if (ms->removed)
				continue;
			for (int s = 0; s < STREAM_COUNT; s++) {
				struct stream_rt *rt = &ms->s[s];
				time_t t;
				if (!rt->enabled)
					continue;
				fprintf(f, "%s%s{merchant=\"%s\",stream=\"%s\"} ", fam[k].name,
					strcmp(fam[k].type, "counter") == 0 ? "_total" : "", ms->id,
					stream_name(s));
				switch (k) {
				case 0:
					fprintf(f, "%lld\n", rt->last_success[0] && tstamp_parse(rt->last_success, &t) == 0
							     ? (long long)t : 0LL);
					break;
				case 1: fprintf(f, "%" PRId64 "\n", rt->rows_total); break;
				case 2: fprintf(f, "%" PRId64 "\n", rt->runs); break;
				case 3: fprintf(f, "%" PRId64 "\n", rt->errors); break;
				case 4: fprintf(f, "%.3f\n", rt->last_duration_s); break;
				default: fprintf(f, "%d\n", rt->unauthorized); break;
				}
			}
		}
	}
	fprintf(f, "# EOF\n");
	fclose(f);
	return buf;
}

/* ---- signals and main ---------------------------------------------------- */

static void begin_stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	atomic_store(&d->stop, true);
	sd_notify(0, "STOPPING=1");
	log_notice(NULL, "stopping: %d job%s to finish", pool_running(d->pool),
		   pool_running(d->pool) == 1 ? "" : "s");
	/* Runs asked for and not queued yet will not happen either. */
	for (size_t i = 0; i < d->n_ms; i++) {
		waiters_drop(&d->ms[i]->reproject, "kleepd is stopping");
		waiters_drop(&d->ms[i]->golive, "kleepd is stopping");
		waiters_drop(&d->ms[i]->rebind, "kleepd is stopping");
		for (int s = 0; s < STREAM_COUNT; s++)
			waiters_drop(&d->ms[i]->s[s].waiters, "kleepd is stopping");
	}
	/* Queued jobs never start. */
	struct pool_job *list = pool_drain(d->pool);
	while (list) {
		struct pool_job *next = list->next;
		struct job *job = (struct job *)list;
		job->rc = -EAGAIN;
		job->res.outcome = "interrupted";
		job->started_usec = job->finished_usec = now_usec();
		job_done(d, job);
		list = next;
	}
	if (pool_idle(d->pool))
		sd_event_exit(d->e, 0);
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;
	(void)src;
	if (si->ssi_signo == SIGHUP) {
		char err[4096];
		runtime_reload(d, err, sizeof(err));
	} else {
		begin_stop(d);
	}
	return 0;
}

int runtime_main(const char *config_path, bool foreground)
{
	struct daemon d = { .config_path = config_path };
	struct config *c;
	char err[1024];
	int r = 1;

	(void)foreground;
	if (config_load(config_path, &c, stderr) < 0)
		return 1;
	d.cfg = calloc(1, sizeof(*d.cfg));
	if (!d.cfg) {
		config_free(c);
		return 1;
	}
	d.cfg->c = c;
	d.cfg->refs = 1;
	log_set_level(c->daemon.log_level);
	kleepd_core_dumps(c->daemon.core_dumps);
	d.started_usec = now_usec();

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL); /* before the pool: workers inherit the mask */
	signal(SIGPIPE, SIG_IGN);

	int efd;
	if (sd_event_default(&d.e) < 0 || !(d.pool = pool_new(c->daemon.workers, &efd))) {
		log_err(NULL, "cannot start the event loop or the workers");
		goto out;
	}
	if (sd_event_add_io(d.e, &d.pool_src, efd, EPOLLIN, on_pool, &d) < 0 ||
	    sd_event_add_signal(d.e, NULL, SIGTERM, on_signal, &d) < 0 ||
	    sd_event_add_signal(d.e, NULL, SIGINT, on_signal, &d) < 0 ||
	    sd_event_add_signal(d.e, NULL, SIGHUP, on_signal, &d) < 0) {
		log_err(NULL, "cannot watch signals");
		goto out;
	}
	sd_event_set_watchdog(d.e, true);
	if (mkdir(c->daemon.state_dir, 0750) < 0 && errno != EEXIST) {
		log_err(NULL, "%s: cannot create the state folder: %s", c->daemon.state_dir, strerror(errno));
		goto out;
	}
	if (merchants_apply(&d) < 0)
		goto out;
	char sock[4096];
	snprintf(sock, sizeof(sock), "%s/%s", c->daemon.runtime_dir, CTL_SOCKET_NAME);
	d.ctl = control_new(&d, sock, err, sizeof(err));
	if (!d.ctl) {
		log_err(NULL, "%s", err);
		goto out;
	}
	notify_status(&d);
	sd_notify(0, "READY=1");
	log_notice(NULL, "kleepd %s started: %zu merchants, %d workers, control socket %s", KLEEP_VERSION,
		   c->n_merchants, c->daemon.workers, sock);
	r = sd_event_loop(d.e) < 0 ? 1 : 0;
	log_notice(NULL, "stopped");
out:
	control_free(d.ctl);
	/* The loop only ends with no job running and none queued (begin_stop). */
	pool_free(d.pool);
	for (size_t i = 0; i < d.n_ms; i++)
		mstate_free(d.ms[i]);
	free(d.ms);
	sd_event_source_unref(d.pool_src);
	sd_event_source_disable_unref(d.status_timer);
	sd_event_unref(d.e);
	cfg_unref(d.cfg);
	return r;
}
