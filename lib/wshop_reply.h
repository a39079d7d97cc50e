/* wshop_reply.h - what one WSHOP exchange came to, decided from its facts alone (DESIGN.md §3). */
#ifndef KLEEP_WSHOP_REPLY_H
#define KLEEP_WSHOP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#define WSHOP_BODY_MAX (64u << 20) /* bytes of one reply body; more is a bad reply */
#define WSHOP_MSG_MAX  200         /* bytes of WSHOP's error.message we repeat */

/* What one attempt came to, before the retry policy (wshop.c) looks at it. */
enum wshop_outcome {
	WSHOP_OUT_OK,
	WSHOP_OUT_RETRY,     /* transient: network, 408, 425, 429, 5xx */
	WSHOP_OUT_RETRY_BAD, /* retried, but bad_reply when it gives up: 2xx not JSON / success not true */
	WSHOP_OUT_401,
	WSHOP_OUT_403,
	WSHOP_OUT_CONFIG,    /* other 4xx, 3xx, a URL curl refuses, TLS verification */
	WSHOP_OUT_BAD,       /* a reply no retry can fix: larger than WSHOP_BODY_MAX */
	WSHOP_OUT_STOPPED,
};

/* The facts of one finished transfer, as the transport saw them (all borrowed). */
struct wshop_exchange {
	int transfer;               /* the CURLcode: CURLE_OK when an HTTP reply came */
	const char *transfer_error; /* curl's words for it; NULL or "": curl_easy_strerror's */
	bool too_big;               /* the body passed WSHOP_BODY_MAX (transfer is a write error) */
	long status;                /* HTTP status, 0 when none */
	const char *body;           /* the reply body, body_len bytes; may be NULL when 0 */
	size_t body_len;
	const char *retry_after;    /* the Retry-After header's value; NULL or "" when none */
	const char *redirect;       /* where a 3xx points; NULL when unknown */
	time_t now;                 /* wall clock, for a Retry-After given as an HTTP-date */
};

/* The profile's say on replies (borrowed). */
struct wshop_reply_rules {
	const char *success_field;      /* path of the boolean that must be true */
	const char *error_message_path; /* path of WSHOP's message; "error" and "message" tried next */
};

/* The verdict on one exchange. */
struct wshop_reply {
	enum wshop_outcome out;
	long status;        /* HTTP status, 0 when none */
	json_t *json;       /* the parsed reply on WSHOP_OUT_OK (owned by the caller), else NULL */
	char why[256];      /* short, for a person: "HTTP 503", "timeout", "HTTP 200 but ..." */
	char msg[WSHOP_MSG_MAX + 1]; /* WSHOP's error message, on one line, cut at a character; "" */
	bool success_false; /* a JSON reply whose success field is false (bad credentials at auth) */
	long retry_after_s; /* seconds the server asks us to wait (429 and 503 only), -1 when none */
};

/*
 * Sort an exchange into r: a pure function of x and rules (no I/O, no
 * globals), so every rule of DESIGN.md §3 can be tested without a server.
 * r->json is set only on WSHOP_OUT_OK.
 */
void wshop_reply_classify(const struct wshop_exchange *x, const struct wshop_reply_rules *rules,
			  struct wshop_reply *r);

/* Retry-After as seconds from now: "120" or an HTTP-date; -1 when unparsable. */
long wshop_parse_retry_after(const char *v, time_t now);

/* An attempt that ended before any exchange (stopped, out of memory): r says so. */
void wshop_reply_fail(struct wshop_reply *r, enum wshop_outcome out, const char *why);

#endif
