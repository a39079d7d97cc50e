/* runtime.h - the service's merchants, timers and jobs, as the control socket and main see
 * them: a small API by merchant id, with completion callbacks (DESIGN.md §2).
 *
 * Threads: every function here runs on the loop thread.  Callbacks are made on the loop
 * thread too.  Nothing of the runtime's own state is visible above this header. */
#ifndef KLEEP_RUNTIME_H
#define KLEEP_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "config.h"

struct runtime;

/* What a job that someone waited for came to; every pointer is borrowed for the callback. */
struct runtime_result {
	const char *merchant;
	const char *stream;       /* a sync's stream; NULL for other jobs */
	const char *gone;         /* non-NULL: the job will never run, and why */
	int rc;                   /* 0 when the job succeeded */
	const char *outcome;      /* "success", "failed", "interrupted" */
	const char *error_class;  /* NULL on success */
	const char *message;
	int64_t run_id, pages, rows, changed;
	json_t *data;             /* a check's report; NULL otherwise */
	/* A query's rows as its render made them, off the loop; *text may be NULL.  The
	 * callback may take *text (it then frees it), leaving NULL. */
	char **text;
	size_t text_len;
};

/*
 * A note that someone waits for a job's end.  The waiter's memory is the
 * caller's (control embeds it in its client); the runtime only links it into
 * its lists.  done(arg, result) is called once, on the loop, and the waiter is
 * unlinked before the call.  A caller that goes first calls
 * runtime_waiter_cancel(); after that no callback comes.
 */
struct runtime_waiter {
	void (*done)(void *arg, const struct runtime_result *r);
	void *arg;
	struct runtime_waiter *next, **pprev; /* the runtime's; pprev NULL when not linked */
};

void runtime_waiter_cancel(struct runtime_waiter *w);
bool runtime_waiter_linked(const struct runtime_waiter *w);

/* Why a request was refused; RUNTIME_OK when it was taken. */
enum runtime_refusal {
	RUNTIME_OK = 0,
	RUNTIME_NO_MERCHANT,      /* no merchant of that id */
	RUNTIME_USAGE,            /* a stream it does not sync, a --full that does not apply */
	RUNTIME_PAUSED,
	RUNTIME_STOPPING,
	RUNTIME_NOMEM,
};

/*
 * The runtime of configuration c (taken: freed by runtime_free), on loop e
 * (a reference is taken), with a pool of c's workers.  Merchants' mirrors are
 * read on the pool, so the first status may show them empty for a moment.
 * NULL on failure, with err said.
 */
struct runtime *runtime_new(sd_event *e, const char *config_path, struct config *c, char *err,
			    size_t errlen);
/* Once nothing runs (the loop ended after runtime_stop). */
void runtime_free(struct runtime *rt);

/* SIGTERM: stop taking jobs, answer waiters, end the loop once running jobs returned. */
void runtime_stop(struct runtime *rt);
bool runtime_stopping(const struct runtime *rt);

/* Re-read the configuration; the old one stays on error (-EINVAL, err says why). */
int runtime_reload(struct runtime *rt, char *err, size_t errlen);
/* The configuration in force; borrowed until the next reload. */
const struct config *runtime_config(const struct runtime *rt);

/*
 * Run stream s of merchant m now (every enabled stream when s < 0); full
 * re-reads s whole.  waiters: NULL, or an array of STREAM_COUNT waiters, of
 * which those of the queued streams are linked, each answered when its run
 * ends.  *queued: how many streams were queued.  err says a refusal.
 */
enum runtime_refusal runtime_sync(struct runtime *rt, const char *m, int s, bool full,
				  struct runtime_waiter *waiters, int *queued, char *err, size_t errlen);
enum runtime_refusal runtime_pause(struct runtime *rt, const char *m, bool paused);
/* The onboarding check of m on the pool; w answered with its report in data. */
enum runtime_refusal runtime_check(struct runtime *rt, const char *m, struct runtime_waiter *w);
/* Rebuild m's canonical tables from its raw layer as its next job. */
enum runtime_refusal runtime_reproject(struct runtime *rt, const char *m, struct runtime_waiter *w,
				       char *err, size_t errlen);

/* Go live (archive m's mirror as <id>.<environment>.<UTC time>.db, start a fresh one
 * bound to the configured source, run every stream in full) or rebind (accept the
 * configured source for the same shop, keeping data and cursors), as m's next job. */
enum runtime_refusal runtime_rebind(struct runtime *rt, const char *m, bool golive,
				    struct runtime_waiter *w);

/* Read-only queries of a merchant's mirror, run on the pool. */
enum runtime_query { RUNTIME_RUNS, RUNTIME_FILES, RUNTIME_REJECTS };
/* Text of a query's rows (an array of objects, taken); malloc'd, NULL on OOM.  Called
 * on a worker thread: it must be thread-safe. */
typedef char *(*runtime_render)(json_t *rows);
/* param: a stream (runs) or a file (files, rejects), or NULL; n rows at most (0: the
 * default); render makes the answer's text off the loop (100,000 rows are tens of MB). */
enum runtime_refusal runtime_query(struct runtime *rt, const char *m, enum runtime_query q,
				   const char *param, long n, runtime_render render,
				   struct runtime_waiter *w);

/* status: the daemon's part (version, summary, uptime, jobs, queue), new reference. */
json_t *runtime_status_head(struct runtime *rt);
/* The ids of the merchants now, in order (new reference), for status one merchant at a time. */
json_t *runtime_merchant_ids(struct runtime *rt);
/* One merchant's status (new reference), or NULL when there is none of that id (any more). */
json_t *runtime_merchant_status(struct runtime *rt, const char *m);

/* Metrics: Prometheus text format, or OpenMetrics when asked; caller frees; NULL on OOM. */
char *runtime_metrics(struct runtime *rt, bool openmetrics);

#endif
