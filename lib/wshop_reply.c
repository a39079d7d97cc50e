/* wshop_reply.c - what one WSHOP exchange came to, decided from its facts alone (DESIGN.md §3). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "jsonr.h"
#include "profile.h"
#include "wshop_reply.h"

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

/* Copy WSHOP's error message from reply into r->msg, keeping it on one line. */
static void take_message(json_t *reply, const char *path, struct wshop_reply *r)
{
	const char *m = json_string_value(profile_path_get(reply, path));
	if (!m && json_is_string(json_object_get(reply, "error")))
		m = json_string_value(json_object_get(reply, "error"));
	if (!m)
		m = json_string_value(json_object_get(reply, "message"));
	if (!m)
		return;
	size_t i;
	for (i = 0; m[i] && i < WSHOP_MSG_MAX; i++)
		r->msg[i] = (unsigned char)m[i] < 0x20 || m[i] == 0x7f ? ' ' : m[i];
	/* Cut at a character, not inside one: the text goes into JSON replies. */
	if (m[i])
		while (i > 0 && ((unsigned char)m[i] & 0xC0) == 0x80)
			i--;
	r->msg[i] = 0;
}

/* A transfer that brought no HTTP reply: stopped, too big, fatal or transient. */
static void classify_transfer(const struct wshop_exchange *x, struct wshop_reply *r)
{
	switch ((CURLcode)x->transfer) {
	case CURLE_ABORTED_BY_CALLBACK:
		r->out = WSHOP_OUT_STOPPED;
		break;
	case CURLE_WRITE_ERROR:
		r->out = x->too_big ? WSHOP_OUT_BAD : WSHOP_OUT_RETRY;
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_LOGIN_DENIED:
		/* The operator must change a setting; retrying cannot help. */
		r->out = WSHOP_OUT_CONFIG;
		break;
	default:
		/* Timeouts, refused or reset connections, a body cut short, DNS. */
		r->out = WSHOP_OUT_RETRY;
		break;
	}
	if (r->out == WSHOP_OUT_BAD)
		snprintf(r->why, sizeof(r->why), "reply larger than %u MiB", WSHOP_BODY_MAX >> 20);
	else
		snprintf(r->why, sizeof(r->why), "%s", x->transfer_error && x->transfer_error[0]
			 ? x->transfer_error : curl_easy_strerror((CURLcode)x->transfer));
}

/* A 2xx: a success only when the body is a JSON object whose success field is true. */
static void classify_2xx(json_t *reply, const char *success_field, struct wshop_reply *r)
{
	json_t *ok = reply ? profile_path_get(reply, success_field) : NULL;

	if (!reply) {
		r->out = WSHOP_OUT_RETRY_BAD;
		snprintf(r->why, sizeof(r->why), "HTTP %ld but the reply is not a JSON object", r->status);
	} else if (!json_is_true(ok)) {
		r->out = WSHOP_OUT_RETRY_BAD;
		r->success_false = json_is_false(ok);
		snprintf(r->why, sizeof(r->why), "HTTP %ld but '%s' is %s", r->status, success_field,
			 json_is_false(ok) ? "false" : "missing or not a boolean");
	} else {
		r->out = WSHOP_OUT_OK;
		r->json = json_incref(reply);
	}
}

/* Any other status: 401, 403, transient, or a setting to fix. */
static void classify_status(const struct wshop_exchange *x, struct wshop_reply *r)
{
	long st = r->status;

	snprintf(r->why, sizeof(r->why), "HTTP %ld", st);
	if (st == 401)
		r->out = WSHOP_OUT_401;
	else if (st == 403)
		r->out = WSHOP_OUT_403;
	else if (st == 408 || st == 425 || st == 429 || st >= 500)
		r->out = WSHOP_OUT_RETRY;
	else {
		r->out = WSHOP_OUT_CONFIG;
		if (st >= 300 && st < 400 && x->redirect)
			snprintf(r->why, sizeof(r->why), "HTTP %ld, redirected to %.160s", st, x->redirect);
	}
	/* DESIGN.md §3: Retry-After counts on 429 and 503 only. */
	if (st != 429 && st != 503)
		r->retry_after_s = -1;
}

void wshop_reply_classify(const struct wshop_exchange *x, const struct wshop_reply_rules *rules,
			  struct wshop_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->status = x->status;
	r->retry_after_s = -1;
	if ((CURLcode)x->transfer != CURLE_OK) {
		classify_transfer(x, r);
		return;
	}

	json_error_t jerr;
	json_t *reply = x->body_len ? jsonr_loadb(x->body, x->body_len, &jerr) : NULL;
	if (reply && !json_is_object(reply)) {
		json_decref(reply);
		reply = NULL;
	}
	if (reply)
		take_message(reply, rules->error_message_path, r);
	r->retry_after_s = wshop_parse_retry_after(x->retry_after, x->now);
	if (r->status >= 200 && r->status < 300)
		classify_2xx(reply, rules->success_field, r);
	else
		classify_status(x, r);
	json_decref(reply);
}

void wshop_reply_fail(struct wshop_reply *r, enum wshop_outcome out, const char *why)
{
	memset(r, 0, sizeof(*r));
	r->out = out;
	r->retry_after_s = -1;
	snprintf(r->why, sizeof(r->why), "%s", why);
}
