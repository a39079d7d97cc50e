/* test_stream.c - stream names: every stream round-trips, unknown names are refused. */
#include "unit.h"

#include "stream.h"

static void test_names_round_trip(void **state)
{
	(void)state;
	for (int s = 0; s < STREAM_COUNT; s++)
		assert_int_equal(stream_from_name(stream_name(s)), s);
	assert_string_equal(stream_name(STREAM_RETURN_REASONS), "return_reasons");
	assert_string_equal(stream_name(STREAM_SFTP), "sftp");
	/* The API streams come first: arrays sized STREAM_API_COUNT hold exactly them. */
	assert_int_equal(STREAM_SFTP, STREAM_API_COUNT);
}

static void test_unknown(void **state)
{
	(void)state;
	assert_int_equal(stream_from_name("Orders"), -1);
	assert_int_equal(stream_from_name(""), -1);
	assert_int_equal(stream_from_name("returns "), -1);
	assert_string_equal(stream_name((enum stream)STREAM_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_round_trip),
		cmocka_unit_test(test_unknown),
	};
	return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}
