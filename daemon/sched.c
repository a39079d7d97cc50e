/* sched.c - when jobs run: stream timers, one job per merchant at a time, what a job's end
 * changes (DESIGN.md §2), and the waiter lists that carry answers back to the caller. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime_priv.h"

#define JITTER_PERCENT 10                          /* each interval +/- 10% */
#define RETRY_FIRST_USEC (30 * 1000000ull)         /* after a failure: 30 s, doubling */
#define TIMER_ACCURACY_USEC (250 * 1000ull)

uint64_t now_usec(void)
{
	return tstamp_mono_usec();
}

/* A random number in [0, n), good enough for spreading timers. */
uint64_t jitter(uint64_t n)
{
	static _Thread_local unsigned int seed;
	if (!seed)
		seed = (unsigned int)(now_usec() ^ (uintptr_t)&seed);
	if (n == 0)
		return 0;
	uint64_t r = ((uint64_t)rand_r(&seed) << 31) ^ (uint64_t)rand_r(&seed);
	return r % n;
}

/* ---- waiters ------------------------------------------------------------- */

void runtime_waiter_cancel(struct runtime_waiter *w)
{
	if (!w->pprev)
		return;
	*w->pprev = w->next;
	if (w->next)
		w->next->pprev = w->pprev;
	w->next = NULL;
	w->pprev = NULL;
}

bool runtime_waiter_linked(const struct runtime_waiter *w)
{
	return w->pprev != NULL;
}

void wlist_push(struct wlist *l, struct runtime_waiter *w)
{
	runtime_waiter_cancel(w);
	w->next = l->first;
	if (w->next)
		w->next->pprev = &w->next;
	w->pprev = &l->first;
	l->first = w;
}

void wlist_move(struct wlist *to, struct wlist *from)
{
	while (from->first)
		wlist_push(to, from->first);
}

/* One at a time, unlinked before its call: a callback may cancel any other waiter. */
void wlist_answer(struct wlist *l, const struct runtime_result *r)
{
	while (l->first) {
		struct runtime_waiter *w = l->first;
		runtime_waiter_cancel(w);
		w->done(w->arg, r);
	}
}

void wlist_gone(struct wlist *l, const char *merchant, const char *stream, const char *why)
{
	struct runtime_result r = { .merchant = merchant, .stream = stream, .gone = why, .rc = -ECANCELED,
				    .outcome = "failed", .message = why };
	wlist_answer(l, &r);
}

/* ---- timers and dispatch ------------------------------------------------- */

/*
 * A stream's timer fired.  The merchant's other streams due within the timer
 * accuracy come due with it (their timers would fire in the next loop turns),
 * so that dispatch sees them together and runs reference data first.
 */
static int on_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct mstate *ms = userdata;
	for (int s = 0; s < STREAM_COUNT; s++) {
		struct stream_rt *st = &ms->s[s];
		if (st->timer != src && !(st->enabled && st->next_usec &&
					  st->next_usec <= usec + 2 * TIMER_ACCURACY_USEC))
			continue;
		st->due = true;
		st->next_usec = 0;
		if (st->timer != src)
			sd_event_source_set_enabled(st->timer, SD_EVENT_OFF);
	}
	dispatch(ms->rt, ms);
	return 0;
}

void stream_schedule(struct runtime *rt, struct mstate *ms, enum stream s, uint64_t at)
{
	struct stream_rt *st = &ms->s[s];
	st->next_usec = at;
	if (st->timer) {
		sd_event_source_set_time(st->timer, at);
		sd_event_source_set_enabled(st->timer, SD_EVENT_ONESHOT);
		return;
	}
	if (sd_event_add_time(rt->e, &st->timer, CLOCK_MONOTONIC, at, TIMER_ACCURACY_USEC, on_timer,
			      ms) < 0) {
		struct log_ctx lc = { ms->id, stream_name(s), 0 };
		log_err(&lc, "cannot arm the timer");
	}
}

static void submit(struct runtime *rt, struct mstate *ms, struct job *job)
{
	ms->job = job;
	pool_submit(rt->pool, &job->pj);
	notify_status(rt);
}

/* Start the merchant's next job: a reproject asked for, else its next due stream,
 * reference data first, then the SFTP scan. */
void dispatch(struct runtime *rt, struct mstate *ms)
{
	if (ms->job || ms->removed || rt->stopping || rebind_dispatch(rt, ms))
		return;
	if (ms->reproject.first) {
		/* Asked for by an operator: before the syncs, even when paused. */
		struct job *job = job_new(rt, JOB_REPROJECT, ms);
		if (!job)
			return;
		job->ms = ms;
		wlist_move(&job->waiters, &ms->reproject);
		submit(rt, ms, job);
		return;
	}
	if (ms->paused)
		return;
	for (int k = 0; k <= STREAM_API_COUNT; k++) {
		enum stream s = k < STREAM_API_COUNT ? sync_order[k] : STREAM_SFTP;
		struct stream_rt *st = &ms->s[s];
		if (!st->enabled || !st->due)
			continue;
		struct job *job = job_new(rt, JOB_SYNC, ms);
		if (!job)
			return;
		job->ms = ms;
		job->s = s;
		job->full = st->full;
		wlist_move(&job->waiters, &st->waiters);
		st->due = st->full = false;
		submit(rt, ms, job);
		return;
	}
}

/* ---- a job's end ---------------------------------------------------------- */

/*
 * The stream's last outcome: what the mirror says after the run, unless the
 * run failed in a way the mirror did not record (a read-only or full disk:
 * no run row, or a state older than the run), when the job's own words stand.
 */
static void sync_outcome(struct stream_rt *st, const struct job *job, bool failed)
{
	if (job->have_state)
		outcome_take(&st->last, &job->state);
	if (!failed || !job->res.error_class)
		return;
	bool recorded = job->have_state && job->state.error_class && job->state.last_error &&
			strcmp(job->state.error_class, job->res.error_class) == 0 &&
			strcmp(job->state.last_error, job->res.message) == 0;
	if (recorded)
		return;
	snprintf(st->last.error_class, sizeof(st->last.error_class), "%s", job->res.error_class);
	free(st->last.last_error);
	st->last.last_error = strdup(job->res.message);
	tstamp_now(st->last.last_attempt);
	struct log_ctx lc = { job->id, stream_name(job->s), job->res.run_id };
	log_err(&lc, "run failed and the mirror could not record it: %s: %s", job->res.error_class,
		job->res.message);
}

static void sync_done(struct runtime *rt, struct mstate *ms, struct job *job)
{
	struct stream_rt *st = &ms->s[job->s];
	bool ok = job->rc == 0, stopped = job->rc == -EAGAIN;

	sync_outcome(st, job, !ok && !stopped);
	st->runs++;
	st->files_rejected += job->res.files_rejected;
	st->last_run_id = job->res.run_id;
	st->last_duration_s = (double)(job->finished_usec - job->started_usec) / 1e6;
	if (!ok && !stopped)
		st->errors++;
	st->failures = ok ? 0 : stopped ? st->failures : st->failures + 1;
	if (ms->removed || rt->stopping || !st->enabled)
		return;
	/* A failure retries sooner than the interval, backing off; an
	 * unauthorized endpoint waits a whole interval: only the merchant can fix it. */
	uint64_t wait = st->interval_usec;
	if (!ok && !stopped && !st->last.unauthorized) {
		uint64_t b = RETRY_FIRST_USEC << (st->failures > 10 ? 10 : st->failures - 1);
		if (b < wait)
			wait = b;
	}
	uint64_t spread = wait * JITTER_PERCENT / 100;
	stream_schedule(rt, ms, job->s, now_usec() + wait - spread + jitter(2 * spread + 1));
}

/* Back on the loop: record the outcome, answer who waited, start the merchant's next job. */
void job_done(struct runtime *rt, struct job *job)
{
	struct mstate *ms = job->ms;
	if (job->kind == JOB_REPROJECT) {
		struct log_ctx lc = { job->id, NULL, 0 };
		log_msg(job->rc == 0 ? LOG_NOTICE : LOG_ERR, &lc, NULL, "reproject: %s", job->res.message);
	} else if (job->kind == JOB_SYNC) {
		sync_done(rt, ms, job);
	} else if (job->kind == JOB_LOAD) {
		mstate_loaded(rt, ms, job);
	} else if (job->kind == JOB_GOLIVE || job->kind == JOB_REBIND) {
		rebind_done(ms, job);
	}
	struct runtime_result r;
	job_result(job, &r);
	wlist_answer(&job->waiters, &r);
	if (ms) {
		ms->job = NULL;
		if (ms->removed)
			mstate_forget(rt, ms);
		else
			dispatch(rt, ms);
	}
	job_free(job);
}

int on_pool(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct runtime *rt = userdata;
	(void)src, (void)fd, (void)revents;
	struct pool_job *list = pool_done(rt->pool);
	while (list) {
		struct pool_job *next = list->next;
		job_done(rt, (struct job *)list);
		list = next;
	}
	notify_status(rt);
	/* Exit only once nothing is left: a job that ended since pool_done()
	 * keeps the eventfd readable, and its turn comes first. */
	if (rt->stopping && pool_idle(rt->pool))
		sd_event_exit(rt->e, 0);
	return 0;
}
