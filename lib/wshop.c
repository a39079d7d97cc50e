/* wshop.c - the WSHOP API client: authentication, the retry policy, one page of a stream. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "wshop.h"
#include "wshop_http.h"
#include "wshop_reply.h"

#define WSHOP_PASSWORD_MAX 4096        /* bytes of a password file */
#define WSHOP_TOKEN_MAX    16384       /* bytes of a JWT we accept */
#define WSHOP_LIMIT_MAX    500         /* DOMAIN.md §1: never ask for more */
#define WSHOP_RENEW_EARLY_S 60         /* renew this long before exp ... */
#define WSHOP_SHORT_TOKEN_S 120        /* ... unless the token lives this long or less */
#define WSHOP_ERROR_MAX    512         /* bytes of last_error */

/* ---- pure helpers exposed for tests ------------------------------------- */

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

struct wshop {
	char *api_url, *username, *password_file;
	const struct profile *profile;
	atomic_bool *stop;
	struct log_ctx log;
	struct wshop_http *http; /* the transport: curl handle, rate cap */
	struct token_cache *tokens;

	char *token;            /* NULL until authenticated; zeroed before free */
	time_t renew_at;        /* wall clock; 0: keep until a 401 */
	uint64_t rng;           /* jitter */

	char last_error[WSHOP_ERROR_MAX];
	char last_endpoint[256];
	long last_status;
	struct wshop_stats stats;
};

static bool stop_raised(const struct wshop *w)
{
	return w->stop && atomic_load(w->stop);
}

struct wshop *wshop_new(const struct wshop_opts *o)
{
	struct wshop *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->api_url = strdup(o->api_url ? o->api_url : "");
	w->username = strdup(o->username ? o->username : "");
	w->password_file = strdup(o->password_file ? o->password_file : "");
	w->http = wshop_http_new(o->profile, o->ratelimit, o->stop, &w->stats);
	if (!w->api_url || !w->username || !w->password_file || !w->http) {
		wshop_free(w);
		return NULL;
	}
	w->profile = o->profile;
	w->tokens = o->tokens;
	w->stop = o->stop;
	w->log = o->log;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	w->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)w ^
		 ((uint64_t)getpid() << 32);
	if (w->rng == 0)
		w->rng = 0x9e3779b97f4a7c15ull;
	return w;
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
	wshop_http_free(w->http);
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

/* ---- the retry policy --------------------------------------------------- */

/*
 * One attempt at path: the transport sends it and classifies the reply.
 * secret marks params holding the password (every copy is zeroed after).
 */
static void attempt(struct wshop *w, const char *path, json_t *params, bool with_token,
		    bool secret, struct wshop_reply *r)
{
	char *url = wshop_join_url(w->api_url, w->profile->base_path, path);
	if (!url) {
		wshop_reply_fail(r, WSHOP_OUT_RETRY, "out of memory");
		return;
	}
	wshop_http_exchange(w->http, url, params, with_token ? w->token : NULL, secret, r);
	free(url);
	if (r->status)
		w->last_status = r->status;
}

/* "endpoint /orders/get: HTTP 503 (WSHOP: maintenance)" into buf. */
static void describe(const char *path, const struct wshop_reply *r, char *buf, size_t size)
{
	snprintf(buf, size, "endpoint %s: %s%s%s%s", path, r->why, r->msg[0] ? " (WSHOP: " : "",
		 r->msg, r->msg[0] ? ")" : "");
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

/* The authenticate call itself was refused: the credentials are wrong. */
static enum errclass refused(struct wshop *w, const char *path, const struct wshop_reply *r)
{
	set_error(w, "authentication refused for user %s at %s (%s%s%s)", w->username, path, r->why,
		  r->msg[0] ? ": " : "", r->msg);
	return ERRC_AUTH;
}

/*
 * After transient failure number n (described in what): ERRC_NONE once the
 * backoff (never shorter than a Retry-After) has passed and the request may
 * go again, or the class to give up with (ERRC_STOPPED when stopped meanwhile).
 */
static enum errclass retry_wait(struct wshop *w, const struct wshop_reply *r, const char *what,
				int n, int attempts)
{
	const struct profile *p = w->profile;
	enum errclass give_up = r->out == WSHOP_OUT_RETRY_BAD ? ERRC_BAD_REPLY : ERRC_TRANSIENT;

	if (n >= attempts) {
		set_error(w, "%s; gave up after %d attempts", what, n);
		return give_up;
	}
	if (r->retry_after_s > p->retry_after_max_s) {
		set_error(w, "%s; the server asks to retry after %ld s, more than %ld s", what,
			  r->retry_after_s, p->retry_after_max_s);
		return ERRC_TRANSIENT;
	}
	int64_t delay = backoff_ms(w, n);
	if (r->retry_after_s >= 0 && delay < (int64_t)r->retry_after_s * 1000)
		delay = (int64_t)r->retry_after_s * 1000;
	set_error(w, "%s", what);
	log_msg(LOG_WARNING, &w->log, NULL, "%s: %s, attempt %d of %d, retrying in %" PRId64 " ms",
		what, errclass_name(give_up), n, attempts, delay);
	return wshop_http_sleep(delay, w->stop) ? ERRC_NONE : ERRC_STOPPED;
}

static enum errclass authenticate(struct wshop *w);

/* The merchant's token when another client of the shop holds a live one: one
 * authentication serves every job of the merchant until its renewal time. */
static bool adopt_token(struct wshop *w)
{
	time_t renew_at = 0;
	char *t = token_cache_get(w->tokens, time(NULL), &renew_at);
	if (!t)
		return false;
	drop_token(w);
	w->token = t;
	w->renew_at = renew_at;
	return true;
}

/*
 * One request with the retry policy of DESIGN.md §3.  is_auth: this is the
 * authenticate call (no token; 401/403/success:false mean bad credentials).
 * On ERRC_NONE *reply is the parsed reply (owned by the caller).
 */
static enum errclass request(struct wshop *w, const char *path, json_t *params, bool is_auth,
				json_t **reply)
{
	int attempts = w->profile->retry_attempts > 0 ? w->profile->retry_attempts : 1;
	bool reauthed = false;
	struct wshop_reply r;
	char what[WSHOP_ERROR_MAX];
	enum errclass e;

	*reply = NULL;
	snprintf(w->last_endpoint, sizeof(w->last_endpoint), "%s", path);
	for (int n = 1;; n++) {
		if (stop_raised(w))
			goto stopped;
		if (!is_auth && (!w->token || (w->renew_at && time(NULL) >= w->renew_at)) &&
		    !adopt_token(w)) {
			e = authenticate(w);
			if (e != ERRC_NONE)
				return e;
			snprintf(w->last_endpoint, sizeof(w->last_endpoint), "%s", path);
		}
		attempt(w, path, params, !is_auth, is_auth, &r);
		describe(path, &r, what, sizeof(what));

		switch (r.out) {
		case WSHOP_OUT_OK:
			*reply = r.json;
			return ERRC_NONE;
		case WSHOP_OUT_STOPPED:
			goto stopped;
		case WSHOP_OUT_CONFIG:
			set_error(w, "%s; check the merchant's API URL and profile", what);
			return ERRC_CONFIG;
		case WSHOP_OUT_BAD:
			set_error(w, "%s", what);
			return ERRC_BAD_REPLY;
		case WSHOP_OUT_401:
		case WSHOP_OUT_403:
			if (is_auth)
				return refused(w, path, &r);
			if (r.out == WSHOP_OUT_401 && !reauthed) {
				/* The token may have been revoked or expired early: one fresh one. */
				reauthed = true;
				log_msg(LOG_NOTICE, &w->log, NULL, "%s; authenticating again", what);
				token_cache_drop(w->tokens, w->token);
				drop_token(w);
				n--;
				continue;
			}
			set_error(w, "endpoint %s is not authorized for this API user (HTTP %ld%s%s)", path,
				  r.status, r.msg[0] ? ": " : "", r.msg);
			return ERRC_UNAUTHORIZED;
		case WSHOP_OUT_RETRY_BAD:
			/* WSHOP answers bad credentials with success:false. */
			if (is_auth && r.success_false)
				return refused(w, path, &r);
			/* fallthrough */
		case WSHOP_OUT_RETRY:
			break;
		}
		e = retry_wait(w, &r, what, n, attempts);
		if (e == ERRC_STOPPED)
			goto stopped;
		if (e != ERRC_NONE)
			return e;
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
	token_cache_put(w->tokens, w->token, w->renew_at);
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
