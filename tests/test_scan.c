/* test_scan.c - what the scan decides without a server: which file names it takes, and when. */
#include "unit.h"
#include "unit_fixture.h"

#include "scan.h"
#include "tstamp.h"

static struct tz *paris;

static void expect_ok(enum csvin_kind k, const char *name, const char *utc)
{
	char reason[200] = "";
	time_t t;
	tstamp_t got;
	if (!scan_name_parse(k, name, paris, &t, reason, sizeof(reason)))
		fail_msg("%s refused: %s", name, reason);
	tstamp_format(t, got);
	assert_string_equal(got, utc);
}

static void expect_no(enum csvin_kind k, const char *name, const char *why)
{
	char reason[200] = "";
	time_t t;
	if (scan_name_parse(k, name, paris, &t, reason, sizeof(reason)))
		fail_msg("%s taken", name);
	if (!strstr(reason, why))
		fail_msg("%s: reason '%s' lacks '%s'", name, reason, why);
}

static void t_names(void **state)
{
	(void)state;
	/* the name's time is shop-local: winter +1, summer +2 */
	expect_ok(CSVIN_RETURNS, "returns_2025-01-15T02-00-00.csv", "2025-01-15T01:00:00Z");
	expect_ok(CSVIN_ORDERS, "orders_2025-07-01T03-30-15.CSV", "2025-07-01T01:30:15Z");
	expect_ok(CSVIN_DIMENSIONS, "dimensions_2025-01-15T02-00-00.csv", "2025-01-15T01:00:00Z");
	expect_ok(CSVIN_RETURN_REASONS, "return_reasons_2025-01-15T02-00-00.csv",
		  "2025-01-15T01:00:00Z");

	expect_no(CSVIN_RETURNS, "returns_2025-01-15.csv", "does not match returns_YYYY");
	expect_no(CSVIN_RETURNS, "returns_2025-01-15T02-00-00.csv.part", "does not match");
	expect_no(CSVIN_RETURNS, ".returns_2025-01-15T02-00-00.csv", "does not match");
	expect_no(CSVIN_RETURNS, "returns_2025-01-15T02:00:00.csv", "does not match");
	expect_no(CSVIN_RETURNS, "Returns_2025-01-15T02-00-00.csv", "does not match");
	expect_no(CSVIN_RETURNS, "orders_2025-01-15T02-00-00.csv", "an orders file in the returns/");
	expect_no(CSVIN_DIMENSIONS, "products_2025-01-15T02-00-00.csv", "a products file in the misc/");
	expect_no(CSVIN_DIMENSIONS, "sizes_2025-01-15T02-00-00.csv", "dimensions_YYYY");
	expect_no(CSVIN_RETURNS, "returns_2025-02-30T02-00-00.csv", "not a valid date");
	expect_no(CSVIN_RETURNS, "returns_2025-01-15T25-00-00.csv", "not a valid date");
	expect_no(CSVIN_RETURNS, "returns_", "does not match");
	expect_no(CSVIN_RETURNS, "", "does not match");
}

static void t_kind_names(void **state)
{
	(void)state;
	for (int k = 0; k < CSVIN_KIND_COUNT; k++)
		assert_int_equal(csvin_kind_from_name(csvin_kind_name(k)), k);
	assert_int_equal(csvin_kind_from_name("sizes"), -1);
	/* the tie-break order of files with the same time */
	assert_true(CSVIN_RETURN_REASONS < CSVIN_PRODUCTS && CSVIN_PRODUCTS < CSVIN_ORDERS &&
		    CSVIN_ORDERS < CSVIN_RETURNS && CSVIN_RETURNS < CSVIN_DIMENSIONS);
}

static int load_paris(void **state)
{
	(void)state;
	char err[512];
	return tz_load("Europe/Paris", &paris, err, sizeof(err));
}

static int free_paris(void **state)
{
	(void)state;
	tz_free(paris);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_names),
		cmocka_unit_test(t_kind_names),
	};
	return cmocka_run_group_tests(tests, load_paris, free_paris);
}
