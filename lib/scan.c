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
#include "ledger.h"
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
	bool storage_failed;        /* the state directory's disk or database failed, not the
	                             * connection */
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

/* The ledger's picture of candidate c. */
static struct ledger_file file_of(const struct cand *c)
{
	return (struct ledger_file){ c->path, csvin_kind_name(c->kind), c->size, c->mtime };
}

/* This version could not be read; done_outcome still tells about the last processed one. */
static int ledger_failed(struct scan *sc, const struct cand *c, const char *why)
{
	struct ledger_file f = file_of(c);
	return ledger_seen(sc->st, sc->now, &f, "failed", why);
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

/* Append c to the files to take; it is owned by the scan from here, even on failure. */
static int cand_add(struct scan *sc, struct cand *c)
{
	if (sc->n_cands == sc->cap_cands) {
		size_t ncap = sc->cap_cands ? sc->cap_cands * 2 : 32;
		struct cand *nc = realloc(sc->cands, ncap * sizeof(*nc));
		if (!nc) {
			cand_free(c);
			return -ENOMEM;
		}
		sc->cands = nc;
		sc->cap_cands = ncap;
	}
	sc->cands[sc->n_cands++] = *c;
	return c->remote && c->path ? 0 : -ENOMEM;
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
	struct ledger_view v;
	int r;

	if (asprintf(&path, "%s/%s", dir, e->name) < 0)
		return -ENOMEM;
	tstamp_format(e->mtime, mtime);
	sc->res->files_seen++;
	struct ledger_file f = { path, csvin_kind_name(kind), e->size, mtime };
	if (!e->regular || !scan_name_parse(kind, e->name, sc->m->tz, &when, reason,
					    sizeof(reason))) {
		if (!e->regular)
			snprintf(reason, sizeof(reason), "not a regular file");
		sc->res->files_ignored++;
		f.kind = NULL;
		r = ledger_seen(sc->st, sc->now, &f, "ignored", reason);
		goto out;
	}
	if ((r = ledger_look(sc->st, &f, &v)) < 0)
		goto out;
	bool settled = v.seen_same ||
		       (sc->now_t - e->mtime) * 1000000LL >= (int64_t)sc->m->sftp.settle_usec;
	struct cand c = { .done_sha = v.done_sha, .done_outcome = v.done_outcome };
	if (v.current) {
		r = ledger_current(sc->st, &f);
	} else if (!settled) {
		sc->res->files_pending++;
		r = ledger_seen(sc->st, sc->now, &f, "pending",
				"still being written: waiting for size and mtime to settle");
	} else if ((r = ledger_seen(sc->st, sc->now, &f, NULL, NULL)) == 0) {
		/* Taken: the ledger keeps its outcome until the file is processed. */
		c.path = path;
		path = NULL;
		c.remote = join(remote_dir, e->name);
		c.kind = kind;
		c.when = when;
		c.size = e->size;
		memcpy(c.mtime, mtime, sizeof(mtime));
		r = cand_add(sc, &c);
		goto out;
	}
	cand_free(&c);
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
		struct ledger_file f = { e->name, NULL, e->size, mtime };
		r = ledger_seen(sc->st, sc->now, &f, "ignored",
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
 * Download c into fd, hashing it into sha.  0 with the whole file there;
 * 1 when done with this file without it (it changed since the listing, or
 * this one file cannot be read: the ledger says so); or the error that ends
 * the scan, with err set.
 */
static int download(struct scan *sc, struct cand *c, int fd, char sha[SHA256_HEX], char *err,
		    size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char msg[512];
	uint64_t got = 0;
	int r;
	EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();

	if (!md_ctx || EVP_DigestInit_ex(md_ctx, EVP_sha256(), NULL) != 1) {
		snprintf(err, errlen, "cannot start a SHA-256 digest");
		EVP_MD_CTX_free(md_ctx);
		return -ENOMEM;
	}
	int dr = sftp_download(sc->sftp, c->remote, fd, c->size, sc->stop, digest, md_ctx, &got,
			       msg, sizeof(msg));
	sc->bytes += (int64_t)got;
	switch (dr) {
	case SFTP_OK:
		if (EVP_DigestFinal_ex(md_ctx, md, &mdlen) != 1 || mdlen != 32) {
			snprintf(err, errlen, "cannot finish a SHA-256 digest");
			r = -EIO;
		} else {
			hex_encode(md, mdlen, sha);
			r = 0;
		}
		break;
	case SFTP_ESIZE:
		/* it changed since the listing: not settled after all */
		sc->res->files_pending++;
		log_info(&sc->log, "%s: %s", c->path, msg);
		struct ledger_file f = file_of(c);
		r = ledger_seen(sc->st, sc->now, &f, "pending", msg);
		r = r < 0 ? r : 1;
		break;
	case SFTP_ESTOPPED:
		snprintf(err, errlen, "stopped");
		r = -EAGAIN;
		break;
	case SFTP_ENOENT:
	case SFTP_EREMOTE:
		/* this file only: the others can still be read */
		sc->res->files_failed++;
		log_warning(&sc->log, "%s: download failed, retried next scan: %s", c->path, msg);
		r = ledger_failed(sc, c, msg);
		r = r < 0 ? r : 1;
		break;
	default:
		/* the local copy could not be written: the daemon's own disk, not the server */
		sc->storage_failed = dr == SFTP_ELOCAL;
		sc->res->files_failed++;
		snprintf(err, errlen, "%s", msg);
		ledger_failed(sc, c, msg);
		r = dr == SFTP_ENOMEM ? -ENOMEM : -EIO;
		break;
	}
	EVP_MD_CTX_free(md_ctx);
	return r;
}

/* The download hashes like the version already processed: note the new mtime, apply nothing. */
static int same_content(struct scan *sc, const struct cand *c)
{
	log_info(&sc->log, "%s: same content as the version already processed (%s); "
		 "not applied again", c->path, c->done_outcome);
	struct ledger_file f = file_of(c);
	return ledger_same(sc->st, &f, "same content as the version already processed");
}

/* Ingest the downloaded file (fd) in one transaction with its ledger row, and count it. */
static int apply(struct scan *sc, struct cand *c, int fd, const char *sha, char *err,
		 size_t errlen)
{
	tstamp_t when;
	tstamp_format(c->when, when);
	struct ledger_done d = { file_of(c), sha, sc->now };
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
	int r = csvin_apply_fd(sc->st, &o, fd, &cr);
	if (r == -EAGAIN) {
		snprintf(err, errlen, "stopped");
		return r;
	}
	if (r < 0) {
		sc->res->files_failed++;
		sc->storage_failed = cr.storage;
		snprintf(err, errlen, "%s", cr.reason);
		ledger_failed(sc, c, cr.reason);
		return r;
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
	return 0;
}

/*
 * Download, check and apply one file.  0 when done with it (whatever its
 * outcome), or the error that ends the scan (the session or the database
 * broke, or stop).
 */
static int take(struct scan *sc, struct cand *c, char *err, size_t errlen)
{
	char tmp[4096], sha[SHA256_HEX];
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), "%s/.%s.sftp-XXXXXX", sc->state_dir, sc->m->id) >=
	    (int)sizeof(tmp)) {
		snprintf(err, errlen, "state_dir path too long");
		return -EINVAL;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot create a temporary file in %s: %s", sc->state_dir,
			 strerror(errno));
		sc->storage_failed = true;
		return -EIO;
	}
	r = download(sc, c, fd, sha, err, errlen);
	if (r == 0 && c->done_sha && c->done_outcome && strcmp(c->done_sha, sha) == 0)
		r = same_content(sc, c);
	else if (r == 0)
		r = apply(sc, c, fd, sha, err, errlen);
	else if (r == 1)
		r = 0;
	unlink(tmp);
	close(fd);
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

/* Connect to the merchant's server and list its folders: an SFTP_* code. */
static int connect_and_list(struct scan *sc, struct listing *l, char *err, size_t errlen)
{
	const struct sftp_conf *c = &sc->m->sftp;
	struct sftp_opts so = {
		.host = c->host,
		.port = c->port,
		.user = c->user,
		.key_file = c->key_file,
		.known_hosts = c->known_hosts,
	};
	int e = sftp_connect(&so, &sc->sftp, err, errlen);
	return e == SFTP_OK ? list_all(sc, l, err, errlen) : e;
}

/* Take every file to take, in order, until one ends the scan or it is stopped. */
static int take_all(struct scan *sc, char *err, size_t errlen)
{
	for (size_t i = 0; i < sc->n_cands; i++) {
		if (sc->stop && atomic_load(sc->stop)) {
			snprintf(err, errlen, "stopped");
			return -EAGAIN;
		}
		if (sftp_keepalive(sc->sftp) != SFTP_OK) {
			snprintf(err, errlen, "the connection to %s port %d was lost",
				 sc->m->sftp.host, sc->m->sftp.port);
			return -EIO;
		}
		err[0] = '\0';
		int r = take(sc, &sc->cands[i], err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The journal's line on how the scan ended. */
static void log_end(struct scan *sc, int r)
{
	const struct scan_result *res = sc->res;

	if (r == 0)
		log_msg(LOG_INFO, &sc->log, LOG_MSGID_RUN_FINISHED,
			"SFTP scan done: %d files seen, %d applied (%lld rows), %d rejected, "
			"%d failed, %d ignored, %d waiting to settle", res->files_seen,
			res->files_applied, (long long)res->rows, res->files_rejected,
			res->files_failed, res->files_ignored, res->files_pending);
	else if (r == -EAGAIN)
		log_msg(LOG_NOTICE, &sc->log, LOG_MSGID_RUN_FAILED, "SFTP scan stopped");
	else
		log_msg(LOG_ERR, &sc->log, LOG_MSGID_RUN_FAILED, "SFTP scan failed (%s): %s",
			res->error_class ? res->error_class : "?", res->error);
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

	int e = connect_and_list(&sc, &l, err, sizeof(err));
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

	r = take_all(&sc, err, sizeof(err));
	if (r < 0 && r != -EAGAIN)
		res->error_class = errclass_name(sc.storage_failed ? ERRC_STORAGE : ERRC_TRANSIENT);
out:
	if (r < 0) {
		snprintf(res->error, sizeof(res->error), "%s", err[0] ? err : "scan failed");
		if (r == -EAGAIN)
			res->error_class = NULL;
	}
	record_end(&sc, r);
	log_end(&sc, r);
	listing_free(&l);
	for (size_t i = 0; i < sc.n_cands; i++)
		cand_free(&sc.cands[i]);
	free(sc.cands);
	sftp_close(sc.sftp);
	return r;
}
