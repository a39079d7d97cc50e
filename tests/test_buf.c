/* test_buf.c - the capped growable buffer: cap, growth, append, reset. */
#include <errno.h>

#include "unit.h"

#include "buf.h"

static void test_empty(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 100);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_str(&b), "");
	buf_reset(&b); /* reset and free of an empty buffer are harmless */
	buf_free(&b);
	assert_int_equal(b.max, 100);
}

static void test_append(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1000);
	assert_int_equal(buf_addstr(&b, "abc"), 0);
	assert_int_equal(buf_add(&b, "defXX", 3), 0);
	assert_int_equal(buf_add(&b, "", 0), 0);
	assert_int_equal(b.len, 6);
	assert_string_equal(buf_str(&b), "abcdef"); /* NUL-terminated in place */
	/* Bytes, not only text: an embedded NUL is kept and counted. */
	assert_int_equal(buf_add(&b, "g\0h", 3), 0);
	assert_int_equal(b.len, 9);
	assert_memory_equal(b.data, "abcdefg\0h", 10);
	buf_free(&b);
}

static void test_growth(void **state)
{
	(void)state;
	struct buf b;
	char chunk[1000];
	buf_init(&b, 1 << 20);
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 300; i++)
		assert_int_equal(buf_add(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 300000);
	assert_true(b.size > b.len); /* room for the NUL */
	assert_int_equal(b.data[b.len], 0);
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] != 'x')
			fail_msg("byte %zu lost in growth", i);
	buf_free(&b);
}

static void test_cap(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_addstr(&b, "0123456"), 0);
	/* One byte too many: refused whole, and what was there stays. */
	assert_int_equal(buf_addstr(&b, "7890"), -EMSGSIZE);
	assert_int_equal(b.len, 7);
	assert_string_equal(buf_str(&b), "0123456");
	/* Exactly up to the cap is allowed. */
	assert_int_equal(buf_addstr(&b, "789"), 0);
	assert_string_equal(buf_str(&b), "0123456789");
	assert_int_equal(buf_add(&b, "x", 1), -EMSGSIZE);
	/* The memory never grows much past the cap. */
	assert_true(b.size <= 11);
	/* A length that would overflow size_t is refused, not wrapped. */
	assert_int_equal(buf_add(&b, "x", SIZE_MAX), -EMSGSIZE);
	assert_int_equal(b.len, 10);
	buf_free(&b);

	buf_init(&b, 0); /* a cap of 0 holds nothing */
	assert_int_equal(buf_add(&b, "x", 1), -EMSGSIZE);
	assert_int_equal(buf_add(&b, "", 0), 0);
	assert_string_equal(buf_str(&b), "");
	buf_free(&b);
}

static void test_reset(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_addstr(&b, "12345678"), 0);
	char *mem = b.data;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_str(&b), "");
	assert_ptr_equal(b.data, mem); /* memory kept for reuse */
	/* After a reset the whole cap is available again. */
	assert_int_equal(buf_addstr(&b, "abcdefgh"), 0);
	assert_string_equal(buf_str(&b), "abcdefgh");

	buf_wipe(&b);
	assert_int_equal(b.len, 0);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(mem[i], 0); /* the secret's bytes are gone */
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_addstr(&b, "again"), 0); /* usable after free */
	assert_string_equal(buf_str(&b), "again");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_reset),
	};
	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
