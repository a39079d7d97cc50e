/* test_reproject.c - rebuilding the canonical tables from the raw records, after a setting changed. */
#include <errno.h>

#include "unit.h"
#include "unit_sql.h"
#include "unit_fixture.h"

#include "canon.h"
#include "profile.h"
#include "reproject.h"
#include "store.h"

struct fixture {
	char *dir;
	struct store *st;
	struct profile *p;
	struct merchant_conf m;
	struct tz *zones;
};

static char ID_FIELD[] = "id", REF_FIELD[] = "reference";

static const char *SIZE_M = "{\"id\":4,\"label\":\"M\",\"translations\":{\"en\":\"M\",\"fr\":\"M\"}}";
static const char *SIZE_L = "{\"id\":5,\"label\":\"L\",\"translations\":{\"en\":\"L\",\"fr\":\"L\"}}";
static const char *PRODUCT =
	"{\"active\":true,\"date_add\":\"2025-03-01 10:00:00\",\"date_upd\":\"2026-11-20 08:15:02\","
	"\"department_id\":12,\"id\":1042,\"images\":[\"https://shop.example/img/1.jpg\"],"
	"\"parent_reference\":\"TSH-001\",\"reference\":\"TSH-001-BLU\","
	"\"sizes\":[{\"ean\":\"3700000502114\",\"id\":50211,\"size_id\":4,\"sku\":\"TSH-001-BLU-M\",\"stock\":12},"
	"{\"ean\":\"3700000502121\",\"id\":50212,\"size_id\":5,\"sku\":\"TSH-001-BLU-L\",\"stock\":0}],"
	"\"translations\":{\"en\":{\"name\":\"Blue tee\"},\"fr\":{\"name\":\"Tee-shirt bleu\"}}}";
static const char *PRODUCT2 =
	"{\"date_upd\":\"2026-10-01 12:00:00\",\"id\":2001,\"reference\":\"POLO-1\","
	"\"sizes\":[{\"id\":60001,\"size_id\":4,\"sku\":\"POLO-1-M\"}],"
	"\"translations\":{\"fr\":{\"name\":\"Polo\"}}}";
static const char *ORDER =
	"{\"currency\":\"EUR\",\"customer\":\"0123456789abcdef0123456789abcdef\","
	"\"date_add\":\"2026-11-19 10:00:00\",\"date_upd\":\"2026-11-20 08:15:02\",\"id\":99001,"
	"\"lines\":[{\"id\":1,\"price\":\"19.90\",\"product_id\":1042,\"product_size_id\":50211,\"quantity\":1},"
	"{\"id\":2,\"price\":\"25.00\",\"product_id\":2001,\"product_size_id\":60001,\"quantity\":1}],"
	"\"reference\":\"WS-99001\",\"status\":\"shipped\"}";
static const char *ORDER2 =
	"{\"currency\":\"EUR\",\"date_add\":\"2026-11-21 10:00:00\",\"date_upd\":\"2026-11-21 10:00:00\","
	"\"id\":99002,\"lines\":[{\"id\":1,\"product_id\":1042,\"product_size_id\":50212,\"quantity\":3}],"
	"\"status\":\"new\"}";

static void put_raw(struct store *st, const char *stream, const char *id, const char *json, int64_t run)
{
	struct store_record r = { stream, id, "api", NULL, json };
	assert_int_equal(store_record_put(st, &r, "2026-11-22T00:00:00Z", run, NULL), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	unit_mirror_open(&f->dir, &f->st);
	f->p = unit_profile("default", NULL, 0);
	unit_merchant(&f->m, "acme-fr", &f->zones);

	/* Raw records as a sync stored them, orders before products on purpose:
	 * reprojection goes reference data first, then products, then orders. */
	assert_int_equal(store_begin(f->st), 0);
	put_raw(f->st, "orders", "99001", ORDER, 1);
	put_raw(f->st, "orders", "99002", ORDER2, 1);
	put_raw(f->st, "products", "1042", PRODUCT, 1);
	put_raw(f->st, "products", "2001", PRODUCT2, 1);
	put_raw(f->st, "sizes", "4", SIZE_M, 1);
	put_raw(f->st, "sizes", "5", SIZE_L, 1);
	assert_int_equal(store_commit(f->st), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unit_mirror_close(f->dir, f->st);
	profile_free(f->p);
	tz_free(f->zones);
	free(f);
	return 0;
}

static int64_t reproject(struct fixture *f)
{
	char err[512] = "";
	int64_t n = -1;
	int r = reproject_run(f->st, f->p, &f->m, &n, err, sizeof(err));
	if (r != 0)
		fail_msg("reproject_run: %d (%s)", r, err);
	return n;
}

/* The mirror's query helpers (unit_sql.h), on the fixture's store. */
#define query_int(f, sql) unit_query_int(store_db((f)->st), sql)
#define rows(f, sql) unit_rows(store_db((f)->st), sql)
#define expect_rows(f, sql, want) unit_expect_rows(store_db((f)->st), sql, want)

/* The canonical tables whole, to tell whether anything changed. */
static char *canonical_dump(struct fixture *f)
{
	static const char *const q[] = {
		"SELECT * FROM products ORDER BY product_id",
		"SELECT * FROM variants ORDER BY variant_id",
		"SELECT * FROM sizes ORDER BY size_id",
		"SELECT * FROM labels ORDER BY entity, entity_id, lang, field",
		"SELECT * FROM orders ORDER BY order_id",
		"SELECT * FROM order_lines ORDER BY order_id, line_no",
	};
	char *all = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&all, &len);
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		char *r = rows(f, q[i]);
		fprintf(m, "%s\n%s", q[i], r);
		free(r);
	}
	fclose(m);
	return all;
}

static void test_reproject_builds_the_tables(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(reproject(f), 6);

	expect_rows(f, "SELECT size_id, label FROM sizes ORDER BY size_id", "4|M\n5|L\n");
	expect_rows(f, "SELECT product_id, source_id, parent_reference, title, updated_at, deactivated"
		       " FROM products ORDER BY product_id",
		    "1042|1042|TSH-001|Tee-shirt bleu|2026-11-20T07:15:02Z|0\n"
		    "2001|2001|~|Polo|2026-10-01T10:00:00Z|0\n");
	/* Sizes came first, so the variants have their labels. */
	expect_rows(f, "SELECT variant_id, product_id, sku, size_label FROM variants ORDER BY variant_id",
		    "50211|1042|TSH-001-BLU-M|M\n50212|1042|TSH-001-BLU-L|L\n60001|2001|POLO-1-M|M\n");
	/* Products came before orders, so the lines have sku and size from their variants. */
	expect_rows(f, "SELECT order_id, line_no, product_id, variant_id, sku, size_label, quantity"
		       " FROM order_lines ORDER BY order_id, line_no",
		    "99001|1|1042|50211|TSH-001-BLU-M|M|1\n"
		    "99001|2|2001|60001|POLO-1-M|M|1\n"
		    "99002|1|1042|50212|TSH-001-BLU-L|L|3\n");
	expect_rows(f, "SELECT order_id, ordered_at, customer_hash FROM orders ORDER BY order_id",
		    "99001|2026-11-19T09:00:00Z|0123456789abcdef0123456789abcdef\n"
		    "99002|2026-11-21T09:00:00Z|~\n");

	/* Twice gives the same mirror. */
	char *before = canonical_dump(f);
	assert_int_equal(reproject(f), 6);
	char *after = canonical_dump(f);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_product_id_field_change_is_consistent(void **state)
{
	struct fixture *f = *state;
	reproject(f);
	f->m.product_id_field = REF_FIELD;
	assert_int_equal(reproject(f), 6);

	expect_rows(f, "SELECT product_id, source_id FROM products ORDER BY product_id",
		    "POLO-1|2001\nTSH-001-BLU|1042\n");
	expect_rows(f, "SELECT variant_id, product_id FROM variants ORDER BY variant_id",
		    "50211|TSH-001-BLU\n50212|TSH-001-BLU\n60001|POLO-1\n");
	expect_rows(f, "SELECT DISTINCT entity_id FROM labels WHERE entity = 'product' ORDER BY entity_id",
		    "POLO-1\nTSH-001-BLU\n");
	expect_rows(f, "SELECT order_id, line_no, product_id FROM order_lines ORDER BY order_id, line_no",
		    "99001|1|TSH-001-BLU\n99001|2|POLO-1\n99002|1|TSH-001-BLU\n");
	/* Nothing anywhere still says 1042 or 2001 as a product id. */
	assert_int_equal(query_int(f, "SELECT (SELECT count(*) FROM products WHERE product_id IN ('1042','2001'))"
				      " + (SELECT count(*) FROM variants WHERE product_id IN ('1042','2001'))"
				      " + (SELECT count(*) FROM labels WHERE entity = 'product'"
				      "    AND entity_id IN ('1042','2001'))"
				      " + (SELECT count(*) FROM order_lines WHERE product_id IN ('1042','2001'))"),
			 0);

	/* And back. */
	f->m.product_id_field = ID_FIELD;
	reproject(f);
	expect_rows(f, "SELECT DISTINCT product_id FROM order_lines ORDER BY product_id", "1042\n2001\n");
	expect_rows(f, "SELECT DISTINCT entity_id FROM labels WHERE entity = 'product' ORDER BY entity_id",
		    "1042\n2001\n");
}

static void test_deleted_records_stay_forgotten(void **state)
{
	struct fixture *f = *state;
	/* A full read by run 2 saw order 99002 and product 2001 only. */
	int n;
	assert_int_equal(store_begin(f->st), 0);
	put_raw(f->st, "orders", "99002", ORDER2, 2);
	put_raw(f->st, "products", "2001", PRODUCT2, 2);
	assert_int_equal(store_record_sweep(f->st, "orders", "api", 2, "2026-11-23T00:00:00Z", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_record_sweep(f->st, "products", "api", 2, "2026-11-23T00:00:00Z", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_commit(f->st), 0);

	reproject(f);
	expect_rows(f, "SELECT order_id FROM orders", "99002\n");
	assert_int_equal(query_int(f, "SELECT count(*) FROM order_lines WHERE order_id = '99001'"), 0);
	/* A product no longer served is kept, deactivated, so order history still finds it. */
	expect_rows(f, "SELECT product_id, deactivated FROM products ORDER BY product_id", "1042|1\n2001|0\n");
}

static void test_unparsable_record_changes_nothing(void **state)
{
	struct fixture *f = *state;
	reproject(f);
	char *before = canonical_dump(f);

	assert_int_equal(store_begin(f->st), 0);
	put_raw(f->st, "orders", "99003", "{\"id\":99003,\"lines\":[", 1);
	assert_int_equal(store_commit(f->st), 0);
	f->m.product_id_field = REF_FIELD; /* would change every product id */

	char err[512] = "";
	int64_t n = 0;
	int r = reproject_run(f->st, f->p, &f->m, &n, err, sizeof(err));
	assert_true(r < 0);
	assert_non_null(strstr(err, "99003"));
	char *after = canonical_dump(f);
	assert_string_equal(before, after);
	free(before);
	free(after);
	/* The store is usable afterwards: no transaction left open. */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_commit(f->st), 0);
}

/* Rows that came from SFTP are not the API's to drop. */
static void test_sftp_rows_survive(void **state)
{
	struct fixture *f = *state;
	const char *p[P_COUNT] = { "SFTP-9", NULL, NULL, "From a CSV", NULL, NULL, NULL, NULL, NULL,
				   "2026-11-01T00:00:00Z", "0" };
	const char *v[V_COUNT] = { "sftp-v9", "SFTP-9", "S9", NULL, NULL, "M", NULL };
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(canon_put(f->st, CANON_PRODUCTS, p, "sftp", NULL), 0);
	assert_int_equal(canon_put(f->st, CANON_VARIANTS, v, "sftp", NULL), 0);
	assert_int_equal(store_commit(f->st), 0);

	reproject(f);
	expect_rows(f, "SELECT product_id, title, source FROM products WHERE source = 'sftp'", "SFTP-9|From a CSV|sftp\n");
	expect_rows(f, "SELECT variant_id FROM variants WHERE source = 'sftp'", "sftp-v9\n");
	assert_int_equal(query_int(f, "SELECT count(*) FROM products"), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reproject_builds_the_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_product_id_field_change_is_consistent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_records_stay_forgotten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unparsable_record_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sftp_rows_survive, setup, teardown),
	};
	return cmocka_run_group_tests_name("reproject", tests, NULL, NULL);
}
