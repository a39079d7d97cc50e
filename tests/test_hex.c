/* test_hex.c - the one hex encoder. */
#include "unit.h"

#include "hex.h"

static void test_encode(void **state)
{
	(void)state;
	const unsigned char in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	char out[2 * sizeof(in) + 1];
	memset(out, 'x', sizeof(out));
	hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "00017f80abff");
	hex_encode(in, 0, out);
	assert_string_equal(out, "");
	hex_encode(in + 4, 1, out); /* only n bytes are read, and 2n + 1 written */
	assert_string_equal(out, "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode),
	};
	return cmocka_run_group_tests_name("hex", tests, NULL, NULL);
}
