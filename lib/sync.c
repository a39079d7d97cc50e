/* sync.c - one stream's incremental run: windows, pages committed with their cursor, sweeps.
 *
 * A window is one read of the stream from a date (or from nothing: a full
 * read) up to the run's start.  WSHOP returns records by id, not by time
 * (DOMAIN.md §1), so the cursor may only move once a whole window has been
 * read; until then each page commits the window's progress with its records,
 * and a run that dies resumes the window at its next page.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "log.h"
#include "project.h"
#include "sync.h"
#include "tstamp.h"

#define AUTUMN_LOOKAHEAD_SEC (3 * 3600) /* longer than any daylight-saving change */

const enum stream sync_order[STREAM_API_COUNT] = {
	STREAM_SIZES, STREAM_DEPARTMENTS, STREAM_ATTRIBUTES, STREAM_RETURN_REASONS,
	STREAM_PRODUCTS, STREAM_ORDERS, STREAM_RETURNS,
};

static const char *SQL_UNSEEN =
	"SELECT id FROM records WHERE stream = ?1 AND source = 'api' AND deleted = 0"
	" AND (last_run IS NULL OR last_run <> ?2)";
/* Both counts come from indexes alone (records' key, and sql/011's records_deleted). */
static const char *SQL_ROWS_TOTAL =
	"SELECT (SELECT count(*) FROM records WHERE stream = ?1)"
	"     - (SELECT count(*) FROM records WHERE stream = ?1 AND deleted <> 0)";

#define RECORD_JSON_MAX (64u << 20) /* bytes: above any page body wshop accepts */

struct run {
	struct sync_job *job;
	enum stream s;
	const char *name;
	struct log_ctx log;
	struct store_state state;
	struct project_ctx pc;
	struct money_memo money;
	struct sync_result *res;
	tstamp_t now;
	char date_from[64];        /* the window's start in the shop's format, "" for none */
	struct buf json;           /* one record's JSON, reused for every record (owned) */
	bool resumed;              /* the window was opened by a run that died */
};

/*
 * The window's start as the shop's local text.  Near an autumn change the
 * start moves back by the change, so that records stamped in the repeated
 * hour's second pass (whose local text sorts before ours) are not skipped.
 */
static int window_filter(struct run *r)
{
	const struct profile *p = r->job->profile;
	const struct tz *tz = r->job->m->tz;
	time_t t;

	r->date_from[0] = 0;
	if (!r->state.window_from || !p->streams[r->s].incremental)
		return 0;
	if (tstamp_parse(r->state.window_from, &t) < 0)
		return -EINVAL;
	long drop = tstamp_offset(tz, t) - tstamp_offset(tz, t + AUTUMN_LOOKAHEAD_SEC);
	if (drop > 0)
		t -= drop;
	return tstamp_to_local(tz, t, p->date_format, r->date_from, sizeof(r->date_from));
}

/* A storage failure: the class, the errno and a sentence naming the mirror. */
static int storage_error(struct run *r, const char *what)
{
	char why[400];
	int e = store_failure(r->job->st, why, sizeof(why));
	r->res->error = ERRC_STORAGE;
	r->res->errnum = -e;
	snprintf(r->res->message, sizeof(r->res->message), "%s%s%s", what ? what : "",
		 what ? ": " : "", why);
	return -EIO;
}

/* Open a new window, or keep the one a dead run left open (true then). */
static bool window_open(struct run *r, int64_t run_id)
{
	struct store_state *st = &r->state;
	if (st->window_to) {
		log_info(&r->log, "resuming the window from %s at page %d",
			 st->window_from ? st->window_from : "the beginning", st->window_page + 1);
		return true;
	}
	store_state_set(&st->window_to, r->now);
	store_state_set(&st->window_from, NULL);
	store_state_set(&st->window_max_time, NULL);
	store_state_set(&st->window_max_id, NULL);
	st->window_page = 0;
	st->window_run = run_id;
	time_t t, last_full, now;
	if (tstamp_parse(r->now, &now) < 0)
		now = time(NULL);
	/* A clock stepped back behind last_full means "not due", not a wrap
	 * to a huge age that would re-read every stream at once. */
	if (r->job->profile->streams[r->s].incremental && st->cursor_time && r->job->full_every_usec &&
	    (!st->last_full || tstamp_parse(st->last_full, &last_full) < 0 ||
	     (now >= last_full &&
	      (uint64_t)(now - last_full) * 1000000u >= r->job->full_every_usec))) {
		/* Now and then read it whole: deletions show, and so would a record
		 * that a deletion during paging shifted past us. */
		log_info(&r->log, "periodic full read (last one %s)", st->last_full ? st->last_full : "never");
		return false;
	}
	if (r->job->profile->streams[r->s].incremental && st->cursor_time) {
		if (tstamp_parse(st->cursor_time, &t) == 0) {
			tstamp_t from;
			tstamp_format(t - (time_t)(r->job->lookback_usec / 1000000u), from);
			store_state_set(&st->window_from, from);
		}
	}
	return false;
}

static int64_t rows_total(struct run *r)
{
	sqlite3_stmt *q = store_stmt(r->job->st, SQL_ROWS_TOTAL);
	int64_t n = r->state.rows_total;
	if (!q)
		return n;
	sqlite3_bind_text(q, 1, r->name, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	return n;
}

/* Write one page's records; the caller holds the transaction. */
static int apply_page(struct run *r, json_t *records)
{
	struct sync_job *job = r->job;
	size_t i;
	json_t *rec;

	json_array_foreach(records, i, rec) {
		char id[PROJECT_ID_MAX], hash[PII_HASH_HEX];
		tstamp_t updated;
		bool changed;

		if (pii_scrub(job->profile, r->s, job->pii_key, rec, hash) < 0)
			log_warning(&r->log, "a personal-data field had nothing to hash; dropped");
		int ir = project_identity(&r->pc, r->s, rec, id, updated, r->res->message,
					  sizeof(r->res->message));
		if (ir < 0)
			return -EPROTO;
		if (ir > 0) {
			log_warning(&r->log, "%s", r->res->message);
			r->res->message[0] = 0;
		}
		/* Keys in the order the shop sent them (jansson keeps it), so a
		 * record served twice the same is stored the same text. */
		const char *json = jsonw_compact(&r->json, rec);
		if (!json)
			return -ENOMEM;
		/* A record the mirror holds as it is needs no write: its canonical
		 * rows were projected from this same JSON.  A full read still marks
		 * it seen, for the sweep (bookkeeping, not counted as written). */
		struct store_record raw = { r->name, id, "api", updated[0] ? updated : NULL, json };
		sqlite3 *db = store_db(job->st);
		sqlite3_int64 t0 = sqlite3_total_changes64(db), rowid = sqlite3_last_insert_rowid(db);
		int rc = store_record_merge(job->st, &raw, r->now, r->state.window_run,
					    !r->state.window_from, &changed);
		if (rc < 0)
			return -EIO;
		if (changed) {
			/* an update of the stored record leaves the last rowid alone */
			r->pc.stored = sqlite3_last_insert_rowid(db) == rowid;
			rc = project_record(&r->pc, r->s, rec, r->res->message, sizeof(r->res->message));
			if (rc < 0)
				return rc == -EINVAL ? -EPROTO : rc;
			r->res->rows_changed++;
			r->res->rows_written += sqlite3_total_changes64(db) - t0;
		}
		r->res->rows_in++;
		/* The newest record of the window, for the cursor. */
		struct store_state *st = &r->state;
		if (updated[0] && (!st->window_max_time || strcmp(updated, st->window_max_time) > 0)) {
			store_state_set(&st->window_max_time, updated);
			store_state_set(&st->window_max_id, id);
		}
	}
	return 0;
}

/* After a complete full read: what the window did not see is gone at the source. */
static int sweep(struct run *r)
{
	sqlite3_stmt *q = store_stmt(r->job->st, SQL_UNSEEN);
	int rc, n = 0;
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, r->state.window_run);
	/* Collect first: project_forget reuses the store's statements. */
	char **ids = NULL;
	size_t n_ids = 0;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		char **grown = realloc(ids, (n_ids + 1) * sizeof(*ids));
		if (!grown)
			break;
		ids = grown;
		ids[n_ids++] = strdup((const char *)sqlite3_column_text(q, 0));
	}
	sqlite3_reset(q);
	int r_ = rc == SQLITE_DONE ? 0 : -EIO;
	for (size_t i = 0; i < n_ids; i++) {
		if (r_ == 0 && ids[i] && project_forget(&r->pc, r->s, ids[i]) < 0)
			r_ = -EIO;
		free(ids[i]);
	}
	free(ids);
	if (r_ == 0 && store_record_sweep(r->job->st, r->name, "api", r->state.window_run, r->now, &n) < 0)
		r_ = -EIO;
	r->res->deleted = n;
	if (n)
		log_info(&r->log, "%d record%s no longer served, marked deleted", n, n == 1 ? "" : "s");
	return r_;
}

/* The window is read whole: move the cursor, sweep after a full read, close it. */
static int window_close(struct run *r)
{
	struct store_state *st = &r->state;
	struct store *db = r->job->st;

	if (store_begin(db) < 0)
		return storage_error(r, "cannot close the window");
	if (!st->window_from) {
		if (sweep(r) < 0)
			goto fail;
		store_state_set(&st->last_full, st->window_to);
	}
	if (st->window_max_time) {
		/* Capped at the run's start: a shop clock ahead of ours must not
		 * push the cursor past what this run can have seen. */
		const char *c = strcmp(st->window_max_time, st->window_to) < 0 ? st->window_max_time
										: st->window_to;
		if (!st->cursor_time || strcmp(c, st->cursor_time) > 0) {
			store_state_set(&st->cursor_time, c);
			store_state_set(&st->cursor_id, st->window_max_id);
		}
	}
	store_state_set(&st->window_from, NULL);
	store_state_set(&st->window_max_time, NULL);
	store_state_set(&st->window_max_id, NULL);
	/* The mirror now holds what the shop held when this window opened. */
	store_state_set(&st->last_success, st->window_to);
	st->window_page = 0;
	st->window_run = 0;
	store_state_set(&st->window_to, NULL);
	store_state_set(&st->last_attempt, r->now);
	store_state_set(&st->last_error, NULL);
	store_state_set(&st->error_class, NULL);
	store_state_set(&st->endpoint, NULL);
	st->unauthorized = false;
	/* A window that wrote nothing leaves the count as it was. */
	bool wrote = r->res->rows_changed || r->res->deleted || r->resumed;
	if (wrote)
		st->rows_total = rows_total(r);
	/* Labels copied from this stream into others (a size's, a department's)
	 * can only have gone stale if this window wrote or deleted something, or
	 * a dead run wrote part of it: the refresh scans whole tables. */
	if ((wrote && project_refresh(&r->pc, r->s) < 0) || store_state_put(db, r->name, st) < 0 ||
	    store_commit(db) < 0)
		goto fail;
	return 0;
fail:
	storage_error(r, "cannot close the window");
	store_rollback(db);
	return -EIO;
}

/* Fetch and commit pages until the window is read whole. */
static int read_window(struct run *r)
{
	struct sync_job *job = r->job;
	const struct profile *p = job->profile;
	struct store_state *st = &r->state;

	for (;;) {
		if (job->stop && atomic_load(job->stop))
			return -EAGAIN;
		if (st->window_page >= p->max_pages) {
			snprintf(r->res->message, sizeof(r->res->message),
				 "%s: more than %d pages; the page cap guards against a paging loop "
				 "(raise paging.max_pages if the shop is that large)",
				 p->streams[r->s].path, p->max_pages);
			r->res->error = ERRC_BAD_REPLY;
			return -EPROTO;
		}
		json_t *records = NULL;
		enum errclass e = wshop_fetch_page(job->client, r->s, p->first_page + st->window_page,
						      r->date_from[0] ? r->date_from : NULL, &records);
		if (e != ERRC_NONE) {
			r->res->error = e;
			snprintf(r->res->message, sizeof(r->res->message), "%s",
				 wshop_last_error(job->client));
			return e == ERRC_STOPPED ? -EAGAIN : -EIO;
		}
		size_t n = json_array_size(records);
		if (store_begin(job->st) < 0) {
			json_decref(records);
			return storage_error(r, NULL);
		}
		int rc = apply_page(r, records);
		json_decref(records);
		if (rc == 0) {
			st->window_page++;
			if (store_state_put(job->st, r->name, st) < 0 || store_commit(job->st) < 0) {
				st->window_page--; /* not committed: the next run reads it again */
				rc = -EIO;
			}
		}
		if (rc < 0) {
			/* A reply the profile does not fit is bad_reply; the rest is the disk's. */
			if (rc == -EPROTO) {
				r->res->error = ERRC_BAD_REPLY;
			} else if (rc == -ENOMEM) {
				r->res->error = ERRC_TRANSIENT;
				snprintf(r->res->message, sizeof(r->res->message), "out of memory");
			} else {
				rc = storage_error(r, NULL);
			}
			store_rollback(job->st);
			return rc;
		}
		r->res->pages++;
		if (job->progress) {
			atomic_fetch_add(&job->progress->pages, 1);
			atomic_fetch_add(&job->progress->rows, (int_least64_t)n);
		}
		if (n < (size_t)p->limit)
			return 0;
	}
}

/* Read one window whole and close it. */
static int window_read_close(struct run *r)
{
	int rc = window_filter(r);
	if (rc < 0) {
		snprintf(r->res->message, sizeof(r->res->message), "cannot express the window's start "
			 "%s in the shop's time zone %s", r->state.window_from ? r->state.window_from : "",
			 r->job->m->timezone);
		r->res->error = ERRC_CONFIG;
		return rc;
	}
	rc = read_window(r);
	return rc == 0 ? window_close(r) : rc;
}

/*
 * The open window, or a new one.  A window a dead run left open started
 * before this run: records changed since then on pages it had already read
 * are only caught by one more window, up to this run's start, so that a
 * run ends caught up with the shop as of its own start.
 */
static int read_windows(struct run *r, int64_t run_id)
{
	bool resumed = window_open(r, run_id);
	r->resumed = resumed;
	int rc = window_read_close(r);
	if (rc == 0 && resumed) {
		log_info(&r->log, "the resumed window is closed; reading up to this run's start");
		window_open(r, run_id);
		rc = window_read_close(r);
	}
	return rc;
}

/* Record a run that did not succeed in sync_state, keeping the committed window. */
static void record_failure(struct run *r, int rc)
{
	struct store_state st;
	struct sync_result *res = r->res;
	if (store_state_get(r->job->st, r->name, &st) < 0)
		return;
	store_state_set(&st.last_attempt, r->now);
	if (rc != -EAGAIN) {
		store_state_set(&st.last_error, res->message);
		store_state_set(&st.error_class, errclass_name(res->error));
		st.unauthorized = res->error == ERRC_UNAUTHORIZED;
		store_state_set(&st.endpoint, res->error == ERRC_UNAUTHORIZED
						      ? r->job->profile->streams[r->s].path : NULL);
	}
	if (store_state_put(r->job->st, r->name, &st) < 0)
		log_err(&r->log, "cannot record the failure: %s", store_errmsg(r->job->st));
	store_state_clear(&st);
}

/*
 * Say how the run ended: sync_runs, the log, and sync_state for a failure.
 * A run whose row cannot be written did not end well either: the disk failed.
 */
static int run_end(struct run *r, int rc, struct store_run *run)
{
	struct sync_result *res = r->res;
	if (rc == 0) {
		run->outcome = "success";
		if (store_run_finish(r->job->st, run, r->now) < 0)
			rc = storage_error(r, "cannot record the run");
	}
	if (rc == 0) {
		res->outcome = "success";
		log_msg(LOG_INFO, &r->log, LOG_MSGID_RUN_FINISHED,
			"run finished: %" PRId64 " pages, %" PRId64 " records, %" PRId64 " changed, %"
			PRId64 " rows written", res->pages, res->rows_in, res->rows_changed,
			res->rows_written);
		return 0;
	}
	if (rc == -EAGAIN) {
		res->outcome = run->outcome = "interrupted";
		res->error = ERRC_STOPPED;
		snprintf(res->message, sizeof(res->message), "stopped; the next run resumes at page %d",
			 r->state.window_page + 1);
		log_msg(LOG_NOTICE, &r->log, LOG_MSGID_RUN_FAILED, "run interrupted after %" PRId64
			" pages; committed pages are kept", res->pages);
	} else {
		if (res->error == ERRC_NONE)
			res->error = ERRC_BAD_REPLY;
		res->outcome = run->outcome = "failed";
		run->error = res->message;
		run->error_class = errclass_name(res->error);
		log_msg(LOG_ERR, &r->log, LOG_MSGID_RUN_FAILED, "run failed (%s): %s", run->error_class,
			res->message);
	}
	record_failure(r, rc);
	if (store_run_finish(r->job->st, run, r->now) < 0) {
		char why[400];
		store_failure(r->job->st, why, sizeof(why));
		log_err(&r->log, "cannot record the run: %s", why);
	}
	return rc;
}

int sync_run(struct sync_job *job, enum stream s, struct sync_result *res)
{
	struct run r = { .job = job, .s = s, .name = stream_name(s), .res = res };
	buf_init(&r.json, RECORD_JSON_MAX);
	int64_t run_id = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	r.log = (struct log_ctx){ job->m->id, r.name, 0 };
	r.pc = (struct project_ctx){ job->st, job->profile, job->m, &r.money, false };
	tstamp_now(r.now);
	if (store_run_start(job->st, r.name, r.now, &run_id) < 0 ||
	    store_state_get(job->st, r.name, &r.state) < 0) {
		storage_error(&r, "cannot start the run");
		res->outcome = "failed";
		log_msg(LOG_ERR, &r.log, LOG_MSGID_RUN_FAILED, "run failed (%s): %s",
			errclass_name(res->error), res->message);
		/* The lock or the disk may have come back meanwhile: try to say so. */
		record_failure(&r, -EIO);
		if (run_id) {
			struct store_run run = { .run_id = run_id, .stream = r.name, .outcome = "failed",
						 .error = res->message,
						 .error_class = errclass_name(res->error) };
			store_run_finish(job->st, &run, r.now);
		}
		store_state_clear(&r.state);
		return -EIO;
	}
	res->run_id = r.log.run_id = run_id;
	const struct wshop_stats before = *wshop_stats(job->client);
	log_msg(LOG_INFO, &r.log, LOG_MSGID_RUN_STARTED, "run started");

	rc = read_windows(&r, run_id);

	const struct wshop_stats *after = wshop_stats(job->client);
	struct store_run run = {
		.run_id = run_id, .stream = r.name, .pages = res->pages, .rows_in = res->rows_in,
		.rows_changed = res->rows_changed,
		.http_requests = after->requests - before.requests, .bytes = after->bytes - before.bytes,
	};
	tstamp_now(r.now);
	rc = run_end(&r, rc, &run);
	store_state_clear(&r.state);
	buf_free(&r.json);
	return rc;
}

int sync_reset(struct store *st, enum stream s)
{
	struct store_state state;
	if (store_state_get(st, stream_name(s), &state) < 0)
		return -EIO;
	store_state_set(&state.cursor_time, NULL);
	store_state_set(&state.cursor_id, NULL);
	store_state_set(&state.window_from, NULL);
	store_state_set(&state.window_to, NULL);
	store_state_set(&state.window_max_time, NULL);
	store_state_set(&state.window_max_id, NULL);
	state.window_page = 0;
	state.window_run = 0;
	int r = store_state_put(st, stream_name(s), &state);
	store_state_clear(&state);
	return r;
}
