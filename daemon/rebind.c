/* rebind.c - go-live and rebind (DESIGN.md §4, source binding): a merchant's mirror
 * bound to a new source, as the merchant's next job.  golive archives the mirror and
 * starts a fresh one, then runs every stream in full; rebind keeps data and cursors.
 * lib/source.c does the work on the pool (job.c's rebind_work); this file schedules it
 * and takes its end. */

#include "log.h"
#include "runtime_priv.h"
#include "source.h"

enum runtime_refusal runtime_rebind(struct runtime *rt, const char *m, bool golive,
				    struct runtime_waiter *w)
{
	struct mstate *ms = runtime_find(rt, m);
	if (!ms)
		return RUNTIME_NO_MERCHANT;
	if (rt->stopping)
		return RUNTIME_STOPPING;
	wlist_push(golive ? &ms->golive : &ms->rebind, w);
	dispatch(rt, ms);
	return RUNTIME_OK;
}

/* A golive or rebind asked for: the merchant's next job, before the syncs, even when paused. */
bool rebind_dispatch(struct runtime *rt, struct mstate *ms)
{
	struct wlist *l = ms->golive.first ? &ms->golive : ms->rebind.first ? &ms->rebind : NULL;
	if (!l)
		return false;
	struct job *job = job_new(rt, l == &ms->golive ? JOB_GOLIVE : JOB_REBIND, ms);
	if (!job)
		return true;
	job->ms = ms;
	wlist_move(&job->waiters, l);
	ms->job = job;
	pool_submit(rt->pool, &job->pj);
	notify_status(rt);
	return true;
}

/* Queue every stream of ms now (in full when full), for when its current job is retired. */
static void queue_all(struct mstate *ms, bool full)
{
	for (int s = 0; s < STREAM_COUNT; s++)
		if (ms->s[s].enabled) {
			ms->s[s].due = true;
			ms->s[s].full = ms->s[s].full || full;
		}
}

/*
 * Back on the loop.  On success every stream runs now: after a golive in full,
 * into the fresh mirror, whose empty state status shows at once.  A failure was
 * logged by lib/source.c and is the waiter's answer.
 */
void rebind_done(struct mstate *ms, struct job *job)
{
	if (job->rc != 0 || !ms || ms->removed)
		return;
	bool golive = job->kind == JOB_GOLIVE;
	for (int s = 0; s < STREAM_COUNT && golive; s++) {
		outcome_clear(&ms->s[s].last);
		ms->s[s].failures = 0;
	}
	queue_all(ms, golive);
}

/*
 * A reload points ms elsewhere (another environment, API address or SFTP root):
 * its streams run now, so that a mirror bound to the old source refuses at once,
 * before any request, and status says so.
 */
void rebind_source_moved(struct runtime *rt, struct mstate *ms, const struct merchant_conf *old)
{
	if (!old || source_conf_same(old, ms->conf))
		return;
	log_notice(&(struct log_ctx){ .merchant = ms->id },
		   "the configuration points to another source: checking the mirror's");
	queue_all(ms, false);
	dispatch(rt, ms);
}

/* status: where the configuration points (the mirror's own is in a stopped stream's error). */
void rebind_status(const struct mstate *ms, json_t *o)
{
	struct source src;
	char text[SOURCE_TEXT_MAX];
	if (o && source_from_conf(ms->conf, &src, text, sizeof(text)) == 0) {
		source_describe(&src, text, sizeof(text));
		json_object_set_new(o, "source", json_string(text));
	}
}
