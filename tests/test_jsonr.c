/* test_jsonr.c - the reply parser accepts, rejects and builds what json_loadb(..., 0, ...) does. */
#include "unit.h"

#include "jsonr.h"

/* jsonr_loadb and json_loadb agree on text (n bytes): both refuse it, or both build the same tree. */
static void agree(const char *text, size_t n)
{
	json_error_t e1, e2;
	json_t *want = json_loadb(text, n, 0, &e1);
	json_t *got = jsonr_loadb(text, n, &e2);
	if (!want != !got)
		fail_msg("jansson %s, jsonr %s: \"%.*s\"", want ? "accepts" : "refuses",
			 got ? "accepts" : "refuses", (int)(n > 200 ? 200 : n), text);
	if (want) {
		/* The same values, types and key order: the same compact text. */
		char *a = json_dumps(want, JSON_COMPACT), *b = json_dumps(got, JSON_COMPACT);
		assert_non_null(a);
		assert_non_null(b);
		assert_string_equal(b, a);
		assert_true(json_equal(want, got));
		free(a);
		free(b);
	} else {
		assert_true(e2.text[0] != 0); /* a reason, for the log */
	}
	json_decref(want);
	json_decref(got);
}

static void agree_s(const char *text)
{
	agree(text, strlen(text));
}

static const char *const texts[] = {
	/* accepted */
	"{}", "[]", " \t\r\n{ } \n", "[1,2,3]", "[-0,0,-1,10,9223372036854775807,-9223372036854775808]",
	"[0.5,-0.0,1e5,1E+5,1e-5,2.5E-3,1e-400,123456789012345678901234567890]",
	"{\"a\":1,\"b\":{\"c\":[true,false,null]},\"a\":2}", /* a repeated key keeps its place */
	"[\"\",\"x\",\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\\u00e9\\u20AC\\ud83d\\ude00\",\"caf\xc3\xa9\"]",
	"{\"\\u00e9t\\u00e9\":\"k\",\"esc\\naped key\":{\"inner\\tkey\":\"v\\\"\"}}",
	"[\"\x7f\",\"\xf4\x8f\xbf\xbf\"]",
	/* refused */
	"", " ", "1", "\"s\"", "true", "null", "[", "{", "]", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}",
	"{\"a\":1,}", "{a:1}", "[01]", "[-]", "[1.]", "[.5]", "[+1]", "[1e]", "[1e+]", "[1x]",
	"[tru]", "[truex]", "[nul]", "[True]", "[9223372036854775808]", "[-9223372036854775809]",
	"[1e400]", "[-1e400]", "[\"\\u0000\"]", "[\"\\ud83d\"]", "[\"\\ude00\"]", "[\"\\ud83d\\u0041\"]",
	"[\"\\x\"]", "[\"\\u12\"]", "[\"\\u12G4\"]", "[\"a\nb\"]", "[\"\x01\"]", "[\"\xc3\"]",
	"[\"\xc0\xaf\"]", "[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]", "[\"unterminated]", "[1] x",
	"[1] [2]", "{\"a\":1}}", "[\"\\", "[\"\\u", "\xef\xbb\xbf[]",
};

static void test_texts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		agree_s(texts[i]);
	/* A NUL byte inside the buffer, in a string and between tokens. */
	agree("[\"a\0b\"]", 7);
	agree("[1,\0 2]", 7);
}

/*
 * The one difference (jsonr.h): jansson skips a NUL byte straight after a
 * number or a literal; a reply holding one is refused, with a reason.
 */
static void test_nul_after_token(void **state)
{
	static const struct {
		const char *text;
		size_t n;
	} cases[] = { { "[1\0]", 4 }, { "[-2.5e3\0,2]", 11 }, { "[true\0]", 7 }, { "{\"a\":null\0}", 11 } };
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_error_t e;
		json_t *jansson = json_loadb(cases[i].text, cases[i].n, 0, &e);
		assert_non_null(jansson); /* if jansson ever refuses these, the note in jsonr.h can go */
		json_decref(jansson);
		assert_null(jsonr_loadb(cases[i].text, cases[i].n, &e));
		assert_true(e.text[0] != 0);
	}
}

static void test_depth(void **state)
{
	(void)state;
	/* jansson's limit: 2048 nested containers pass, 2049 do not. */
	for (int depth = 2047; depth <= 2049; depth++) {
		char *s = malloc((size_t)depth * 2 + 1);
		memset(s, '[', (size_t)depth);
		memset(s + depth, ']', (size_t)depth);
		agree(s, (size_t)depth * 2);
		free(s);
	}
}

/* A page as the emulator serves it. */
static const char page[] =
	"{\"success\":true,\"orders\":[{\"id\":1901,\"reference\":\"XKBKNABJK\",\"status\":\"paid\","
	"\"date_add\":\"2025-03-30 02:30:00\",\"customer\":{\"email\":\"l\\u00e9a@example.fr\","
	"\"firstname\":\"L\xc3\xa9" "a\",\"address\":{\"street\":\"12 rue \\\"Haute\\\"\"}},"
	"\"lines\":[{\"id\":1,\"product_id\":17,\"price\":19.9,\"quantity\":2,\"sku\":null},"
	"{\"id\":2,\"price\":\"5.00\",\"quantity\":-1,\"comment\":\"tab\\there\"}],"
	"\"total\":1.5e2,\"flags\":[true,false,null,[],{}]}]}";

static void test_mutations(void **state)
{
	(void)state;
	/* Every one-byte change of a page to a byte that matters to the grammar,
	 * and every cut of it: the two parsers agree on each. */
	static const char bytes[] = "{}[],:\"\\/ntfu0123456789.-+eE \x01\xc3\xa9\x80\xff";
	size_t n = sizeof(page) - 1;
	char *buf = malloc(n);
	for (size_t i = 0; i < n; i++) {
		for (size_t b = 0; b < sizeof(bytes) - 1; b++) {
			memcpy(buf, page, n);
			buf[i] = bytes[b];
			agree(buf, n);
		}
		agree(page, i);
	}
	agree(page, n);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_texts),
		cmocka_unit_test(test_nul_after_token),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests_name("jsonr", tests, NULL, NULL);
}
