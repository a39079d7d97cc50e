/* job.c - what runs on the pool: a stream's sync, a reproject, an onboarding check, the
 * first read of a merchant's mirror, and the read-only queries runs/files/rejects. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ctl.h"
#include "errclass.h"
#include "log.h"
#include "reproject.h"
#include "runtime_priv.h"
#include "source.h"

#define QUERY_BUSY_MS 1000        /* a query waits this long for a writer's lock */

static void job_begin(struct job *job)
{
	atomic_store(&job->started, true);
	job->started_usec = now_usec();
}

static void job_fail(struct job *job, int rc, const char *class, const char *fmt, const char *what)
{
	job->rc = rc;
	job->res.outcome = "failed";
	job->res.error_class = class;
	snprintf(job->res.message, sizeof(job->res.message), fmt, what);
}

static int open_merchant(struct job *job, struct merchant **mr)
{
	char err[sizeof(job->res.message)];
	int r = merchant_open(job->cfg->c, job->conf, job->shop ? &job->shop->s : NULL, mr, err, sizeof(err));
	if (r < 0)
		job_fail(job, r, errclass_name(merchant_open_class(r)), "%s", err);
	return r;
}

/* On a worker thread: open the mirror, run, read back the stream's state. */
static void sync_work(struct pool_job *pj)
{
	struct job *job = (struct job *)pj;
	struct merchant *mr;

	job_begin(job);
	if (atomic_load(job->stop)) {
		job->rc = -EAGAIN;
		job->res.outcome = "interrupted";
	} else if (open_merchant(job, &mr) == 0) {
		job->rc = merchant_run(mr, job->s, job->full, job->stop, &job->progress, &job->res);
		job->have_state = store_state_get(mr->st, stream_name(job->s), &job->state) == 0;
		merchant_close(mr);
	}
	job->finished_usec = now_usec();
}

static void reproject_work(struct pool_job *pj)
{
	struct job *job = (struct job *)pj;
	struct merchant *mr;

	job_begin(job);
	if (open_merchant(job, &mr) == 0) {
		job_fail(job, -EINVAL, NULL, "merchant %s has no [wshop]: nothing of the API to reproject",
			 job->id);
		if (mr->profile)
			job->rc = reproject_run(mr->st, mr->profile, job->conf, &job->res.rows_in,
						job->res.message, sizeof(job->res.message));
		job->res.outcome = job->rc == 0 ? "success" : "failed";
		if (job->rc == 0)
			snprintf(job->res.message, sizeof(job->res.message), "%lld records reprojected",
				 (long long)job->res.rows_in);
		merchant_close(mr);
	}
	job->finished_usec = now_usec();
}

/* golive or rebind (rebind.c): the merchant's mirror to itself while it is rebound. */
static void rebind_work(struct pool_job *pj)
{
	struct job *job = (struct job *)pj;
	struct merchant *mr;
	struct log_ctx lc = { job->id, NULL, 0 };
	char archive[4096];

	job_begin(job);
	if (open_merchant(job, &mr) == 0) {
		if (job->kind == JOB_GOLIVE)
			job->rc = source_golive(&mr->st, mr->db_path, job->conf, &lc, archive,
						sizeof(archive), job->res.message,
						sizeof(job->res.message));
		else
			job->rc = source_rebind(mr->st, job->conf, &lc, job->res.message,
						sizeof(job->res.message));
		job->res.outcome = job->rc == 0 ? "success" : "failed";
		merchant_close(mr);
	}
	job->finished_usec = now_usec();
}

/* The onboarding check, beside any sync of the same merchant. */
static void check_work(struct pool_job *pj)
{
	struct job *job = (struct job *)pj;
	job_begin(job);
	job->rc = check_run(job->cfg->c, job->conf, job->shop ? &job->shop->s : NULL, job->stop, &job->data);
	if (job->rc < 0)
		job_fail(job, job->rc, errclass_name(merchant_open_class(job->rc)), "cannot open the mirror: %s", strerror(-job->rc));
	job->finished_usec = now_usec();
}

/* ---- reading a mirror ------------------------------------------------------ */

static const char *SQL_STATUS_LOAD =
	"SELECT stream, last_success, last_attempt, cursor_time, error_class, last_error, endpoint,"
	"       unauthorized, rows_total FROM sync_state";

/* A read-only connection, or NULL with the job failed (NULL and rc 0: no mirror yet). */
static sqlite3 *open_mirror(struct job *job)
{
	char path[4200];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/%s.db", job->cfg->c->daemon.state_dir, job->id);
	if (access(path, F_OK) < 0)
		return NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		job_fail(job, -EIO, errclass_name(ERRC_STORAGE), "%s", sqlite3_errmsg(db));
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, QUERY_BUSY_MS);
	return db;
}

/*
 * What the mirror already says of each stream, so status is right from the
 * start and a restart does not re-run what ran a minute ago.  Read-only and
 * without migrating: migrations and reaping are the first sync's.
 */
static void load_work(struct pool_job *pj)
{
	struct job *job = (struct job *)pj;
	sqlite3_stmt *q = NULL;
	job_begin(job);
	sqlite3 *db = open_mirror(job);
	if (db && sqlite3_prepare_v2(db, SQL_STATUS_LOAD, -1, &q, NULL) == SQLITE_OK) {
		while (sqlite3_step(q) == SQLITE_ROW) {
			int s = stream_from_name((const char *)sqlite3_column_text(q, 0));
			if (s < 0)
				continue;
			struct store_state *st = &job->loaded[s];
			store_state_set(&st->last_success, (const char *)sqlite3_column_text(q, 1));
			store_state_set(&st->last_attempt, (const char *)sqlite3_column_text(q, 2));
			store_state_set(&st->cursor_time, (const char *)sqlite3_column_text(q, 3));
			store_state_set(&st->error_class, (const char *)sqlite3_column_text(q, 4));
			store_state_set(&st->last_error, (const char *)sqlite3_column_text(q, 5));
			store_state_set(&st->endpoint, (const char *)sqlite3_column_text(q, 6));
			st->unauthorized = sqlite3_column_int(q, 7) != 0;
			st->rows_total = sqlite3_column_int64(q, 8);
		}
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	job->finished_usec = now_usec();
}

static const char *SQL_QUERY[] = {
	[RUNTIME_RUNS] = "SELECT run_id, stream, started, finished, outcome, pages, rows_in, rows_changed,"
			 "       http_requests, bytes, error_class, error"
			 " FROM sync_runs WHERE ?1 IS NULL OR stream = ?1 ORDER BY run_id DESC LIMIT ?2",
	[RUNTIME_FILES] = "SELECT path, kind, size, mtime, sha256, first_seen, applied_at, outcome, rows,"
			  "       rejects, reason"
			  " FROM sftp_files WHERE ?1 IS NULL OR path = ?1 ORDER BY path LIMIT ?2",
	[RUNTIME_REJECTS] = "SELECT path, line, reason FROM csv_rejects WHERE ?1 IS NULL OR path = ?1"
			    " ORDER BY path, line LIMIT ?2",
};

static json_t *row_object(sqlite3_stmt *s)
{
	json_t *row = json_object();
	for (int i = 0; i < sqlite3_column_count(s); i++) {
		const char *name = sqlite3_column_name(s, i);
		json_t *v;
		switch (sqlite3_column_type(s, i)) {
		case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(s, i)); break;
		case SQLITE_FLOAT: v = json_real(sqlite3_column_double(s, i)); break;
		case SQLITE_NULL: v = json_null(); break;
		default: v = ctl_json_text((const char *)sqlite3_column_text(s, i)); break;
		}
		json_object_set_new(row, name, v);
	}
	return row;
}

/* runs, files, rejects: short, indexed, on a read-only connection of their own. */
static void query_work(struct pool_job *pj)
{
	struct job *job = (struct job *)pj;
	sqlite3_stmt *s = NULL;
	int rc;
	job_begin(job);
	json_t *rows = json_array();
	sqlite3 *db = open_mirror(job);
	if (!db)
		goto out;
	if (sqlite3_prepare_v2(db, SQL_QUERY[job->q], -1, &s, NULL) != SQLITE_OK) {
		job_fail(job, -EIO, errclass_name(ERRC_STORAGE), "%s", sqlite3_errmsg(db));
		goto out;
	}
	if (job->param)
		sqlite3_bind_text(s, 1, job->param, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, job->n);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(rows, row_object(s));
	if (rc != SQLITE_DONE)
		job_fail(job, -EIO, errclass_name(ERRC_STORAGE), "%s", sqlite3_errmsg(db));
out:
	sqlite3_finalize(s);
	sqlite3_close(db);
	/* 100,000 rows are tens of MB of text: made here, not on the loop. */
	if (job->rc == 0) {
		job->text = job->render(rows);
		job->text_len = job->text ? strlen(job->text) : 0;
		if (!job->text)
			job_fail(job, -ENOMEM, errclass_name(ERRC_STORAGE), "%s", "out of memory");
	} else {
		json_decref(rows);
	}
	job->finished_usec = now_usec();
}

/* ---- jobs on the loop ------------------------------------------------------ */

static void (*const job_work[])(struct pool_job *) = {
	[JOB_LOAD] = load_work, [JOB_SYNC] = sync_work, [JOB_REPROJECT] = reproject_work,
	[JOB_CHECK] = check_work, [JOB_QUERY] = query_work, [JOB_GOLIVE] = rebind_work,
	[JOB_REBIND] = rebind_work,
};

static struct cfg *cfg_ref(struct cfg *c)
{
	c->refs++;
	return c;
}

struct job *job_new(struct runtime *rt, enum job_kind kind, struct mstate *ms)
{
	struct job *job = calloc(1, sizeof(*job));
	if (!job) {
		log_err(NULL, "out of memory starting a job");
		return NULL;
	}
	job->pj.work = job_work[kind];
	job->kind = kind;
	snprintf(job->id, sizeof(job->id), "%s", ms->id);
	job->cfg = cfg_ref(rt->cfg);
	job->conf = ms->conf;
	job->shop = ms->shop;
	if (job->shop)
		job->shop->refs++;
	job->stop = &rt->stop;
	return job;
}

void job_free(struct job *job)
{
	json_decref(job->data);
	free(job->text);
	store_state_clear(&job->state);
	for (int s = 0; s < STREAM_COUNT; s++)
		store_state_clear(&job->loaded[s]);
	free(job->param);
	shop_unref(job->shop);
	cfg_unref(job->cfg);
	free(job);
}

void outcome_take(struct outcome *o, const struct store_state *st)
{
	snprintf(o->last_success, sizeof(o->last_success), "%s", st->last_success ? st->last_success : "");
	snprintf(o->last_attempt, sizeof(o->last_attempt), "%s", st->last_attempt ? st->last_attempt : "");
	snprintf(o->cursor, sizeof(o->cursor), "%s", st->cursor_time ? st->cursor_time : "");
	snprintf(o->error_class, sizeof(o->error_class), "%s", st->error_class ? st->error_class : "");
	free(o->last_error);
	o->last_error = st->last_error ? strdup(st->last_error) : NULL;
	free(o->endpoint);
	o->endpoint = st->endpoint ? strdup(st->endpoint) : NULL;
	o->unauthorized = st->unauthorized;
	o->rows_total = st->rows_total;
}

void outcome_clear(struct outcome *o)
{
	free(o->last_error);
	free(o->endpoint);
	memset(o, 0, sizeof(*o));
}

void job_result(struct job *job, struct runtime_result *r)
{
	*r = (struct runtime_result){
		.merchant = job->id,
		.stream = job->kind == JOB_SYNC ? stream_name(job->s) : NULL,
		.rc = job->rc,
		.outcome = job->res.outcome ? job->res.outcome : job->rc ? "failed" : "success",
		.error_class = job->res.error_class,
		.message = job->res.message,
		.run_id = job->res.run_id, .pages = job->res.pages, .rows = job->res.rows_in,
		.changed = job->res.rows_changed,
		.data = job->data, .text = &job->text, .text_len = job->text_len,
	};
}
