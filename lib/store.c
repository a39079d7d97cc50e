/* store.c - SQLite mirror: schema migrations, a statement cache, raw records, sync state and runs. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrations.h"
#include "store.h"

#define STORE_STMT_MAX 96 /* distinct cached statements per store */
#define STORE_STMT_SLOTS 256 /* open addressing over them, by the SQL's address */
/* After a checkpoint the -wal is cut back to this size; the TRUNCATE
 * checkpoint at each job's end empties it whenever no reader holds it. */
#define STORE_WAL_LIMIT_BYTES (1024 * 1024)
/*
 * Pages of -wal that start a checkpoint during a job (SQLite's own default is
 * 1000).  A checkpoint copies each page once, however many commits wrote it:
 * the pages every commit touches (index interiors, the tables' right edges,
 * sync_state) are copied a quarter as often as at 1000.  The job's last
 * checkpoint truncates the -wal (store_checkpoint), so it is this large only
 * while a job writes.
 */
#define STORE_WAL_CHECKPOINT_PAGES 4096
#define STORE_CHECKPOINT_WAIT_MS 200    /* how long the job-end checkpoint waits for readers */

struct store {
	sqlite3 *db;
	char *path;
	int wal_stuck_pages;   /* the -wal's size when a checkpoint last stopped at a reader */
	int n_stmts;
	struct {
		const char *sql; /* the caller's static string: the cache key */
		sqlite3_stmt *stmt;
	} stmts[STORE_STMT_MAX];
	unsigned char slot[STORE_STMT_SLOTS]; /* 1 + an index into stmts, 0 when free */
};

int store_schema_latest(void)
{
	return migrations_count;
}

sqlite3 *store_db(struct store *st)
{
	return st->db;
}

const char *store_errmsg(struct store *st)
{
	return sqlite3_errmsg(st->db);
}

/*
 * The last failure of db, as a negative errno and a sentence that names the
 * file.  Only CANTOPEN and IOERR leave an errno in SQLite; the other codes
 * say what happened themselves.
 */
static int describe(sqlite3 *db, const char *path, char *msg, size_t len)
{
	int ext = db ? sqlite3_extended_errcode(db) : SQLITE_NOMEM;
	int sys = db && ((ext & 0xff) == SQLITE_IOERR || (ext & 0xff) == SQLITE_CANTOPEN)
			  ? sqlite3_system_errno(db) : 0;
	const char *detail = db ? sqlite3_errmsg(db) : "out of memory";
	const char *what;
	int e;

	switch (ext & 0xff) {
	case SQLITE_FULL: e = ENOSPC; break;
	case SQLITE_READONLY: e = EROFS; break;
	case SQLITE_NOTADB: e = EBADMSG; break;
	case SQLITE_CORRUPT: e = EUCLEAN; break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: e = EBUSY; break;
	case SQLITE_NOMEM: e = ENOMEM; break;
	case SQLITE_PROTOCOL: e = EPROTO; break;
	default: e = sys > 0 ? sys : EIO; break;
	}
	switch (e) {
	case ENOSPC:
	case EDQUOT: what = "disk full"; break;
	case EROFS:
	case EACCES:
	case EPERM: what = "read-only: kleepd may not write the mirror or its folder"; break;
	case EBADMSG: what = "not a database: the file is damaged or is not a kleepd mirror"; break;
	case EUCLEAN: what = "the database is corrupt; restore it from a backup"; break;
	case EBUSY:
		what = "locked by another writer for longer than the busy timeout (5 s)";
		break;
	case ENOMEM: what = "out of memory"; break;
	default: what = "I/O error"; break;
	}
	if (sys > 0)
		snprintf(msg, len, "%s: %s (%s; %s)", path, what, detail, strerror(sys));
	else
		snprintf(msg, len, "%s: %s (%s)", path, what, detail);
	return -e;
}

int store_failure(struct store *st, char *msg, size_t len)
{
	return describe(st->db, st->path, msg, len);
}

int store_exec(struct store *st, const char *sql)
{
	return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

int store_begin(struct store *st)
{
	return store_exec(st, "BEGIN IMMEDIATE");
}

int store_commit(struct store *st)
{
	return store_exec(st, "COMMIT");
}

void store_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* The slot of sql's statement, or the free slot where it would go. */
static unsigned slot_of(const struct store *st, const char *sql)
{
	unsigned h = (unsigned)(((uintptr_t)sql >> 3) * 2654435761u) % STORE_STMT_SLOTS;
	while (st->slot[h] && st->stmts[st->slot[h] - 1].sql != sql)
		h = (h + 1) % STORE_STMT_SLOTS;
	return h;
}

sqlite3_stmt *store_stmt(struct store *st, const char *sql)
{
	/* Several statements a row, every row: found by address, not by a walk. */
	unsigned h = slot_of(st, sql);
	if (st->slot[h]) {
		sqlite3_stmt *s = st->stmts[st->slot[h] - 1].stmt;
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return s;
	}
	if (st->n_stmts == STORE_STMT_MAX)
		return NULL;
	sqlite3_stmt *s;
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
		return NULL;
	st->stmts[st->n_stmts].sql = sql;
	st->stmts[st->n_stmts].stmt = s;
	st->n_stmts++;
	st->slot[h] = (unsigned char)st->n_stmts;
	return s;
}

int store_schema_version(struct store *st)
{
	sqlite3_stmt *s;
	int v = -1;
	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Apply every migration newer than the file, in one transaction. */
static int store_migrate(struct store *st, char *err, size_t errlen)
{
	int have = store_schema_version(st);
	if (have < 0) {
		return describe(st->db, st->path, err, errlen);
	}
	if (have > migrations_count) {
		snprintf(err, errlen,
			 "%s: schema newer than this kleepd: version %d, this kleepd knows %d; "
			 "run a newer kleepd or restore a matching backup",
			 st->path, have, migrations_count);
		return -EPROTO;
	}
	if (have == migrations_count)
		return 0;
	if (store_begin(st) < 0)
		goto fail;
	/* Another process may have migrated while we waited for the lock. */
	have = store_schema_version(st);
	for (int i = have; i < migrations_count; i++) {
		char *msg = NULL;
		if (sqlite3_exec(st->db, migrations[i].sql, NULL, NULL, &msg) != SQLITE_OK) {
			char why[400];
			int r = describe(st->db, st->path, why, sizeof(why));
			snprintf(err, errlen, "migration %s failed: %s", migrations[i].name, why);
			sqlite3_free(msg);
			store_rollback(st);
			return r;
		}
	}
	char pragma[48];
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", migrations_count);
	if (store_exec(st, pragma) < 0 || store_commit(st) < 0)
		goto fail;
	return 0;
fail:;
	char why[400];
	int r = describe(st->db, st->path, why, sizeof(why));
	snprintf(err, errlen, "migration failed: %s", why);
	store_rollback(st);
	return r;
}

/*
 * SQLite's autocheckpoint, plus a note when a reader stops it: a checkpoint
 * cannot pass a reader's snapshot, and the -wal grows while it reads.
 */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store *st = arg;
	int log = 0, done = 0;
	if (pages < STORE_WAL_CHECKPOINT_PAGES)
		return SQLITE_OK;
	if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &done) == SQLITE_OK &&
	    done < log)
		st->wal_stuck_pages = log;
	return SQLITE_OK;
}

int store_open(const char *path, struct store **out, char *err, size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));
	int r = -EIO;

	*out = NULL;
	if (!st || !(st->path = strdup(path))) {
		free(st);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (sqlite3_open_v2(path, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		r = describe(st->db, path, err, errlen);
		goto fail;
	}
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(st->db, 1);
	/* WAL lets kleepctl and analysts read while a sync writes; NORMAL
	 * sync is durable at each checkpoint and never corrupts in WAL. */
	/* An 8 MiB page cache: big files and syncs touch many index pages, and
	 * connections live only for one job, so the memory is given back. */
	/* journal_size_limit cuts the -wal back after each checkpoint that
	 * resets it: without it, one long reader leaves it at its largest. */
	char pragmas[200];
	snprintf(pragmas, sizeof(pragmas), "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
		 "PRAGMA foreign_keys = ON; PRAGMA cache_size = -8192;"
		 "PRAGMA journal_size_limit = %d;", STORE_WAL_LIMIT_BYTES);
	if (store_exec(st, pragmas) < 0) {
		r = describe(st->db, path, err, errlen);
		goto fail;
	}
	sqlite3_wal_hook(st->db, wal_hook, st);
	/* Keep -wal and -shm when the last connection closes: kleepd opens a
	 * mirror only for a job, and readers who may not write the state folder
	 * (group kleep, kleepctl export) need them there to open it read-only. */
	int persist = 1;
	sqlite3_file_control(st->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	r = store_migrate(st, err, errlen);
	if (r < 0)
		goto fail;
	*out = st;
	return 0;
fail:
	store_close(st);
	return r;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < st->n_stmts; i++)
		sqlite3_finalize(st->stmts[i].stmt);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

#define SQL_RECORD_UPSERT                                                                   \
	"INSERT INTO records (stream, id, source, source_updated_at, first_seen, last_seen,"    \
	"                     last_run, deleted, json)"                                          \
	" VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, 0, ?7)"                                            \
	" ON CONFLICT (stream, id) DO UPDATE SET"                                                \
	"   source = excluded.source, source_updated_at = excluded.source_updated_at,"          \
	"   last_seen = excluded.last_seen, last_run = excluded.last_run, deleted = 0,"         \
	"   json = excluded.json"

static const char *SQL_RECORD_PUT = SQL_RECORD_UPSERT;

/* SQL_RECORD_PUT that leaves a stored record as it is alone: sqlite3_changes() says which. */
static const char *SQL_RECORD_MERGE = SQL_RECORD_UPSERT
	" WHERE records.deleted <> 0 OR records.source IS NOT excluded.source"
	"   OR records.json IS NOT excluded.json";

static const char *SQL_RECORD_SEEN =
	"UPDATE records SET last_seen = ?3, last_run = ?4 WHERE stream = ?1 AND id = ?2";

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

static int record_write(struct store *st, const char *sql, const struct store_record *r,
			const char *now, int64_t run_id)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	bind_text(s, 1, r->stream);
	bind_text(s, 2, r->id);
	bind_text(s, 3, r->source);
	bind_text(s, 4, r->source_updated_at);
	bind_text(s, 5, now);
	sqlite3_bind_int64(s, 6, run_id);
	bind_text(s, 7, r->json);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_record_put(struct store *st, const struct store_record *r, const char *now,
		     int64_t run_id, bool *changed)
{
	/* An unchanged record still gets last_seen and last_run, but does
	 * not count as a change. */
	if (changed)
		return store_record_merge(st, r, now, run_id, true, changed);
	return record_write(st, SQL_RECORD_PUT, r, now, run_id);
}

int store_record_merge(struct store *st, const struct store_record *r, const char *now,
		       int64_t run_id, bool mark_seen, bool *changed)
{
	/* One statement for a new or changed record (most of an initial sync). */
	if (record_write(st, SQL_RECORD_MERGE, r, now, run_id) < 0)
		return -EIO;
	*changed = sqlite3_changes(st->db) > 0;
	if (*changed || !mark_seen)
		return 0;
	sqlite3_stmt *s = store_stmt(st, SQL_RECORD_SEEN);
	if (!s)
		return -EIO;
	bind_text(s, 1, r->stream);
	bind_text(s, 2, r->id);
	bind_text(s, 3, now);
	sqlite3_bind_int64(s, 4, run_id);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static const char *SQL_RECORD_SWEEP =
	"UPDATE records SET deleted = 1, last_seen = ?4"
	" WHERE stream = ?1 AND source = ?2 AND deleted = 0"
	"   AND (last_run IS NULL OR last_run <> ?3)";

int store_record_sweep(struct store *st, const char *stream, const char *source, int64_t run_id,
		       const char *now, int *n)
{
	sqlite3_stmt *s = store_stmt(st, SQL_RECORD_SWEEP);
	if (!s)
		return -EIO;
	bind_text(s, 1, stream);
	bind_text(s, 2, source);
	sqlite3_bind_int64(s, 3, run_id);
	bind_text(s, 4, now);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return -EIO;
	if (n)
		*n = sqlite3_changes(st->db);
	return 0;
}

static const char *SQL_STATE_GET =
	"SELECT cursor_time, cursor_id, window_from, window_to, window_page,"
	"       window_max_time, window_max_id, last_success, last_attempt,"
	"       last_error, error_class, endpoint, unauthorized, rows_total, window_run, last_full"
	" FROM sync_state WHERE stream = ?1";

static const char *SQL_STATE_PUT =
	"INSERT INTO sync_state (stream, cursor_time, cursor_id, window_from, window_to,"
	"  window_page, window_max_time, window_max_id, last_success, last_attempt,"
	"  last_error, error_class, endpoint, unauthorized, rows_total, window_run, last_full)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
	" ON CONFLICT (stream) DO UPDATE SET cursor_time = ?2, cursor_id = ?3,"
	"  window_from = ?4, window_to = ?5, window_page = ?6, window_max_time = ?7,"
	"  window_max_id = ?8, last_success = ?9, last_attempt = ?10, last_error = ?11,"
	"  error_class = ?12, endpoint = ?13, unauthorized = ?14, rows_total = ?15,"
	"  window_run = ?16, last_full = ?17";

static char *column_dup(sqlite3_stmt *s, int i)
{
	const char *v = (const char *)sqlite3_column_text(s, i);
	return v ? strdup(v) : NULL;
}

void store_state_set(char **field, const char *v)
{
	char *copy = v ? strdup(v) : NULL;
	free(*field);
	*field = copy;
}

void store_state_clear(struct store_state *s)
{
	free(s->cursor_time);
	free(s->cursor_id);
	free(s->window_from);
	free(s->window_to);
	free(s->window_max_time);
	free(s->window_max_id);
	free(s->last_success);
	free(s->last_attempt);
	free(s->last_full);
	free(s->last_error);
	free(s->error_class);
	free(s->endpoint);
	memset(s, 0, sizeof(*s));
}

int store_state_get(struct store *st, const char *stream, struct store_state *s)
{
	memset(s, 0, sizeof(*s));
	sqlite3_stmt *q = store_stmt(st, SQL_STATE_GET);
	if (!q)
		return -EIO;
	bind_text(q, 1, stream);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		s->cursor_time = column_dup(q, 0);
		s->cursor_id = column_dup(q, 1);
		s->window_from = column_dup(q, 2);
		s->window_to = column_dup(q, 3);
		s->window_page = sqlite3_column_int(q, 4);
		s->window_max_time = column_dup(q, 5);
		s->window_max_id = column_dup(q, 6);
		s->last_success = column_dup(q, 7);
		s->last_attempt = column_dup(q, 8);
		s->last_error = column_dup(q, 9);
		s->error_class = column_dup(q, 10);
		s->endpoint = column_dup(q, 11);
		s->unauthorized = sqlite3_column_int(q, 12) != 0;
		s->rows_total = sqlite3_column_int64(q, 13);
		s->window_run = sqlite3_column_int64(q, 14);
		s->last_full = column_dup(q, 15);
	}
	sqlite3_reset(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

int store_state_put(struct store *st, const char *stream, const struct store_state *s)
{
	sqlite3_stmt *q = store_stmt(st, SQL_STATE_PUT);
	if (!q)
		return -EIO;
	bind_text(q, 1, stream);
	bind_text(q, 2, s->cursor_time);
	bind_text(q, 3, s->cursor_id);
	bind_text(q, 4, s->window_from);
	bind_text(q, 5, s->window_to);
	sqlite3_bind_int(q, 6, s->window_page);
	bind_text(q, 7, s->window_max_time);
	bind_text(q, 8, s->window_max_id);
	bind_text(q, 9, s->last_success);
	bind_text(q, 10, s->last_attempt);
	bind_text(q, 11, s->last_error);
	bind_text(q, 12, s->error_class);
	bind_text(q, 13, s->endpoint);
	sqlite3_bind_int(q, 14, s->unauthorized);
	sqlite3_bind_int64(q, 15, s->rows_total);
	if (s->window_run)
		sqlite3_bind_int64(q, 16, s->window_run);
	bind_text(q, 17, s->last_full);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static const char *SQL_RUN_START =
	"INSERT INTO sync_runs (stream, started) VALUES (?1, ?2)";

static const char *SQL_RUN_FINISH =
	"UPDATE sync_runs SET finished = ?2, outcome = ?3, pages = ?4, rows_in = ?5,"
	"  rows_changed = ?6, http_requests = ?7, bytes = ?8, error = ?9, error_class = ?10"
	" WHERE run_id = ?1";

static const char *SQL_RUN_REAP =
	"UPDATE sync_runs SET outcome = 'interrupted', finished = ?1,"
	"  error = 'kleepd stopped before the run ended'"
	" WHERE outcome = 'running'";

int store_run_start(struct store *st, const char *stream, const char *now, int64_t *run_id)
{
	sqlite3_stmt *q = store_stmt(st, SQL_RUN_START);
	if (!q)
		return -EIO;
	bind_text(q, 1, stream);
	bind_text(q, 2, now);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return -EIO;
	*run_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int store_run_finish(struct store *st, const struct store_run *r, const char *now)
{
	sqlite3_stmt *q = store_stmt(st, SQL_RUN_FINISH);
	if (!q)
		return -EIO;
	sqlite3_bind_int64(q, 1, r->run_id);
	bind_text(q, 2, now);
	bind_text(q, 3, r->outcome);
	sqlite3_bind_int64(q, 4, r->pages);
	sqlite3_bind_int64(q, 5, r->rows_in);
	sqlite3_bind_int64(q, 6, r->rows_changed);
	sqlite3_bind_int64(q, 7, r->http_requests);
	sqlite3_bind_int64(q, 8, r->bytes);
	bind_text(q, 9, r->error);
	bind_text(q, 10, r->error_class);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_run_reap(struct store *st, const char *now)
{
	sqlite3_stmt *q = store_stmt(st, SQL_RUN_REAP);
	if (!q)
		return -EIO;
	bind_text(q, 1, now);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_checkpoint(struct store *st, char *msg, size_t len)
{
	int log = -1, done = -1;
	/* TRUNCATE waits for readers on the busy handler: a short reader is
	 * worth a moment, a long one is not worth a worker's 5 s per job. */
	sqlite3_busy_timeout(st->db, STORE_CHECKPOINT_WAIT_MS);
	int rc = sqlite3_wal_checkpoint_v2(st->db, "main", SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	int stuck = st->wal_stuck_pages;
	st->wal_stuck_pages = 0;
	if (rc == SQLITE_OK && done >= log && !stuck)
		return 0;
	if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) {
		char why[400];
		int r = describe(st->db, st->path, why, sizeof(why));
		snprintf(msg, len, "cannot checkpoint the write-ahead log: %s", why);
		return r;
	}
	if (log < stuck)
		log = stuck;
	snprintf(msg, len, "%s-wal: checkpoints stop at a reader's open transaction (%d pages "
		 "waiting); the write-ahead log grows until that reader ends", st->path, log);
	return -EBUSY;
}

static const char *SQL_RUNS_PRUNE =
	"DELETE FROM sync_runs WHERE stream = ?1 AND run_id <="
	" (SELECT run_id FROM sync_runs WHERE stream = ?1 ORDER BY run_id DESC LIMIT 1 OFFSET ?2)";

int store_runs_prune(struct store *st, const char *stream, int keep)
{
	sqlite3_stmt *q = store_stmt(st, SQL_RUNS_PRUNE);
	if (!q)
		return -EIO;
	bind_text(q, 1, stream);
	sqlite3_bind_int(q, 2, keep);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}
