/* sync.h - one incremental run of one API stream of one merchant (DESIGN.md §5). */
#ifndef KLEEP_SYNC_H
#define KLEEP_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "pii.h"
#include "profile.h"
#include "store.h"
#include "wshop.h"

/* Live counters of a running job, read by the control socket from another thread. */
struct sync_progress {
	atomic_int_least64_t pages;
	atomic_int_least64_t rows;
};

/* Everything one run needs; borrowed. */
struct sync_job {
	const struct merchant_conf *m;
	const struct profile *profile;
	struct store *st;
	struct wshop *client;
	const unsigned char *pii_key;   /* PII_KEY_LEN bytes */
	uint64_t lookback_usec;
	uint64_t full_every_usec;       /* 0: never re-read an incremental stream whole */
	atomic_bool *stop;              /* may be NULL */
	struct sync_progress *progress; /* may be NULL */
};

struct sync_result {
	int64_t run_id;
	const char *outcome;       /* "success", "failed", "interrupted" */
	enum errclass error;       /* ERRC_NONE on success */
	int errnum;                /* the failure's errno where there is one (ENOSPC...), else 0 */
	int64_t pages, rows_in, rows_changed, deleted;
	int64_t rows_written;      /* rows the pages inserted, updated or deleted (sqlite3_total_changes),
				    * raw and canonical; bookkeeping (state, runs, seen marks) aside */
	char message[512];         /* the failure for a person; no secrets, no payloads */
};

/*
 * Run stream s once: resume the open window or open a new one from the
 * cursor minus the lookback, fetch pages, and commit each page with the
 * window's progress in one transaction; when the window is complete, move
 * the cursor (capped at the window's start) and, after a full read, mark what
 * was not seen as deleted.  A resumed window is followed by a new one up to
 * this run's start; last_success is the start of the newest window closed.  Writes a sync_runs row and sync_state.  Returns 0
 * when the run succeeded, -EAGAIN when it was stopped, -EIO or -EPROTO
 * otherwise (res says why).
 */
int sync_run(struct sync_job *job, enum stream s, struct sync_result *res);

/* Forget stream s's cursor and open window, so the next run reads it whole. 0 or -EIO. */
int sync_reset(struct store *st, enum stream s);

/* The order --once and a first start run streams in: reference data first. */
extern const enum stream sync_order[STREAM_API_COUNT];

#endif
