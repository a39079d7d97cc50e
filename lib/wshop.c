/* wshop.c - the WSHOP HTTP client: authentication, one page of a stream, retries, rate cap. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "jsonr.h"
#include "wshop.h"

#define WSHOP_BODY_MAX     (64u << 20) /* bytes of one reply body; more is a bad reply */
#define WSHOP_PASSWORD_MAX 4096        /* bytes of a password file */
#define WSHOP_TOKEN_MAX    16384       /* bytes of a JWT we accept */
#define WSHOP_LIMIT_MAX    500         /* DOMAIN.md §1: never ask for more */
#define WSHOP_RENEW_EARLY_S 60         /* renew this long before exp ... */
#define WSHOP_SHORT_TOKEN_S 120        /* ... unless the token lives this long or less */
#define WSHOP_SLEEP_SLICE_MS 100       /* longest sleep between two looks at *stop */
#define WSHOP_MSG_MAX      200         /* bytes of WSHOP's error.message we repeat */
#define WSHOP_ERROR_MAX    512         /* bytes of last_error */

/* ---- small helpers ------------------------------------------------------ */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stop_raised(atomic_bool *stop)
{
	return stop && atomic_load(stop);
}

/*
 * Sleep until the monotonic time deadline_ms, in slices, so that a raised
 * stop flag ends the wait within WSHOP_SLEEP_SLICE_MS.  False when stopped.
 */
static bool sleep_until(int64_t deadline_ms, atomic_bool *stop)
{
	for (;;) {
		if (stop_raised(stop))
			return false;
		int64_t left = deadline_ms - mono_ms();
		if (left <= 0)
			return true;
		if (left > WSHOP_SLEEP_SLICE_MS)
			left = WSHOP_SLEEP_SLICE_MS;
		struct timespec ts = { left / 1000, (left % 1000) * 1000000 };
		nanosleep(&ts, NULL);
	}
}

/* ---- rate cap ----------------------------------------------------------- */

/*
 * Spacing rather than a bucket with burst: every request takes the next free
 * slot, one interval after the previous one, so N requests at R/s take at
 * least (N-1)/R seconds whichever thread sends them.
 */
struct wshop_ratelimit {
	pthread_mutex_t lock;
	int64_t interval_us;   /* 0: unlimited */
	int64_t next_us;       /* monotonic time of the next free slot */
};

struct wshop_ratelimit *wshop_ratelimit_new(double per_second)
{
	struct wshop_ratelimit *rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	pthread_mutex_init(&rl->lock, NULL);
	/* !(x > 0) also catches NaN. */
	rl->interval_us = !(per_second > 0) ? 0 : per_second < 1e-6 ? (int64_t)1e12
				      : (int64_t)(1e6 / per_second + 0.5);
	return rl;
}

void wshop_ratelimit_free(struct wshop_ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

bool wshop_ratelimit_wait(struct wshop_ratelimit *rl, atomic_bool *stop)
{
	if (!rl || rl->interval_us == 0)
		return !stop_raised(stop);

	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;

	pthread_mutex_lock(&rl->lock);
	int64_t slot = rl->next_us > now_us ? rl->next_us : now_us;
	rl->next_us = slot + rl->interval_us;
	pthread_mutex_unlock(&rl->lock);

	/* Round up so the wait is never shorter than the slot asks. */
	return sleep_until((slot + 999) / 1000, stop);
}

/* ---- pure helpers exposed for tests ------------------------------------- */

long wshop_parse_retry_after(const char *v, time_t now)
{
	char buf[128];
	size_t n;

	if (!v)
		return -1;
	while (isspace((unsigned char)*v))
		v++;
	n = strlen(v);
	while (n > 0 && isspace((unsigned char)v[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, v, n);
	buf[n] = 0;

	if (isdigit((unsigned char)buf[0])) {
		char *end;
		errno = 0;
		unsigned long long s = strtoull(buf, &end, 10);
		if (*end == 0)
			return errno == ERANGE || s > LONG_MAX ? LONG_MAX : (long)s;
		/* "1 Jan ..." is not an HTTP-date form curl_getdate() should guess at
		 * from a leading digit alone; fall through and let it try. */
	}
	time_t t = curl_getdate(buf, NULL);
	if (t == (time_t)-1)
		return -1;
	return t <= now ? 0 : (long)(t - now);
}

/* Decode base64url (no padding needed) into out; -1 on a bad character. */
static ssize_t b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)in[i], v;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '-' || c == '+')
			v = 62;
		else if (c == '_' || c == '/')
			v = 63;
		else if (c == '=')
			break;
		else
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return (ssize_t)o;
}

/* The integer claim name of a JWT's payload, or 0 when absent or not a JWT. */
static int64_t jwt_claim(const char *token, const char *name)
{
	unsigned char payload[WSHOP_TOKEN_MAX];
	const char *p1, *p2;
	int64_t v = 0;

	if (!token || !(p1 = strchr(token, '.')) || !(p2 = strchr(p1 + 1, '.')))
		return 0;
	ssize_t n = b64url_decode(p1 + 1, (size_t)(p2 - p1 - 1), payload, sizeof(payload));
	if (n <= 0)
		return 0;
	json_t *claims = json_loadb((const char *)payload, (size_t)n, 0, NULL);
	json_t *c = json_object_get(claims, name);
	if (json_is_integer(c))
		v = json_integer_value(c);
	else if (json_is_real(c))
		v = (int64_t)json_real_value(c);
	json_decref(claims);
	return v > 0 ? v : 0;
}

int64_t wshop_jwt_exp(const char *token)
{
	return jwt_claim(token, "exp");
}

char *wshop_join_url(const char *api_url, const char *base_path, const char *path)
{
	size_t n = strlen(api_url), nb, np;
	char *url;

	while (n > 0 && api_url[n - 1] == '/')
		n--;
	if (!base_path)
		base_path = "";
	while (*base_path == '/' && base_path[1] == '/')
		base_path++;
	nb = strlen(base_path);
	while (nb > 0 && base_path[nb - 1] == '/')
		nb--;
	/* base_path starts with '/', so a suffix match falls on a segment boundary. */
	if (nb > 0 && n >= nb && strncmp(api_url + n - nb, base_path, nb) == 0)
		nb = 0;
	if (!path)
		path = "";
	while (*path == '/')
		path++;
	np = strlen(path);
	bool base_slash = nb > 0 && base_path[0] != '/';
	if (asprintf(&url, "%.*s%s%.*s%s%s", (int)n, api_url, base_slash ? "/" : "", (int)nb,
		     base_path, np ? "/" : "", path) < 0)
		return NULL;
	return url;
}

/* ---- the client --------------------------------------------------------- */

struct buf {
	char *data;
	size_t len, cap;
	bool too_big;
};

struct wshop {
	char *api_url, *username, *password_file;
	const struct profile *profile;
	struct wshop_ratelimit *ratelimit;
	atomic_bool *stop;
	struct log_ctx log;

	CURL *curl;
	char curl_err[CURL_ERROR_SIZE];
	struct buf body;
	char retry_after[128];  /* the last reply's Retry-After header, "" when none */

	char *token;            /* NULL until authenticated; zeroed before free */
	time_t renew_at;        /* wall clock; 0: keep until a 401 */
	uint64_t rng;           /* jitter */

	char last_error[WSHOP_ERROR_MAX];
	char last_endpoint[256];
	long last_status;
	struct wshop_stats stats;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is not thread-safe on every libcurl; run it exactly once. */
static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;

	if (n > WSHOP_BODY_MAX - b->len) {
		b->too_big = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = 0;
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct wshop *w = ud;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";

	/* A new status line starts a new reply (after a 100 Continue, say). */
	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
		w->retry_after[0] = 0;
	else if (n > sizeof(name) - 1 && strncasecmp(ptr, name, sizeof(name) - 1) == 0) {
		size_t vn = n - (sizeof(name) - 1);
		if (vn >= sizeof(w->retry_after))
			vn = sizeof(w->retry_after) - 1;
		memcpy(w->retry_after, ptr + sizeof(name) - 1, vn);
		w->retry_after[vn] = 0;
	}
	return n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	/* Non-zero aborts the transfer with CURLE_ABORTED_BY_CALLBACK. */
	return stop_raised(((struct wshop *)ud)->stop);
}

struct wshop *wshop_new(const struct wshop_opts *o)
{
	struct wshop *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		goto fail;
	w->api_url = strdup(o->api_url ? o->api_url : "");
	w->username = strdup(o->username ? o->username : "");
	w->password_file = strdup(o->password_file ? o->password_file : "");
	w->curl = curl_easy_init();
	if (!w->api_url || !w->username || !w->password_file || !w->curl)
		goto fail;
	w->profile = o->profile;
	w->ratelimit = o->ratelimit;
	w->stop = o->stop;
	w->log = o->log;
	w->rng = (uint64_t)mono_ms() ^ (uint64_t)(uintptr_t)w ^ ((uint64_t)getpid() << 32);
	if (w->rng == 0)
		w->rng = 0x9e3779b97f4a7c15ull;

	CURL *c = w->curl;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, w->curl_err);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, w->profile->connect_timeout_s);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, w->profile->request_timeout_s);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &w->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, w);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "kleepd/" KLEEP_VERSION);
	/* TLS peer and host verification stay at curl's default: on. */
	return w;
fail:
	wshop_free(w);
	return NULL;
}

static void drop_token(struct wshop *w)
{
	if (w->token) {
		explicit_bzero(w->token, strlen(w->token));
		free(w->token);
		w->token = NULL;
	}
	w->renew_at = 0;
}

void wshop_free(struct wshop *w)
{
	if (!w)
		return;
	drop_token(w);
	if (w->curl)
		curl_easy_cleanup(w->curl);
	free(w->body.data);
	free(w->api_url);
	free(w->username);
	free(w->password_file);
	free(w);
}

const char *wshop_last_error(const struct wshop *w)
{
	return w->last_error;
}

long wshop_last_http_status(const struct wshop *w)
{
	return w->last_status;
}

const char *wshop_last_endpoint(const struct wshop *w)
{
	return w->last_endpoint;
}

const struct wshop_stats *wshop_stats(const struct wshop *w)
{
	return &w->stats;
}

__attribute__((format(printf, 2, 3)))
static void set_error(struct wshop *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->last_error, sizeof(w->last_error), fmt, ap);
	va_end(ap);
}

/*
 * Read the password file into buf (one trailing newline stripped).  The
 * caller zeroes buf after use.  Errors are for a person and never quote the
 * file's content.
 */
static enum errclass read_password(struct wshop *w, char *buf, size_t cap)
{
	/* Never block on what the file became since --check-config: a FIFO
	 * would hang this worker and shutdown with it. */
	int fd = open(w->password_file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	struct stat sb;
	if (fd < 0) {
		set_error(w, "cannot read the password file %s: %s", w->password_file,
			  errno == ELOOP ? "it is a symbolic link; name the file itself" : strerror(errno));
		return ERRC_CONFIG;
	}
	if (fstat(fd, &sb) < 0)
		sb.st_mode = 0;
	if (!S_ISREG(sb.st_mode) || sb.st_size >= (off_t)cap - 1) {
		set_error(w, "the password file %s is %s", w->password_file,
			  !S_ISREG(sb.st_mode) ? "not a regular file" : "too large for a password");
		close(fd);
		return ERRC_CONFIG;
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			set_error(w, "cannot read the password file %s: %s", w->password_file,
				  strerror(errno));
			close(fd);
			return ERRC_CONFIG;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap - 1) {
			close(fd);
			set_error(w, "the password file %s is larger than %zu bytes", w->password_file,
				  cap - 2);
			return ERRC_CONFIG;
		}
	}
	close(fd);
	buf[len] = 0;
	if (len > 0 && buf[len - 1] == '\n') {
		buf[--len] = 0;
		if (len > 0 && buf[len - 1] == '\r')
			buf[--len] = 0;
	}
	if (len == 0 || strlen(buf) != len) {
		set_error(w, "the password file %s is empty or holds a NUL byte", w->password_file);
		return ERRC_CONFIG;
	}
	return ERRC_NONE;
}

/* ---- one HTTP exchange -------------------------------------------------- */

/* What one attempt came to, before the retry policy looks at it. */
enum outcome {
	OUT_OK,
	OUT_RETRY,        /* transient: network, 429, 5xx */
	OUT_RETRY_BAD,    /* retried, but bad_reply when it gives up: 2xx not JSON / success not true */
	OUT_401,
	OUT_403,
	OUT_CONFIG,       /* other 4xx, 3xx, a URL curl refuses, TLS verification */
	OUT_BAD,          /* a reply no retry can fix: too big, records not where the profile says */
	OUT_STOPPED,
};

struct attempt {
	enum outcome out;
	long status;        /* HTTP status, 0 when none */
	json_t *reply;      /* the parsed reply on OUT_OK (owned) */
	char why[256];      /* short, for a person: "HTTP 503", "timeout", "body is not JSON" */
	char msg[WSHOP_MSG_MAX + 1]; /* WSHOP's error.message, sanitised; "" when none */
	bool success_false; /* a JSON reply whose success field is false */
	long retry_after_s; /* -1 when none */
};

/* Copy WSHOP's error message from reply into a->msg, keeping it on one line. */
static void take_message(const struct wshop *w, json_t *reply, struct attempt *a)
{
	const char *m = json_string_value(profile_path_get(reply, w->profile->error_message_path));
	if (!m && json_is_string(json_object_get(reply, "error")))
		m = json_string_value(json_object_get(reply, "error"));
	if (!m)
		m = json_string_value(json_object_get(reply, "message"));
	if (!m)
		return;
	size_t i;
	for (i = 0; m[i] && i < WSHOP_MSG_MAX; i++)
		a->msg[i] = (unsigned char)m[i] < 0x20 || m[i] == 0x7f ? ' ' : m[i];
	/* Cut at a character, not inside one: the text goes into JSON replies. */
	if (m[i])
		while (i > 0 && ((unsigned char)m[i] & 0xC0) == 0x80)
			i--;
	a->msg[i] = 0;
}

static enum outcome curl_outcome(CURLcode rc, const struct buf *b)
{
	switch (rc) {
	case CURLE_ABORTED_BY_CALLBACK:
		return OUT_STOPPED;
	case CURLE_WRITE_ERROR:
		return b->too_big ? OUT_BAD : OUT_RETRY;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_LOGIN_DENIED:
		/* The operator must change a setting; retrying cannot help. */
		return OUT_CONFIG;
	default:
		/* Timeouts, refused or reset connections, a body cut short, DNS. */
		return OUT_RETRY;
	}
}

/* Append "k=v" to the query string q, URL-escaped; false on out-of-memory. */
static bool query_add(CURL *c, char **q, const char *k, const char *v)
{
	char *ek = curl_easy_escape(c, k, 0), *ev = curl_easy_escape(c, v, 0), *nq = NULL;
	bool ok = false;
	if (ek && ev && asprintf(&nq, "%s%s%s=%s", *q ? *q : "", *q ? "&" : "", ek, ev) >= 0) {
		free(*q);
		*q = nq;
		ok = true;
	}
	curl_free(ek);
	curl_free(ev);
	return ok;
}

/*
 * Send params (a JSON object of strings and integers) to path as one HTTP
 * request and sort what came back into a.  secret marks params holding the
 * password: every copy of them is zeroed after the transfer.
 */
static void attempt_once(struct wshop *w, const char *path, json_t *params, bool with_token,
			 bool secret, struct attempt *a)
{
	const struct profile *p = w->profile;
	CURL *c = w->curl;
	struct curl_slist *hdrs = NULL;
	char *url = NULL, *body = NULL, *query = NULL, *full = NULL, *auth_hdr = NULL;
	bool is_get = strcmp(p->method, "GET") == 0;

	memset(a, 0, sizeof(*a));
	a->retry_after_s = -1;
	if (!wshop_ratelimit_wait(w->ratelimit, w->stop)) {
		a->out = OUT_STOPPED;
		goto out;
	}

	url = wshop_join_url(w->api_url, p->base_path, path);
	if (!url)
		goto oom;
	if (is_get) {
		const char *k;
		json_t *v;
		json_object_foreach(params, k, v) {
			char num[32];
			const char *s = json_string_value(v);
			if (!s) {
				snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
				s = num;
			}
			if (!query_add(c, &query, k, s))
				goto oom;
		}
		if (asprintf(&full, "%s%s%s", url, query ? "?" : "", query ? query : "") < 0) {
			full = NULL;
			goto oom;
		}
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		body = json_dumps(params, JSON_COMPACT);
		if (!body)
			goto oom;
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		if (!hdrs)
			goto oom;
	}
	struct curl_slist *h = curl_slist_append(hdrs, "Accept: application/json");
	if (!h)
		goto oom;
	hdrs = h;
	/* An empty Expect: stops curl waiting for 100 Continue on larger bodies. */
	if (!(h = curl_slist_append(hdrs, "Expect:")))
		goto oom;
	hdrs = h;
	if (with_token) {
		if (asprintf(&auth_hdr, "Authorization: Bearer %s", w->token) < 0) {
			auth_hdr = NULL;
			goto oom;
		}
		if (!(h = curl_slist_append(hdrs, auth_hdr)))
			goto oom;
		hdrs = h;
	}
	curl_easy_setopt(c, CURLOPT_URL, full ? full : url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

	w->body.len = 0;
	w->body.too_big = false;
	if (w->body.data)
		w->body.data[0] = 0;
	w->retry_after[0] = 0;
	w->curl_err[0] = 0;
	w->stats.requests++;

	CURLcode rc = curl_easy_perform(c);

	w->stats.bytes += (int64_t)w->body.len;
	curl_off_t wire = 0;
	if (curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &wire) == CURLE_OK)
		w->stats.wire_bytes += (int64_t)wire;
	long conns = 0;
	if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK)
		w->stats.connects += conns;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	if (a->status)
		w->last_status = a->status;
	/* The handle keeps option pointers: clear those we are about to free. */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);

	if (rc != CURLE_OK) {
		a->out = curl_outcome(rc, &w->body);
		if (a->out == OUT_BAD)
			snprintf(a->why, sizeof(a->why), "reply larger than %u MiB", WSHOP_BODY_MAX >> 20);
		else
			snprintf(a->why, sizeof(a->why), "%s", w->curl_err[0] ? w->curl_err
							      : curl_easy_strerror(rc));
		goto out;
	}

	json_error_t jerr;
	json_t *reply = w->body.len ? jsonr_loadb(w->body.data, w->body.len, &jerr) : NULL;
	if (reply && !json_is_object(reply)) {
		json_decref(reply);
		reply = NULL;
	}
	if (reply)
		take_message(w, reply, a);
	a->retry_after_s = wshop_parse_retry_after(w->retry_after, time(NULL));

	long st = a->status;
	if (st >= 200 && st < 300) {
		json_t *ok = reply ? profile_path_get(reply, p->success_field) : NULL;
		if (!reply) {
			a->out = OUT_RETRY_BAD;
			snprintf(a->why, sizeof(a->why), "HTTP %ld but the reply is not a JSON object", st);
		} else if (!json_is_true(ok)) {
			a->out = OUT_RETRY_BAD;
			a->success_false = json_is_false(ok);
			snprintf(a->why, sizeof(a->why), "HTTP %ld but '%s' is %s", st, p->success_field,
				 json_is_false(ok) ? "false" : "missing or not a boolean");
		} else {
			a->out = OUT_OK;
			a->reply = reply;
			reply = NULL;
		}
	} else {
		snprintf(a->why, sizeof(a->why), "HTTP %ld", st);
		if (st == 401)
			a->out = OUT_401;
		else if (st == 403)
			a->out = OUT_403;
		else if (st == 408 || st == 425 || st == 429 || st >= 500)
			a->out = OUT_RETRY;
		else {
			a->out = OUT_CONFIG;
			char *loc = NULL;
			if (st >= 300 && st < 400 &&
			    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
				snprintf(a->why, sizeof(a->why), "HTTP %ld, redirected to %.160s", st, loc);
		}
		/* DESIGN.md §3: Retry-After counts on 429 and 503 only. */
		if (st != 429 && st != 503)
			a->retry_after_s = -1;
	}
	json_decref(reply);
	goto out;
oom:
	a->out = OUT_RETRY;
	snprintf(a->why, sizeof(a->why), "out of memory");
out:
	if (secret && body)
		explicit_bzero(body, strlen(body));
	if (secret && full)
		explicit_bzero(full, strlen(full));
	if (secret && query)
		explicit_bzero(query, strlen(query));
	if (auth_hdr)
		explicit_bzero(auth_hdr, strlen(auth_hdr));
	/* The reply to authenticate holds the token; do not leave it in the buffer. */
	if (secret && w->body.data)
		explicit_bzero(w->body.data, w->body.len);
	curl_slist_free_all(hdrs);
	free(auth_hdr);
	free(body);
	free(query);
	free(full);
	free(url);
}

/* "endpoint /orders/get: HTTP 503 (WSHOP: maintenance)" into buf. */
static void describe(const char *path, const struct attempt *a, char *buf, size_t size)
{
	snprintf(buf, size, "endpoint %s: %s%s%s%s", path, a->why, a->msg[0] ? " (WSHOP: " : "",
		 a->msg, a->msg[0] ? ")" : "");
}

/* Full or equal jitter: the delay before retry number `attempt` (1-based), in ms. */
static int64_t backoff_ms(struct wshop *w, int attempt)
{
	const struct profile *p = w->profile;
	int64_t d = p->retry_base_ms > 0 ? p->retry_base_ms : 1;
	for (int i = 1; i < attempt && d < p->retry_cap_ms; i++)
		d *= 2;
	if (d > p->retry_cap_ms)
		d = p->retry_cap_ms;
	/* xorshift64: jitter needs no quality, only no lock and no shared state. */
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	/* Equal jitter: at least half the backoff, so a retry storm still spreads out. */
	return d / 2 + (int64_t)(w->rng % (uint64_t)(d / 2 + 1));
}

static enum errclass authenticate(struct wshop *w);

/*
 * One request with the retry policy of DESIGN.md §3.  is_auth: this is the
 * authenticate call (no token; 401/403/success:false mean bad credentials).
 * On ERRC_NONE *reply is the parsed reply (owned by the caller).
 */
static enum errclass request(struct wshop *w, const char *path, json_t *params, bool is_auth,
				json_t **reply)
{
	const struct profile *p = w->profile;
	int attempts = p->retry_attempts > 0 ? p->retry_attempts : 1;
	bool reauthed = false;
	struct attempt a;
	char what[WSHOP_ERROR_MAX];

	*reply = NULL;
	snprintf(w->last_endpoint, sizeof(w->last_endpoint), "%s", path);
	for (int n = 1;; n++) {
		if (stop_raised(w->stop))
			goto stopped;
		if (!is_auth && (!w->token || (w->renew_at && time(NULL) >= w->renew_at))) {
			enum errclass e = authenticate(w);
			if (e != ERRC_NONE)
				return e;
			snprintf(w->last_endpoint, sizeof(w->last_endpoint), "%s", path);
		}
		attempt_once(w, path, params, !is_auth, is_auth, &a);
		describe(path, &a, what, sizeof(what));

		switch (a.out) {
		case OUT_OK:
			*reply = a.reply;
			return ERRC_NONE;
		case OUT_STOPPED:
			goto stopped;
		case OUT_CONFIG:
			set_error(w, "%s; check the merchant's API URL and profile", what);
			return ERRC_CONFIG;
		case OUT_BAD:
			set_error(w, "%s", what);
			return ERRC_BAD_REPLY;
		case OUT_401:
		case OUT_403:
			if (is_auth) {
				set_error(w, "authentication refused for user %s at %s (%s%s%s)", w->username,
					  path, a.why, a.msg[0] ? ": " : "", a.msg);
				return ERRC_AUTH;
			}
			if (a.out == OUT_401 && !reauthed) {
				/* The token may have been revoked or expired early: one fresh one. */
				reauthed = true;
				log_msg(LOG_NOTICE, &w->log, NULL, "%s; authenticating again", what);
				drop_token(w);
				n--;
				continue;
			}
			set_error(w, "endpoint %s is not authorized for this API user (HTTP %ld%s%s)", path,
				  a.status, a.msg[0] ? ": " : "", a.msg);
			return ERRC_UNAUTHORIZED;
		case OUT_RETRY_BAD:
			if (is_auth && a.success_false) {
				/* WSHOP answers bad credentials with success:false. */
				set_error(w, "authentication refused for user %s at %s (%s%s%s)", w->username,
					  path, a.why, a.msg[0] ? ": " : "", a.msg);
				return ERRC_AUTH;
			}
			/* fallthrough */
		case OUT_RETRY:
			break;
		}

		enum errclass give_up = a.out == OUT_RETRY_BAD ? ERRC_BAD_REPLY : ERRC_TRANSIENT;
		if (n >= attempts) {
			set_error(w, "%s; gave up after %d attempts", what, n);
			return give_up;
		}
		if (a.retry_after_s > p->retry_after_max_s) {
			set_error(w, "%s; the server asks to retry after %ld s, more than %ld s", what,
				  a.retry_after_s, p->retry_after_max_s);
			return ERRC_TRANSIENT;
		}
		int64_t delay = backoff_ms(w, n);
		if (a.retry_after_s >= 0 && delay < (int64_t)a.retry_after_s * 1000)
			delay = (int64_t)a.retry_after_s * 1000;
		set_error(w, "%s", what);
		log_msg(LOG_WARNING, &w->log, NULL, "%s: %s, attempt %d of %d, retrying in %" PRId64 " ms",
			what, errclass_name(give_up), n, attempts,
			delay);
		if (!sleep_until(mono_ms() + delay, w->stop))
			goto stopped;
	}
stopped:
	set_error(w, "endpoint %s: stopped", path);
	return ERRC_STOPPED;
}

/*
 * When to renew a token received now.  Its lifetime is exp - iat when the
 * token says when it was issued, so that a shop clock off from ours neither
 * makes us renew on every request nor keep a token the shop has expired;
 * exp - now otherwise.  0: no usable lifetime, keep it until a 401.
 */
static time_t renew_time(const char *token, time_t now)
{
	int64_t exp = jwt_claim(token, "exp"), iat = jwt_claim(token, "iat");
	if (exp <= 0)
		return 0;
	int64_t life = iat > 0 && iat < exp ? exp - iat : exp - (int64_t)now;
	if (life <= 0)
		return 0;
	if (life <= WSHOP_SHORT_TOKEN_S)
		return now + (time_t)(life / 2);
	return now + (time_t)(life - WSHOP_RENEW_EARLY_S);
}

static enum errclass authenticate(struct wshop *w)
{
	const struct profile *p = w->profile;
	char pw[WSHOP_PASSWORD_MAX];
	json_t *params = NULL, *reply = NULL, *pwj = NULL, *tp;
	const char *tok = NULL;
	enum errclass e;
	size_t i;

	drop_token(w);
	e = read_password(w, pw, sizeof(pw));
	if (e != ERRC_NONE)
		goto out;
	params = json_object();
	pwj = json_string(pw);
	if (!params || !pwj || json_object_set_new(params, p->auth_user_param, json_string(w->username)) ||
	    json_object_set(params, p->auth_password_param, pwj)) {
		set_error(w, "out of memory");
		e = ERRC_TRANSIENT;
		goto out;
	}
	e = request(w, p->auth_path, params, true, &reply);
	if (e != ERRC_NONE)
		goto out;

	json_array_foreach(p->token_paths, i, tp) {
		const char *path = json_string_value(tp);
		if (path && (tok = json_string_value(profile_path_get(reply, path))) && *tok)
			break;
		tok = NULL;
	}
	if (!tok || strlen(tok) >= WSHOP_TOKEN_MAX) {
		set_error(w, "endpoint %s: the reply holds no token at any of the profile's token paths",
			  p->auth_path);
		e = ERRC_BAD_REPLY;
		goto out;
	}
	w->token = strdup(tok);
	if (!w->token) {
		set_error(w, "out of memory");
		e = ERRC_TRANSIENT;
		goto out;
	}
	w->renew_at = renew_time(w->token, time(NULL));
	log_msg(LOG_DEBUG, &w->log, NULL, "authenticated at %s%s", p->auth_path,
		w->renew_at ? "" : " (token without exp: kept until a 401)");
out:
	explicit_bzero(pw, sizeof(pw));
	/* jansson frees strings without zeroing: wipe its copy of the password too. */
	if (pwj)
		explicit_bzero((char *)json_string_value(pwj), json_string_length(pwj));
	if (reply) {
		/* Likewise the token inside the reply. */
		json_array_foreach(p->token_paths, i, tp) {
			json_t *t = profile_path_get(reply, json_string_value(tp) ? json_string_value(tp) : "");
			if (json_is_string(t))
				explicit_bzero((char *)json_string_value(t), json_string_length(t));
		}
	}
	json_decref(pwj);
	json_decref(params);
	json_decref(reply);
	return e;
}

enum errclass wshop_authenticate(struct wshop *w)
{
	w->last_error[0] = 0;
	return authenticate(w);
}

enum errclass wshop_fetch_page(struct wshop *w, enum stream s, int page, const char *date_from,
				  json_t **records)
{
	const struct profile *p = w->profile;
	json_t *params = NULL, *reply = NULL;
	enum errclass e;

	*records = NULL;
	w->last_error[0] = 0;
	if ((int)s < 0 || s >= STREAM_API_COUNT || !p->streams[s].path) {
		set_error(w, "stream %d has no endpoint in profile %s", (int)s, p->name);
		return ERRC_CONFIG;
	}
	const struct profile_stream *ps = &p->streams[s];
	int limit = p->limit > WSHOP_LIMIT_MAX ? WSHOP_LIMIT_MAX : p->limit < 1 ? 1 : p->limit;

	params = json_object();
	if (!params || json_object_set_new(params, p->page_param, json_integer(page)) ||
	    json_object_set_new(params, p->limit_param, json_integer(limit)) ||
	    (date_from && p->date_param &&
	     json_object_set_new(params, p->date_param, json_string(date_from)))) {
		set_error(w, "out of memory");
		e = ERRC_TRANSIENT;
		goto out;
	}
	e = request(w, ps->path, params, false, &reply);
	if (e != ERRC_NONE)
		goto out;
	json_t *arr = profile_path_get(reply, ps->records ? ps->records : "data");
	if (!json_is_array(arr)) {
		set_error(w, "endpoint %s: HTTP %ld but the reply has no record list at '%s'", ps->path,
			  w->last_status, ps->records ? ps->records : "data");
		e = ERRC_BAD_REPLY;
		goto out;
	}
	*records = json_incref(arr);
out:
	json_decref(params);
	json_decref(reply);
	return e;
}
