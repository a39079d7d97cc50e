/* sftp.h - an SFTP client session (libssh2): pinned host key, ed25519 key login, list, download. */
#ifndef KLEEP_SFTP_H
#define KLEEP_SFTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SFTP_CONNECT_TIMEOUT_MS 15000 /* TCP connect, per address */
#define SFTP_IO_TIMEOUT_MS      30000 /* any blocking libssh2 call without progress */
#define SFTP_KEEPALIVE_SEC      30    /* SSH keepalive interval while the session is idle */
#define SFTP_LIST_MAX           100000 /* entries read from one folder; the rest is not listed */
#define SFTP_NAME_MAX           1024  /* longest entry name kept */

/*
 * Every function returns SFTP_OK (0) or one of these.  The class tells the
 * caller what to do: a config error or a refused host key needs a person, a
 * session error is worth a retry later, a per-file error concerns that file.
 */
enum sftp_error {
	SFTP_OK = 0,
	SFTP_ECONFIG = -1,   /* unusable settings: unreadable key or known_hosts, unknown host name */
	SFTP_ECONNECT = -2,  /* cannot reach host:port: refused, unreachable, timed out */
	SFTP_EHOSTKEY = -3,  /* the host key is unknown or differs from the pinned one: refused */
	SFTP_EAUTH = -4,     /* the server refused the key for this user */
	SFTP_ESESSION = -5,  /* the session broke: connection cut, timeout, protocol error */
	SFTP_ENOENT = -6,    /* no such file or folder */
	SFTP_EREMOTE = -7,   /* the server refused one operation (permission denied, ...) */
	SFTP_ESIZE = -8,     /* the file did not have the expected size (it is still being written) */
	SFTP_ELOCAL = -9,    /* writing the local copy failed */
	SFTP_ESTOPPED = -10, /* *stop was raised */
	SFTP_ENOMEM = -11,
};

/* "config", "connect", "hostkey", "auth", "session", "noent", ...; never NULL. */
const char *sftp_error_name(int e);

/* Where and who to connect as; every string is borrowed for the sftp_connect call only. */
struct sftp_opts {
	const char *host;
	int port;                 /* 0: 22 */
	const char *user;
	const char *key_file;     /* the ed25519 private key (OpenSSH format, no passphrase) */
	const char *known_hosts;  /* OpenSSH known_hosts holding the pinned host key */
	int connect_timeout_ms;   /* 0: SFTP_CONNECT_TIMEOUT_MS */
	int io_timeout_ms;        /* 0: SFTP_IO_TIMEOUT_MS */
	int keepalive_sec;        /* 0: SFTP_KEEPALIVE_SEC */
};

/* One SFTP session over one SSH connection.  Used by one thread at a time. */
struct sftp;

/*
 * Connect, verify the host key against opts->known_hosts (an unknown or
 * different key is refused, never learnt), log in with the private key, and
 * start SFTP.  On success *out is owned by the caller (sftp_close).  On
 * failure *out is NULL and err holds a sentence for a person naming host and
 * port (and, for a refused host key, the key's SHA256 fingerprint); it never
 * holds a secret.  The program calls libssh2_init() in main, before any
 * thread, and libssh2_exit() at exit.
 */
int sftp_connect(const struct sftp_opts *opts, struct sftp **out, char *err, size_t errlen);

/* End the session politely when it still works, and free it.  NULL is fine. */
void sftp_close(struct sftp *s);

/* Whether the session broke (every later call will fail with SFTP_ESESSION). */
bool sftp_broken(const struct sftp *s);

/* One folder entry. */
struct sftp_entry {
	char *name;      /* owned by the array (sftp_entries_free) */
	uint64_t size;
	time_t mtime;    /* 0 when the server did not say */
	bool regular;    /* a regular file (not a folder, link, device, ...) */
};

/*
 * List folder path (relative to the login folder unless it starts with '/'),
 * without "." and "..", at most SFTP_LIST_MAX entries, in the server's order.
 * On success *entries (owned by the caller: sftp_entries_free) holds *n
 * entries.  SFTP_ENOENT when the folder does not exist.
 */
int sftp_list(struct sftp *s, const char *path, struct sftp_entry **entries, size_t *n,
	      char *err, size_t errlen);
void sftp_entries_free(struct sftp_entry *entries, size_t n);

/*
 * Copy the remote file path into fd (written from its current offset), which
 * must hold exactly size bytes: more or fewer is SFTP_ESIZE (the file is still
 * being written).  on_data (may be NULL) sees every chunk as it is written, for
 * a digest.  *stop (may be NULL) is checked between chunks.  *got (may be
 * NULL) gets the bytes written.  The remote file is only read.
 */
int sftp_download(struct sftp *s, const char *path, int fd, uint64_t size, atomic_bool *stop,
		  void (*on_data)(void *arg, const void *buf, size_t n), void *arg, uint64_t *got,
		  char *err, size_t errlen);

/*
 * Send an SSH keepalive when one is due, so that a long local task between
 * two transfers does not let the server or a NAT drop the idle session.
 * SFTP_OK or SFTP_ESESSION.
 */
int sftp_keepalive(struct sftp *s);

#endif
