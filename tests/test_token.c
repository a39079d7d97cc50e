/* test_token.c - the merchant's shared API token: handed out until due, dropped only when
 * it is still the one held, copies never the held string itself. */
#include "unit.h"

#include "token.h"

static void test_get_until_due(void **state)
{
	(void)state;
	struct token_cache *tc = token_cache_new();
	time_t renew = 0;
	assert_null(token_cache_get(tc, 1000, &renew));
	token_cache_put(tc, "abc", 1100);
	char *t = token_cache_get(tc, 1099, &renew);
	assert_string_equal(t, "abc");
	assert_int_equal(renew, 1100);
	free(t);
	assert_null(token_cache_get(tc, 1100, &renew)); /* due: the caller authenticates */
	token_cache_put(tc, "forever", 0);              /* no exp: kept until refused */
	t = token_cache_get(tc, 999999, &renew);
	assert_string_equal(t, "forever");
	assert_int_equal(renew, 0);
	free(t);
	token_cache_free(tc);
}

static void test_drop_only_the_refused_one(void **state)
{
	(void)state;
	struct token_cache *tc = token_cache_new();
	time_t renew = 0;
	token_cache_put(tc, "new", 0);
	token_cache_drop(tc, "old"); /* another job already replaced the refused token */
	char *t = token_cache_get(tc, 1, &renew);
	assert_string_equal(t, "new");
	free(t);
	token_cache_drop(tc, "new");
	assert_null(token_cache_get(tc, 1, &renew));
	token_cache_free(tc);
}

static void test_null_cache(void **state)
{
	(void)state;
	time_t renew = 0;
	assert_null(token_cache_get(NULL, 1, &renew));
	token_cache_put(NULL, "x", 0);
	token_cache_drop(NULL, "x");
	token_cache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_until_due),
		cmocka_unit_test(test_drop_only_the_refused_one),
		cmocka_unit_test(test_null_cache),
	};
	return cmocka_run_group_tests_name("token", tests, NULL, NULL);
}
