/* store.h - one merchant's SQLite mirror: open and migrate, transactions, raw records, cursors, runs. */
#ifndef KLEEP_STORE_H
#define KLEEP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define STORE_BUSY_TIMEOUT_MS 5000

struct store;

/*
 * Open (creating if needed) the database at path and bring its schema to the
 * newest embedded migration, all migrations in one transaction.  A database
 * whose user_version is newer than this binary is refused (-EPROTO).  On
 * failure returns a negative errno-style code (as store_failure) and writes a
 * sentence for a person into err; every failure is of class storage.  The caller owns *out and frees it with store_close().
 * One store is used by one thread at a time.
 */
int store_open(const char *path, struct store **out, char *err, size_t errlen);
void store_close(struct store *st);

/* The schema version this binary migrates to. */
int store_schema_latest(void);
/* The database's PRAGMA user_version. */
int store_schema_version(struct store *st);

sqlite3 *store_db(struct store *st);
const char *store_errmsg(struct store *st);

/*
 * Right after a store call failed: what happened, as a negative errno
 * (-ENOSPC disk full, -EROFS or -EACCES read-only, -EBADMSG not a database,
 * -EUCLEAN corrupt, -EBUSY locked past STORE_BUSY_TIMEOUT_MS, -EIO ...) and a
 * sentence naming the file in msg.  Every such failure is of class storage.
 */
int store_failure(struct store *st, char *msg, size_t len);

/*
 * At a job's end: checkpoint the write-ahead log and truncate it to nothing.
 * 0 when done; -EBUSY when a reader's open transaction stopped this or an
 * earlier checkpoint of the job (msg names the -wal, for one warning per
 * job); another negative errno when the checkpoint could not write (msg
 * says why, as store_failure).
 */
int store_checkpoint(struct store *st, char *msg, size_t len);

/* Keep only the newest keep sync_runs rows of stream.  0 or -EIO. */
int store_runs_prune(struct store *st, const char *stream, int keep);

/*
 * A prepared statement for sql, cached per store by the sql pointer (pass a
 * static const string), reset and with bindings cleared.  Owned by the store;
 * valid until store_close().  NULL on error (store_errmsg says why).
 */
sqlite3_stmt *store_stmt(struct store *st, const char *sql);

/* Run one or more statements without results.  0 or -EIO. */
int store_exec(struct store *st, const char *sql);

int store_begin(struct store *st);   /* BEGIN IMMEDIATE */
int store_commit(struct store *st);
void store_rollback(struct store *st);

/* One raw record as a source sent it (DESIGN.md §4 raw layer). */
struct store_record {
	const char *stream;
	const char *id;
	const char *source;            /* "api" or "sftp" */
	const char *source_updated_at; /* UTC text or NULL */
	const char *json;
};

/*
 * Insert or update a raw record, seen now by run_id.  *changed (may be NULL)
 * tells whether the record is new, its JSON differs, or it was marked deleted.
 * 0 or -EIO.
 */
int store_record_put(struct store *st, const struct store_record *r, const char *now,
		     int64_t run_id, bool *changed);

/*
 * store_record_put for a record that is most often stored already, as it is
 * (an incremental run re-reading its lookback, a full read): when the stored
 * record has the same source and JSON and is not marked deleted, nothing is
 * written, or only last_seen and last_run when mark_seen (a full read, which
 * store_record_sweep follows).  *changed tells which.  0 or -EIO.
 */
int store_record_merge(struct store *st, const struct store_record *r, const char *now,
		       int64_t run_id, bool mark_seen, bool *changed);

/*
 * After a complete full read of stream by run_id: mark deleted every record of
 * source not seen by that run.  *n gets how many were newly marked.  0 or -EIO.
 */
int store_record_sweep(struct store *st, const char *stream, const char *source, int64_t run_id,
		       const char *now, int *n);

/* sync_state of one stream; strings are owned by the struct (store_state_clear frees). */
struct store_state {
	char *cursor_time, *cursor_id;
	char *window_from, *window_to;   /* the date window being read, or NULL */
	int window_page;                 /* last page committed inside that window */
	int64_t window_run;              /* the run that opened the window */
	char *window_max_time, *window_max_id; /* newest record seen in the window */
	char *last_success, *last_attempt;
	char *last_full;                 /* the last complete full read */
	char *last_error, *error_class, *endpoint;
	bool unauthorized;
	int64_t rows_total;
};

/* Load (zeroed when the stream has no row yet).  0 or -EIO. */
int store_state_get(struct store *st, const char *stream, struct store_state *s);
/* Write every field.  0 or -EIO. */
int store_state_put(struct store *st, const char *stream, const struct store_state *s);
void store_state_clear(struct store_state *s);
/* Replace one owned string field of s with a copy of v (v may be NULL). */
void store_state_set(char **field, const char *v);

/* One row of sync_runs. */
struct store_run {
	int64_t run_id;
	const char *stream;
	const char *outcome; /* running, success, failed, interrupted */
	int64_t pages, rows_in, rows_changed, http_requests, bytes;
	const char *error, *error_class;
};

/* Insert a running run; *run_id gets its id.  0 or -EIO. */
int store_run_start(struct store *st, const char *stream, const char *now, int64_t *run_id);
/* Record the end of run r (r->run_id).  0 or -EIO. */
int store_run_finish(struct store *st, const struct store_run *r, const char *now);
/* Runs left 'running' by a process that died are marked interrupted.  0 or -EIO. */
int store_run_reap(struct store *st, const char *now);

#endif
