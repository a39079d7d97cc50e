/* source.h - where a merchant's mirror gets its data from, recorded in the mirror so that a
 * configuration pointing elsewhere (preprod -> production, a moved SFTP root) stops the
 * syncs instead of mixing two shops in one mirror; golive and rebind resolve it. */
#ifndef KLEEP_SOURCE_H
#define KLEEP_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "log.h"
#include "store.h"

#define SOURCE_HOST_MAX 256   /* bytes of a host, ":port" included, NUL included */
#define SOURCE_PATH_MAX 1024  /* bytes of an API base path or an SFTP root, NUL included */
#define SOURCE_TEXT_MAX 1536  /* bytes source_describe may write, NUL included */

/*
 * A source: what identifies the shop a mirror's data comes from.  Poll
 * intervals, the rate limit, languages, field names, credentials and the
 * profile are not part of it: changing them never stops a sync.
 */
struct source {
	enum environment environment;
	bool has_api;                      /* the merchant has [wshop] */
	char api_scheme[8];                /* "http" or "https" */
	char api_host[SOURCE_HOST_MAX];    /* lower case, never user-info; ":port" unless default */
	char api_path[SOURCE_PATH_MAX];    /* base path without a trailing '/'; "" for the root */
	bool has_sftp;                     /* the merchant has [sftp] */
	char sftp_host[SOURCE_HOST_MAX];   /* lower case */
	int sftp_port;
	char sftp_root[SOURCE_PATH_MAX];   /* as configured, without a trailing '/' */
};

/*
 * The source merchant m's configuration points to.  0, or -ENAMETOOLONG when
 * a part does not fit (err says which).
 */
int source_from_conf(const struct merchant_conf *m, struct source *out, char *err, size_t errlen);

/* "production" or "preprod". */
const char *source_environment_name(enum environment e);

/*
 * Whether configuration now would make mirror bound to was hold data of
 * another shop: another environment, or an API or SFTP part that both have
 * and that differs.  A part only one of them has is not a conflict (an
 * [sftp] section added later fills gaps of the same shop).
 */
bool source_conflicts(const struct source *was, const struct source *now);

/* Whether two merchant configurations point to the same source (false when either cannot be computed). */
bool source_conf_same(const struct merchant_conf *a, const struct merchant_conf *b);

/*
 * One line for a person, never a secret:
 * "preprod (API https://shop.example/api/v1, SFTP sftp.example:22 root acme/preprod)".
 * Truncated to size.
 */
void source_describe(const struct source *s, char *buf, size_t size);

/* The source recorded in mirror st: 1 with *out filled, 0 when none is recorded, -EIO. */
int source_get(struct store *st, struct source *out);

/* Record s in mirror st as its source; by says why ("first_use", "rebind", "golive").  0 or -EIO. */
int source_put(struct store *st, const struct source *s, const char *by);

/*
 * Before any request of a sync: check that mirror st may take data from m's
 * configuration.  A mirror with no source recorded (new, or made before
 * sources were recorded) adopts the configured one; a part the mirror lacks
 * (an [sftp] section added) is added.  Returns 0 when the sync may go on,
 * -EXDEV when the configuration points elsewhere (msg names both sources
 * and the way forward), another negative errno-style code when the mirror
 * or the configuration cannot be read (msg says why).
 */
int source_verify(struct store *st, const struct merchant_conf *m, const struct log_ctx *log,
		  char *msg, size_t msglen);

/*
 * kleepctl rebind: the same shop moved (a new domain, port or SFTP root):
 * record m's configured source in st and keep the data and cursors.
 * Refused (-EINVAL) when the environment changes: that is a go-live.
 * -EALREADY when there is nothing to accept.  msg says what was done or why not.
 */
int source_rebind(struct store *st, const struct merchant_conf *m, const struct log_ctx *log,
		  char *msg, size_t msglen);

/*
 * kleepctl golive: archive the mirror at db_path, open in *st, as
 * "<id>.<environment>.<UTC time>.db" beside it (a complete copy in rollback
 * journal mode, so it needs no -wal or -shm; mode 0640), then replace it with
 * a fresh mirror bound to m's configured source, returned in *st (the old
 * store is closed).  The archive's path goes to archive.  -EALREADY when the
 * configuration still points to the mirror's source, -ENOENT when the mirror
 * has none recorded yet; other negative errno-style codes on failure, with
 * *st still open on the old mirror when the archive could not be made, or
 * NULL when the fresh mirror could not be (the archive is complete then, and
 * the next sync makes the mirror).  msg says what was done or why not.
 */
int source_golive(struct store **st, const char *db_path, const struct merchant_conf *m,
		  const struct log_ctx *log, char *archive, size_t archivelen, char *msg,
		  size_t msglen);

#endif
