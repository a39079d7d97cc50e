/* test_jarena.c - reply values from a bump arena: same values, memory reused only when all are freed. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "jarena.h"
#include "jsonr.h"

static const char PAGE[] =
	"{\"success\":true,\"data\":[{\"id\":1,\"name\":\"Robe \\u00e9t\\u00e9\",\"price\":\"79.00\","
	"\"lines\":[{\"id\":1,\"qty\":2},{\"id\":2,\"qty\":1.5}],\"active\":false,\"note\":null},"
	"{\"id\":2,\"name\":\"Chemise\",\"tags\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}]}";

static json_t *parse_in(struct jarena *a)
{
	struct jarena *previous = jarena_enter(a);
	json_t *v = jsonr_loadb(PAGE, strlen(PAGE), NULL);
	jarena_leave(previous);
	assert_non_null(v);
	return v;
}

/* false under AddressSanitizer, which is to see every value's own lifetime (jarena.h) */
static bool installed;

/* A tree parsed into an arena is the tree json_loadb builds, and it serializes and frees as one. */
static void test_same_values(void **state)
{
	(void)state;
	if (!installed)
		skip();
	struct jarena *a = jarena_new();
	assert_non_null(a);
	json_t *v = parse_in(a), *want = json_loadb(PAGE, strlen(PAGE), 0, NULL);
	assert_true(jarena_used(a) > 0);
	assert_true(json_equal(v, want));
	/* Outside the arena, jansson's own allocations stay malloc's: free() takes them. */
	char *text = json_dumps(v, JSON_COMPACT);
	assert_non_null(text);
	free(text);
	/* A heap value holding an arena value, freed in either order. */
	json_t *holder = json_object();
	json_object_set(holder, "page", v);
	json_decref(v);
	json_decref(holder);
	json_decref(want);
	assert_int_equal(jarena_used(a), 0);
	jarena_free(a);
}

/* Memory is reused from the start only once every value of the last tree is freed. */
static void test_restart_when_all_freed(void **state)
{
	(void)state;
	if (!installed)
		skip();
	struct jarena *a = jarena_new();
	json_t *v = parse_in(a);
	size_t one = jarena_used(a);
	json_t *first = json_array_get(json_object_get(v, "data"), 0);
	json_decref(v);
	assert_int_equal(jarena_used(a), 0);

	v = parse_in(a);
	assert_int_equal(jarena_used(a), one);
	assert_ptr_equal(json_array_get(json_object_get(v, "data"), 0), first);

	/* A record kept past its page holds the arena: the next page goes after it. */
	json_t *kept = json_incref(json_array_get(json_object_get(v, "data"), 1));
	json_decref(v);
	json_t *w = parse_in(a);
	assert_int_equal(jarena_used(a), 2 * one);
	assert_string_equal(json_string_value(json_object_get(kept, "name")), "Chemise");
	json_decref(w);
	json_decref(kept);
	assert_int_equal(jarena_used(a), 0);
	jarena_free(a);
}

static void *drop(void *v)
{
	json_decref(v);
	return NULL;
}

/* A value freed by another thread counts as freed. */
static void test_free_elsewhere(void **state)
{
	(void)state;
	if (!installed)
		skip();
	struct jarena *a = jarena_new();
	json_t *v = parse_in(a);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, drop, v), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(jarena_used(a), 0);
	jarena_free(a);
}

/* Without an arena (none left, or NULL) values come from malloc and free normally. */
static void test_without_arena(void **state)
{
	(void)state;
	if (!installed)
		skip();
	struct jarena *all[64];
	int n = 0;
	while (n < 64 && (all[n] = jarena_new()))
		n++;
	assert_true(n > 0 && n < 64);
	assert_null(jarena_new());
	json_t *v = parse_in(NULL);
	assert_true(json_is_object(v));
	json_decref(v);
	for (int i = 0; i < n; i++)
		jarena_free(all[i]);
	struct jarena *again = jarena_new();
	assert_non_null(again);
	jarena_free(again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_values),
		cmocka_unit_test(test_restart_when_all_freed),
		cmocka_unit_test(test_free_elsewhere),
		cmocka_unit_test(test_without_arena),
	};
	installed = jarena_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
