/* merchant.h - one merchant at run time: its mirror, profile, rate cap, and a job runner. */
#ifndef KLEEP_MERCHANT_H
#define KLEEP_MERCHANT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "pii.h"
#include "profile.h"
#include "store.h"
#include "sync.h"
#include "wshop.h"

/*
 * What every job of one merchant shares with the others: the shop's request
 * rate cap and its API token (both thread-safe).  The runtime owns one per
 * merchant; --once and tests let merchant_open make the merchant's own.
 */
struct merchant_shop {
	struct wshop_ratelimit *ratelimit;
	struct token_cache *tokens;
};

/* A shop for merchant m's settings; 0, or -ENOMEM with nothing left to free. */
int merchant_shop_init(struct merchant_shop *sh, const struct merchant_conf *m);
void merchant_shop_clear(struct merchant_shop *sh);

struct merchant {
	const struct merchant_conf *conf; /* borrowed: the config must outlive the merchant */
	const struct daemon_conf *daemon; /* borrowed likewise */
	struct store *st;                 /* owned; used by one job at a time */
	struct profile *profile;          /* owned; NULL for an SFTP-only merchant */
	struct merchant_shop shop;        /* borrowed from the caller, or owned when own_shop */
	bool own_shop;
	unsigned char pii_key[PII_KEY_LEN];
	char db_path[4096];
};

/* The outcome of one job, for --once, status and the logs. */
struct merchant_result {
	const char *outcome;      /* "success", "failed", "interrupted" */
	const char *error_class;  /* errclass_name(): NULL on success */
	int errnum;               /* the failure's errno where there is one (ENOSPC...), else 0 */
	int64_t run_id, pages, rows_in, rows_changed, requests;
	int64_t files_rejected;   /* an SFTP scan's CSV files refused whole */
	char message[2048];  /* names both sources when a mismatch stops a run */
};

/*
 * Open merchant m of config c: the database <state_dir>/<id>.db (created and
 * migrated), the profile, the installation's hash key.  shop: the merchant's
 * shared rate cap and token (borrowed: it must outlive the merchant), or NULL
 * for a shop of this merchant's own.  The caller owns *out (merchant_close).
 * A negative errno-style code on failure, with err naming the file and the problem:
 * -EINVAL for the profile, else the errno of the state folder, pii.key or the
 * mirror (-ENOSPC, -EROFS, -EBADMSG ...).
 */
int merchant_open(const struct config *c, const struct merchant_conf *m,
		  const struct merchant_shop *shop, struct merchant **out, char *err, size_t errlen);
/* The class of a merchant_open failure: config, storage (or transient: memory). */
enum errclass merchant_open_class(int rc);
void merchant_close(struct merchant *mr);

/* Whether this merchant syncs stream s at all ([wshop] for the API streams, [sftp] for sftp). */
bool merchant_has_stream(const struct merchant *mr, enum stream s);

/*
 * Run one job: stream s (an API stream, or STREAM_SFTP for a scan).  full
 * resets that stream's cursor first.  stop and progress may be NULL.
 * At its end, every job prunes the stream's sync_runs to [defaults]
 * keep_runs and checkpoints the mirror's -wal to nothing (store_checkpoint),
 * with one warning when a reader stops that.  Returns 0 when the job
 * succeeded; res is filled either way.
 */
int merchant_run(struct merchant *mr, enum stream s, bool full, atomic_bool *stop,
		 struct sync_progress *progress, struct merchant_result *res);

#endif
