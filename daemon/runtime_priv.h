/* runtime_priv.h - the runtime's own structures, shared by its files and by nothing else:
 * runtime.c (life, merchants, reload), sched.c (timers, dispatch, job ends), job.c (what
 * runs on the pool), status.c (status, metrics, STATUS=).
 *
 * Threads: the loop thread owns every structure here.  A job is handed to one worker by
 * pool_submit() and back by pool_done() (the pool's lock orders the two); while it runs,
 * the worker alone writes the fields marked "worker", except the atomics, which the loop
 * reads for status.  The config is immutable once loaded, shared by reference count
 * (counted on the loop only).  A merchant's shop (rate cap and token) is thread-safe and
 * shared by its jobs, which hold a reference counted on the loop. */
#ifndef KLEEP_RUNTIME_PRIV_H
#define KLEEP_RUNTIME_PRIV_H

#include <stdatomic.h>

#include "merchant.h"
#include "pool.h"
#include "runtime.h"
#include "store.h"
#include "stream.h"
#include "sync.h"
#include "tstamp.h"

/* A loaded configuration, shared by the merchants and the jobs started under it. */
struct cfg {
	struct config *c;
	int refs;
};

/* A merchant's link to its shop: one rate cap and one token for all its jobs. */
struct shop {
	struct merchant_shop s;
	int refs;
};

/* A stream's last outcome, as the mirror records it, or as the job saw it when the
 * mirror could not record it. */
struct outcome {
	tstamp_t last_success, last_attempt, cursor;
	char error_class[16];
	char *last_error, *endpoint; /* owned */
	bool unauthorized;
	int64_t rows_total;
};

/* A waiter list: runtime_waiter's next/pprev. */
struct wlist {
	struct runtime_waiter *first;
};

/* One stream of one merchant: its schedule and what status shows of it. */
struct stream_rt {
	bool enabled;
	uint64_t interval_usec;
	uint64_t next_usec;          /* CLOCK_MONOTONIC of the next run; 0 when none */
	sd_event_source *timer;
	bool due, full;
	int failures;                /* consecutive, for the retry backoff */
	struct wlist waiters;        /* sync --wait for a run not started yet: moved to its job */
	struct outcome last;
	int64_t runs, errors, last_run_id;
	int64_t files_rejected;      /* the SFTP scan's, since kleepd started */
	double last_duration_s;
};

struct job;

/* One merchant at run time. */
struct mstate {
	struct runtime *rt;
	char id[CONFIG_MERCHANT_ID_MAX + 1];
	const struct merchant_conf *conf; /* in rt->cfg, or in the old cfg while removed */
	struct stream_rt s[STREAM_COUNT];
	struct job *job;                  /* queued or running; at most one per merchant */
	bool paused, removed, loaded;
	struct wlist reproject;           /* a reproject asked for: runs as the next job */
	struct wlist golive, rebind;      /* asked for likewise (rebind.c) */
	struct shop *shop;                /* a reference; replaced when a reload changes the shop */
};

enum job_kind { JOB_LOAD, JOB_SYNC, JOB_REPROJECT, JOB_CHECK, JOB_QUERY, JOB_GOLIVE, JOB_REBIND };

struct job {
	struct pool_job pj;               /* first: the pool hands this back */
	enum job_kind kind;
	struct mstate *ms;                /* NULL for a check or query: they may outlive the merchant */
	char id[CONFIG_MERCHANT_ID_MAX + 1];
	struct cfg *cfg;                  /* a reference, so reload cannot free conf under us */
	const struct merchant_conf *conf;
	struct shop *shop;                /* a reference */
	enum stream s;
	bool full;
	atomic_bool *stop;
	struct wlist waiters;
	/* a query's question */
	enum runtime_query q;
	char *param;                      /* owned */
	long n;
	/* worker */
	atomic_bool started;
	struct sync_progress progress;    /* atomics */
	uint64_t started_usec, finished_usec;
	struct merchant_result res;
	int rc;
	struct store_state state;         /* the stream's sync_state after the run */
	bool have_state;
	struct store_state loaded[STREAM_COUNT]; /* JOB_LOAD: each stream's sync_state */
	json_t *data;                     /* a check's report */
	runtime_render render;            /* a query's */
	char *text;                       /* what render made of the rows; a waiter may take it */
	size_t text_len;
};

struct runtime {
	sd_event *e;
	const char *config_path;
	struct cfg *cfg;
	struct mstate **ms;
	size_t n_ms;
	struct pool *pool;
	sd_event_source *pool_src;
	atomic_bool stop;                 /* raised at SIGTERM: jobs stop at the next page */
	bool stopping;
	uint64_t started_usec;
	char status_line[256];            /* the last STATUS= sent */
	uint64_t status_sent_usec;        /* when; STATUS= goes out at most once a second */
	sd_event_source *status_timer;    /* armed while a newer line waits its turn */
};

/* runtime.c */
struct mstate *runtime_find(struct runtime *rt, const char *id);
void cfg_unref(struct cfg *c);
void shop_unref(struct shop *sh);
/* A removed merchant's last job ended: forget it. */
void mstate_forget(struct runtime *rt, struct mstate *ms);
/* Its mirror was read: arm timers from what it says. */
void mstate_loaded(struct runtime *rt, struct mstate *ms, struct job *job);

/* sched.c */
uint64_t now_usec(void);
uint64_t jitter(uint64_t n);
void wlist_push(struct wlist *l, struct runtime_waiter *w);
void wlist_move(struct wlist *to, struct wlist *from);
/* Answer every waiter of l with r, emptying l. */
void wlist_answer(struct wlist *l, const struct runtime_result *r);
/* Answer every waiter of l that its job will not run (stream: theirs, or NULL). */
void wlist_gone(struct wlist *l, const char *merchant, const char *stream, const char *why);
void stream_schedule(struct runtime *rt, struct mstate *ms, enum stream s, uint64_t at);
void dispatch(struct runtime *rt, struct mstate *ms);
int on_pool(sd_event_source *src, int fd, uint32_t revents, void *userdata);
void job_done(struct runtime *rt, struct job *job);

/* job.c */
/* A job of merchant ms under the configuration in force. */
struct job *job_new(struct runtime *rt, enum job_kind kind, struct mstate *ms);
void job_free(struct job *job);
void outcome_take(struct outcome *o, const struct store_state *st);
void outcome_clear(struct outcome *o);
void job_result(struct job *job, struct runtime_result *r);

/* rebind.c */
/* Start a golive or rebind asked for as ms's job; false when none is. */
bool rebind_dispatch(struct runtime *rt, struct mstate *ms);
void rebind_done(struct mstate *ms, struct job *job);
/* After a reload: a merchant whose source moved runs its streams now (they refuse). */
void rebind_source_moved(struct runtime *rt, struct mstate *ms, const struct merchant_conf *old);
void rebind_status(const struct mstate *ms, json_t *o);

/* status.c */
void notify_status(struct runtime *rt);
const char *stream_state(const struct mstate *ms, enum stream s);

#endif
