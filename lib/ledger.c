/* ledger.c - the sftp_files ledger: each SFTP file version seen, and what it came to (DESIGN.md §6).
 *
 * It is what makes a scan idempotent: a version (size, mtime) that was
 * processed is not downloaded again, and one whose content hashes like the
 * processed one is not applied again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

static const char *SQL_FILE_GET =
	"SELECT size, mtime, sha256, seen_size, seen_mtime, done_outcome FROM sftp_files"
	" WHERE path = ?1";

/* What this scan saw; outcome NULL keeps the stored outcome and reason. */
static const char *SQL_FILE_SEEN =
	"INSERT INTO sftp_files (path, kind, first_seen, seen_size, seen_mtime, outcome, reason)"
	" VALUES (?1, ?2, ?3, ?4, ?5, COALESCE(?6, 'pending'), ?7)"
	" ON CONFLICT (path) DO UPDATE SET kind = excluded.kind, seen_size = excluded.seen_size,"
	"  seen_mtime = excluded.seen_mtime, outcome = COALESCE(?6, sftp_files.outcome),"
	"  reason = CASE WHEN ?6 IS NULL THEN sftp_files.reason ELSE ?7 END";

/* A processed version (inside the file's transaction). */
static const char *SQL_FILE_DONE =
	"INSERT INTO sftp_files (path, kind, size, mtime, sha256, first_seen, seen_size, seen_mtime,"
	"  applied_at, outcome, rows, rejects, reason, done_outcome)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?3, ?4, ?6, ?7, ?8, ?9, ?10, ?7)"
	" ON CONFLICT (path) DO UPDATE SET kind = excluded.kind, size = excluded.size,"
	"  mtime = excluded.mtime, sha256 = excluded.sha256, seen_size = excluded.seen_size,"
	"  seen_mtime = excluded.seen_mtime, applied_at = excluded.applied_at,"
	"  outcome = excluded.outcome, rows = excluded.rows, rejects = excluded.rejects,"
	"  reason = excluded.reason, done_outcome = excluded.done_outcome";

/* The processed version is the one listed: nothing to do but note it was seen. */
static const char *SQL_FILE_CURRENT =
	"UPDATE sftp_files SET seen_size = ?2, seen_mtime = ?3, outcome = done_outcome"
	" WHERE path = ?1";

/* The same content as the processed version, under a new mtime. */
static const char *SQL_FILE_SAME =
	"UPDATE sftp_files SET size = ?2, mtime = ?3, seen_size = ?2, seen_mtime = ?3,"
	"  outcome = done_outcome, reason = ?4 WHERE path = ?1";

static void bind_opt(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static int step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int ledger_seen(struct store *st, const char *now, const struct ledger_file *f,
		const char *outcome, const char *reason)
{
	sqlite3_stmt *s = store_stmt(st, SQL_FILE_SEEN);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, f->path, -1, SQLITE_STATIC);
	bind_opt(s, 2, f->kind);
	sqlite3_bind_text(s, 3, now, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (int64_t)f->size);
	sqlite3_bind_text(s, 5, f->mtime, -1, SQLITE_STATIC);
	bind_opt(s, 6, outcome);
	bind_opt(s, 7, reason);
	return step_done(s);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
	const char *v = (const char *)sqlite3_column_text(s, i);
	return v ? strdup(v) : NULL;
}

/* Whether columns size_col and mtime_col of q hold f's size and mtime. */
static bool same_version(sqlite3_stmt *q, int size_col, int mtime_col, const struct ledger_file *f)
{
	const char *mtime = (const char *)sqlite3_column_text(q, mtime_col);
	return sqlite3_column_type(q, size_col) != SQLITE_NULL &&
	       (uint64_t)sqlite3_column_int64(q, size_col) == f->size && mtime &&
	       strcmp(mtime, f->mtime) == 0;
}

int ledger_look(struct store *st, const struct ledger_file *f, struct ledger_view *v)
{
	memset(v, 0, sizeof(*v));
	sqlite3_stmt *q = store_stmt(st, SQL_FILE_GET);
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, f->path, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		v->current = sqlite3_column_type(q, 5) != SQLITE_NULL && same_version(q, 0, 1, f);
		v->seen_same = same_version(q, 3, 4, f);
		if (!v->current) {
			v->done_sha = col_dup(q, 2);
			v->done_outcome = col_dup(q, 5);
		}
	}
	sqlite3_reset(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

/* Run sql with f's path, size and mtime as ?1, ?2, ?3, and reason (when not NULL) as ?4. */
static int update_version(struct store *st, const char *sql, const struct ledger_file *f,
			  const char *reason)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, f->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)f->size);
	sqlite3_bind_text(s, 3, f->mtime, -1, SQLITE_STATIC);
	if (reason)
		sqlite3_bind_text(s, 4, reason, -1, SQLITE_STATIC);
	return step_done(s);
}

int ledger_current(struct store *st, const struct ledger_file *f)
{
	return update_version(st, SQL_FILE_CURRENT, f, NULL);
}

int ledger_same(struct store *st, const struct ledger_file *f, const char *reason)
{
	return update_version(st, SQL_FILE_SAME, f, reason);
}

int ledger_done(struct store *st, const struct csvin_result *r, void *arg)
{
	const struct ledger_done *d = arg;
	sqlite3_stmt *s = store_stmt(st, SQL_FILE_DONE);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, d->f.path, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, d->f.kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)d->f.size);
	sqlite3_bind_text(s, 4, d->f.mtime, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, d->sha, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, d->now, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, csvin_outcome_name(r->outcome), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, r->outcome == CSVIN_REJECTED ? 0 : r->applied);
	sqlite3_bind_int64(s, 9, r->rejects);
	bind_opt(s, 10, r->reason[0] ? r->reason : NULL);
	return step_done(s);
}
