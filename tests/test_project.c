/* test_project.c - raw API records to canonical rows, through the default profile (DOMAIN.md §1 mapping). */
#include <errno.h>

#include "unit.h"
#include "unit_sql.h"
#include "unit_fixture.h"

#include "canon.h"
#include "profile.h"
#include "project.h"
#include "store.h"

struct fixture {
	char *dir;
	struct store *st;
	struct profile *p;
	struct merchant_conf m;
	struct tz *zones;
	struct project_ctx c;
};

static char REF_FIELD[] = "reference", MODEL_FIELD[] = "model";
static bool stored_hint; /* project_ctx.stored of every test: the suite runs with both */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	unit_mirror_open(&f->dir, &f->st);
	f->p = unit_profile("default", NULL, 0);
	unit_merchant(&f->m, "acme-fr", &f->zones);
	f->c = (struct project_ctx){ f->st, f->p, &f->m, NULL, stored_hint };
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

static json_t *parse(const char *s)
{
	json_error_t jerr;
	json_t *v = json_loads(s, 0, &jerr);
	if (!v)
		fail_msg("bad test JSON (%s): %s", jerr.text, s);
	return v;
}

/* Project one record in its own transaction; returns project_record's result. */
static int project(struct fixture *f, enum stream s, const char *json)
{
	char err[512] = "";
	json_t *rec = parse(json);
	assert_int_equal(store_begin(f->st), 0);
	/* As a sync does: the raw record first, then its projection (which may
	 * go back to the raw records of orders and returns). */
	char id[PROJECT_ID_MAX];
	tstamp_t updated;
	if (project_identity(&f->c, s, rec, id, updated, err, sizeof(err)) == 0) {
		struct store_record raw = { stream_name(s), id, "api", updated[0] ? updated : NULL, json };
		assert_int_equal(store_record_put(f->st, &raw, "2026-11-27T00:00:00Z", 1, NULL), 0);
	}
	int r = project_record(&f->c, s, rec, err, sizeof(err));
	if (r == 0)
		assert_int_equal(store_commit(f->st), 0);
	else
		store_rollback(f->st);
	json_decref(rec);
	return r;
}

static void project_ok(struct fixture *f, enum stream s, const char *json)
{
	int r = project(f, s, json);
	if (r != 0)
		fail_msg("projecting %s record failed: %d", stream_name(s), r);
}

static void refresh(struct fixture *f, enum stream s)
{
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(project_refresh(&f->c, s), 0);
	assert_int_equal(store_commit(f->st), 0);
}

/* The mirror's query helpers (unit_sql.h), on the fixture's store. */
#define query_int(f, sql) unit_query_int(store_db((f)->st), sql)
#define rows(f, sql) unit_rows(store_db((f)->st), sql)
#define expect_rows(f, sql, want) unit_expect_rows(store_db((f)->st), sql, want)

static const char *SIZE_M = "{\"id\":4,\"label\":\"M\",\"translations\":{\"fr\":\"M\",\"en\":\"M\"}}";
static const char *SIZE_L = "{\"id\":5,\"label\":\"L\",\"translations\":{\"fr\":\"L\",\"en\":\"L\"}}";
static const char *DEPARTMENT =
	"{\"id\":12,\"parent_id\":3,\"translations\":{\"fr\":\"Tee-shirts\",\"en\":\"T-shirts\"}}";

/* DOMAIN.md §1's product, with a second size. */
#define PRODUCT_HEAD                                                                              \
	"{\"id\":1042,\"reference\":\"TSH-001-BLU\",\"parent_reference\":\"TSH-001\","                 \
	"\"department_id\":12,\"active\":true,"                                                     \
	"\"attributes\":[{\"attribute_id\":3,\"value\":\"cotton\"}],"
#define PRODUCT_TAIL                                                                              \
	"\"translations\":{\"fr\":{\"name\":\"Tee-shirt bleu\",\"description\":\"Coton doux\","         \
	"\"url\":\"https://shop.example/fr/p/1042\"},"                                               \
	"\"en\":{\"name\":\"Blue tee\",\"description\":\"Soft cotton\",\"url\":\"https://shop.example/en/p/1042\"}},"\
	"\"images\":[\"https://shop.example/img/1.jpg\",\"https://shop.example/img/2.jpg\"],"            \
	"\"date_add\":\"2025-03-01 10:00:00\",\"date_upd\":\"2026-11-20 08:15:02\"}"
#define VARIANT_M "{\"id\":50211,\"size_id\":4,\"ean\":\"3700000502114\",\"sku\":\"TSH-001-BLU-M\",\"stock\":12}"
#define VARIANT_L "{\"id\":50212,\"size_id\":5,\"ean\":\"3700000502121\",\"sku\":\"TSH-001-BLU-L\",\"stock\":0}"

static const char *PRODUCT = PRODUCT_HEAD "\"sizes\":[" VARIANT_M "," VARIANT_L "]," PRODUCT_TAIL;
static const char *PRODUCT_M_ONLY = PRODUCT_HEAD "\"sizes\":[" VARIANT_M "]," PRODUCT_TAIL;

static const char *ORDER =
	"{\"id\":99001,\"reference\":\"WS-99001\",\"status\":\"shipped\",\"currency\":\"EUR\","
	"\"customer\":\"0123456789abcdef0123456789abcdef\","
	"\"lines\":[{\"id\":1,\"product_id\":1042,\"product_size_id\":50211,\"quantity\":1,\"price\":\"19.90\"},"
	"{\"id\":2,\"product_id\":1042,\"product_size_id\":50212,\"sku\":\"OWN-SKU\",\"size_label\":\"XL\","
	"\"quantity\":2,\"price\":\"21.00\"}],"
	"\"date_add\":\"2026-11-19 10:00:00\",\"date_upd\":\"2026-11-20 08:15:02\"}";

static void catalog(struct fixture *f)
{
	project_ok(f, STREAM_SIZES, SIZE_M);
	project_ok(f, STREAM_SIZES, SIZE_L);
	project_ok(f, STREAM_DEPARTMENTS, DEPARTMENT);
}

static void test_reference_records(void **state)
{
	struct fixture *f = *state;
	catalog(f);
	project_ok(f, STREAM_DEPARTMENTS, "{\"id\":3,\"parent_id\":0,\"translations\":{\"en\":\"Tops\",\"de\":\"Oberteile\"}}");
	project_ok(f, STREAM_ATTRIBUTES, "{\"id\":3,\"code\":\"material\",\"translations\":{\"fr\":\"Matière\",\"en\":\"Material\"}}");
	project_ok(f, STREAM_RETURN_REASONS, "{\"id\":2,\"code\":\"too_small\",\"translations\":{\"fr\":\"Trop petit\",\"en\":\"Too small\"}}");

	expect_rows(f, "SELECT size_id, label, source FROM sizes ORDER BY size_id", "4|M|api\n5|L|api\n");
	/* The first configured language; a root's parent is NULL; else the next language. */
	expect_rows(f, "SELECT department_id, parent_id, label FROM departments ORDER BY department_id",
		    "12|3|Tee-shirts\n3|~|Tops\n");
	expect_rows(f, "SELECT attribute_id, code, label FROM attributes", "3|material|Matière\n");
	expect_rows(f, "SELECT reason_id, code, label FROM return_reasons", "2|too_small|Trop petit\n");
	/* Every language served goes to labels, not only the configured ones. */
	expect_rows(f, "SELECT entity, entity_id, lang, field, value FROM labels"
		       " ORDER BY entity, entity_id, lang",
		    "attribute|3|en|label|Material\n"
		    "attribute|3|fr|label|Matière\n"
		    "department|12|en|label|T-shirts\n"
		    "department|12|fr|label|Tee-shirts\n"
		    "department|3|de|label|Oberteile\n"
		    "department|3|en|label|Tops\n"
		    "return_reason|2|en|label|Too small\n"
		    "return_reason|2|fr|label|Trop petit\n"
		    "size|4|en|label|M\n"
		    "size|4|fr|label|M\n"
		    "size|5|en|label|L\n"
		    "size|5|fr|label|L\n");

	/* A reference record sent again with fewer languages loses the others. */
	project_ok(f, STREAM_RETURN_REASONS, "{\"id\":2,\"code\":\"too_small\",\"translations\":{\"fr\":\"Trop court\"}}");
	expect_rows(f, "SELECT lang, value FROM labels WHERE entity = 'return_reason'", "fr|Trop court\n");
	expect_rows(f, "SELECT label FROM return_reasons", "Trop court\n");
}

static void test_product(void **state)
{
	struct fixture *f = *state;
	catalog(f);
	project_ok(f, STREAM_PRODUCTS, PRODUCT);

	expect_rows(f, "SELECT product_id, source_id, parent_reference, title, description, url, images,"
		       " category, department_id, updated_at, deactivated, source FROM products",
		    "1042|1042|TSH-001|Tee-shirt bleu|Coton doux|https://shop.example/fr/p/1042|"
		    "[\"https://shop.example/img/1.jpg\",\"https://shop.example/img/2.jpg\"]|"
		    "Tee-shirts|12|2026-11-20T07:15:02Z|0|api\n");
	expect_rows(f, "SELECT variant_id, product_id, sku, ean, size_id, size_label, stock, source"
		       " FROM variants ORDER BY variant_id",
		    "50211|1042|TSH-001-BLU-M|3700000502114|4|M|12|api\n"
		    "50212|1042|TSH-001-BLU-L|3700000502121|5|L|0|api\n");
	expect_rows(f, "SELECT lang, field, value FROM labels WHERE entity = 'product' AND entity_id = '1042'"
		       " ORDER BY lang, field",
		    "en|description|Soft cotton\n"
		    "en|name|Blue tee\n"
		    "en|url|https://shop.example/en/p/1042\n"
		    "fr|description|Coton doux\n"
		    "fr|name|Tee-shirt bleu\n"
		    "fr|url|https://shop.example/fr/p/1042\n");

	/* Sent again with one variant fewer: that variant goes. */
	project_ok(f, STREAM_PRODUCTS, PRODUCT_M_ONLY);
	expect_rows(f, "SELECT variant_id FROM variants", "50211\n");
	assert_int_equal(query_int(f, "SELECT count(*) FROM products"), 1);
	assert_int_equal(query_int(f, "SELECT count(*) FROM labels WHERE entity = 'product'"), 6);

	/* The department renamed: the product's category follows. */
	project_ok(f, STREAM_DEPARTMENTS,
		   "{\"id\":12,\"parent_id\":3,\"translations\":{\"fr\":\"Tee-shirts homme\",\"en\":\"Men's tees\"}}");
	refresh(f, STREAM_DEPARTMENTS);
	expect_rows(f, "SELECT category FROM products", "Tee-shirts homme\n");
}

static void test_product_flags_and_missing_values(void **state)
{
	struct fixture *f = *state;
	/* active:false, no date_upd, no department, no images, empty parent reference,
	 * and only a language the merchant does not list. */
	project_ok(f, STREAM_PRODUCTS,
		   "{\"id\":7,\"active\":false,\"parent_reference\":\"\",\"sizes\":[{\"id\":70,\"size_id\":99}],"
		   "\"translations\":{\"de\":{\"name\":\"Hemd\"}}}");
	expect_rows(f, "SELECT product_id, parent_reference, title, images, category, updated_at, deactivated"
		       " FROM products",
		    "7|~|Hemd|~|~|~|1\n");
	/* A size not (yet) known: no label. */
	expect_rows(f, "SELECT variant_id, size_id, size_label FROM variants", "70|99|~\n");
	/* It arrives: the variants follow. */
	project_ok(f, STREAM_SIZES, "{\"id\":99,\"label\":\"XXL\"}");
	refresh(f, STREAM_SIZES);
	expect_rows(f, "SELECT size_label FROM variants", "XXL\n");

	/* The identity of a record without date_upd: its id, and no time. */
	char id[PROJECT_ID_MAX], err[256];
	tstamp_t updated;
	json_t *rec = parse("{\"id\":7}");
	memset(updated, 'x', sizeof(updated));
	assert_int_equal(project_identity(&f->c, STREAM_PRODUCTS, rec, id, updated, err, sizeof(err)), 0);
	assert_string_equal(id, "7");
	assert_string_equal(updated, "");
	json_decref(rec);
}

static void test_order_lines_follow_the_catalog(void **state)
{
	struct fixture *f = *state;
	catalog(f);
	project_ok(f, STREAM_PRODUCTS, PRODUCT);
	project_ok(f, STREAM_ORDERS, ORDER);

	expect_rows(f, "SELECT order_id, reference, status, ordered_at, updated_at, currency, customer_hash, source"
		       " FROM orders",
		    "99001|WS-99001|shipped|2026-11-19T09:00:00Z|2026-11-20T07:15:02Z|EUR|"
		    "0123456789abcdef0123456789abcdef|api\n");
	/* Line 1 takes sku and size from its variant; line 2 keeps its own. */
	expect_rows(f, "SELECT order_id, line_no, product_id, variant_id, sku, size_label, quantity,"
		       " unit_price_minor, currency FROM order_lines ORDER BY line_no",
		    "99001|1|1042|50211|TSH-001-BLU-M|M|1|1990|EUR\n"
		    "99001|2|1042|50212|OWN-SKU|XL|2|2100|EUR\n");

	/* The order sent again with one line: the other goes. */
	project_ok(f, STREAM_ORDERS,
		   "{\"id\":99001,\"status\":\"returned\",\"lines\":[{\"id\":2,\"product_id\":1042,"
		   "\"product_size_id\":50212,\"quantity\":1}],\"date_upd\":\"2026-11-21 08:00:00\"}");
	expect_rows(f, "SELECT line_no, sku, size_label FROM order_lines", "2|TSH-001-BLU-L|L\n");
	expect_rows(f, "SELECT status, updated_at FROM orders", "returned|2026-11-21T07:00:00Z\n");

	/* A return: the same filling from the catalog. */
	project_ok(f, STREAM_RETURNS,
		   "{\"id\":7001,\"order_id\":99001,\"lines\":[{\"id\":1,\"order_line_id\":1,\"product_id\":1042,"
		   "\"product_size_id\":50211,\"quantity\":1,\"reason_id\":2,\"comment\":\"\"}],"
		   "\"date_add\":\"2026-11-25 11:00:00\",\"date_upd\":\"2026-11-25 11:00:00\"}");
	expect_rows(f, "SELECT return_id, order_id, returned_at, updated_at FROM returns",
		    "7001|99001|2026-11-25T10:00:00Z|2026-11-25T10:00:00Z\n");
	/* An empty comment is NULL. */
	expect_rows(f, "SELECT return_id, line_no, order_id, product_id, variant_id, sku, size_label, quantity,"
		       " reason_id, comment FROM return_lines",
		    "7001|1|99001|1042|50211|TSH-001-BLU-M|M|1|2|~\n");

	/* Size 4 renamed: its variant and the lines that took their size from it follow;
	 * a line that carried its own label would keep it. */
	project_ok(f, STREAM_SIZES, "{\"id\":4,\"label\":\"Medium\"}");
	refresh(f, STREAM_SIZES);
	expect_rows(f, "SELECT variant_id, size_label FROM variants ORDER BY variant_id", "50211|Medium\n50212|L\n");
	expect_rows(f, "SELECT size_label FROM return_lines", "Medium\n");
	expect_rows(f, "SELECT size_label FROM order_lines", "L\n");
}

static void test_older_order_does_not_replace(void **state)
{
	struct fixture *f = *state;
	project_ok(f, STREAM_ORDERS, ORDER);
	project_ok(f, STREAM_ORDERS,
		   "{\"id\":99001,\"status\":\"pending\",\"lines\":[],\"date_upd\":\"2026-11-01 00:00:00\"}");
	expect_rows(f, "SELECT status FROM orders", "shipped\n");
	assert_int_equal(query_int(f, "SELECT count(*) FROM order_lines"), 2);
}

static void test_product_id_from_reference(void **state)
{
	struct fixture *f = *state;
	f->m.product_id_field = REF_FIELD;
	catalog(f);
	project_ok(f, STREAM_PRODUCTS, PRODUCT);
	project_ok(f, STREAM_ORDERS, ORDER);

	expect_rows(f, "SELECT product_id, source_id FROM products", "TSH-001-BLU|1042\n");
	expect_rows(f, "SELECT DISTINCT product_id FROM variants", "TSH-001-BLU\n");
	expect_rows(f, "SELECT DISTINCT entity_id FROM labels WHERE entity = 'product'", "TSH-001-BLU\n");
	/* The order's lines name the product by the same id. */
	expect_rows(f, "SELECT line_no, product_id, sku FROM order_lines ORDER BY line_no",
		    "1|TSH-001-BLU|TSH-001-BLU-M\n2|TSH-001-BLU|OWN-SKU\n");

	/* A product without a reference keeps its WSHOP id. */
	project_ok(f, STREAM_PRODUCTS, "{\"id\":77,\"sizes\":[]}");
	assert_int_equal(query_int(f, "SELECT count(*) FROM products WHERE product_id = '77' AND source_id = '77'"), 1);
}

/*
 * product_id_field changed and the product sent again: its row under the old
 * id goes, and nothing of the old id is left behind (variants, labels).
 */
static void test_product_renamed_leaves_nothing_behind(void **state)
{
	struct fixture *f = *state;
	catalog(f);
	project_ok(f, STREAM_PRODUCTS, PRODUCT);
	f->m.product_id_field = REF_FIELD;
	project_ok(f, STREAM_PRODUCTS, PRODUCT);

	expect_rows(f, "SELECT product_id FROM products", "TSH-001-BLU\n");
	expect_rows(f, "SELECT variant_id, product_id FROM variants ORDER BY variant_id",
		    "50211|TSH-001-BLU\n50212|TSH-001-BLU\n");
	expect_rows(f, "SELECT DISTINCT entity_id FROM labels WHERE entity = 'product'", "TSH-001-BLU\n");
}

/*
 * An order seen before its product (a product created after the products
 * stream last ran): once the product arrives and the products stream is
 * refreshed, the lines name it as the products table does (DOMAIN.md §2:
 * identifiers agree everywhere; project.c: "an order line's product_id ...
 * project_refresh() brings them up to date").
 */
static void test_order_before_product_follows_after_refresh(void **state)
{
	struct fixture *f = *state;
	f->m.product_id_field = REF_FIELD;
	catalog(f);
	project_ok(f, STREAM_ORDERS, ORDER);
	project_ok(f, STREAM_PRODUCTS, PRODUCT);
	refresh(f, STREAM_PRODUCTS);
	expect_rows(f, "SELECT line_no, product_id FROM order_lines ORDER BY line_no",
		    "1|TSH-001-BLU\n2|TSH-001-BLU\n");
}

static void test_forget(void **state)
{
	struct fixture *f = *state;
	catalog(f);
	project_ok(f, STREAM_PRODUCTS, PRODUCT);
	project_ok(f, STREAM_ORDERS, ORDER);

	assert_int_equal(store_begin(f->st), 0);
	/* A product is kept, deactivated, so order history still finds it. */
	assert_int_equal(project_forget(&f->c, STREAM_PRODUCTS, "1042"), 0);
	/* An order goes with its lines. */
	assert_int_equal(project_forget(&f->c, STREAM_ORDERS, "99001"), 0);
	/* A size goes with its labels. */
	assert_int_equal(project_forget(&f->c, STREAM_SIZES, "5"), 0);
	assert_int_equal(store_commit(f->st), 0);

	expect_rows(f, "SELECT product_id, deactivated FROM products", "1042|1\n");
	assert_int_equal(query_int(f, "SELECT count(*) FROM variants"), 2);
	assert_int_equal(query_int(f, "SELECT count(*) FROM orders"), 0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM order_lines"), 0);
	expect_rows(f, "SELECT size_id FROM sizes", "4\n");
	assert_int_equal(query_int(f, "SELECT count(*) FROM labels WHERE entity = 'size' AND entity_id = '5'"), 0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM labels WHERE entity = 'size' AND entity_id = '4'"), 2);

	/* Keyed by the reference, the product is still found by its WSHOP id. */
	f->m.product_id_field = REF_FIELD;
	project_ok(f, STREAM_PRODUCTS, PRODUCT);
	expect_rows(f, "SELECT product_id, deactivated FROM products", "TSH-001-BLU|0\n");
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(project_forget(&f->c, STREAM_PRODUCTS, "1042"), 0);
	assert_int_equal(store_commit(f->st), 0);
	expect_rows(f, "SELECT product_id, deactivated FROM products", "TSH-001-BLU|1\n");
}

static void test_identity(void **state)
{
	struct fixture *f = *state;
	char id[PROJECT_ID_MAX], err[256];
	tstamp_t updated;

	json_t *rec = parse(PRODUCT);
	assert_int_equal(project_identity(&f->c, STREAM_PRODUCTS, rec, id, updated, err, sizeof(err)), 0);
	assert_string_equal(id, "1042");
	assert_string_equal(updated, "2026-11-20T07:15:02Z");
	json_decref(rec);

	rec = parse("{\"id\":\"A-1\",\"date_upd\":\"2026-07-15 10:00:00\"}");
	assert_int_equal(project_identity(&f->c, STREAM_ORDERS, rec, id, updated, err, sizeof(err)), 0);
	assert_string_equal(id, "A-1");
	assert_string_equal(updated, "2026-07-15T08:00:00Z"); /* summer time */
	json_decref(rec);

	const char *bad[] = { "{\"reference\":\"WS-1\"}", "{\"id\":null}", "{\"id\":\"\"}", "{\"id\":{}}", "[1]" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rec = parse(bad[i]);
		err[0] = 0;
		if (project_identity(&f->c, STREAM_ORDERS, rec, id, updated, err, sizeof(err)) != -EINVAL)
			fail_msg("%s was given an identity", bad[i]);
		assert_non_null(strstr(err, "id"));
		json_decref(rec);
	}
	/* A date that does not parse is reported, and the record kept without one:
	 * refusing it would stop its stream at that page for good. */
	rec = parse("{\"id\":1,\"date_upd\":\"yesterday\"}");
	assert_int_equal(project_identity(&f->c, STREAM_ORDERS, rec, id, updated, err, sizeof(err)), 1);
	assert_string_equal(id, "1");
	assert_string_equal(updated, "");
	assert_non_null(strstr(err, "date_upd"));
	json_decref(rec);

	assert_int_equal(project(f, STREAM_PRODUCTS, "{\"id\":8,\"date_upd\":\"32/13/2026\"}"), 0);
	expect_rows(f, "SELECT product_id, coalesce(updated_at, '~') FROM products", "8|~\n");
}

/* parent_reference_field naming an attribute code: the product's value of that attribute. */
static void test_parent_reference_from_attribute(void **state)
{
	struct fixture *f = *state;
	f->m.parent_reference_field = MODEL_FIELD;
	project_ok(f, STREAM_ATTRIBUTES, "{\"id\":3,\"code\":\"material\",\"translations\":{\"fr\":\"Matière\"}}");
	project_ok(f, STREAM_ATTRIBUTES, "{\"id\":7,\"code\":\"model\",\"translations\":{\"fr\":\"Modèle\"}}");
	project_ok(f, STREAM_PRODUCTS,
		   "{\"id\":1042,\"parent_reference\":\"NOT-THIS\",\"attributes\":[{\"attribute_id\":3,\"value\":\"cotton\"},"
		   "{\"attribute_id\":7,\"value\":\"TSH-001\"}],\"sizes\":[]}");
	expect_rows(f, "SELECT product_id, parent_reference FROM products", "1042|TSH-001\n");

	/* Without that attribute: no parent reference. */
	project_ok(f, STREAM_PRODUCTS, "{\"id\":1043,\"attributes\":[{\"attribute_id\":3,\"value\":\"cotton\"}]}");
	expect_rows(f, "SELECT parent_reference FROM products WHERE product_id = '1043'", "~\n");
}

/* A product with many attributes keeps its id whatever their number. */
static void test_many_attributes_keep_the_product_id(void **state)
{
	struct fixture *f = *state;
	char json[4096];
	size_t n = (size_t)snprintf(json, sizeof(json), "{\"id\":1042,\"department_id\":12,\"attributes\":[");
	for (int i = 1; i <= 40; i++)
		n += (size_t)snprintf(json + n, sizeof(json) - n, "%s{\"attribute_id\":%d,\"value\":\"v%d\"}",
				      i > 1 ? "," : "", 100 + i, i);
	snprintf(json + n, sizeof(json) - n, "],\"sizes\":[" VARIANT_M "],\"date_upd\":\"2026-11-20 08:15:02\"}");
	project_ok(f, STREAM_PRODUCTS, json);
	expect_rows(f, "SELECT product_id, source_id, department_id, updated_at FROM products",
		    "1042|1042|12|2026-11-20T07:15:02Z\n");
	expect_rows(f, "SELECT variant_id, product_id FROM variants", "50211|1042\n");
}

/*
 * A product written again looks for the lines that waited for its variants
 * (no sku or size yet), and must not read every line of its variants to find
 * them: a bestseller has thousands.  With its lines on disk and a cold page
 * cache, the update reads far fewer pages than those lines fill.
 */
static void test_product_update_reads_not_its_lines(void **state)
{
	struct fixture *f = *state;
	char path[4096], err[512];
	catalog(f);
	project_ok(f, STREAM_PRODUCTS, PRODUCT);
	assert_int_equal(store_exec(f->st,
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)"
		" INSERT INTO orders (order_id, status, source) SELECT 'O' || i, 'paid', 'api' FROM n;"
		"INSERT INTO order_lines (order_id, line_no, product_id, variant_id, sku, size_label,"
		"                         quantity, source)"
		" SELECT order_id, 1, '1042', '50211', 'TSH-001-BLU-M', 'M', 1, 'api' FROM orders"
		" UNION ALL SELECT order_id, 2, '1042', '50212', 'TSH-001-BLU-L', 'L', 1, 'api' FROM orders;"),
		0);
	int line_pages = unit_query_int(store_db(f->st),
					"SELECT count(*) FROM dbstat WHERE name = 'order_lines'");
	assert_true(line_pages > 100);

	/* A cold cache: the mirror opened again, as each job does. */
	snprintf(path, sizeof(path), "%s/m.db", f->dir);
	store_close(f->st);
	if (store_open(path, &f->st, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
	f->c.st = f->st;
	char *update = strdup(PRODUCT);
	memcpy(strstr(update, "2026-11-20 08:15:02"), "2026-11-21", 10);
	int misses, high;
	sqlite3_db_status(store_db(f->st), SQLITE_DBSTATUS_CACHE_MISS, &misses, &high, 1);
	project_ok(f, STREAM_PRODUCTS, update);
	sqlite3_db_status(store_db(f->st), SQLITE_DBSTATUS_CACHE_MISS, &misses, &high, 0);
	free(update);
	if (misses >= line_pages / 4)
		fail_msg("a product update read %d pages; its lines fill %d", misses, line_pages);
	expect_rows(f, "SELECT updated_at FROM products", "2026-11-21T07:15:02Z\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reference_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_product, setup, teardown),
		cmocka_unit_test_setup_teardown(test_product_flags_and_missing_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_lines_follow_the_catalog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_order_does_not_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_product_id_from_reference, setup, teardown),
		cmocka_unit_test_setup_teardown(test_product_renamed_leaves_nothing_behind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_before_product_follows_after_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parent_reference_from_attribute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_attributes_keep_the_product_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_product_update_reads_not_its_lines, setup, teardown),
	};
	int failed = cmocka_run_group_tests_name("project", tests, NULL, NULL);
	stored_hint = true; /* parents written through canon_put_stored: the same mirror */
	return failed + cmocka_run_group_tests_name("project, records stored before", tests, NULL,
						    NULL);
}
