/* test_export.c - the mirror as CSV: DOMAIN.md §3 headers, RFC 4180 quoting, CRLF, --since, dimensions. */
#include <errno.h>

#include "unit.h"
#include "unit_fixture.h"

#include "canon.h"
#include "export.h"
#include "store.h"

struct fixture {
	char *dir;
	struct store *st;
};

static void put(struct store *st, enum canon_table t, const char *const *row, const char *source)
{
	bool applied = false;
	assert_int_equal(canon_put(st, t, row, source, &applied), 0);
	assert_true(applied);
}

/* A product with two variants (one with a title needing quotes), an older one-variant
 * product, an order with two lines, a return, and reasons with and without labels. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	unit_mirror_open(&f->dir, &f->st);
	struct store *st = f->st;
	assert_int_equal(store_begin(st), 0);

	const char *p1[P_COUNT] = { "1042", "1042", "TSH-001", "Tee \"Classic\", blue\nsummer", "Soft cotton",
				    "https://shop.example/p/1042", "[\"https://shop.example/1.jpg\",\"https://shop.example/2.jpg\"]",
				    "T-shirts", "12", "2026-11-20T07:15:02Z", "0" };
	const char *p2[P_COUNT] = { "2001", "2001", NULL, "Polo", NULL, NULL, NULL, "Polos", "13",
				    "2026-01-10T09:00:00Z", "1" };
	put(st, CANON_PRODUCTS, p1, "api");
	put(st, CANON_PRODUCTS, p2, "sftp");
	const char *v1[V_COUNT] = { "50211", "1042", "TSH-001-BLU-M", "3700000502114", "4", "M", "12" };
	const char *v2[V_COUNT] = { "50212", "1042", "TSH-001-BLU-L", NULL, "5", "L", "0" };
	const char *v3[V_COUNT] = { "60001", "2001", "POLO-U", NULL, NULL, NULL, NULL };
	put(st, CANON_VARIANTS, v2, "api"); /* out of order: the export sorts */
	put(st, CANON_VARIANTS, v1, "api");
	put(st, CANON_VARIANTS, v3, "sftp");

	const char *o1[O_COUNT] = { "99001", "WS-99001", "shipped", "2026-11-19T09:00:00Z", "2026-11-20T07:15:02Z",
				    "EUR", "0123456789abcdef0123456789abcdef" };
	const char *o2[O_COUNT] = { "98000", "WS-98000", "delivered", "2026-01-02T09:00:00Z", "2026-01-05T00:00:00Z",
				    "EUR", NULL };
	put(st, CANON_ORDERS, o1, "api");
	put(st, CANON_ORDERS, o2, "api");
	const char *l2[OL_COUNT] = { "99001", "2", "1042", "50212", "TSH-001-BLU-L", "L", "2", "2100", "EUR" };
	const char *l1[OL_COUNT] = { "99001", "1", "1042", "50211", "TSH-001-BLU-M", "M", "1", "1990", "EUR" };
	const char *l3[OL_COUNT] = { "98000", "1", "2001", NULL, NULL, NULL, "1", NULL, "EUR" };
	put(st, CANON_ORDER_LINES, l2, "api");
	put(st, CANON_ORDER_LINES, l1, "api");
	put(st, CANON_ORDER_LINES, l3, "api");

	const char *r1[R_COUNT] = { "7001", "99001", "2026-11-25T10:00:00Z", "2026-11-26T00:00:00Z" };
	put(st, CANON_RETURNS, r1, "api");
	const char *rl1[RL_COUNT] = { "7001", "1", "99001", "1042", "50211", "TSH-001-BLU-M", "M", "1", "2",
				      "too small; \"tight\" at chest" };
	put(st, CANON_RETURN_LINES, rl1, "api");

	const char *rr2[RR_COUNT] = { "2", "too_small", "Trop petit" };
	const char *rr3[RR_COUNT] = { "3", "too_big", "Trop grand" };
	put(st, CANON_RETURN_REASONS, rr2, "api");
	put(st, CANON_RETURN_REASONS, rr3, "sftp");
	const char *lb_fr[L_COUNT] = { "return_reason", "2", "fr", "label", "Trop petit" };
	const char *lb_en[L_COUNT] = { "return_reason", "2", "en", "label", "Too small" };
	const char *lb_other[L_COUNT] = { "size", "2", "fr", "label", "XS" }; /* same id, other entity */
	put(st, CANON_LABELS, lb_fr, "api");
	put(st, CANON_LABELS, lb_en, "api");
	put(st, CANON_LABELS, lb_other, "api");

	assert_int_equal(store_commit(st), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unit_mirror_close(f->dir, f->st);
	free(f);
	return 0;
}

/* Export kind to memory; the rows count comes back in *rows. */
static char *export(struct fixture *f, const char *kind, const char *since, long *rows)
{
	char *text = NULL, err[256] = "";
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	assert_non_null(m);
	*rows = export_csv(store_db(f->st), kind, since, m, err, sizeof(err));
	assert_int_equal(fclose(m), 0);
	if (*rows < 0)
		fail_msg("export %s: %ld (%s)", kind, *rows, err);
	return text;
}

static const char *PRODUCTS_HEADER =
	"product_id,variant_id,sku,ean,title,description,url,images,category,size_label,"
	"parent_reference,updated_at,deactivated\r\n";
static const char *P1_ROWS =
	"1042,50211,TSH-001-BLU-M,3700000502114,\"Tee \"\"Classic\"\", blue\nsummer\",Soft cotton,"
	"https://shop.example/p/1042,\"[\"\"https://shop.example/1.jpg\"\",\"\"https://shop.example/2.jpg\"\"]\","
	"T-shirts,M,TSH-001,2026-11-20T07:15:02Z,0\r\n"
	"1042,50212,TSH-001-BLU-L,,\"Tee \"\"Classic\"\", blue\nsummer\",Soft cotton,"
	"https://shop.example/p/1042,\"[\"\"https://shop.example/1.jpg\"\",\"\"https://shop.example/2.jpg\"\"]\","
	"T-shirts,L,TSH-001,2026-11-20T07:15:02Z,0\r\n";
static const char *P2_ROWS = "2001,60001,POLO-U,,Polo,,,,Polos,,,2026-01-10T09:00:00Z,1\r\n";

static void test_products(void **state)
{
	struct fixture *f = *state;
	long rows;
	char *got = export(f, "products", NULL, &rows);
	char *want;
	assert_true(asprintf(&want, "%s%s%s", PRODUCTS_HEADER, P1_ROWS, P2_ROWS) > 0);
	assert_string_equal(got, want);
	assert_int_equal(rows, 3);
	free(got);
	free(want);
}

static void test_products_since(void **state)
{
	struct fixture *f = *state;
	long rows;
	char *got = export(f, "products", "2026-06-01T00:00:00Z", &rows);
	char *want;
	assert_true(asprintf(&want, "%s%s", PRODUCTS_HEADER, P1_ROWS) > 0);
	assert_string_equal(got, want);
	assert_int_equal(rows, 2);
	free(got);
	free(want);

	/* since is inclusive. */
	got = export(f, "products", "2026-11-20T07:15:02Z", &rows);
	assert_int_equal(rows, 2);
	free(got);
	/* Nothing that new: the header alone. */
	got = export(f, "products", "2027-01-01T00:00:00Z", &rows);
	assert_string_equal(got, PRODUCTS_HEADER);
	assert_int_equal(rows, 0);
	free(got);
}

static const char *ORDERS_HEADER =
	"order_id,ordered_at,product_id,quantity,line_no,variant_id,sku,size_label,price,currency,status,"
	"updated_at\r\n";
static const char *O1_ROWS =
	"99001,2026-11-19T09:00:00Z,1042,1,1,50211,TSH-001-BLU-M,M,19.90,EUR,shipped,2026-11-20T07:15:02Z\r\n"
	"99001,2026-11-19T09:00:00Z,1042,2,2,50212,TSH-001-BLU-L,L,21.00,EUR,shipped,2026-11-20T07:15:02Z\r\n";

static void test_orders(void **state)
{
	struct fixture *f = *state;
	long rows;
	char *want, *got = export(f, "orders", NULL, &rows);
	/* Ordered by order_id as text: 98000 first; NULL cells are empty. */
	assert_true(asprintf(&want, "%s%s%s", ORDERS_HEADER,
			     "98000,2026-01-02T09:00:00Z,2001,1,1,,,,,EUR,delivered,2026-01-05T00:00:00Z\r\n",
			     O1_ROWS) > 0);
	assert_string_equal(got, want);
	assert_int_equal(rows, 3);
	free(got);
	free(want);

	got = export(f, "orders", "2026-02-01T00:00:00Z", &rows);
	assert_true(asprintf(&want, "%s%s", ORDERS_HEADER, O1_ROWS) > 0);
	assert_string_equal(got, want);
	assert_int_equal(rows, 2);
	free(got);
	free(want);
	/* No customer data in the order export. */
	got = export(f, "orders", NULL, &rows);
	assert_null(strstr(got, "0123456789abcdef"));
	free(got);
}

static void test_returns(void **state)
{
	struct fixture *f = *state;
	long rows;
	char *got = export(f, "returns", NULL, &rows);
	assert_string_equal(got,
		"return_id,order_id,returned_at,product_id,quantity,line_no,variant_id,sku,size_label,reason_id,"
		"comment,updated_at\r\n"
		"7001,99001,2026-11-25T10:00:00Z,1042,1,1,50211,TSH-001-BLU-M,M,2,"
		"\"too small; \"\"tight\"\" at chest\",2026-11-26T00:00:00Z\r\n");
	assert_int_equal(rows, 1);
	free(got);

	got = export(f, "returns", "2026-11-26T00:00:01Z", &rows);
	assert_int_equal(rows, 0);
	free(got);
}

static void test_return_reasons(void **state)
{
	struct fixture *f = *state;
	long rows;
	char *got = export(f, "return_reasons", NULL, &rows);
	/* One row per language; a reason without labels keeps its own label, lang empty. */
	assert_string_equal(got,
		"reason_id,code,label,lang\r\n"
		"2,too_small,Too small,en\r\n"
		"2,too_small,Trop petit,fr\r\n"
		"3,too_big,Trop grand,\r\n");
	assert_int_equal(rows, 3);
	free(got);
}

/* A value with blanks at either end is quoted: unquoted, a CSV reader such as
 * libcsv (csvin's) trims them. */
static void test_blank_edges(void **state)
{
	struct fixture *f = *state;
	const char *lb[L_COUNT] = { "return_reason", "3", "en", "label", " Too big\t" };
	const char *lb2[L_COUNT] = { "return_reason", "3", "it", "label", "Troppo  grande" };
	assert_int_equal(canon_put(f->st, CANON_LABELS, lb, "api", NULL), 0);
	assert_int_equal(canon_put(f->st, CANON_LABELS, lb2, "api", NULL), 0);
	long rows;
	char *got = export(f, "return_reasons", NULL, &rows);
	assert_string_equal(got,
		"reason_id,code,label,lang\r\n"
		"2,too_small,Too small,en\r\n"
		"2,too_small,Trop petit,fr\r\n"
		"3,too_big,\" Too big\t\",en\r\n"
		"3,too_big,Troppo  grande,it\r\n");
	assert_int_equal(rows, 4);
	free(got);
}

static void test_unknown_kind(void **state)
{
	struct fixture *f = *state;
	char *text = NULL, err[256] = "";
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	assert_int_equal(export_csv(store_db(f->st), "customers", NULL, m, err, sizeof(err)), -EINVAL);
	assert_int_equal(fclose(m), 0);
	assert_non_null(strstr(err, "customers"));
	assert_string_equal(text, ""); /* nothing written */
	free(text);

	/* Every kind export_kinds lists is exportable. */
	for (int i = 0; export_kinds[i]; i++) {
		long rows;
		char *got = export(f, export_kinds[i], NULL, &rows);
		assert_true(rows > 0);
		free(got);
	}
}

static char *template(struct fixture *f, const char *measurements, const char *unit, long *rows)
{
	char *text = NULL, err[256] = "";
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	*rows = export_dimensions_template(store_db(f->st), measurements, unit, m, err, sizeof(err));
	assert_int_equal(fclose(m), 0);
	if (*rows < 0)
		fail_msg("template: %ld (%s)", *rows, err);
	return text;
}

static void test_dimensions_template(void **state)
{
	struct fixture *f = *state;
	long rows;
	char *got = template(f, "chest, waist", "in", &rows);
	assert_string_equal(got,
		"product_id,variant_id,measurement,value,unit\r\n"
		"1042,50211,chest,,in\r\n"
		"1042,50211,waist,,in\r\n"
		"1042,50212,chest,,in\r\n"
		"1042,50212,waist,,in\r\n"
		"2001,60001,chest,,in\r\n"
		"2001,60001,waist,,in\r\n");
	assert_int_equal(rows, 6);
	free(got);

	/* The defaults: four measurements in cm, for each of the three variants. */
	got = template(f, NULL, NULL, &rows);
	assert_int_equal(rows, 3 * 4);
	assert_true(strncmp(got, "product_id,variant_id,measurement,value,unit\r\n1042,50211,chest,,cm\r\n"
				 "1042,50211,waist,,cm\r\n1042,50211,hips,,cm\r\n1042,50211,length,,cm\r\n",
			    strlen("product_id,variant_id,measurement,value,unit\r\n1042,50211,chest,,cm\r\n"
				   "1042,50211,waist,,cm\r\n1042,50211,hips,,cm\r\n1042,50211,length,,cm\r\n")) == 0);
	int lines = 0;
	for (const char *p = got; (p = strstr(p, "\r\n")); p += 2)
		lines++;
	assert_int_equal(lines, 1 + 3 * 4);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_products, setup, teardown),
		cmocka_unit_test_setup_teardown(test_products_since, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_return_reasons, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blank_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dimensions_template, setup, teardown),
	};
	return cmocka_run_group_tests_name("export", tests, NULL, NULL);
}
