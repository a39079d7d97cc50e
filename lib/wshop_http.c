/* wshop_http.c - the WSHOP client's transport: one curl handle, one request at a time, the rate cap. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "buf.h"
#include "jarena.h"
#include "wshop_http.h"

#define WSHOP_SLEEP_SLICE_MS 100       /* longest sleep between two looks at *stop */

/* ---- clock and stop flag ------------------------------------------------ */

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

bool wshop_http_sleep(int64_t ms, atomic_bool *stop)
{
	return sleep_until(mono_ms() + ms, stop);
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

/* ---- the handle --------------------------------------------------------- */

struct wshop_http {
	const struct profile *profile;
	struct wshop_ratelimit *ratelimit;
	atomic_bool *stop;
	struct wshop_stats *stats;

	CURL *curl;
	char curl_err[CURL_ERROR_SIZE];
	struct buf body;        /* the reply being received, capped at WSHOP_BODY_MAX */
	struct jarena *arena;   /* where the parsed replies' values live (may be NULL) */
	bool body_too_big;      /* the reply passed WSHOP_BODY_MAX */
	char retry_after[128];  /* the last reply's Retry-After header, "" when none */
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct wshop_http *h = ud;
	size_t n = size * nmemb;
	int r = buf_add(&h->body, ptr, n);

	if (r == -EMSGSIZE)
		h->body_too_big = true;
	/* Fewer bytes than offered ends the transfer with CURLE_WRITE_ERROR. */
	return r < 0 ? 0 : n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct wshop_http *h = ud;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";

	/* A new status line starts a new reply (after a 100 Continue, say). */
	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
		h->retry_after[0] = 0;
	else if (n > sizeof(name) - 1 && strncasecmp(ptr, name, sizeof(name) - 1) == 0) {
		size_t vn = n - (sizeof(name) - 1);
		if (vn >= sizeof(h->retry_after))
			vn = sizeof(h->retry_after) - 1;
		memcpy(h->retry_after, ptr + sizeof(name) - 1, vn);
		h->retry_after[vn] = 0;
	}
	return n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	/* Non-zero aborts the transfer with CURLE_ABORTED_BY_CALLBACK. */
	return stop_raised(((struct wshop_http *)ud)->stop);
}

struct wshop_http *wshop_http_new(const struct profile *p, struct wshop_ratelimit *rl,
				  atomic_bool *stop, struct wshop_stats *stats)
{
	/* curl_global_init is main's, before any thread (DESIGN.md §2). */
	struct wshop_http *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->curl = curl_easy_init();
	if (!h->curl) {
		free(h);
		return NULL;
	}
	h->profile = p;
	h->ratelimit = rl;
	h->stop = stop;
	h->stats = stats;
	buf_init(&h->body, WSHOP_BODY_MAX);
	h->arena = jarena_new();

	CURL *c = h->curl;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, p->connect_timeout_s);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, p->request_timeout_s);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "kleepd/" KLEEP_VERSION);
	/* TLS peer and host verification stay at curl's default: on. */
	return h;
}

void wshop_http_free(struct wshop_http *h)
{
	if (!h)
		return;
	jarena_free(h->arena);
	curl_easy_cleanup(h->curl);
	buf_free(&h->body);
	free(h);
}

/* ---- one exchange ------------------------------------------------------- */

/* What one request allocated, zeroed (when secret) and freed after the transfer. */
struct request {
	struct curl_slist *hdrs;
	char *body;      /* POST: params as JSON */
	char *query;     /* GET: params as k=v&... */
	char *full;      /* GET: url?query */
	char *auth_hdr;  /* "Authorization: Bearer ..." */
	bool secret;
};

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

/* GET: params into url's query string.  False on out-of-memory. */
static bool build_get(CURL *c, const char *url, json_t *params, struct request *rq)
{
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v) {
		char num[32];
		const char *s = json_string_value(v);
		if (!s) {
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			s = num;
		}
		if (!query_add(c, &rq->query, k, s))
			return false;
	}
	if (asprintf(&rq->full, "%s%s%s", url, rq->query ? "?" : "", rq->query ? rq->query : "") < 0) {
		rq->full = NULL;
		return false;
	}
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_URL, rq->full);
	return true;
}

/* POST: params as a JSON body.  False on out-of-memory. */
static bool build_post(CURL *c, const char *url, json_t *params, struct request *rq)
{
	rq->body = json_dumps(params, JSON_COMPACT);
	if (!rq->body)
		return false;
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(rq->body));
	curl_easy_setopt(c, CURLOPT_URL, url);
	return (rq->hdrs = curl_slist_append(rq->hdrs, "Content-Type: application/json")) != NULL;
}

/* Add header line to rq's list; false on out-of-memory (the list is kept). */
static bool add_header(struct request *rq, const char *line)
{
	struct curl_slist *h = curl_slist_append(rq->hdrs, line);
	if (h)
		rq->hdrs = h;
	return h != NULL;
}

/* Set the handle up for one request.  False on out-of-memory. */
static bool build(struct wshop_http *h, const char *url, json_t *params, const char *token,
		  struct request *rq)
{
	CURL *c = h->curl;
	bool is_get = strcmp(h->profile->method, "GET") == 0;

	if (!(is_get ? build_get(c, url, params, rq) : build_post(c, url, params, rq)))
		return false;
	if (!add_header(rq, "Accept: application/json"))
		return false;
	/* An empty Expect: stops curl waiting for 100 Continue on larger bodies. */
	if (!add_header(rq, "Expect:"))
		return false;
	if (token) {
		if (asprintf(&rq->auth_hdr, "Authorization: Bearer %s", token) < 0) {
			rq->auth_hdr = NULL;
			return false;
		}
		if (!add_header(rq, rq->auth_hdr))
			return false;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, rq->hdrs);
	return true;
}

static void wipe(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
}

/* Zero what held secrets, free what the request allocated. */
static void request_done(struct wshop_http *h, struct request *rq)
{
	/* The handle keeps option pointers: clear those we are about to free. */
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
	if (rq->secret) {
		wipe(rq->body);
		wipe(rq->full);
		wipe(rq->query);
		/* The reply to authenticate holds the token; do not leave it in the buffer. */
		buf_wipe(&h->body);
	}
	wipe(rq->auth_hdr);
	curl_slist_free_all(rq->hdrs);
	free(rq->auth_hdr);
	free(rq->body);
	free(rq->query);
	free(rq->full);
}

/* Run the transfer set up by build() and gather its facts into x. */
static void perform(struct wshop_http *h, struct wshop_exchange *x)
{
	CURL *c = h->curl;

	buf_reset(&h->body);
	h->body_too_big = false;
	h->retry_after[0] = 0;
	h->curl_err[0] = 0;
	h->stats->requests++;

	CURLcode rc = curl_easy_perform(c);

	h->stats->bytes += (int64_t)h->body.len;
	curl_off_t wire = 0;
	if (curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &wire) == CURLE_OK)
		h->stats->wire_bytes += (int64_t)wire;
	long conns = 0;
	if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK)
		h->stats->connects += conns;
	char *redirect = NULL;
	if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &redirect) != CURLE_OK)
		redirect = NULL;
	*x = (struct wshop_exchange){
		.transfer = (int)rc,
		.transfer_error = h->curl_err,
		.too_big = h->body_too_big,
		.body = h->body.data,
		.body_len = h->body.len,
		.retry_after = h->retry_after,
		.redirect = redirect,
		.now = time(NULL),
	};
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
}

void wshop_http_exchange(struct wshop_http *h, const char *url, json_t *params, const char *token,
			 bool secret, struct wshop_reply *r)
{
	struct request rq = { .secret = secret };
	struct wshop_exchange x;
	const struct wshop_reply_rules rules = {
		.success_field = h->profile->success_field,
		.error_message_path = h->profile->error_message_path,
	};

	if (!wshop_ratelimit_wait(h->ratelimit, h->stop))
		wshop_reply_fail(r, WSHOP_OUT_STOPPED, "stopped");
	else if (!build(h, url, params, token, &rq))
		wshop_reply_fail(r, WSHOP_OUT_RETRY, "out of memory");
	else {
		perform(h, &x);
		/* Classified before request_done: the redirect URL belongs to the handle.
		 * The reply's values come from the arena: a page of records is freed
		 * whole before the next is parsed (jarena.h). */
		struct jarena *previous = jarena_enter(h->arena);
		wshop_reply_classify(&x, &rules, r);
		jarena_leave(previous);
	}
	request_done(h, &rq);
}
