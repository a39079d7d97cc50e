/* test_jsonstr.c - the plain-run scanner stops where a byte-by-byte scan stops, and sees every high byte. */
#include "unit.h"

#include "jsonstr.h"

/* What jsonstr_plain must answer, one byte at a time. */
static size_t plain_bytewise(const char *s, size_t n, unsigned char *high)
{
	size_t i = 0;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == '"' || c == '\\')
			break;
		*high |= c;
	}
	return i;
}

static void expect_same(const char *s, size_t n)
{
	unsigned char want_high = 0, got_high = 0;
	size_t want = plain_bytewise(s, n, &want_high);
	size_t got = jsonstr_plain(s, n, &got_high);
	assert_int_equal(got, want);
	assert_int_equal(got_high & 0x80, want_high & 0x80);
}

/* Each stop byte, and each byte next to the edges of the tests (0x1F/0x20,
 * 0x21/0x22/0x23, 0x5B/0x5C/0x5D, 0x7F/0x80, 0xFF), at every offset of texts
 * up to 40 bytes, with plain bytes before and after it. */
static void test_every_stop_at_every_offset(void **state)
{
	(void)state;
	static const unsigned char bytes[] = { 0x00, 0x01, 0x0A, 0x1F, 0x20, 0x21, '"', 0x23, 0x5B,
					       '\\', 0x5D, 0x7F, 0x80, 0xC3, 0xFF };
	char text[48];
	for (size_t b = 0; b < sizeof(bytes); b++)
		for (size_t n = 0; n <= 40; n++)
			for (size_t at = 0; at < n; at++) {
				memset(text, 'q', n);
				text[at] = (char)bytes[b];
				expect_same(text, n);
			}
}

/* Two stops in one word: the first is found, whatever the second. */
static void test_first_of_two_stops(void **state)
{
	(void)state;
	static const char stops[] = { '"', '\\', '\n', 0x1F };
	char text[24];
	for (size_t a = 0; a < sizeof(stops); a++)
		for (size_t b = 0; b < sizeof(stops); b++)
			for (size_t i = 0; i < 16; i++)
				for (size_t j = i + 1; j < 16; j++) {
					memset(text, 'z', sizeof(text));
					text[i] = stops[a];
					text[j] = stops[b];
					expect_same(text, sizeof(text));
					unsigned char high = 0;
					assert_int_equal(jsonstr_plain(text, sizeof(text), &high), i);
				}
}

/* Random texts over all 256 byte values, mostly plain: same as byte by byte. */
static void test_random_texts(void **state)
{
	(void)state;
	unsigned int seed = 12345;
	char text[200];
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof(text));
		for (size_t i = 0; i < n; i++) {
			int r = rand_r(&seed) % 100;
			text[i] = r < 90 ? (char)(0x20 + rand_r(&seed) % 0x5F)
				: (char)(rand_r(&seed) % 256);
		}
		expect_same(text, n);
	}
}

/* *high collects: an ASCII text leaves it below 0x80, one high byte anywhere in the plain run sets it. */
static void test_high_bytes(void **state)
{
	(void)state;
	char text[40];
	memset(text, 'a', sizeof(text));
	unsigned char high = 0;
	assert_int_equal(jsonstr_plain(text, sizeof(text), &high), sizeof(text));
	assert_int_equal(high & 0x80, 0);
	for (size_t at = 0; at < sizeof(text); at++) {
		memset(text, 'a', sizeof(text));
		text[at] = (char)0xE9;
		high = 0;
		assert_int_equal(jsonstr_plain(text, sizeof(text), &high), sizeof(text));
		assert_int_equal(high & 0x80, 0x80);
	}
	/* a high byte after the stop is not passed over */
	memset(text, 'a', sizeof(text));
	text[3] = '"';
	text[5] = (char)0xE9;
	high = 0;
	assert_int_equal(jsonstr_plain(text, sizeof(text), &high), 3);
	assert_int_equal(high & 0x80, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_stop_at_every_offset),
		cmocka_unit_test(test_first_of_two_stops),
		cmocka_unit_test(test_random_texts),
		cmocka_unit_test(test_high_bytes),
	};
	return cmocka_run_group_tests_name("jsonstr", tests, NULL, NULL);
}
