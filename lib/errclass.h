/* errclass.h - the one vocabulary of failure classes that runs, status and the journal show. */
#ifndef KLEEP_ERRCLASS_H
#define KLEEP_ERRCLASS_H

/*
 * What kind of failure ended a run (DESIGN.md §3).  The name is what
 * sync_state.error_class, sync_runs.error_class, `kleepctl status` and the
 * journal show; the errno of the failure, where there is one, is kept beside
 * it by whoever holds the class (merchant_result.errnum, sync_result.errnum).
 */
enum errclass {
	ERRC_NONE = 0,
	ERRC_CONFIG,       /* a setting is wrong: URL, password file, profile, SFTP folder */
	ERRC_AUTH,         /* the shop (or SFTP server) refused the credentials */
	ERRC_UNAUTHORIZED, /* 403, or 401 again with a fresh token: the endpoint is not allowed */
	ERRC_TRANSIENT,    /* 429, 5xx, timeouts, resets, after every retry; out of memory */
	ERRC_BAD_REPLY,    /* a reply that is not what the profile says, after every retry */
	ERRC_STORAGE,      /* the mirror cannot be written or read: disk full, read-only, corrupt */
	ERRC_STOPPED,      /* the stop flag was raised */
};

/* "config", "auth", ... ; NULL for ERRC_NONE and for a value out of range. */
const char *errclass_name(enum errclass c);

#endif
