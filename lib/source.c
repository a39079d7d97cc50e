/* source.c - a mirror's source: computed from a merchant's configuration, recorded in the
 * mirror, compared before each sync, and moved on by rebind (same shop) or golive (archive
 * the mirror, start a fresh one). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "source.h"
#include "tstamp.h"

#define ARCHIVE_MODE 0640 /* group kleep reads archives as it reads mirrors */

const char *source_environment_name(enum environment e)
{
	return e == ENV_PREPROD ? "preprod" : "production";
}

/* Copy len bytes of src into dst (size bytes), lower-cased when asked; false when it does not fit. */
static bool copy_part(char *dst, size_t size, const char *src, size_t len, bool lower)
{
	if (len >= size)
		return false;
	for (size_t i = 0; i < len; i++)
		dst[i] = lower ? (char)tolower((unsigned char)src[i]) : src[i];
	dst[len] = 0;
	return true;
}

/* A path or root without its trailing slashes ("/" stays "/"). */
static size_t trimmed_len(const char *s, size_t len)
{
	while (len > 1 && s[len - 1] == '/')
		len--;
	return len;
}

/* scheme://[user-info@]host[:port][/path][?query][#fragment] -> scheme, host[:port], path. */
static bool api_from_url(const char *url, struct source *s)
{
	const char *sep = strstr(url, "://");
	if (!sep || !copy_part(s->api_scheme, sizeof(s->api_scheme), url, (size_t)(sep - url), true))
		return false;
	const char *auth = sep + 3;
	size_t alen = strcspn(auth, "/?#");
	const char *at = memrchr(auth, '@', alen);
	if (at) {
		alen -= (size_t)(at + 1 - auth);
		auth = at + 1;
	}
	const char *dflt = strcmp(s->api_scheme, "https") == 0 ? ":443" : ":80";
	size_t dlen = strlen(dflt);
	if (alen > dlen && memcmp(auth + alen - dlen, dflt, dlen) == 0)
		alen -= dlen;
	if (!copy_part(s->api_host, sizeof(s->api_host), auth, alen, true))
		return false;
	const char *path = auth + strcspn(auth, "/?#");
	size_t plen = strcspn(path, "?#");
	plen = trimmed_len(path, plen);
	if (plen == 1 && path[0] == '/')
		plen = 0;
	return copy_part(s->api_path, sizeof(s->api_path), path, plen, false);
}

int source_from_conf(const struct merchant_conf *m, struct source *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->environment = m->environment;
	out->has_api = m->has_wshop;
	if (m->has_wshop && !api_from_url(m->wshop.api_url, out)) {
		snprintf(err, errlen, "api_url of merchant %s is too long to be recorded as its source",
			 m->id);
		return -ENAMETOOLONG;
	}
	out->has_sftp = m->has_sftp;
	if (m->has_sftp) {
		const char *root = m->sftp.root ? m->sftp.root : "";
		out->sftp_port = m->sftp.port;
		if (!copy_part(out->sftp_host, sizeof(out->sftp_host), m->sftp.host,
			       strlen(m->sftp.host), true) ||
		    !copy_part(out->sftp_root, sizeof(out->sftp_root), root,
			       trimmed_len(root, strlen(root)), false)) {
			snprintf(err, errlen, "the [sftp] host or root of merchant %s is too long to be "
				 "recorded as its source", m->id);
			return -ENAMETOOLONG;
		}
	}
	return 0;
}

static bool api_equal(const struct source *a, const struct source *b)
{
	return strcmp(a->api_scheme, b->api_scheme) == 0 && strcmp(a->api_host, b->api_host) == 0 &&
	       strcmp(a->api_path, b->api_path) == 0;
}

static bool sftp_equal(const struct source *a, const struct source *b)
{
	return strcmp(a->sftp_host, b->sftp_host) == 0 && a->sftp_port == b->sftp_port &&
	       strcmp(a->sftp_root, b->sftp_root) == 0;
}

bool source_conflicts(const struct source *was, const struct source *now)
{
	return was->environment != now->environment ||
	       (was->has_api && now->has_api && !api_equal(was, now)) ||
	       (was->has_sftp && now->has_sftp && !sftp_equal(was, now));
}

bool source_conf_same(const struct merchant_conf *a, const struct merchant_conf *b)
{
	struct source sa, sb;
	char err[256];
	return source_from_conf(a, &sa, err, sizeof(err)) == 0 &&
	       source_from_conf(b, &sb, err, sizeof(err)) == 0 && sa.has_api == sb.has_api &&
	       sa.has_sftp == sb.has_sftp && !source_conflicts(&sa, &sb);
}

/* The parts into lacks and from has are copied into into; true when any was. */
static bool source_merge(struct source *into, const struct source *from)
{
	bool changed = false;
	if (!into->has_api && from->has_api) {
		into->has_api = true;
		memcpy(into->api_scheme, from->api_scheme, sizeof(into->api_scheme));
		memcpy(into->api_host, from->api_host, sizeof(into->api_host));
		memcpy(into->api_path, from->api_path, sizeof(into->api_path));
		changed = true;
	}
	if (!into->has_sftp && from->has_sftp) {
		into->has_sftp = true;
		memcpy(into->sftp_host, from->sftp_host, sizeof(into->sftp_host));
		into->sftp_port = from->sftp_port;
		memcpy(into->sftp_root, from->sftp_root, sizeof(into->sftp_root));
		changed = true;
	}
	return changed;
}

void source_describe(const struct source *s, char *buf, size_t size)
{
	char api[SOURCE_HOST_MAX + SOURCE_PATH_MAX + 32] = "", sftp[SOURCE_HOST_MAX + SOURCE_PATH_MAX + 32] = "";
	if (s->has_api)
		snprintf(api, sizeof(api), "API %s://%s%s", s->api_scheme, s->api_host, s->api_path);
	if (s->has_sftp)
		snprintf(sftp, sizeof(sftp), "SFTP %s:%d root %s", s->sftp_host, s->sftp_port,
			 s->sftp_root[0] ? s->sftp_root : "(login folder)");
	if (!s->has_api && !s->has_sftp)
		snprintf(buf, size, "%s", source_environment_name(s->environment));
	else
		snprintf(buf, size, "%s (%s%s%s)", source_environment_name(s->environment), api,
			 api[0] && sftp[0] ? ", " : "", sftp);
}

/* ---- the record in the mirror -------------------------------------------- */

static const char *SQL_SOURCE_GET =
	"SELECT environment, api_scheme, api_host, api_path, sftp_host, sftp_port, sftp_root"
	" FROM source_binding WHERE id = 1";

static const char *SQL_SOURCE_PUT =
	"INSERT OR REPLACE INTO source_binding (id, environment, api_scheme, api_host, api_path,"
	"  sftp_host, sftp_port, sftp_root, bound_at, bound_by)"
	" VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/* Column i as text into dst; false when it does not fit. */
static bool column_part(sqlite3_stmt *q, int i, char *dst, size_t size)
{
	const char *v = (const char *)sqlite3_column_text(q, i);
	return copy_part(dst, size, v ? v : "", v ? strlen(v) : 0, false);
}

int source_get(struct store *st, struct source *out)
{
	sqlite3_stmt *q = store_stmt(st, SQL_SOURCE_GET);
	memset(out, 0, sizeof(*out));
	if (!q)
		return -EIO;
	int rc = sqlite3_step(q);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return -EIO;
	const char *env = (const char *)sqlite3_column_text(q, 0);
	out->environment = env && strcmp(env, "preprod") == 0 ? ENV_PREPROD : ENV_PRODUCTION;
	out->has_api = sqlite3_column_type(q, 2) != SQLITE_NULL;
	out->has_sftp = sqlite3_column_type(q, 4) != SQLITE_NULL;
	out->sftp_port = sqlite3_column_int(q, 5);
	bool ok = column_part(q, 1, out->api_scheme, sizeof(out->api_scheme)) &&
		  column_part(q, 2, out->api_host, sizeof(out->api_host)) &&
		  column_part(q, 3, out->api_path, sizeof(out->api_path)) &&
		  column_part(q, 4, out->sftp_host, sizeof(out->sftp_host)) &&
		  column_part(q, 6, out->sftp_root, sizeof(out->sftp_root));
	sqlite3_reset(q);
	return ok ? 1 : -EIO;
}

static int bind_text_or_null(sqlite3_stmt *q, int i, bool present, const char *v)
{
	return present ? sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(q, i);
}

int source_put(struct store *st, const struct source *s, const char *by)
{
	sqlite3_stmt *q = store_stmt(st, SQL_SOURCE_PUT);
	tstamp_t now;
	tstamp_now(now);
	if (!q || sqlite3_bind_text(q, 1, source_environment_name(s->environment), -1, SQLITE_STATIC) ||
	    bind_text_or_null(q, 2, s->has_api, s->api_scheme) ||
	    bind_text_or_null(q, 3, s->has_api, s->api_host) ||
	    bind_text_or_null(q, 4, s->has_api, s->api_path) ||
	    bind_text_or_null(q, 5, s->has_sftp, s->sftp_host) ||
	    (s->has_sftp ? sqlite3_bind_int(q, 6, s->sftp_port) : sqlite3_bind_null(q, 6)) ||
	    bind_text_or_null(q, 7, s->has_sftp, s->sftp_root) ||
	    sqlite3_bind_text(q, 8, now, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(q, 9, by, -1, SQLITE_STATIC))
		return -EIO;
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* ---- verify, rebind ------------------------------------------------------ */

/*
 * Both sources of m, configured (now) and recorded (was): 1 when a source is
 * recorded, 0 when none is, negative with msg written on failure.
 */
static int both_sources(struct store *st, const struct merchant_conf *m, struct source *now,
			struct source *was, char *msg, size_t msglen)
{
	int r = source_from_conf(m, now, msg, msglen);
	if (r < 0)
		return r;
	r = source_get(st, was);
	if (r < 0)
		snprintf(msg, msglen, "cannot read the source recorded in the mirror: %s",
			 store_errmsg(st));
	return r;
}

/* The sentence of a stopped sync: both sources and what the operator does next. */
static void mismatch_message(const char *id, const struct source *was, const struct source *now,
			     char *msg, size_t msglen)
{
	char a[SOURCE_TEXT_MAX], b[SOURCE_TEXT_MAX];
	source_describe(was, a, sizeof(a));
	source_describe(now, b, sizeof(b));
	if (was->environment != now->environment)
		snprintf(msg, msglen, "syncs stopped: the mirror holds data from %s, but the "
			 "configuration now points to %s; check the new source with `kleepctl check "
			 "%s`, then `kleepctl golive %s` archives this mirror and starts a fresh one "
			 "from it", a, b, id, id);
	else
		snprintf(msg, msglen, "syncs stopped: the mirror holds data from %s, but the "
			 "configuration now points to %s; if it is the same shop at a new address, "
			 "`kleepctl rebind %s` keeps the data and cursors; if it is another shop, "
			 "`kleepctl golive %s` archives this mirror and starts a fresh one", a, b, id, id);
}

int source_verify(struct store *st, const struct merchant_conf *m, const struct log_ctx *log,
		  char *msg, size_t msglen)
{
	struct source now, was;
	char text[SOURCE_TEXT_MAX];
	int r = both_sources(st, m, &now, &was, msg, msglen);
	if (r < 0)
		return r;
	if (r > 0 && source_conflicts(&was, &now)) {
		mismatch_message(m->id, &was, &now, msg, msglen);
		return -EXDEV;
	}
	if (r > 0 && !source_merge(&was, &now))
		return 0;
	if (source_put(st, r > 0 ? &was : &now, "first_use") < 0) {
		snprintf(msg, msglen, "cannot record the mirror's source: %s", store_errmsg(st));
		return -EIO;
	}
	source_describe(r > 0 ? &was : &now, text, sizeof(text));
	log_info(log, "mirror bound to its source: %s", text);
	return 0;
}

int source_rebind(struct store *st, const struct merchant_conf *m, const struct log_ctx *log,
		  char *msg, size_t msglen)
{
	struct source now, was;
	char a[SOURCE_TEXT_MAX], b[SOURCE_TEXT_MAX];
	int r = both_sources(st, m, &now, &was, msg, msglen);
	if (r < 0)
		return r;
	if (r > 0 && was.environment != now.environment) {
		snprintf(msg, msglen, "rebind keeps the data, but the environment changes from %s to %s: "
			 "that is a go-live (`kleepctl golive %s`)",
			 source_environment_name(was.environment), source_environment_name(now.environment),
			 m->id);
		return -EINVAL;
	}
	if (r > 0 && !source_conflicts(&was, &now)) {
		source_describe(&was, a, sizeof(a));
		snprintf(msg, msglen, "nothing to rebind: the mirror is bound to %s, as configured", a);
		return -EALREADY;
	}
	if (r > 0)
		source_merge(&now, &was); /* keep a part the configuration dropped */
	source_describe(&was, a, sizeof(a));
	source_describe(&now, b, sizeof(b));
	if (source_put(st, &now, "rebind") < 0) {
		snprintf(msg, msglen, "cannot record the mirror's source: %s", store_errmsg(st));
		return -EIO;
	}
	snprintf(msg, msglen, "rebound to %s (was %s); the mirror keeps its data and cursors", b,
		 r > 0 ? a : "not recorded");
	log_notice(log, "%s", msg);
	return 0;
}

/* ---- golive -------------------------------------------------------------- */

static const char *SQL_VACUUM_INTO = "VACUUM INTO ?1";

/* fsync a file or folder by name; 0 or -errno. */
static int sync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* The folder of path, into dir. */
static void folder_of(const char *path, char *dir, size_t size)
{
	snprintf(dir, size, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = 0;
	else if (slash)
		*slash = 0;
	else
		snprintf(dir, size, ".");
}

/*
 * A complete copy of st at part: one consistent snapshot (VACUUM INTO), turned
 * to rollback-journal mode so that a reader needs no -wal or -shm, on disk.
 */
static int archive_write(struct store *st, const char *part, char *msg, size_t msglen)
{
	sqlite3_stmt *q = store_stmt(st, SQL_VACUUM_INTO);
	sqlite3 *db = NULL;
	int r = -EIO;
	unlink(part); /* a copy left by a golive that died */
	if (!q || sqlite3_bind_text(q, 1, part, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_DONE) {
		snprintf(msg, msglen, "cannot copy the mirror to %s: %s", part, store_errmsg(st));
		goto out;
	}
	if (sqlite3_open_v2(part, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(msg, msglen, "%s: %s", part, db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	if (sqlite3_close(db) != SQLITE_OK) {
		snprintf(msg, msglen, "%s: cannot close the copy", part);
		db = NULL;
		goto out;
	}
	db = NULL;
	r = chmod(part, ARCHIVE_MODE) < 0 ? -errno : sync_path(part);
	if (r < 0)
		snprintf(msg, msglen, "%s: %s", part, strerror(-r));
out:
	if (q)
		sqlite3_reset(q);
	sqlite3_close(db);
	if (r < 0)
		unlink(part);
	return r;
}

/* <dir>/<id>.<environment>.<YYYYMMDDTHHMMSSZ>.db; false when it does not fit. */
static bool archive_name(const char *dir, const char *id, enum environment env, char *out,
			 size_t size)
{
	char when[32];
	struct tm tm;
	time_t t = time(NULL);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
	int n = snprintf(out, size, "%s/%s.%s.%s.db", dir, id, source_environment_name(env), when);
	return n > 0 && (size_t)n < size;
}

/* Remove the mirror at db_path with its -wal and -shm; 0 or -errno. */
static int mirror_remove(const char *db_path)
{
	static const char *const suffix[] = { "-wal", "-shm", "" };
	char path[4200];
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", db_path, suffix[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
	}
	return 0;
}

/* Archive *st as archive (never over an existing file). */
static int archive_make(struct store *st, const char *archive, char *msg, size_t msglen)
{
	char part[4200];
	snprintf(part, sizeof(part), "%s.part", archive);
	int r = archive_write(st, part, msg, msglen);
	if (r < 0)
		return r;
	if (link(part, archive) < 0) {
		r = -errno;
		snprintf(msg, msglen, "%s: %s", archive, strerror(errno));
	}
	unlink(part);
	return r;
}

/* Replace the mirror at db_path (closed) by a fresh one bound to now, in *st. */
static int mirror_fresh(struct store **st, const char *db_path, const struct source *now,
			char *msg, size_t msglen)
{
	int r = mirror_remove(db_path);
	if (r < 0) {
		snprintf(msg, msglen, "%s: cannot remove the old mirror: %s", db_path, strerror(-r));
		return r;
	}
	r = store_open(db_path, st, msg, msglen);
	if (r < 0)
		return r;
	if (source_put(*st, now, "golive") < 0) {
		snprintf(msg, msglen, "cannot record the fresh mirror's source: %s", store_errmsg(*st));
		return -EIO;
	}
	return 0;
}

int source_golive(struct store **st, const char *db_path, const struct merchant_conf *m,
		  const struct log_ctx *log, char *archive, size_t archivelen, char *msg,
		  size_t msglen)
{
	struct source now, was;
	char a[SOURCE_TEXT_MAX], b[SOURCE_TEXT_MAX], dir[4096];
	int r = both_sources(*st, m, &now, &was, msg, msglen);
	if (r < 0)
		return r;
	if (r == 0) {
		snprintf(msg, msglen, "the mirror has no source recorded yet: nothing to go live from");
		return -ENOENT;
	}
	source_describe(&was, a, sizeof(a));
	if (!source_conflicts(&was, &now)) {
		snprintf(msg, msglen, "the configuration still points to the mirror's source, %s: "
			 "edit the merchant's file to the new source and reload first", a);
		return -EALREADY;
	}
	source_describe(&now, b, sizeof(b));
	folder_of(db_path, dir, sizeof(dir));
	if (!archive_name(dir, m->id, was.environment, archive, archivelen)) {
		snprintf(msg, msglen, "%s: the archive's name is too long", dir);
		return -ENAMETOOLONG;
	}
	r = archive_make(*st, archive, msg, msglen);
	if (r < 0)
		return r;
	store_close(*st);
	*st = NULL;
	r = mirror_fresh(st, db_path, &now, msg, msglen);
	sync_path(dir);
	if (r < 0) {
		log_err(log, "golive: %s archived as %s, but no fresh mirror: %s", a, archive, msg);
		return r;
	}
	snprintf(msg, msglen, "went live: the mirror of %s is archived as %s; a fresh mirror is "
		 "bound to %s and every stream syncs in full", a, archive, b);
	log_notice(log, "%s", msg);
	return 0;
}
