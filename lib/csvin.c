/* csvin.c - stream one gap-fill CSV file through libcsv into records and the canonical tables.
 *
 * This file holds the file-level work (one transaction, the reject ratio, the
 * ledger of rejects); csvin_read.c reads, csvin_check.c checks and
 * csvin_write.c writes each record.
 *
 * Memory stays constant whatever the file's size: the file is read in blocks,
 * libcsv holds one cell (capped through its realloc hook), and one record's
 * cells are kept at a time (capped too).  The input is fed to libcsv one
 * physical line at a time, so that the line where each record starts is
 * known even when quoted cells span lines: a record starts on the line being
 * fed whenever the parser stood between records before it.
 *
 * A file is one transaction.  Bad records are recorded as they come; when
 * there are too many, the transaction is rolled back and the file read again
 * in a second, validating pass that records only its rejects, so that a
 * rejected file leaves an explanation and nothing else.
 *
 * A file of orders or returns that brings many rows next to those stored
 * (an initial load, a backfill) writes its tables without their secondary
 * indexes and builds them again before the commit (bulkload.h).
 */

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <csv.h>
#include <jansson.h>

#include "bulkload.h"
#include "canon.h"
#include "csvin_ctx.h"
#include "tstamp.h"
#include "utf8.h"

static const char *const kind_names[CSVIN_KIND_COUNT] = {
	[CSVIN_RETURN_REASONS] = "return_reasons",
	[CSVIN_PRODUCTS] = "products",
	[CSVIN_ORDERS] = "orders",
	[CSVIN_RETURNS] = "returns",
	[CSVIN_DIMENSIONS] = "dimensions",
};

const char *csvin_kind_name(enum csvin_kind k)
{
	return (unsigned)k < CSVIN_KIND_COUNT ? kind_names[k] : "?";
}

int csvin_kind_from_name(const char *s)
{
	for (int i = 0; i < CSVIN_KIND_COUNT; i++)
		if (strcmp(kind_names[i], s) == 0)
			return i;
	return -1;
}

const char *csvin_outcome_name(enum csvin_outcome o)
{
	switch (o) {
	case CSVIN_APPLIED: return "applied";
	case CSVIN_APPLIED_WITH_REJECTS: return "applied_with_rejects";
	default: return "rejected";
	}
}

void csvin_fatal(struct ctx *x, int err, const char *fmt, ...)
{
	if (x->fatal)
		return;
	x->fatal = err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->res->reason, sizeof(x->res->reason), fmt, ap);
	va_end(ap);
}

/*
 * The database failed (a statement, the disk under it): res->reason says so in
 * store_failure's words, which name the file and the system's error, and
 * res->storage is set.  Called before any rollback, which would clear them.
 */
static void db_error(struct store *st, const struct csvin_opts *o, struct csvin_result *res)
{
	char why[256];
	store_failure(st, why, sizeof(why));
	snprintf(res->reason, sizeof(res->reason), "%s: database error: %s", o->path, why);
	res->storage = true;
}

void csvin_db_fatal(struct ctx *x)
{
	if (x->fatal)
		return;
	x->fatal = -EIO;
	db_error(x->st, x->o, x->res);
}

void csvin_file_reject(struct ctx *x, const char *fmt, ...)
{
	if (x->file_bad || x->fatal)
		return;
	x->file_bad = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->res->reason, sizeof(x->res->reason), fmt, ap);
	va_end(ap);
}

static const char *SQL_REJECT_ADD = "INSERT INTO csv_rejects (path, line, reason) VALUES (?1, ?2, ?3)";
static const char *SQL_REJECT_CLEAR = "DELETE FROM csv_rejects WHERE path = ?1";

void csvin_reject(struct ctx *x, int64_t line, const char *why)
{
	x->res->rejects++;
	sqlite3_stmt *s = store_stmt(x->st, SQL_REJECT_ADD);
	if (!s) {
		csvin_db_fatal(x);
		return;
	}
	sqlite3_bind_text(s, 1, x->o->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, line);
	sqlite3_bind_text(s, 3, why, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		csvin_db_fatal(x);
}

static void ctx_init(struct ctx *x, struct store *st, const struct csvin_opts *o,
		     struct csvin_result *res, bool dry)
{
	memset(x, 0, sizeof(*x));
	buf_init(&x->row, CSVIN_ROW_MAX);
	buf_init(&x->json, CSVIN_JSON_MAX);
	buf_init(&x->key, CSVIN_KEY_MAX);
	buf_init(&x->parent[0], CSVIN_PARENT_MAX);
	buf_init(&x->parent[1], CSVIN_PARENT_MAX);
	x->st = st;
	x->o = o;
	x->res = res;
	x->dry = dry;
	x->tz = o->m ? o->m->tz : NULL;
	x->lang0 = o->m && o->m->n_languages > 0 ? o->m->languages[0] : "fr";
	tstamp_now(x->now);
	memset(res, 0, sizeof(*res));
}

static void ctx_free(struct ctx *x)
{
	csvin_lines_forget(x);
	csvin_row_reset(x);
	if (x->parser_live)
		csv_free(&x->p);
	for (int i = 0; i < x->ncols; i++)
		free(x->names[i]);
	buf_free(&x->row);
	buf_free(&x->json);
	free(x->keys);
	buf_free(&x->key);
	buf_free(&x->parent[0]);
	buf_free(&x->parent[1]);
}

static int clear_rejects(struct store *st, const char *path)
{
	sqlite3_stmt *s = store_stmt(st, SQL_REJECT_CLEAR);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int finish(struct store *st, const struct csvin_opts *o, struct csvin_result *res)
{
	int r = o->before_commit ? o->before_commit(st, res, o->commit_arg) : 0;
	if (r < 0) {
		if (!res->reason[0])
			snprintf(res->reason, sizeof(res->reason), "%s: cannot record the outcome",
				 o->path);
		return r;
	}
	if (store_commit(st) < 0) {
		db_error(st, o, res);
		return -EIO;
	}
	return 0;
}

/* A file rejected whole for a reason of its own: the reason is its only reject. */
static int reject_whole(struct store *st, const struct csvin_opts *o, struct csvin_result *res,
			int64_t line)
{
	char reason[sizeof(res->reason)];
	memcpy(reason, res->reason, sizeof(reason));
	res->outcome = CSVIN_REJECTED;
	res->applied = 0;
	int r = -EIO;
	if (store_begin(st) < 0 || clear_rejects(st, o->path) < 0)
		goto fail;
	sqlite3_stmt *s = store_stmt(st, SQL_REJECT_ADD);
	if (!s)
		goto fail;
	sqlite3_bind_text(s, 1, o->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, line);
	sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		goto fail;
	if ((r = finish(st, o, res)) < 0)
		goto rollback;
	return 0;
fail:
	db_error(st, o, res);
rollback:
	store_rollback(st);
	return r;
}

/*
 * The tables a kind writes in bulk when its file is large.  Each kind's
 * writing finds rows of these tables by their primary key only (a line by
 * its parent, a return's order line in order_lines by order_id), so no
 * statement of the load looks for an index that is set aside.
 */
static const char *const bulk_tables[CSVIN_KIND_COUNT][3] = {
	[CSVIN_ORDERS] = { "orders", "order_lines", NULL },
	[CSVIN_RETURNS] = { "returns", "return_lines", NULL },
};

/* Lines in the rest of f (an upper bound of its records), leaving f where it
 * was; -1 when f cannot be read or rewound. */
static int64_t lines_left(FILE *f)
{
	long at = ftell(f);
	char block[1 << 16];
	int64_t n = 0;
	size_t got;
	if (at < 0)
		return -1;
	while ((got = fread(block, 1, sizeof(block), f)) > 0)
		for (const char *p = block; (p = memchr(p, '\n', (size_t)(block + got - p))); p++)
			n++;
	if (ferror(f) || fseek(f, at, SEEK_SET) != 0)
		return -1;
	return n;
}

/* Set aside the kind's indexes when f is large; 0 or negative with res->reason. */
static int bulk_begin(struct store *st, const struct csvin_opts *o, FILE *f, struct bulkload *bl,
		      struct csvin_result *res)
{
	bl->n = 0;
	if (!bulk_tables[o->kind][0])
		return 0;
	int64_t lines = lines_left(f);
	if (lines < 0) {
		snprintf(res->reason, sizeof(res->reason), "%s: cannot read the file", o->path);
		return -EIO;
	}
	int r = bulkload_begin(st, bl, bulk_tables[o->kind], lines - 1); /* less the header */
	if (r == -EIO)
		db_error(st, o, res);
	else if (r < 0)
		snprintf(res->reason, sizeof(res->reason), "%s: out of memory", o->path);
	return r;
}

int csvin_apply(struct store *st, const struct csvin_opts *o, FILE *f, struct csvin_result *res)
{
	struct ctx x;
	struct bulkload bl = { .n = 0 };
	int r;

	ctx_init(&x, st, o, res, false);
	if (!o->m || !o->m->tz || !o->path || (unsigned)o->kind >= CSVIN_KIND_COUNT) {
		snprintf(res->reason, sizeof(res->reason), "csvin: kind, path and merchant are required");
		return -EINVAL;
	}
	if (store_begin(st) < 0 || clear_rejects(st, o->path) < 0) {
		db_error(st, o, res);
		store_rollback(st);
		return -EIO;
	}
	if ((r = bulk_begin(st, o, f, &bl, res)) < 0) {
		ctx_free(&x);
		store_rollback(st);
		bulkload_forget(&bl);
		return r;
	}
	r = csvin_read_pass(&x, f);
	int64_t whole_line = x.whole_line;
	bool file_bad = x.file_bad;
	ctx_free(&x);
	if (r < 0 || file_bad) {
		store_rollback(st); /* which also restores what bulk_begin set aside */
		bulkload_forget(&bl);
		return r < 0 ? r : reject_whole(st, o, res, whole_line);
	}

	double ratio = o->m->sftp.max_reject_ratio;
	if (res->rows > 0 && (double)res->rejects / (double)res->rows > ratio) {
		/* too many bad rows: nothing of the file stays but its rejects */
		store_rollback(st);
		bulkload_forget(&bl);
		if (fseek(f, 0, SEEK_SET) != 0) {
			snprintf(res->reason, sizeof(res->reason),
				 "%s: cannot read the file again to record its rejects", o->path);
			return -EIO;
		}
		ctx_init(&x, st, o, res, true);
		if (store_begin(st) < 0 || clear_rejects(st, o->path) < 0) {
			db_error(st, o, res);
			ctx_free(&x);
			store_rollback(st);
			return -EIO;
		}
		r = csvin_read_pass(&x, f);
		ctx_free(&x);
		if (r < 0) {
			store_rollback(st);
			return r;
		}
		res->outcome = CSVIN_REJECTED;
		res->applied = 0;
		snprintf(res->reason, sizeof(res->reason),
			 "%lld of %lld rows are bad (%.1f%%), more than max_reject_ratio %g: "
			 "nothing applied", (long long)res->rejects, (long long)res->rows,
			 100.0 * (double)res->rejects / (double)res->rows, ratio);
	} else if (res->rejects) {
		res->outcome = CSVIN_APPLIED_WITH_REJECTS;
		snprintf(res->reason, sizeof(res->reason),
			 "%lld of %lld rows are bad (see csv_rejects); the others were applied",
			 (long long)res->rejects, (long long)res->rows);
	} else {
		res->outcome = CSVIN_APPLIED;
	}
	if (bulkload_end(st, &bl) < 0) {
		db_error(st, o, res);
		store_rollback(st);
		return -EIO;
	}
	r = finish(st, o, res);
	if (r < 0)
		store_rollback(st);
	return r;
}

int csvin_apply_fd(struct store *st, const struct csvin_opts *o, int fd, struct csvin_result *res)
{
	int dupfd = dup(fd);
	FILE *f = dupfd >= 0 ? fdopen(dupfd, "r") : NULL;
	if (!f) {
		if (dupfd >= 0)
			close(dupfd);
		memset(res, 0, sizeof(*res));
		snprintf(res->reason, sizeof(res->reason), "%s: cannot read the downloaded file: %s",
			 o->path ? o->path : "?", strerror(errno));
		return -EIO;
	}
	int r = fseek(f, 0, SEEK_SET) == 0 ? csvin_apply(st, o, f, res) : -EIO;
	if (r == -EIO && !res->reason[0])
		snprintf(res->reason, sizeof(res->reason), "%s: cannot read the downloaded file",
			 o->path ? o->path : "?");
	fclose(f);
	return r;
}
