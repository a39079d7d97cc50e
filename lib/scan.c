/* scan.c - one SFTP scan: list the drop folder, wait for files to settle, apply each new version once.
 *
 * The sftp_files ledger is what makes a scan idempotent.  A file version
 * (size, mtime) that was processed is not downloaded again; a version whose
 * content hashes like the processed one is not applied again; anything else
 * settled is downloaded whole to a temporary file first, so that a cut
 * connection never leaves half a file applied, then ingested in one
 * transaction that also writes its ledger row.  Files are applied in the
 * order of their name's time, across folders, so the latest file's version
 * of a record wins.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "errclass.h"
#include "hex.h"
#include "scan.h"
#include "sftp.h"
#include "tstamp.h"

#define SHA256_HEX 65

/* The layout of a merchant's folder (DESIGN.md §6). */
static const struct {
	const char *dir;
	enum csvin_kind kind;
	bool expected; /* worth a warning when missing */
} folders[] = {
	{ "products", CSVIN_PRODUCTS, true },
	{ "orders", CSVIN_ORDERS, true },
	{ "returns", CSVIN_RETURNS, true },
	{ "return_reasons", CSVIN_RETURN_REASONS, false },
	{ "misc", CSVIN_DIMENSIONS, false },
};
#define N_FOLDERS (sizeof(folders) / sizeof(folders[0]))

/* A settled file version that needs downloading. */
struct cand {
	char *path;          /* ledger path: folder/name */
	char *remote;        /* path on the server */
	enum csvin_kind kind;
	time_t when;         /* the name's time */
	uint64_t size;
	tstamp_t mtime;
	char *done_sha;      /* digest of the version last processed, or NULL */
	char *done_outcome;  /* its outcome, or NULL */
};

struct scan {
	const struct merchant_conf *m;
	struct store *st;
	const char *state_dir;
	atomic_bool *stop;
	struct log_ctx log;
	struct scan_result *res;
	struct sftp *sftp;
	tstamp_t now;
	time_t now_t;
	int64_t rows_in, bytes, processed;
	bool storage_failed;        /* a database step failed, not the connection */
	struct cand *cands;
	size_t n_cands, cap_cands;
};

bool scan_name_parse(enum csvin_kind folder_kind, const char *name, const struct tz *tz,
		     time_t *when, char *reason, size_t size)
{
	const char *kind = csvin_kind_name(folder_kind);
	size_t klen = strlen(kind);

	if (strncmp(name, kind, klen) != 0 || name[klen] != '_') {
		for (int k = 0; k < CSVIN_KIND_COUNT; k++) {
			const char *other = csvin_kind_name(k);
			size_t olen = strlen(other);
			if (k != (int)folder_kind && strncmp(name, other, olen) == 0 &&
			    name[olen] == '_') {
				snprintf(reason, size, "%s %s file in the %s/ folder",
					 strchr("aeiou", other[0]) ? "an" : "a", other,
					 folder_kind == CSVIN_DIMENSIONS ? "misc" : kind);
				return false;
			}
		}
		goto pattern;
	}
	/* YYYY-MM-DDTHH-MM-SS.csv */
	const char *t = name + klen + 1;
	static const char shape[] = "dddd-dd-ddTdd-dd-dd";
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != shape[i])
			goto pattern;
	}
	if (strcasecmp(t + sizeof(shape) - 1, ".csv") != 0)
		goto pattern;
	char iso[24];
	snprintf(iso, sizeof(iso), "%.10sT%.2s:%.2s:%.2s", t, t + 11, t + 14, t + 17);
	if (tstamp_from_local(tz, iso, when) < 0) {
		snprintf(reason, size, "the time in the name (%.19s) is not a valid date", t);
		return false;
	}
	return true;
pattern:
	snprintf(reason, size, "name does not match %s_YYYY-MM-DDTHH-MM-SS.csv", kind);
	return false;
}

/* ---- the ledger ---- */

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

static int ledger_seen(struct scan *sc, const char *path, const char *kind, uint64_t size,
		       const char *mtime, const char *outcome, const char *reason)
{
	sqlite3_stmt *s = store_stmt(sc->st, SQL_FILE_SEEN);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
	bind_opt(s, 2, kind);
	sqlite3_bind_text(s, 3, sc->now, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (int64_t)size);
	sqlite3_bind_text(s, 5, mtime, -1, SQLITE_STATIC);
	bind_opt(s, 6, outcome);
	bind_opt(s, 7, reason);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* This version could not be read; done_outcome still tells about the last processed one. */
static int ledger_failed(struct scan *sc, const struct cand *c, const char *why)
{
	return ledger_seen(sc, c->path, csvin_kind_name(c->kind), c->size, c->mtime, "failed",
			   why);
}

struct done_arg {
	struct scan *sc;
	const struct cand *c;
	const char *sha;
};

/* csvin's before_commit: the ledger row commits with the file's data. */
static int ledger_done(struct store *st, const struct csvin_result *r, void *arg)
{
	const struct done_arg *d = arg;
	sqlite3_stmt *s = store_stmt(st, SQL_FILE_DONE);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, d->c->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, csvin_kind_name(d->c->kind), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)d->c->size);
	sqlite3_bind_text(s, 4, d->c->mtime, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, d->sha, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, d->sc->now, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, csvin_outcome_name(r->outcome), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, r->outcome == CSVIN_REJECTED ? 0 : r->applied);
	sqlite3_bind_int64(s, 9, r->rejects);
	bind_opt(s, 10, r->reason[0] ? r->reason : NULL);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* ---- listing ---- */

/* root joined with sub ("" or "." root: sub alone, relative to the login folder). */
static char *join(const char *root, const char *sub)
{
	char *out;
	size_t n = root ? strlen(root) : 0;
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (n == 0 || (n == 1 && root[0] == '.'))
		return strdup(sub);
	if (n == 1 && root[0] == '/')
		return asprintf(&out, "/%s", sub) < 0 ? NULL : out;
	return asprintf(&out, "%.*s/%s", (int)n, root, sub) < 0 ? NULL : out;
}

static void cand_free(struct cand *c)
{
	free(c->path);
	free(c->remote);
	free(c->done_sha);
	free(c->done_outcome);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
	const char *v = (const char *)sqlite3_column_text(s, i);
	return v ? strdup(v) : NULL;
}

/*
 * Decide about one listed file of a layout folder: ignore it, leave it (its
 * processed version is current), wait for it to settle, or take it.
 */
static int consider(struct scan *sc, const char *dir, enum csvin_kind kind, const char *remote_dir,
		    const struct sftp_entry *e)
{
	char *path = NULL, reason[200];
	tstamp_t mtime;
	time_t when;
	int r = -EIO;

	if (asprintf(&path, "%s/%s", dir, e->name) < 0)
		return -ENOMEM;
	tstamp_format(e->mtime, mtime);
	sc->res->files_seen++;
	if (!e->regular || !scan_name_parse(kind, e->name, sc->m->tz, &when, reason,
					    sizeof(reason))) {
		if (!e->regular)
			snprintf(reason, sizeof(reason), "not a regular file");
		sc->res->files_ignored++;
		r = ledger_seen(sc, path, NULL, e->size, mtime, "ignored", reason);
		goto out;
	}

	sqlite3_stmt *q = store_stmt(sc->st, SQL_FILE_GET);
	if (!q)
		goto out;
	sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	bool have = rc == SQLITE_ROW;
	if (!have && rc != SQLITE_DONE) {
		sqlite3_reset(q);
		goto out;
	}
	const char *done_outcome = have ? (const char *)sqlite3_column_text(q, 5) : NULL;
	const char *done_mtime = have ? (const char *)sqlite3_column_text(q, 1) : NULL;
	const char *seen_mtime = have ? (const char *)sqlite3_column_text(q, 4) : NULL;
	bool current = done_outcome && sqlite3_column_type(q, 0) != SQLITE_NULL &&
		       (uint64_t)sqlite3_column_int64(q, 0) == e->size && done_mtime &&
		       strcmp(done_mtime, mtime) == 0;
	bool settled = (have && sqlite3_column_type(q, 3) != SQLITE_NULL &&
			(uint64_t)sqlite3_column_int64(q, 3) == e->size && seen_mtime &&
			strcmp(seen_mtime, mtime) == 0) ||
		       (sc->now_t - e->mtime) * 1000000LL >= (int64_t)sc->m->sftp.settle_usec;
	struct cand c = { 0 };
	if (!current && settled) {
		c.done_sha = have ? col_dup(q, 2) : NULL;
		c.done_outcome = done_outcome ? strdup(done_outcome) : NULL;
	}
	sqlite3_reset(q);

	if (current) {
		sqlite3_stmt *u = store_stmt(sc->st, SQL_FILE_CURRENT);
		if (!u)
			goto out;
		sqlite3_bind_text(u, 1, path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(u, 2, (int64_t)e->size);
		sqlite3_bind_text(u, 3, mtime, -1, SQLITE_STATIC);
		r = sqlite3_step(u) == SQLITE_DONE ? 0 : -EIO;
		sqlite3_reset(u);
		goto out;
	}
	if (!settled) {
		sc->res->files_pending++;
		r = ledger_seen(sc, path, csvin_kind_name(kind), e->size, mtime, "pending",
				"still being written: waiting for size and mtime to settle");
		goto out;
	}
	/* take it: the ledger keeps its outcome until the file is processed */
	if ((r = ledger_seen(sc, path, csvin_kind_name(kind), e->size, mtime, NULL, NULL)) < 0) {
		cand_free(&c);
		goto out;
	}
	if (sc->n_cands == sc->cap_cands) {
		size_t ncap = sc->cap_cands ? sc->cap_cands * 2 : 32;
		struct cand *nc = realloc(sc->cands, ncap * sizeof(*nc));
		if (!nc) {
			cand_free(&c);
			r = -ENOMEM;
			goto out;
		}
		sc->cands = nc;
		sc->cap_cands = ncap;
	}
	c.path = path;
	path = NULL;
	c.remote = join(remote_dir, e->name);
	c.kind = kind;
	c.when = when;
	c.size = e->size;
	memcpy(c.mtime, mtime, sizeof(mtime));
	sc->cands[sc->n_cands++] = c;
	r = c.remote ? 0 : -ENOMEM;
out:
	free(path);
	return r;
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->when != y->when)
		return x->when < y->when ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* The listings of root and of each layout folder; NULL entries for a missing folder. */
struct listing {
	struct sftp_entry *root;
	size_t n_root;
	struct sftp_entry *dir[N_FOLDERS];
	size_t n_dir[N_FOLDERS];
	char *remote[N_FOLDERS];
};

static void listing_free(struct listing *l)
{
	sftp_entries_free(l->root, l->n_root);
	for (size_t i = 0; i < N_FOLDERS; i++) {
		sftp_entries_free(l->dir[i], l->n_dir[i]);
		free(l->remote[i]);
	}
}

static int list_all(struct scan *sc, struct listing *l, char *err, size_t errlen)
{
	const char *root = sc->m->sftp.root ? sc->m->sftp.root : ".";
	const char *root_list = root[0] ? root : ".";
	int r = sftp_list(sc->sftp, root_list, &l->root, &l->n_root, err, errlen);
	if (r == SFTP_ENOENT)
		snprintf(err, errlen, "the SFTP folder '%s' does not exist for user %s on %s "
			 "port %d", root, sc->m->sftp.user ? sc->m->sftp.user : "?",
			 sc->m->sftp.host, sc->m->sftp.port);
	if (r != SFTP_OK)
		return r;
	for (size_t i = 0; i < N_FOLDERS; i++) {
		bool present = false;
		for (size_t j = 0; j < l->n_root; j++)
			if (!l->root[j].regular && strcmp(l->root[j].name, folders[i].dir) == 0)
				present = true;
		if (!present) {
			if (folders[i].expected)
				log_warning(&sc->log, "SFTP folder %s/ is missing under '%s'",
					    folders[i].dir, root);
			continue;
		}
		if (!(l->remote[i] = join(root, folders[i].dir)))
			return SFTP_ENOMEM;
		r = sftp_list(sc->sftp, l->remote[i], &l->dir[i], &l->n_dir[i], err, errlen);
		if (r == SFTP_ENOENT) /* removed since the root was listed */
			continue;
		if (r != SFTP_OK)
			return r;
	}
	return SFTP_OK;
}

/* Record what the listing shows, in one transaction; gather the files to take. */
static int sort_listing(struct scan *sc, const struct listing *l)
{
	int r = 0;
	if (store_begin(sc->st) < 0)
		return -EIO;
	for (size_t j = 0; j < l->n_root && r == 0; j++) {
		const struct sftp_entry *e = &l->root[j];
		bool layout = false;
		for (size_t i = 0; i < N_FOLDERS; i++)
			if (!e->regular && strcmp(e->name, folders[i].dir) == 0)
				layout = true;
		if (layout)
			continue;
		tstamp_t mtime;
		tstamp_format(e->mtime, mtime);
		sc->res->files_seen++;
		sc->res->files_ignored++;
		r = ledger_seen(sc, e->name, NULL, e->size, mtime, "ignored",
				"not in the SFTP layout (products/ orders/ returns/ "
				"return_reasons/ misc/)");
	}
	for (size_t i = 0; i < N_FOLDERS && r == 0; i++)
		for (size_t j = 0; j < l->n_dir[i] && r == 0; j++)
			r = consider(sc, folders[i].dir, folders[i].kind, l->remote[i], &l->dir[i][j]);
	if (r < 0 || store_commit(sc->st) < 0) {
		store_rollback(sc->st);
		return r < 0 ? r : -EIO;
	}
	if (sc->n_cands)
		qsort(sc->cands, sc->n_cands, sizeof(*sc->cands), cand_cmp);
	return 0;
}

/* ---- one file ---- */

static void digest(void *arg, const void *buf, size_t n)
{
	EVP_DigestUpdate(arg, buf, n);
}

static void keepalive(void *arg)
{
	sftp_keepalive(arg);
}

static void remove_stale_downloads(struct scan *sc)
{
	char prefix[CONFIG_MERCHANT_ID_MAX + 16];
	snprintf(prefix, sizeof(prefix), ".%s.sftp-", sc->m->id);
	DIR *d = opendir(sc->state_dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 &&
		    strlen(de->d_name) == strlen(prefix) + 6)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/*
 * Download, check and apply one file.  0 when done with it (whatever its
 * outcome), or the error that ends the scan (the session or the database
 * broke, or stop).
 */
static int take(struct scan *sc, struct cand *c, char *err, size_t errlen)
{
	char tmp[4096], sha[SHA256_HEX], msg[512];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t got = 0;
	int fd = -1, r = 0;
	EVP_MD_CTX *md_ctx = NULL;

	if (snprintf(tmp, sizeof(tmp), "%s/.%s.sftp-XXXXXX", sc->state_dir, sc->m->id) >=
	    (int)sizeof(tmp)) {
		snprintf(err, errlen, "state_dir path too long");
		return -EINVAL;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot create a temporary file in %s: %s", sc->state_dir,
			 strerror(errno));
		return -EIO;
	}
	if (!(md_ctx = EVP_MD_CTX_new()) || EVP_DigestInit_ex(md_ctx, EVP_sha256(), NULL) != 1) {
		snprintf(err, errlen, "cannot start a SHA-256 digest");
		r = -ENOMEM;
		goto out;
	}
	int dr = sftp_download(sc->sftp, c->remote, fd, c->size, sc->stop, digest, md_ctx, &got,
			       msg, sizeof(msg));
	sc->bytes += (int64_t)got;
	switch (dr) {
	case SFTP_OK:
		break;
	case SFTP_ESIZE:
		/* it changed since the listing: not settled after all */
		sc->res->files_pending++;
		log_info(&sc->log, "%s: %s", c->path, msg);
		r = ledger_seen(sc, c->path, csvin_kind_name(c->kind), c->size, c->mtime,
				"pending", msg);
		goto out;
	case SFTP_ESTOPPED:
		snprintf(err, errlen, "stopped");
		r = -EAGAIN;
		goto out;
	case SFTP_ENOENT:
	case SFTP_EREMOTE:
		/* this file only: the others can still be read */
		sc->res->files_failed++;
		log_warning(&sc->log, "%s: download failed, retried next scan: %s", c->path, msg);
		r = ledger_failed(sc, c, msg);
		goto out;
	default:
		sc->res->files_failed++;
		snprintf(err, errlen, "%s", msg);
		ledger_failed(sc, c, msg);
		r = dr == SFTP_ENOMEM ? -ENOMEM : -EIO;
		goto out;
	}
	if (EVP_DigestFinal_ex(md_ctx, md, &mdlen) != 1 || mdlen != 32) {
		snprintf(err, errlen, "cannot finish a SHA-256 digest");
		r = -EIO;
		goto out;
	}
	hex_encode(md, mdlen, sha);

	if (c->done_sha && c->done_outcome && strcmp(c->done_sha, sha) == 0) {
		log_info(&sc->log, "%s: same content as the version already processed (%s); "
			 "not applied again", c->path, c->done_outcome);
		sqlite3_stmt *s = store_stmt(sc->st, SQL_FILE_SAME);
		if (!s) {
			r = -EIO;
			goto out;
		}
		sqlite3_bind_text(s, 1, c->path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, (int64_t)c->size);
		sqlite3_bind_text(s, 3, c->mtime, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, "same content as the version already processed", -1,
				  SQLITE_STATIC);
		r = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
		sqlite3_reset(s);
		goto out;
	}

	tstamp_t when;
	tstamp_format(c->when, when);
	struct done_arg d = { sc, c, sha };
	struct csvin_opts o = {
		.kind = c->kind,
		.path = c->path,
		.file_time = when,
		.m = sc->m,
		.run_id = sc->res->run_id,
		.stop = sc->stop,
		.tick = keepalive,
		.tick_arg = sc->sftp,
		.before_commit = ledger_done,
		.commit_arg = &d,
	};
	struct csvin_result cr;
	r = csvin_apply_fd(sc->st, &o, fd, &cr);
	if (r == -EAGAIN) {
		snprintf(err, errlen, "stopped");
		goto out;
	}
	if (r < 0) {
		sc->res->files_failed++;
		snprintf(err, errlen, "%s", cr.reason);
		ledger_failed(sc, c, cr.reason);
		goto out;
	}
	sc->processed++;
	sc->rows_in += cr.rows;
	if (cr.outcome == CSVIN_REJECTED) {
		sc->res->files_rejected++;
		log_warning(&sc->log, "%s: rejected, nothing applied: %s", c->path, cr.reason);
	} else {
		sc->res->files_applied++;
		sc->res->rows += cr.applied;
		if (cr.rejects)
			log_warning(&sc->log, "%s: applied %lld rows, %lld bad rows recorded in "
				    "csv_rejects", c->path, (long long)cr.applied,
				    (long long)cr.rejects);
		else
			log_info(&sc->log, "%s: applied %lld row%s", c->path, (long long)cr.applied,
				 cr.applied == 1 ? "" : "s");
	}
out:
	EVP_MD_CTX_free(md_ctx);
	if (fd >= 0) {
		unlink(tmp);
		close(fd);
	}
	if (r == -EIO && !err[0]) {
		char why[400];
		store_failure(sc->st, why, sizeof(why));
		snprintf(err, errlen, "database error: %s", why);
		sc->storage_failed = true;
	}
	return r;
}

/* ---- the scan ---- */

static enum errclass class_of(int e)
{
	switch (e) {
	case SFTP_ECONFIG:
	case SFTP_EHOSTKEY:
	case SFTP_ENOENT:
	case SFTP_EREMOTE:
		return ERRC_CONFIG;
	case SFTP_EAUTH:
		return ERRC_AUTH;
	default:
		return ERRC_TRANSIENT;
	}
}

static int errno_of(int e)
{
	switch (e) {
	case SFTP_EHOSTKEY: return -EPERM;
	case SFTP_EAUTH: return -EACCES;
	case SFTP_ECONFIG:
	case SFTP_ENOENT:
	case SFTP_EREMOTE: return -EINVAL;
	case SFTP_ESTOPPED: return -EAGAIN;
	case SFTP_ENOMEM: return -ENOMEM;
	default: return -EIO;
	}
}

/* sync_runs and sync_state say how the scan ended. */
static const char *SQL_SFTP_ROWS =
	"SELECT count(*) FROM records WHERE source = 'sftp' AND deleted = 0";

static void record_end(struct scan *sc, int r)
{
	struct scan_result *res = sc->res;
	struct store_state ss;
	tstamp_t end;
	tstamp_now(end);
	const char *outcome = r == 0 ? "success" : r == -EAGAIN ? "interrupted" : "failed";
	struct store_run run = {
		.run_id = res->run_id,
		.stream = "sftp",
		.outcome = outcome,
		.pages = sc->processed,
		.rows_in = sc->rows_in,
		.rows_changed = res->rows,
		.bytes = sc->bytes,
		.error = r ? res->error : NULL,
		.error_class = r ? res->error_class : NULL,
	};
	if (res->run_id && store_run_finish(sc->st, &run, end) < 0)
		log_err(&sc->log, "cannot record the end of the scan: %s", store_errmsg(sc->st));
	if (store_state_get(sc->st, "sftp", &ss) < 0) {
		log_err(&sc->log, "cannot read the sftp state: %s", store_errmsg(sc->st));
		return;
	}
	store_state_set(&ss.last_attempt, sc->now);
	if (r == 0) {
		store_state_set(&ss.last_success, end);
		store_state_set(&ss.last_error, NULL);
		store_state_set(&ss.error_class, NULL);
		/* What the SFTP files hold now, not a sum: a changed file re-applies its rows. */
		sqlite3_stmt *q = store_stmt(sc->st, SQL_SFTP_ROWS);
		if (q && sqlite3_step(q) == SQLITE_ROW)
			ss.rows_total = sqlite3_column_int64(q, 0);
		if (q)
			sqlite3_reset(q);
	} else if (r != -EAGAIN) {
		store_state_set(&ss.last_error, res->error);
		store_state_set(&ss.error_class, res->error_class);
	}
	if (store_state_put(sc->st, "sftp", &ss) < 0)
		log_err(&sc->log, "cannot record the sftp state: %s", store_errmsg(sc->st));
	store_state_clear(&ss);
}

int scan_run(const struct merchant_conf *m, struct store *st, const char *state_dir,
	     atomic_bool *stop, const struct log_ctx *log, struct scan_result *res)
{
	struct scan sc = { .m = m, .st = st, .state_dir = state_dir, .stop = stop, .res = res };
	struct listing l;
	char err[sizeof(res->error)] = "";
	int r = 0;

	memset(res, 0, sizeof(*res));
	memset(&l, 0, sizeof(l));
	if (log)
		sc.log = *log;
	if (!sc.log.stream)
		sc.log.stream = "sftp";
	sc.now_t = time(NULL);
	tstamp_format(sc.now_t, sc.now);
	if (!sc.state_dir)
		sc.state_dir = "/tmp";

	if (store_run_start(st, "sftp", sc.now, &res->run_id) < 0) {
		char why[400];
		store_failure(st, why, sizeof(why));
		snprintf(res->error, sizeof(res->error), "cannot record the scan: %s", why);
		res->error_class = errclass_name(ERRC_STORAGE);
		log_err(&sc.log, "%s", res->error);
		return -EIO;
	}
	sc.log.run_id = res->run_id;
	if (!m->has_sftp || !m->sftp.host) {
		snprintf(err, sizeof(err), "merchant %s has no [sftp] section", m->id);
		res->error_class = errclass_name(ERRC_CONFIG);
		r = -EINVAL;
		goto out;
	}
	log_msg(LOG_INFO, &sc.log, LOG_MSGID_RUN_STARTED, "SFTP scan of %s@%s port %d, folder '%s'",
		m->sftp.user ? m->sftp.user : "?", m->sftp.host, m->sftp.port,
		m->sftp.root ? m->sftp.root : ".");
	remove_stale_downloads(&sc);

	struct sftp_opts so = {
		.host = m->sftp.host,
		.port = m->sftp.port,
		.user = m->sftp.user,
		.key_file = m->sftp.key_file,
		.known_hosts = m->sftp.known_hosts,
	};
	int e = sftp_connect(&so, &sc.sftp, err, sizeof(err));
	if (e == SFTP_OK)
		e = list_all(&sc, &l, err, sizeof(err));
	if (e != SFTP_OK) {
		res->error_class = errclass_name(class_of(e));
		r = errno_of(e);
		goto out;
	}
	if ((r = sort_listing(&sc, &l)) < 0) {
		char why[400];
		store_failure(st, why, sizeof(why));
		snprintf(err, sizeof(err), "cannot update the file ledger: %s", why);
		res->error_class = errclass_name(ERRC_STORAGE);
		goto out;
	}
	listing_free(&l);
	memset(&l, 0, sizeof(l));

	for (size_t i = 0; i < sc.n_cands; i++) {
		if (stop && atomic_load(stop)) {
			snprintf(err, sizeof(err), "stopped");
			r = -EAGAIN;
			break;
		}
		if (sftp_keepalive(sc.sftp) != SFTP_OK) {
			snprintf(err, sizeof(err), "the connection to %s port %d was lost",
				 m->sftp.host, m->sftp.port);
			r = -EIO;
			break;
		}
		err[0] = '\0';
		r = take(&sc, &sc.cands[i], err, sizeof(err));
		if (r < 0)
			break;
	}
	if (r < 0 && r != -EAGAIN)
		res->error_class = errclass_name(sc.storage_failed ? ERRC_STORAGE : ERRC_TRANSIENT);
out:
	if (r < 0) {
		snprintf(res->error, sizeof(res->error), "%s", err[0] ? err : "scan failed");
		if (r == -EAGAIN)
			res->error_class = NULL;
	}
	record_end(&sc, r);
	if (r == 0)
		log_msg(LOG_INFO, &sc.log, LOG_MSGID_RUN_FINISHED,
			"SFTP scan done: %d files seen, %d applied (%lld rows), %d rejected, "
			"%d failed, %d ignored, %d waiting to settle", res->files_seen,
			res->files_applied, (long long)res->rows, res->files_rejected,
			res->files_failed, res->files_ignored, res->files_pending);
	else if (r == -EAGAIN)
		log_msg(LOG_NOTICE, &sc.log, LOG_MSGID_RUN_FAILED, "SFTP scan stopped");
	else
		log_msg(LOG_ERR, &sc.log, LOG_MSGID_RUN_FAILED, "SFTP scan failed (%s): %s",
			res->error_class ? res->error_class : "?", res->error);
	listing_free(&l);
	for (size_t i = 0; i < sc.n_cands; i++)
		cand_free(&sc.cands[i]);
	free(sc.cands);
	sftp_close(sc.sftp);
	return r;
}
