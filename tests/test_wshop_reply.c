/* test_wshop_reply.c - the reply classifier: every rule of DESIGN.md §3, no server needed. */
#include <curl/curl.h>

#include "unit.h"

#include "wshop_reply.h"

static const struct wshop_reply_rules rules = {
	.success_field = "success",
	.error_message_path = "error.message",
};

#define NOW ((time_t)1700000000) /* Tue, 14 Nov 2023 22:13:20 GMT */

/* One exchange and what the classifier must make of it. */
struct rule {
	const char *name;
	int transfer;            /* CURLcode */
	bool too_big;
	long status;
	const char *body;
	const char *retry_after;
	const char *redirect;
	enum wshop_outcome out;  /* expected */
	long retry_after_s;      /* expected */
	bool success_false;      /* expected */
	const char *why;         /* expected text within r.why, or NULL */
};

static const struct rule table[] = {
	/* A success is 2xx and success true, nothing less. */
	{ "200 success", CURLE_OK, false, 200, "{\"success\":true,\"data\":[]}", NULL, NULL,
	  WSHOP_OUT_OK, -1, false, NULL },
	{ "204 success", CURLE_OK, false, 204, "{\"success\":true}", NULL, NULL,
	  WSHOP_OUT_OK, -1, false, NULL },
	{ "200 success false", CURLE_OK, false, 200, "{\"success\":false}", NULL, NULL,
	  WSHOP_OUT_RETRY_BAD, -1, true, "'success' is false" },
	{ "200 success missing", CURLE_OK, false, 200, "{\"data\":[]}", NULL, NULL,
	  WSHOP_OUT_RETRY_BAD, -1, false, "missing or not a boolean" },
	{ "200 success as text", CURLE_OK, false, 200, "{\"success\":\"true\"}", NULL, NULL,
	  WSHOP_OUT_RETRY_BAD, -1, false, "missing or not a boolean" },
	{ "200 not JSON", CURLE_OK, false, 200, "<html>maintenance</html>", NULL, NULL,
	  WSHOP_OUT_RETRY_BAD, -1, false, "not a JSON object" },
	{ "200 JSON array", CURLE_OK, false, 200, "[{\"success\":true}]", NULL, NULL,
	  WSHOP_OUT_RETRY_BAD, -1, false, "not a JSON object" },
	{ "200 empty body", CURLE_OK, false, 200, "", NULL, NULL,
	  WSHOP_OUT_RETRY_BAD, -1, false, "not a JSON object" },
	/* Transient statuses; Retry-After counts on 429 and 503 only. */
	{ "429 seconds", CURLE_OK, false, 429, "{}", "120", NULL, WSHOP_OUT_RETRY, 120, false, "HTTP 429" },
	{ "429 no header", CURLE_OK, false, 429, "", NULL, NULL, WSHOP_OUT_RETRY, -1, false, "HTTP 429" },
	{ "503 HTTP-date", CURLE_OK, false, 503, "", "Tue, 14 Nov 2023 22:14:20 GMT", NULL,
	  WSHOP_OUT_RETRY, 60, false, "HTTP 503" },
	{ "503 date past", CURLE_OK, false, 503, "", "Mon, 13 Nov 2023 22:13:20 GMT", NULL,
	  WSHOP_OUT_RETRY, 0, false, NULL },
	{ "503 header unparsable", CURLE_OK, false, 503, "", "soon", NULL, WSHOP_OUT_RETRY, -1, false, NULL },
	{ "500 header ignored", CURLE_OK, false, 500, "", "120", NULL, WSHOP_OUT_RETRY, -1, false, "HTTP 500" },
	{ "502", CURLE_OK, false, 502, "", NULL, NULL, WSHOP_OUT_RETRY, -1, false, NULL },
	{ "504", CURLE_OK, false, 504, "", NULL, NULL, WSHOP_OUT_RETRY, -1, false, NULL },
	{ "408", CURLE_OK, false, 408, "", NULL, NULL, WSHOP_OUT_RETRY, -1, false, NULL },
	{ "425", CURLE_OK, false, 425, "", NULL, NULL, WSHOP_OUT_RETRY, -1, false, NULL },
	/* 401 and 403: the policy decides (re-authenticate once, or unauthorized). */
	{ "401", CURLE_OK, false, 401, "{\"success\":false}", "5", NULL, WSHOP_OUT_401, -1, false, "HTTP 401" },
	{ "403", CURLE_OK, false, 403, "", NULL, NULL, WSHOP_OUT_403, -1, false, "HTTP 403" },
	/* Other 4xx and 3xx: a setting to fix, never retried. */
	{ "400", CURLE_OK, false, 400, "", NULL, NULL, WSHOP_OUT_CONFIG, -1, false, "HTTP 400" },
	{ "404", CURLE_OK, false, 404, "", NULL, NULL, WSHOP_OUT_CONFIG, -1, false, "HTTP 404" },
	{ "422", CURLE_OK, false, 422, "", "30", NULL, WSHOP_OUT_CONFIG, -1, false, "HTTP 422" },
	{ "301 redirect", CURLE_OK, false, 301, "", NULL, "https://shop.example/api/v2/orders",
	  WSHOP_OUT_CONFIG, -1, false, "HTTP 301, redirected to https://shop.example/api/v2/orders" },
	{ "302 no location", CURLE_OK, false, 302, "", NULL, NULL, WSHOP_OUT_CONFIG, -1, false, "HTTP 302" },
	/* Transfers that brought no reply. */
	{ "timeout", CURLE_OPERATION_TIMEDOUT, false, 0, NULL, NULL, NULL, WSHOP_OUT_RETRY, -1, false, NULL },
	{ "refused", CURLE_COULDNT_CONNECT, false, 0, NULL, NULL, NULL, WSHOP_OUT_RETRY, -1, false, NULL },
	{ "reset", CURLE_RECV_ERROR, false, 0, NULL, NULL, NULL, WSHOP_OUT_RETRY, -1, false, NULL },
	{ "cut short", CURLE_PARTIAL_FILE, false, 200, "{\"succ", NULL, NULL, WSHOP_OUT_RETRY, -1, false, NULL },
	{ "DNS", CURLE_COULDNT_RESOLVE_HOST, false, 0, NULL, NULL, NULL, WSHOP_OUT_RETRY, -1, false, NULL },
	{ "out of memory while receiving", CURLE_WRITE_ERROR, false, 200, NULL, NULL, NULL,
	  WSHOP_OUT_RETRY, -1, false, NULL },
	{ "too big", CURLE_WRITE_ERROR, true, 200, NULL, "60", NULL, WSHOP_OUT_BAD, -1, false,
	  "reply larger than 64 MiB" },
	{ "stopped", CURLE_ABORTED_BY_CALLBACK, false, 0, NULL, NULL, NULL, WSHOP_OUT_STOPPED, -1, false, NULL },
	{ "TLS verification", CURLE_PEER_FAILED_VERIFICATION, false, 0, NULL, NULL, NULL,
	  WSHOP_OUT_CONFIG, -1, false, NULL },
	{ "bad CA file", CURLE_SSL_CACERT_BADFILE, false, 0, NULL, NULL, NULL, WSHOP_OUT_CONFIG, -1, false, NULL },
	{ "URL curl refuses", CURLE_URL_MALFORMAT, false, 0, NULL, NULL, NULL, WSHOP_OUT_CONFIG, -1, false, NULL },
	{ "not http", CURLE_UNSUPPORTED_PROTOCOL, false, 0, NULL, NULL, NULL, WSHOP_OUT_CONFIG, -1, false, NULL },
};

static struct wshop_exchange exchange_of(const struct rule *t)
{
	return (struct wshop_exchange){
		.transfer = t->transfer,
		.too_big = t->too_big,
		.status = t->status,
		.body = t->body,
		.body_len = t->body ? strlen(t->body) : 0,
		.retry_after = t->retry_after,
		.redirect = t->redirect,
		.now = NOW,
	};
}

static void test_rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct rule *t = &table[i];
		struct wshop_exchange x = exchange_of(t);
		struct wshop_reply r;
		memset(&r, 0x5a, sizeof(r)); /* whatever was there is overwritten */
		wshop_reply_classify(&x, &rules, &r);
		if (r.out != t->out)
			fail_msg("%s: outcome %d, expected %d (%s)", t->name, r.out, t->out, r.why);
		if (r.retry_after_s != t->retry_after_s)
			fail_msg("%s: retry_after_s %ld, expected %ld", t->name, r.retry_after_s,
				 t->retry_after_s);
		if (r.success_false != t->success_false)
			fail_msg("%s: success_false %d", t->name, r.success_false);
		if (t->why && !strstr(r.why, t->why))
			fail_msg("%s: why '%s' lacks '%s'", t->name, r.why, t->why);
		if (!r.why[0] && t->out != WSHOP_OUT_OK)
			fail_msg("%s: no words for a person", t->name);
		if (r.status != t->status)
			fail_msg("%s: status %ld", t->name, r.status);
		/* The parsed reply comes with a success only, and the caller owns it. */
		if ((r.json != NULL) != (t->out == WSHOP_OUT_OK))
			fail_msg("%s: json %p", t->name, (void *)r.json);
		if (r.json) {
			assert_true(json_is_object(r.json));
			assert_int_equal(r.json->refcount, 1);
		}
		json_decref(r.json);
	}
}

/* A transfer error is named in curl's words, or the error buffer's when curl filled it. */
static void test_transfer_words(void **state)
{
	(void)state;
	struct wshop_exchange x = { .transfer = CURLE_OPERATION_TIMEDOUT, .now = NOW };
	struct wshop_reply r;
	wshop_reply_classify(&x, &rules, &r);
	assert_string_equal(r.why, curl_easy_strerror(CURLE_OPERATION_TIMEDOUT));
	x.transfer_error = "Operation timed out after 30001 milliseconds with 0 bytes received";
	wshop_reply_classify(&x, &rules, &r);
	assert_string_equal(r.why, x.transfer_error);
	assert_string_equal(r.msg, "");
}

static const char *msg_of(long status, const char *body)
{
	static struct wshop_reply r;
	struct wshop_exchange x = { .status = status, .body = body, .body_len = strlen(body), .now = NOW };
	wshop_reply_classify(&x, &rules, &r);
	json_decref(r.json);
	return r.msg;
}

/* WSHOP's own message travels with the verdict, on one line, cut at a character. */
static void test_message(void **state)
{
	(void)state;
	assert_string_equal(msg_of(503, "{\"error\":{\"message\":\"maintenance\"}}"), "maintenance");
	assert_string_equal(msg_of(400, "{\"error\":\"bad page\"}"), "bad page");
	assert_string_equal(msg_of(400, "{\"message\":\"bad limit\"}"), "bad limit");
	/* The profile's path first, then "error", then "message". */
	assert_string_equal(msg_of(400, "{\"message\":\"m\",\"error\":{\"message\":\"e\"}}"), "e");
	assert_string_equal(msg_of(200, "{\"success\":false,\"error\":{\"message\":\"bad\\nlogin\\u007f\"}}"),
			    "bad login ");
	assert_string_equal(msg_of(500, "{\"error\":{\"code\":7}}"), "");
	assert_string_equal(msg_of(500, "not json"), "");

	/* 199 ASCII bytes then "é" (2 bytes): the cut falls inside it, so it goes whole. */
	char body[512], want[WSHOP_MSG_MAX + 1];
	memset(want, 'a', WSHOP_MSG_MAX - 1);
	want[WSHOP_MSG_MAX - 1] = 0;
	snprintf(body, sizeof(body), "{\"message\":\"%s\xc3\xa9tail\"}", want);
	assert_string_equal(msg_of(500, body), want);
}

/* An attempt that never reached the wire says why, and holds nothing. */
static void test_fail(void **state)
{
	(void)state;
	struct wshop_reply r;
	memset(&r, 0x5a, sizeof(r));
	wshop_reply_fail(&r, WSHOP_OUT_RETRY, "out of memory");
	assert_int_equal(r.out, WSHOP_OUT_RETRY);
	assert_string_equal(r.why, "out of memory");
	assert_int_equal(r.retry_after_s, -1);
	assert_int_equal(r.status, 0);
	assert_null(r.json);
	assert_string_equal(r.msg, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_transfer_words),
		cmocka_unit_test(test_message),
		cmocka_unit_test(test_fail),
	};
	return cmocka_run_group_tests_name("wshop_reply", tests, NULL, NULL);
}
