/* kleepd.h - the daemon's private interfaces: the runtime (loop, merchants, timers, jobs)
 * and the control socket it serves. */
#ifndef KLEEPD_H
#define KLEEPD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "merchant.h"
#include "pool.h"
#include "store.h"
#include "stream.h"
#include "sync.h"
#include "tstamp.h"

/* A loaded configuration, shared by the merchants and the jobs started under it. */
struct cfg {
	struct config *c;
	int refs;
};

/* One stream of one merchant: its schedule and what status shows of it. */
struct stream_rt {
	bool enabled;
	uint64_t interval_usec;
	uint64_t next_usec;          /* CLOCK_MONOTONIC of the next run; 0 when none */
	sd_event_source *timer;
	bool due, full;
	int failures;                /* consecutive, for the retry backoff */
	struct waiter *waiters;      /* sync --wait for a run not started yet: moved to its job */
	/* from sync_state after the last job */
	tstamp_t last_success, last_attempt, cursor;
	char error_class[16];
	char *last_error, *endpoint; /* owned */
	bool unauthorized;
	int64_t rows_total;
	/* for metrics */
	int64_t runs, errors, last_run_id;
	double last_duration_s;
};

struct job;

/* One merchant at run time. */
struct mstate {
	struct daemon *d;
	char id[CONFIG_MERCHANT_ID_MAX + 1];
	const struct merchant_conf *conf; /* in d->cfg, or in the old cfg while removed */
	struct stream_rt s[STREAM_COUNT];
	struct job *job;                  /* queued or running; at most one per merchant */
	bool paused, removed;
	struct waiter *reproject;         /* a reproject asked for: runs as the next job */
	struct waiter *golive, *rebind;   /* asked for likewise (lib/source.h) */
};

/* A control client waiting for a job's end (kleepctl sync --wait). */
struct waiter {
	struct client *client;
	struct waiter *next;
};

struct job {
	struct pool_job pj;               /* first: the pool hands this back */
	enum { JOB_SYNC, JOB_CHECK, JOB_REPROJECT, JOB_GOLIVE, JOB_REBIND } kind;
	struct mstate *ms;                /* NULL for a check: it may outlive the merchant */
	struct cfg *cfg;                  /* a reference, so reload cannot free conf under us */
	const struct merchant_conf *conf;
	enum stream s;
	bool full;
	atomic_bool started;
	atomic_bool *stop;
	uint64_t queued_usec, started_usec, finished_usec;
	struct sync_progress progress;
	struct merchant_result res;
	int rc;
	struct store_state state;         /* the stream's sync_state after the run */
	bool have_state;
	struct waiter *waiters;
	json_t *report;                   /* a check's report */
};

struct control;

struct daemon {
	sd_event *e;
	const char *config_path;
	struct cfg *cfg;
	struct mstate **ms;
	size_t n_ms;
	struct pool *pool;
	sd_event_source *pool_src;
	atomic_bool stop;                 /* raised at SIGTERM: jobs stop at the next page */
	bool stopping;
	struct control *ctl;
	uint64_t started_usec;
	char status_line[256];            /* the last STATUS= sent */
	uint64_t status_sent_usec;        /* when; STATUS= goes out at most once a second */
	sd_event_source *status_timer;    /* armed while a newer line waits its turn */
};

/* kleepd.c */
/* Whether a crash may leave a core (prctl PR_SET_DUMPABLE): cores hold passwords and tokens. */
void kleepd_core_dumps(bool allow);

/* runtime.c */
int runtime_main(const char *config_path, bool foreground);
struct mstate *runtime_merchant(struct daemon *d, const char *id);
/* Queue stream s (or every enabled stream when s < 0) of ms now; full resets the cursor first. */
int runtime_sync_now(struct daemon *d, struct mstate *ms, int s, bool full);
void runtime_pause(struct daemon *d, struct mstate *ms, bool paused);
/* Rebuild ms's canonical tables from its raw layer as its next job; waiter gets the outcome. */
void runtime_reproject(struct daemon *d, struct mstate *ms, struct waiter *waiter);
/* Go live (archive the mirror, start fresh, full sync) or rebind ms as its next job; waiter gets
 * the outcome. */
void runtime_rebind(struct daemon *d, struct mstate *ms, bool golive, struct waiter *waiter);
/* Run the onboarding check of ms on the pool; waiter is answered with its report. */
int runtime_check(struct daemon *d, struct mstate *ms, struct waiter *waiter);
int runtime_reload(struct daemon *d, char *err, size_t errlen);
/* status of one merchant, or of all when ms is NULL */
json_t *runtime_status(struct daemon *d, struct mstate *ms);
/* OpenMetrics text; caller frees */
char *runtime_metrics(struct daemon *d);
const char *runtime_stream_state(const struct mstate *ms, enum stream s);

/* control.c */
struct control *control_new(struct daemon *d, const char *path, char *err, size_t errlen);
void control_free(struct control *c);
/* Answer a waiter whose job will never run, and forget it. */
void control_waiter_drop(struct waiter *w, const char *why);
/* A job ended: answer the clients that waited for it. */
void control_job_done(struct control *c, struct job *job);

#endif
