/* test_jsonw.c - the record writer writes what json_dumpb(JSON_COMPACT) writes, byte for byte. */
#include "unit.h"

#include "jsonw.h"

/* jsonw_compact of v equals jansson's compact text of it. */
static void same_as_jansson(struct buf *w, json_t *v)
{
	char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	assert_non_null(want);
	const char *got = jsonw_compact(w, v);
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(w->len, strlen(want));
	free(want);
}

static void test_texts(void **state)
{
	(void)state;
	/* Parsed texts: key order kept, every escape jansson writes, UTF-8
	 * kept as it is, numbers at their limits, nesting, empty containers. */
	static const char *const texts[] = {
		"{}", "[]", "null", "true", "false", "0", "-0", "\"\"",
		"{\"b\":1,\"a\":2,\"c\":{\"z\":[],\"y\":{}}}",
		"[1,-1,9223372036854775807,-9223372036854775808,0.5,19.9,1e300,-2.5e-7,1.0,100.0,"
		"123456789012345678901234567890.0,1e22,5e-324]",
		"\"quote \\\" backslash \\\\ slash / \\/ controls \\b\\f\\n\\r\\t \\u0001\\u001f \\u007f\"",
		"\"\\u0000 inside\"",
		"{\"caf\\u00e9\":\"\\u00e9t\\u00e9 \\u20ac \\ud83d\\ude00 \xc3\xa9\"}",
		"{\"id\":1901,\"customer\":{\"email\":\"a@b.fr\",\"address\":{\"street\":\"1 rue\"}},"
		"\"lines\":[{\"id\":1,\"price\":\"19.90\",\"quantity\":2},{\"id\":2,\"price\":19.9}],"
		"\"active\":true,\"note\":null}",
	};
	struct buf w;
	buf_init(&w, 64u << 20);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		json_error_t err;
		json_t *v = json_loads(texts[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
		assert_non_null(v);
		same_as_jansson(&w, v);
		json_decref(v);
	}
	buf_free(&w);
}

static void test_built(void **state)
{
	(void)state;
	/* Values set by code (pii_scrub's hashes), every control byte, a long string. */
	struct buf w;
	buf_init(&w, 64u << 20);
	json_t *o = json_object();
	char ctl[32];
	for (int i = 0; i < 31; i++)
		ctl[i] = (char)(i + 1);
	ctl[31] = 0;
	json_object_set_new(o, "controls", json_string(ctl));
	json_object_set_new(o, "with\nnewline key", json_integer(-42));
	json_object_set_new(o, "real", json_real(0.1));
	char *big = malloc(100000);
	memset(big, 'x', 99999);
	big[99999] = 0;
	json_object_set_new(o, "big", json_string(big));
	same_as_jansson(&w, o);
	/* The buffer is reused: a shorter value after a long one. */
	json_t *small = json_pack("{s:i}", "k", 1);
	same_as_jansson(&w, small);
	json_decref(small);
	/* A cap below the text: NULL, not a cut text. */
	struct buf capped;
	buf_init(&capped, 1000);
	assert_null(jsonw_compact(&capped, o));
	buf_free(&capped);
	free(big);
	json_decref(o);
	buf_free(&w);
}

/* jsonw_string appends (the CSV row writer's cells): jansson's literal, after what b held. */
static void test_string_appends(void **state)
{
	(void)state;
	static const char *const cells[] = { "", "plain", "quote \" back \\ tab\t nl\n cr\r",
					     "\x01\x08\x0c\x1f end", "caf\xc3\xa9 \xe2\x82\xac" };
	struct buf w;
	buf_init(&w, 1u << 20);
	for (size_t i = 0; i < sizeof(cells) / sizeof(cells[0]); i++) {
		json_t *v = json_string(cells[i]);
		char *want = json_dumps(v, JSON_ENCODE_ANY);
		buf_reset(&w);
		assert_int_equal(buf_add(&w, "[", 1), 0);
		assert_true(jsonw_string(&w, cells[i], strlen(cells[i])));
		assert_int_equal(w.data[0], '[');
		assert_string_equal(w.data + 1, want);
		free(want);
		json_decref(v);
	}
	buf_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_texts),
		cmocka_unit_test(test_built),
		cmocka_unit_test(test_string_appends),
	};
	return cmocka_run_group_tests_name("jsonw", tests, NULL, NULL);
}
