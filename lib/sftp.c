/* sftp.c - a libssh2 SFTP client: connect with timeouts, pin the host key, log in with a key, read.
 *
 * The session is blocking with a libssh2 timeout on every call, so a worker
 * thread never hangs on a dead server; only the TCP connect is done by hand
 * (non-blocking connect + poll), since libssh2 does not connect sockets.  The
 * host key is checked against the merchant's known_hosts before anything is
 * sent under the login: an unknown or changed key ends the connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <openssl/evp.h>

#include "sftp.h"
#include "tstamp.h"

#define SFTP_READ_CHUNK (256 * 1024) /* lets libssh2 keep several SFTP reads in flight */
#define SFTP_CLOSE_TIMEOUT_MS 2000   /* a broken session gets this long to say goodbye */

struct sftp {
	int sock;
	LIBSSH2_SESSION *ssh;
	LIBSSH2_SFTP *sftp;
	bool broken;
	int io_timeout_ms;
	char where[300]; /* "host port N", for messages */
};

const char *sftp_error_name(int e)
{
	switch (e) {
	case SFTP_OK: return "ok";
	case SFTP_ECONFIG: return "config";
	case SFTP_ECONNECT: return "connect";
	case SFTP_EHOSTKEY: return "hostkey";
	case SFTP_EAUTH: return "auth";
	case SFTP_ESESSION: return "session";
	case SFTP_ENOENT: return "noent";
	case SFTP_EREMOTE: return "remote";
	case SFTP_ESIZE: return "size";
	case SFTP_ELOCAL: return "local";
	case SFTP_ESTOPPED: return "stopped";
	case SFTP_ENOMEM: return "nomem";
	default: return "unknown";
	}
}

bool sftp_broken(const struct sftp *s)
{
	return s->broken;
}

/* Connect one address within timeout_ms; 0 or an errno value. */
static int connect_addr(const struct addrinfo *ai, int timeout_ms, int *out)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			int e = errno;
			close(fd);
			return e;
		}
		uint64_t deadline = tstamp_mono_usec() + (uint64_t)timeout_ms * 1000u;
		for (;;) {
			uint64_t now = tstamp_mono_usec();
			if (now >= deadline) {
				close(fd);
				return ETIMEDOUT;
			}
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int n = poll(&p, 1, (int)((deadline - now + 999) / 1000));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				int e = errno;
				close(fd);
				return e;
			}
			if (n > 0)
				break;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr) {
			close(fd);
			return soerr;
		}
	}
	/* libssh2 runs the socket in blocking mode with its own timeouts. */
	int fl = fcntl(fd, F_GETFL);
	int one = 1;
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return e;
	}
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	*out = fd;
	return 0;
}

static int tcp_connect(struct sftp *s, const char *host, int port, int timeout_ms, char *err,
		       size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	int rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve SFTP host %s: %s", host, gai_strerror(rc));
		return rc == EAI_AGAIN ? SFTP_ECONNECT : SFTP_ECONFIG;
	}
	int last = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		last = connect_addr(ai, timeout_ms, &s->sock);
		if (last == 0)
			break;
	}
	freeaddrinfo(res);
	if (last != 0) {
		if (last == ETIMEDOUT)
			snprintf(err, errlen, "cannot connect to %s: no answer within %d s", s->where,
				 (timeout_ms + 999) / 1000);
		else
			snprintf(err, errlen, "cannot connect to %s: %s", s->where, strerror(last));
		return SFTP_ECONNECT;
	}
	return SFTP_OK;
}

/* libssh2's last message, or a placeholder. */
static const char *ssh_msg(struct sftp *s)
{
	char *msg = NULL;
	int len = 0;
	libssh2_session_last_error(s->ssh, &msg, &len, 0);
	return msg && *msg ? msg : "unknown error";
}

static const char *fx_text(unsigned long fx)
{
	switch (fx) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH: return "no such file or folder";
	case LIBSSH2_FX_PERMISSION_DENIED: return "permission denied";
	case LIBSSH2_FX_FAILURE: return "the server reported a failure";
	case LIBSSH2_FX_NOT_A_DIRECTORY: return "not a folder";
	case LIBSSH2_FX_NO_MEDIA: return "no media";
	case LIBSSH2_FX_OP_UNSUPPORTED: return "operation not supported by the server";
	default: return "the server refused the operation";
	}
}

/*
 * Classify the error of the libssh2 call that just failed: an SFTP status
 * concerns this one operation; anything else means the session is gone.
 */
static int op_error(struct sftp *s, const char *what, const char *path, char *err, size_t errlen)
{
	int e = libssh2_session_last_errno(s->ssh);
	if (e == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		unsigned long fx = libssh2_sftp_last_error(s->sftp);
		snprintf(err, errlen, "cannot %s %s on %s: %s", what, path, s->where, fx_text(fx));
		return fx == LIBSSH2_FX_NO_SUCH_FILE || fx == LIBSSH2_FX_NO_SUCH_PATH ? SFTP_ENOENT
										      : SFTP_EREMOTE;
	}
	s->broken = true;
	libssh2_session_set_timeout(s->ssh, SFTP_CLOSE_TIMEOUT_MS);
	if (e == LIBSSH2_ERROR_TIMEOUT)
		snprintf(err, errlen, "cannot %s %s on %s: no answer within %d s; connection dropped",
			 what, path, s->where, (s->io_timeout_ms + 999) / 1000);
	else
		snprintf(err, errlen, "cannot %s %s on %s: connection lost (%s)", what, path, s->where,
			 ssh_msg(s));
	return SFTP_ESESSION;
}

struct keytype {
	int hostkey_type;  /* LIBSSH2_HOSTKEY_TYPE_* */
	int known_type;    /* LIBSSH2_KNOWNHOST_KEY_* */
	const char *name;  /* the SSH algorithm name */
};

/* In order of preference when several are pinned. */
static const struct keytype keytypes[] = {
	{ LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256" },
	{ LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa" },
};
#define N_KEYTYPES (sizeof(keytypes) / sizeof(keytypes[0]))

/*
 * Offer only the host key algorithms pinned for this host, so that a server
 * holding several keys presents the one we can check.  Returns how many were
 * offered (0: none pinned; the check below then reports the key as unknown).
 */
static int prefer_pinned(struct sftp *s, LIBSSH2_KNOWNHOSTS *kh, const char *host, int port,
			 char *names, size_t size)
{
	char bracketed[300];
	struct libssh2_knownhost *e = NULL, *prev = NULL;
	bool want[N_KEYTYPES] = { false };
	int n = 0;

	snprintf(bracketed, sizeof(bracketed), "[%s]:%d", host, port);
	while (libssh2_knownhost_get(kh, &e, prev) == 0) {
		prev = e;
		/* hashed names cannot be read back: their types count too */
		if (e->name && strcmp(e->name, host) != 0 && strcmp(e->name, bracketed) != 0)
			continue;
		for (size_t i = 0; i < N_KEYTYPES; i++)
			if ((e->typemask & LIBSSH2_KNOWNHOST_KEY_MASK) == keytypes[i].known_type)
				want[i] = true;
	}
	names[0] = '\0';
	for (size_t i = 0; i < N_KEYTYPES; i++) {
		if (!want[i])
			continue;
		size_t len = strlen(names);
		snprintf(names + len, size - len, "%s%s", n ? "," : "", keytypes[i].name);
		n++;
	}
	if (n && libssh2_session_method_pref(s->ssh, LIBSSH2_METHOD_HOSTKEY, names) != 0)
		return 0;
	return n;
}

/* "SHA256:<base64 without padding>", as ssh-keygen -l prints it. */
static void fingerprint(struct sftp *s, char *out, size_t size)
{
	const unsigned char *h =
		(const unsigned char *)libssh2_hostkey_hash(s->ssh, LIBSSH2_HOSTKEY_HASH_SHA256);
	unsigned char b64[64];
	if (!h) {
		snprintf(out, size, "SHA256:?");
		return;
	}
	int n = EVP_EncodeBlock(b64, h, 32);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, size, "SHA256:%.*s", n, (const char *)b64);
}

static int check_hostkey(struct sftp *s, LIBSSH2_KNOWNHOSTS *kh, const struct sftp_opts *o,
			 int port, char *err, size_t errlen)
{
	size_t klen = 0;
	int ktype = 0;
	const char *key = libssh2_session_hostkey(s->ssh, &klen, &ktype);
	const struct keytype *kt = NULL;
	char fp[80];

	for (size_t i = 0; i < N_KEYTYPES; i++)
		if (keytypes[i].hostkey_type == ktype)
			kt = &keytypes[i];
	fingerprint(s, fp, sizeof(fp));
	if (!key || !kt) {
		snprintf(err, errlen, "%s presented a host key of a type kleepd cannot check (%s); "
			 "refusing to connect", s->where, fp);
		return SFTP_EHOSTKEY;
	}
	struct libssh2_knownhost *known = NULL;
	int rc = libssh2_knownhost_checkp(kh, o->host, port, key, klen,
					  LIBSSH2_KNOWNHOST_TYPE_PLAIN |
						  LIBSSH2_KNOWNHOST_KEYENC_RAW | kt->known_type,
					  &known);
	switch (rc) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		return SFTP_OK;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		snprintf(err, errlen, "host key of %s does not match the key pinned in %s: the "
			 "server presented %s %s; refusing to connect (if the server's key was "
			 "changed on purpose, verify it and update that file)",
			 s->where, o->known_hosts, kt->name, fp);
		return SFTP_EHOSTKEY;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		snprintf(err, errlen, "host key of %s (%s %s) is not pinned in %s; refusing to "
			 "connect (verify the key with the server's operator, then add it to that "
			 "file)", s->where, kt->name, fp, o->known_hosts);
		return SFTP_EHOSTKEY;
	default:
		snprintf(err, errlen, "cannot check the host key of %s (%s %s) against %s: %s",
			 s->where, kt->name, fp, o->known_hosts, ssh_msg(s));
		return SFTP_EHOSTKEY;
	}
}

/* Read the pinned keys; the file must exist and parse. */
static int load_known_hosts(struct sftp *s, const char *path, LIBSSH2_KNOWNHOSTS **out, char *err,
			    size_t errlen)
{
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0) {
		snprintf(err, errlen, "cannot read the known_hosts file %s: %s",
			 path ? path : "(none set)", path ? strerror(errno) : "known_hosts is required");
		return SFTP_ECONFIG;
	}
	close(fd);
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(s->ssh);
	if (!kh) {
		snprintf(err, errlen, "out of memory");
		return SFTP_ENOMEM;
	}
	if (libssh2_knownhost_readfile(kh, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		snprintf(err, errlen, "cannot parse the known_hosts file %s: %s", path, ssh_msg(s));
		libssh2_knownhost_free(kh);
		return SFTP_ECONFIG;
	}
	*out = kh;
	return SFTP_OK;
}

static int login(struct sftp *s, const struct sftp_opts *o, char *err, size_t errlen)
{
	int fd = o->key_file ? open(o->key_file, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0) {
		snprintf(err, errlen, "cannot read the SFTP key file %s: %s",
			 o->key_file ? o->key_file : "(none set)",
			 o->key_file ? strerror(errno) : "key_file is required");
		return SFTP_ECONFIG;
	}
	close(fd);
	const char *user = o->user ? o->user : "";
	int rc = libssh2_userauth_publickey_fromfile_ex(s->ssh, user, (unsigned)strlen(user), NULL,
							o->key_file, NULL);
	if (rc == 0)
		return SFTP_OK;
	switch (rc) {
	case LIBSSH2_ERROR_FILE:
		snprintf(err, errlen, "cannot use the SFTP key file %s: %s (an unencrypted OpenSSH "
			 "ed25519 private key is expected)", o->key_file, ssh_msg(s));
		return SFTP_ECONFIG;
	case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
	case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
	case LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
		snprintf(err, errlen, "%s refused the key %s for user %s", s->where, o->key_file,
			 user);
		return SFTP_EAUTH;
	default:
		s->broken = true;
		snprintf(err, errlen, "login to %s as %s failed: %s", s->where, user, ssh_msg(s));
		return SFTP_ESESSION;
	}
}

int sftp_connect(const struct sftp_opts *o, struct sftp **out, char *err, size_t errlen)
{
	int port = o->port > 0 ? o->port : 22;
	int r;
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	char pinned[200];

	*out = NULL;
	/* libssh2_init is main's, before any thread (DESIGN.md §2). */
	if (!o->host || !*o->host) {
		snprintf(err, errlen, "no SFTP host set");
		return SFTP_ECONFIG;
	}
	struct sftp *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return SFTP_ENOMEM;
	}
	s->sock = -1;
	s->io_timeout_ms = o->io_timeout_ms > 0 ? o->io_timeout_ms : SFTP_IO_TIMEOUT_MS;
	snprintf(s->where, sizeof(s->where), "SFTP host %s port %d", o->host, port);

	r = tcp_connect(s, o->host, port,
			o->connect_timeout_ms > 0 ? o->connect_timeout_ms : SFTP_CONNECT_TIMEOUT_MS,
			err, errlen);
	if (r != SFTP_OK)
		goto fail;
	s->ssh = libssh2_session_init();
	if (!s->ssh) {
		snprintf(err, errlen, "out of memory");
		r = SFTP_ENOMEM;
		goto fail;
	}
	libssh2_session_set_blocking(s->ssh, 1);
	libssh2_session_set_timeout(s->ssh, s->io_timeout_ms);

	r = load_known_hosts(s, o->known_hosts, &kh, err, errlen);
	if (r != SFTP_OK)
		goto fail;
	int n_pinned = prefer_pinned(s, kh, o->host, port, pinned, sizeof(pinned));

	if (libssh2_session_handshake(s->ssh, s->sock) != 0) {
		int e = libssh2_session_last_errno(s->ssh);
		s->broken = true;
		if (e == LIBSSH2_ERROR_KEX_FAILURE && n_pinned) {
			snprintf(err, errlen, "%s offers none of the host key types pinned in %s (%s); "
				 "refusing to connect", s->where, o->known_hosts, pinned);
			r = SFTP_EHOSTKEY;
		} else {
			snprintf(err, errlen, "SSH handshake with %s failed: %s", s->where, ssh_msg(s));
			r = SFTP_ECONNECT;
		}
		goto fail;
	}
	r = check_hostkey(s, kh, o, port, err, errlen);
	libssh2_knownhost_free(kh);
	kh = NULL;
	if (r != SFTP_OK)
		goto fail;
	r = login(s, o, err, errlen);
	if (r != SFTP_OK)
		goto fail;
	libssh2_keepalive_config(s->ssh, 1,
				 (unsigned)(o->keepalive_sec > 0 ? o->keepalive_sec : SFTP_KEEPALIVE_SEC));
	s->sftp = libssh2_sftp_init(s->ssh);
	if (!s->sftp) {
		snprintf(err, errlen, "%s did not start SFTP for user %s: %s", s->where,
			 o->user ? o->user : "", ssh_msg(s));
		s->broken = libssh2_session_last_errno(s->ssh) != LIBSSH2_ERROR_CHANNEL_FAILURE;
		r = SFTP_ESESSION;
		goto fail;
	}
	*out = s;
	return SFTP_OK;
fail:
	if (kh)
		libssh2_knownhost_free(kh);
	sftp_close(s);
	return r;
}

void sftp_close(struct sftp *s)
{
	if (!s)
		return;
	if (s->ssh && s->broken)
		libssh2_session_set_timeout(s->ssh, SFTP_CLOSE_TIMEOUT_MS);
	if (s->sftp)
		libssh2_sftp_shutdown(s->sftp);
	if (s->ssh) {
		if (!s->broken)
			libssh2_session_disconnect(s->ssh, "kleepd scan done");
		libssh2_session_free(s->ssh);
	}
	if (s->sock >= 0)
		close(s->sock);
	free(s);
}

int sftp_keepalive(struct sftp *s)
{
	int next = 0;
	if (s->broken)
		return SFTP_ESESSION;
	if (libssh2_keepalive_send(s->ssh, &next) != 0) {
		s->broken = true;
		return SFTP_ESESSION;
	}
	return SFTP_OK;
}

void sftp_entries_free(struct sftp_entry *entries, size_t n)
{
	if (!entries)
		return;
	for (size_t i = 0; i < n; i++)
		free(entries[i].name);
	free(entries);
}

int sftp_list(struct sftp *s, const char *path, struct sftp_entry **entries, size_t *n, char *err,
	      size_t errlen)
{
	struct sftp_entry *v = NULL;
	size_t cap = 0, len = 0;
	char name[SFTP_NAME_MAX + 1];
	int r = SFTP_OK;

	*entries = NULL;
	*n = 0;
	if (s->broken) {
		snprintf(err, errlen, "cannot list %s: the connection to %s was lost", path, s->where);
		return SFTP_ESESSION;
	}
	LIBSSH2_SFTP_HANDLE *d = libssh2_sftp_opendir(s->sftp, path);
	if (!d)
		return op_error(s, "list", path, err, errlen);
	for (;;) {
		LIBSSH2_SFTP_ATTRIBUTES a;
		memset(&a, 0, sizeof(a));
		int rc = libssh2_sftp_readdir_ex(d, name, sizeof(name), NULL, 0, &a);
		if (rc == 0)
			break;
		if (rc == LIBSSH2_ERROR_BUFFER_TOO_SMALL)
			continue; /* a name longer than any file system allows: not ours */
		if (rc < 0) {
			r = op_error(s, "list", path, err, errlen);
			goto out;
		}
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (len == SFTP_LIST_MAX)
			continue; /* keep reading, so the handle closes cleanly */
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct sftp_entry *nv = realloc(v, ncap * sizeof(*v));
			if (!nv) {
				snprintf(err, errlen, "out of memory");
				r = SFTP_ENOMEM;
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		struct sftp_entry *e = &v[len];
		if (!(e->name = strndup(name, (size_t)rc))) {
			snprintf(err, errlen, "out of memory");
			r = SFTP_ENOMEM;
			goto out;
		}
		e->size = a.flags & LIBSSH2_SFTP_ATTR_SIZE ? a.filesize : 0;
		e->mtime = a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME ? (time_t)a.mtime : 0;
		e->regular = (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) &&
			     LIBSSH2_SFTP_S_ISREG(a.permissions);
		len++;
	}
out:
	libssh2_sftp_closedir(d);
	if (r != SFTP_OK) {
		sftp_entries_free(v, len);
		return r;
	}
	*entries = v;
	*n = len;
	return SFTP_OK;
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

int sftp_download(struct sftp *s, const char *path, int fd, uint64_t size, atomic_bool *stop,
		  void (*on_data)(void *arg, const void *buf, size_t n), void *arg, uint64_t *got,
		  char *err, size_t errlen)
{
	uint64_t total = 0;
	int r = SFTP_OK;
	char *buf = NULL;

	if (got)
		*got = 0;
	if (s->broken) {
		snprintf(err, errlen, "cannot read %s: the connection to %s was lost", path, s->where);
		return SFTP_ESESSION;
	}
	LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open(s->sftp, path, LIBSSH2_FXF_READ, 0);
	if (!h)
		return op_error(s, "open", path, err, errlen);
	if (!(buf = malloc(SFTP_READ_CHUNK))) {
		snprintf(err, errlen, "out of memory");
		r = SFTP_ENOMEM;
		goto out;
	}
	for (;;) {
		if (stop && atomic_load(stop)) {
			snprintf(err, errlen, "download of %s stopped", path);
			r = SFTP_ESTOPPED;
			goto out;
		}
		ssize_t n = libssh2_sftp_read(h, buf, SFTP_READ_CHUNK);
		if (n == 0)
			break;
		if (n < 0) {
			r = op_error(s, "read", path, err, errlen);
			goto out;
		}
		if (total + (uint64_t)n > size) {
			snprintf(err, errlen, "%s grew past the %llu bytes listed: still being written",
				 path, (unsigned long long)size);
			r = SFTP_ESIZE;
			goto out;
		}
		int w = write_all(fd, buf, (size_t)n);
		if (w < 0) {
			snprintf(err, errlen, "cannot write the local copy of %s: %s", path,
				 strerror(-w));
			r = SFTP_ELOCAL;
			goto out;
		}
		if (on_data)
			on_data(arg, buf, (size_t)n);
		total += (uint64_t)n;
		if (got)
			*got = total;
	}
	if (total != size) {
		snprintf(err, errlen, "%s has %llu bytes, %llu were listed: still being written",
			 path, (unsigned long long)total, (unsigned long long)size);
		r = SFTP_ESIZE;
	}
out:
	free(buf);
	libssh2_sftp_close_handle(h);
	return r;
}
