/* test_utf8.c - the one UTF-8 validator: what it takes, what it refuses, and its two users. */
#include "unit.h"

#include "ctl.h"
#include "utf8.h"

static void expect(const char *bytes, size_t n, bool valid)
{
	if (utf8_valid(bytes, n) != valid) {
		char hex[64] = "";
		for (size_t i = 0; i < n && i < 16; i++)
			snprintf(hex + 3 * i, 4, "%02X ", (unsigned char)bytes[i]);
		fail_msg("%s: %s, want %s", hex, valid ? "refused" : "taken", valid ? "taken" : "refused");
	}
}

#define VALID(s) expect(s, sizeof(s) - 1, true)
#define INVALID(s) expect(s, sizeof(s) - 1, false)

static void test_valid(void **state)
{
	(void)state;
	VALID("");
	VALID("plain ASCII");
	VALID("\0");                       /* U+0000 is a character; csvin refuses it itself */
	VALID("\xC2\x80");                 /* U+0080, the first two-byte one */
	VALID("caf\xC3\xA9");
	VALID("\xDF\xBF");                 /* U+07FF */
	VALID("\xE0\xA0\x80");             /* U+0800 */
	VALID("\xE2\x82\xAC");             /* euro sign */
	VALID("\xED\x9F\xBF");             /* U+D7FF, just below the surrogates */
	VALID("\xEE\x80\x80");             /* U+E000, just above */
	VALID("\xEF\xBF\xBF");             /* U+FFFF */
	VALID("\xF0\x90\x80\x80");         /* U+10000 */
	VALID("\xF0\x9F\x98\x80");         /* an emoji */
	VALID("\xF4\x8F\xBF\xBF");         /* U+10FFFF, the last */
}

static void test_overlong(void **state)
{
	(void)state;
	INVALID("\xC0\x80");               /* NUL in two bytes */
	INVALID("\xC0\xAF");               /* '/' in two bytes */
	INVALID("\xC1\xBF");
	INVALID("\xE0\x80\x80");
	INVALID("\xE0\x9F\xBF");           /* U+07FF in three bytes */
	INVALID("\xF0\x80\x80\x80");
	INVALID("\xF0\x8F\xBF\xBF");       /* U+FFFF in four bytes */
}

static void test_surrogates(void **state)
{
	(void)state;
	INVALID("\xED\xA0\x80");           /* U+D800 */
	INVALID("\xED\xAD\xBF");
	INVALID("\xED\xB0\x80");           /* U+DC00 */
	INVALID("\xED\xBF\xBF");           /* U+DFFF */
	INVALID("\xED\xA0\xBD\xED\xB8\x80"); /* a CESU-8 pair */
}

static void test_past_the_last_code_point(void **state)
{
	(void)state;
	INVALID("\xF4\x90\x80\x80");       /* U+110000 */
	INVALID("\xF5\x80\x80\x80");
	INVALID("\xF7\xBF\xBF\xBF");
	INVALID("\xF8\x88\x80\x80\x80");   /* the old five-byte form */
	INVALID("\xFC\x84\x80\x80\x80\x80");
	INVALID("\xFE");
	INVALID("\xFF");
}

static void test_truncated_and_stray(void **state)
{
	(void)state;
	INVALID("\xC3");
	INVALID("\xE2\x82");
	INVALID("\xF0\x9F\x98");
	INVALID("caf\xC3");
	INVALID("\x80");                   /* a continuation byte alone */
	INVALID("\xC3\xA9\xA9");
	INVALID("\xE2\x28\xA1");           /* a lead byte followed by ASCII */
	assert_true(utf8_cut("\xF0\x9F\x98", 3));
	assert_true(utf8_cut("\xE2", 1));
	assert_false(utf8_cut("\xED\xA0", 2));  /* cut, but a surrogate anyway */
	assert_false(utf8_cut("\xC3\xA9", 2));  /* complete */
	assert_false(utf8_cut("\x80", 1));
	assert_int_equal(utf8_seq("\xF0\x9F\x98\x80", 4), 4);
	assert_int_equal(utf8_seq("\xF0\x9F\x98\x80", 3), 0);
}

/*
 * ASCII passes eight bytes at a time: every sequence above, valid or not,
 * gives the same answer at each offset inside long ASCII text, and so does a
 * non-ASCII byte that ends the text.
 */
static void test_inside_ascii_text(void **state)
{
	(void)state;
	static const struct { const char *s; bool valid; } seqs[] = {
		{ "\xC3\xA9", true }, { "\xF0\x9F\x98\x80", true }, { "\xEF\xBF\xBF", true },
		{ "\xC0\xAF", false }, { "\xED\xA0\x80", false }, { "\xF4\x90\x80\x80", false },
		{ "\x80", false }, { "\xFF", false }, { "\xC3", false }, { "\xE2\x82", false },
	};
	char text[64];
	for (size_t k = 0; k < sizeof(seqs) / sizeof(seqs[0]); k++) {
		size_t len = strlen(seqs[k].s);
		for (size_t at = 0; at + len <= 40; at++) {
			for (size_t total = at + len; total <= 40; total += 7) {
				memset(text, 'a', total);
				memcpy(text + at, seqs[k].s, len);
				expect(text, total, seqs[k].valid);
			}
		}
	}
	memset(text, 'x', 40);
	expect(text, 40, true);
	expect(text, 0, true);
}

/* The control socket's messages: broken sequences become '?', one cut by the end goes. */
static void test_ctl_mend_uses_the_strict_rules(void **state)
{
	(void)state;
	char overlong[] = "a\xC0\xAF" "b", surrogate[] = "\xED\xA0\x80.", big[] = "\xF4\x90\x80\x80",
	     cut[] = "ok \xE2\x82", fine[] = "caf\xC3\xA9 \xF0\x9F\x98\x80";
	ctl_utf8_mend(overlong);
	assert_string_equal(overlong, "a??b");
	ctl_utf8_mend(surrogate);
	assert_string_equal(surrogate, "???.");
	ctl_utf8_mend(big);
	assert_string_equal(big, "????");
	ctl_utf8_mend(cut);
	assert_string_equal(cut, "ok ");
	ctl_utf8_mend(fine);
	assert_string_equal(fine, "caf\xC3\xA9 \xF0\x9F\x98\x80");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_overlong),
		cmocka_unit_test(test_surrogates),
		cmocka_unit_test(test_past_the_last_code_point),
		cmocka_unit_test(test_truncated_and_stray),
		cmocka_unit_test(test_inside_ascii_text),
		cmocka_unit_test(test_ctl_mend_uses_the_strict_rules),
	};
	return cmocka_run_group_tests_name("utf8", tests, NULL, NULL);
}
