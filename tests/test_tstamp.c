/* test_tstamp.c - UTC text and shop-local conversion, daylight-saving edges included. */
#include <errno.h>

#include "unit.h"

#include "tstamp.h"

static time_t utc(const char *s)
{
	time_t t;
	assert_int_equal(tstamp_parse(s, &t), 0);
	return t;
}

static void expect_local(const char *tz, const char *local, const char *want_utc)
{
	time_t t;
	tstamp_t out;
	if (tstamp_from_local(tz, local, &t) != 0)
		fail_msg("%s did not parse", local);
	tstamp_format(t, out);
	if (strcmp(out, want_utc) != 0)
		fail_msg("%s in %s: got %s, want %s", local, tz, out, want_utc);
}

static void test_format_parse_round_trip(void **state)
{
	(void)state;
	tstamp_t out;
	tstamp_format(utc("2026-11-27T02:30:05Z"), out);
	assert_string_equal(out, "2026-11-27T02:30:05Z");
	time_t t;
	assert_int_equal(tstamp_parse("2026-02-30T00:00:00Z", &t), -EINVAL);
	assert_int_equal(tstamp_parse("2026-01-01 00:00:00", &t), -EINVAL);
	assert_int_equal(tstamp_parse("2026-01-01T00:00:00Zjunk", &t), -EINVAL);
}

static void test_paris_winter_and_summer(void **state)
{
	(void)state;
	expect_local("Europe/Paris", "2026-01-15 10:00:00", "2026-01-15T09:00:00Z");
	expect_local("Europe/Paris", "2026-07-15 10:00:00", "2026-07-15T08:00:00Z");
	expect_local("Europe/Paris", "2026-07-15T10:00:00", "2026-07-15T08:00:00Z");
	expect_local("Europe/Paris", "2026-07-15", "2026-07-14T22:00:00Z");
	expect_local("Europe/Paris", "15/07/2026", "2026-07-14T22:00:00Z");
	expect_local("Europe/Paris", "15/07/2026 10:00", "2026-07-15T08:00:00Z");
	expect_local("Asia/Tokyo", "2026-07-15 10:00:00", "2026-07-15T01:00:00Z");
}

static void test_explicit_offsets(void **state)
{
	(void)state;
	expect_local("Europe/Paris", "2026-07-15T10:00:00Z", "2026-07-15T10:00:00Z");
	expect_local("Europe/Paris", "2026-07-15T10:00:00+05:30", "2026-07-15T04:30:00Z");
	expect_local("Europe/Paris", "2026-07-15T10:00:00.123-0200", "2026-07-15T12:00:00Z");
}

/* 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice; the first is 00:30Z. */
static void test_autumn_repeated_hour_is_first_occurrence(void **state)
{
	(void)state;
	expect_local("Europe/Paris", "2026-10-25 02:30:00", "2026-10-25T00:30:00Z");
	expect_local("Europe/Paris", "2026-10-25 03:00:00", "2026-10-25T02:00:00Z");
	expect_local("Europe/Paris", "2026-10-25 01:59:59", "2026-10-24T23:59:59Z");
}

/* 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist and moves to 03:30 CEST. */
static void test_spring_gap_moves_forward(void **state)
{
	(void)state;
	expect_local("Europe/Paris", "2026-03-29 02:30:00", "2026-03-29T01:30:00Z");
	expect_local("Europe/Paris", "2026-03-29 03:30:00", "2026-03-29T01:30:00Z");
	expect_local("Europe/Paris", "2026-03-29 01:59:00", "2026-03-29T00:59:00Z");
}

static void test_to_local(void **state)
{
	(void)state;
	char buf[32];
	assert_int_equal(tstamp_to_local("Europe/Paris", utc("2026-07-15T08:00:00Z"),
					 "%Y-%m-%d %H:%M:%S", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-07-15 10:00:00");
	assert_int_equal(tstamp_offset("Europe/Paris", utc("2026-01-15T08:00:00Z")), 3600);
}

static void test_garbage_is_refused(void **state)
{
	(void)state;
	const char *bad[] = { "", "yesterday", "2026-13-01", "32/01/2026", "2026-01-01 25:00:00",
			      "2026-01-01T10:00:00+5", "2026-01-01 10:00:00 extra", "1/2/2026" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		time_t t;
		if (tstamp_from_local("Europe/Paris", bad[i], &t) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_parse_round_trip),
		cmocka_unit_test(test_paris_winter_and_summer),
		cmocka_unit_test(test_explicit_offsets),
		cmocka_unit_test(test_autumn_repeated_hour_is_first_occurrence),
		cmocka_unit_test(test_spring_gap_moves_forward),
		cmocka_unit_test(test_to_local),
		cmocka_unit_test(test_garbage_is_refused),
	};
	return cmocka_run_group_tests_name("tstamp", tests, NULL, NULL);
}
