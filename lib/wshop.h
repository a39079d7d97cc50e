/* wshop.h - the WSHOP HTTP client: authentication, one page of a stream, retries, rate cap. */
#ifndef KLEEP_WSHOP_H
#define KLEEP_WSHOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "errclass.h"
#include "log.h"
#include "profile.h"
#include "stream.h"
#include "token.h"


/* A request-rate cap shared by every client of one merchant; thread-safe. */
struct wshop_ratelimit;
struct wshop_ratelimit *wshop_ratelimit_new(double per_second);
void wshop_ratelimit_free(struct wshop_ratelimit *rl);
/* Wait for the next request slot (rl may be NULL: no wait); false when *stop was raised. */
bool wshop_ratelimit_wait(struct wshop_ratelimit *rl, atomic_bool *stop);

struct wshop_opts {
	const char *api_url;        /* shop root or API root; base_path appended unless present */
	const char *username;
	const char *password_file;  /* read at each authentication, never kept nor logged */
	const struct profile *profile; /* borrowed; must outlive the client */
	struct wshop_ratelimit *ratelimit; /* borrowed; may be NULL */
	struct token_cache *tokens; /* borrowed; may be NULL: the merchant's token, shared */
	atomic_bool *stop;          /* borrowed; may be NULL; checked between retries and during transfers */
	struct log_ctx log;         /* borrowed strings; for log lines */
};

/* Counters of one client's life, for sync_runs. */
struct wshop_stats {
	int64_t requests;           /* HTTP requests sent, authentication and retries included */
	int64_t bytes;              /* body bytes received (after decompression) */
	int64_t wire_bytes;         /* body bytes as sent on the wire (gzip-compressed when served so) */
	int64_t connects;           /* connections opened; keep-alive makes this far below requests */
};

struct wshop;

/* A client with its own curl handle (keep-alive).  NULL on out-of-memory.
 * The program calls curl_global_init() in main, before any thread, and its cleanup at exit. */
struct wshop *wshop_new(const struct wshop_opts *o);
void wshop_free(struct wshop *w);

/* Authenticate now (also done lazily and before the token's exp). */
enum errclass wshop_authenticate(struct wshop *w);

/*
 * Fetch page `page` (counted from the profile's first_page) of stream s,
 * with the date filter date_from (shop-local text in the profile's format) or
 * NULL for none.  On ERRC_NONE *records is a new reference to the record array
 * (caller json_decref()s it).  Retries transient failures per the profile;
 * re-authenticates once after a 401.
 */
enum errclass wshop_fetch_page(struct wshop *w, enum stream s, int page, const char *date_from,
				  json_t **records);

/* The last failure for a person: endpoint, HTTP status and WSHOP's message, no secrets. */
const char *wshop_last_error(const struct wshop *w);
/* The last HTTP status seen (0 when none). */
long wshop_last_http_status(const struct wshop *w);
/* The endpoint of the last failure, e.g. "/returns/get". */
const char *wshop_last_endpoint(const struct wshop *w);
const struct wshop_stats *wshop_stats(const struct wshop *w);

/* Helpers exposed for tests. */
/* The JWT's exp claim, or 0 when it has none or is not a JWT. */
int64_t wshop_jwt_exp(const char *token);
/* api_url + base_path unless api_url already ends with base_path; caller frees. */
char *wshop_join_url(const char *api_url, const char *base_path, const char *path);

#endif
