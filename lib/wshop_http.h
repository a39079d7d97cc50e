/* wshop_http.h - the WSHOP client's transport: one curl handle, one request at a time, the rate cap. */
#ifndef KLEEP_WSHOP_HTTP_H
#define KLEEP_WSHOP_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "profile.h"
#include "wshop.h"
#include "wshop_reply.h"

struct wshop_http;

/*
 * A transport with its own curl handle (keep-alive), set up from the profile's
 * method and timeouts.  p, rl, stop and stats are borrowed and must outlive
 * it; rl and stop may be NULL.  stats is counted into at every request.
 * NULL on out-of-memory.  The program calls curl_global_init() in main,
 * before any thread, and its cleanup at exit.
 */
struct wshop_http *wshop_http_new(const struct profile *p, struct wshop_ratelimit *rl,
				  atomic_bool *stop, struct wshop_stats *stats);
void wshop_http_free(struct wshop_http *h);

/*
 * Wait for the rate cap, send params (a JSON object of strings and integers,
 * borrowed) to url as the profile's method (GET: a query string; POST: a JSON
 * body), with "Authorization: Bearer token" unless token is NULL, and sort
 * what came back into *r (wshop_reply_classify).  secret: params hold a
 * password, and every copy of them and of the reply body is zeroed after.
 */
void wshop_http_exchange(struct wshop_http *h, const char *url, json_t *params, const char *token,
			 bool secret, struct wshop_reply *r);

/* Sleep ms milliseconds, waking within 100 ms of *stop being raised; false when it was. */
bool wshop_http_sleep(int64_t ms, atomic_bool *stop);

#endif
