/* config.h - kleepd.conf and merchants.d/NAME.conf, parsed and validated. */
#ifndef KLEEP_CONFIG_H
#define KLEEP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "stream.h"

struct tz;

/* The Makefile bakes SYSCONFDIR/kleep in, so an install under another prefix agrees. */
#ifndef KLEEP_SYSCONFDIR
#define KLEEP_SYSCONFDIR "/etc/kleep"
#endif
#define CONFIG_DEFAULT_PATH KLEEP_SYSCONFDIR "/kleepd.conf"
#define CONFIG_MERCHANT_ID_MAX 64
#define CONFIG_LANG_MAX 14 /* DOMAIN.md §2 lists fourteen languages */
#define CONFIG_FIT_CLASSES 4 /* [fit] keys: too_small, too_large, other_fit, not_fit (fit.h) */

enum environment { ENV_PRODUCTION, ENV_PREPROD };

/* A "profile.KEY = VALUE" line in [wshop]: one profile key overridden. */
struct profile_override {
	char *key;   /* dotted path into the profile JSON, e.g. "auth.path" */
	char *value; /* JSON text if it parses as JSON, else taken as a string */
	char *file;
	int line;
};

struct wshop_conf {
	char *api_url;
	char *username;      /* the e-mail sent to /authenticate */
	char *password_file; /* absolute, resolved at parse time; the password is read at use */
	char *profile;       /* profile name or path; "default" when unset */
	double rate_limit;   /* requests per second, default 2 */
	uint64_t poll_usec[STREAM_API_COUNT]; /* per stream; from [defaults] unless overridden */
	struct profile_override *overrides;
	size_t n_overrides;
};

struct sftp_conf {
	char *host;
	int port;            /* default 22 */
	char *user;
	char *key_file;      /* absolute; relative resolved like password_file */
	char *known_hosts;   /* absolute; relative resolved against the main file's folder */
	char *root;          /* relative to the SFTP login folder unless absolute */
	uint64_t poll_usec;  /* default: [defaults] poll_sftp, else 1h */
	uint64_t settle_usec;/* default 5 min */
	double max_reject_ratio; /* default 0.05 */
};

struct merchant_conf {
	char id[CONFIG_MERCHANT_ID_MAX + 1];
	char *file;          /* the merchants.d file it came from */
	enum environment environment;
	char languages[CONFIG_LANG_MAX][3];
	int n_languages;     /* at least 1; default "fr" */
	char *timezone;      /* IANA name, default Europe/Paris */
	const struct tz *tz; /* its table, borrowed from struct config's zones: read-only,
			      * shared by every worker without a lock */
	char *product_id_field;       /* default "id" */
	char *parent_reference_field; /* default "parent_reference" */
	bool has_wshop;
	struct wshop_conf wshop;
	bool has_sftp;
	struct sftp_conf sftp;
	/* [fit]: per enum fit_class, the reason ids or codes the merchant puts in that
	 * class ("R07, 2"), or NULL; no item is in two lists */
	char *fit[CONFIG_FIT_CLASSES];
};

struct daemon_conf {
	char *state_dir;     /* default /var/lib/kleep */
	char *runtime_dir;   /* default /run/kleep */
	int workers;         /* 1..64, default 4 */
	int log_level;       /* syslog priority, default LOG_INFO */
	char *profile_dir;   /* where named profiles live, default KLEEP_DATADIR "/profiles" */
	char *admin_group;   /* [control] admin_group: may change things, default kleep-admin */
	uint64_t poll_usec[STREAM_COUNT]; /* [defaults] poll_<stream> */
	uint64_t lookback_usec;           /* [defaults] lookback, default 10m */
	uint64_t full_every_usec;         /* [defaults] full_every: re-read incremental streams
					     whole this often (deletions, drift); 0 never; default 1d */
	int keep_runs;       /* [defaults] keep_runs: sync_runs rows kept per stream, default 1000 */
	bool core_dumps;     /* [daemon] core_dumps: stay dumpable (cores hold secrets), default no */
};

struct config {
	char *path;          /* the main file */
	char *dir;           /* its folder, where merchants.d lives */
	struct daemon_conf daemon;
	struct merchant_conf *merchants;
	size_t n_merchants;
	struct tz *zones;    /* each merchant zone's table, loaded once at config load
			      * (a reload loads new ones); freed with the config */
};

/*
 * Parse the main file at path and every merchants.d/NAME.conf beside it, in name
 * order.  Relative paths in the files are made absolute: password_file and
 * key_file against $CREDENTIALS_DIRECTORY when it is set, everything else
 * (state_dir, runtime_dir, profile_dir, known_hosts, and the two secrets
 * without it) against the main file's folder.  On success returns 0 and *out owns a config the caller frees with
 * config_free().  On failure returns -EINVAL (or -errno when the main file
 * cannot be read), *out is NULL, and every error found has been written to
 * errs as "FILE:LINE: message\n" (LINE 0 when no line applies).  Parsing goes
 * on after an error, so one run reports every problem.
 */
int config_load(const char *path, struct config **out, FILE *errs);
void config_free(struct config *c);

/* The merchant with this id, or NULL. */
const struct merchant_conf *config_merchant(const struct config *c, const char *id);

/* One line for --check-config, never a secret, e.g. "acme-fr: production,
 * languages fr,en, tz Europe/Paris, product_id=id, wshop https://shop.example/api/v1
 * as api@acme.example (profile default, 2 req/s), sftp kleep-acme@sftp.example:22
 * root shops/acme/prod, fit too_small=[R07, 2]" (wshop, sftp or fit part absent when the
 * section is). */
void config_merchant_summary(const struct merchant_conf *m, FILE *f);

/* "30s", "15m", "6h", "2d", or a bare number of seconds; 0 or -EINVAL. */
int config_parse_duration(const char *s, uint64_t *usec);

/* Merchant ids match [a-z0-9][a-z0-9_-]{0,63}. */
bool config_merchant_id_valid(const char *id);

/* One of DOMAIN.md §2's language codes. */
bool config_language_valid(const char *lang);

#endif
