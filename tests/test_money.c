/* test_money.c - prices to integer minor units, exactly, as the migration to schema 8 does too. */
#include <errno.h>
#include <inttypes.h>

#include "unit.h"

#include "money.h"
#include "store.h"

static const struct {
	const char *text;
	int exponent;
	int rc;
	int64_t want;
} cases[] = {
	{ "19.90", 2, 0, 1990 },   { "19,90", 2, 0, 1990 },  { "19.9", 2, 0, 1990 },
	{ "19", 2, 0, 1900 },      { "0.99", 2, 0, 99 },     { "1500", 0, 0, 1500 },
	{ "1500.4", 0, 0, 1500 },  { "1500.5", 0, 0, 1501 }, { "1.2345", 3, 0, 1235 },
	{ "12.345", 2, 0, 1235 },  { "12.3449", 2, 0, 1234 }, { "0.995", 2, 0, 100 },
	{ "-5", 2, 0, -500 },      { "-0.995", 2, 0, -100 }, { "+3.10", 2, 0, 310 },
	{ " 7.50 ", 2, 0, 750 },   { "0.00001", 4, 0, 0 },   { "1.00005", 4, 0, 10001 },
	{ "99999999999999.99", 2, 0, INT64_C(9999999999999999) },
	{ "99999999999999999.9", 2, -EINVAL, 0 }, /* more than 18 digits once scaled */
	{ "", 2, -EINVAL, 0 },     { ".5", 2, -EINVAL, 0 },  { "5.", 2, -EINVAL, 0 },
	{ "1,234.50", 2, -EINVAL, 0 }, { "--5", 2, -EINVAL, 0 }, { "12 EUR", 2, -EINVAL, 0 },
	{ "1e3", 2, -EINVAL, 0 },  { "abc", 2, -EINVAL, 0 },
};

static void test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = -42;
		int rc = money_parse_minor(cases[i].text, cases[i].exponent, &v);
		if (rc != cases[i].rc || (rc == 0 && v != cases[i].want))
			fail_msg("'%s' (exponent %d): rc %d value %" PRId64 ", want rc %d value %" PRId64,
				 cases[i].text, cases[i].exponent, rc, v, cases[i].rc, cases[i].want);
	}
	int64_t v;
	assert_int_equal(money_parse_minor(NULL, 2, &v), -EINVAL);
	assert_int_equal(money_parse_minor("1", 5, &v), -EINVAL);
}

/*
 * The exponent comes from the mirror's currencies table; unknown or missing
 * currency: no value.  The same answers with a memo of the last currency, as
 * the currency changes from line to line and back.
 */
static void test_minor_text(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path, err[256], buf[MONEY_TEXT_LEN];
	const char *out;
	struct store *st;
	struct money_memo memo = { "", 0 };
	struct money_memo *memos[] = { NULL, &memo };
	assert_true(asprintf(&path, "%s/m.db", dir) > 0);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	for (int k = 0; k < 2; k++) {
		struct money_memo *m = memos[k];
		assert_int_equal(money_minor_text(st, m, "19.90", "EUR", buf, &out), 0);
		assert_string_equal(out, "1990");
		assert_int_equal(money_minor_text(st, m, "1500", "JPY", buf, &out), 0);
		assert_string_equal(out, "1500");
		assert_int_equal(money_minor_text(st, m, "1500", "KRW", buf, &out), 0);
		assert_string_equal(out, "1500");
		assert_int_equal(money_minor_text(st, m, "1.5", "KWD", buf, &out), 0);
		assert_string_equal(out, "1500");
		assert_int_equal(money_minor_text(st, m, "1.5", "KWD", buf, &out), 0);
		assert_string_equal(out, "1500");
		assert_int_equal(money_minor_text(st, m, "5.00", "XYZ", buf, &out), 0);
		assert_null(out);
		assert_int_equal(money_minor_text(st, m, "5.00", "XYZ", buf, &out), 0);
		assert_null(out);
		assert_int_equal(money_minor_text(st, m, "5.00", "A-CURRENCY-NAME-TOO-LONG", buf, &out), 0);
		assert_null(out);
		assert_int_equal(money_minor_text(st, m, "5.00", NULL, buf, &out), 0);
		assert_null(out);
		assert_int_equal(money_minor_text(st, m, NULL, "EUR", buf, &out), 0);
		assert_null(out);
		assert_int_equal(money_minor_text(st, m, "cinq", "EUR", buf, &out), 0);
		assert_null(out);
		assert_int_equal(money_minor_text(st, m, "19.90", "EUR", buf, &out), 0);
		assert_string_equal(out, "1990");
	}
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_minor_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
