/* test_canon.c - canonical rows: upserts, newer-wins, child replacement, deletes, column tables. */
#include <errno.h>
#include <sqlite3.h>

#include "unit.h"
#include "unit_fixture.h"
#include "unit_sql.h"

#include "canon.h"
#include "store.h"

struct fixture {
	char *dir;
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	unit_mirror_open(&f->dir, &f->st);
	assert_int_equal(store_begin(f->st), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(store_commit(f->st), 0);
	unit_mirror_close(f->dir, f->st);
	free(f);
	return 0;
}

/* One text value (NULL as "(null)"), copied into a static buffer. */
static const char *query_text(struct store *st, const char *sql)
{
	static char out[512];
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) != SQLITE_ROW)
		fail_msg("no row for %s", sql);
	const char *v = (const char *)sqlite3_column_text(s, 0);
	snprintf(out, sizeof(out), "%s", v ? v : "(null)");
	sqlite3_finalize(s);
	return out;
}

static void put_product(struct store *st, const char *id, const char *title, const char *updated,
			const char *source, bool want_applied)
{
	const char *row[P_COUNT] = { 0 };
	bool applied = !want_applied;
	row[P_PRODUCT_ID] = id;
	row[P_SOURCE_ID] = id;
	row[P_TITLE] = title;
	row[P_UPDATED_AT] = updated;
	row[P_DEACTIVATED] = "0";
	assert_int_equal(canon_put(st, CANON_PRODUCTS, row, source, &applied), 0);
	if (applied != want_applied)
		fail_msg("product %s '%s' at %s: applied %d, want %d", id, title, updated ? updated : "NULL",
			 applied, want_applied);
}

static void put_variant(struct store *st, const char *id, const char *product, const char *sku)
{
	const char *row[V_COUNT] = { id, product, sku, NULL, "4", "M", "3" };
	assert_int_equal(canon_put(st, CANON_VARIANTS, row, "api", NULL), 0);
}

static void put_label(struct store *st, const char *entity, const char *id, const char *lang,
		      const char *field, const char *value)
{
	const char *row[L_COUNT] = { entity, id, lang, field, value };
	assert_int_equal(canon_put(st, CANON_LABELS, row, "api", NULL), 0);
}

static void put_order(struct store *st, const char *id)
{
	const char *row[O_COUNT] = { id, "WS-1", "shipped", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z",
				     "EUR", NULL };
	assert_int_equal(canon_put(st, CANON_ORDERS, row, "api", NULL), 0);
}

static void put_order_line(struct store *st, const char *order, const char *line_no)
{
	const char *row[OL_COUNT] = { order, line_no, "p1", "v1", "SKU", "M", "1", "19.90" };
	assert_int_equal(canon_put(st, CANON_ORDER_LINES, row, "api", NULL), 0);
}

static void put_return(struct store *st, const char *id)
{
	const char *row[R_COUNT] = { id, "o1", "2026-01-02T00:00:00Z", "2026-01-02T00:00:00Z" };
	assert_int_equal(canon_put(st, CANON_RETURNS, row, "api", NULL), 0);
}

static void put_return_line(struct store *st, const char *ret, const char *line_no)
{
	const char *row[RL_COUNT] = { ret, line_no, "o1", "p1", "v1", "SKU", "M", "1", "2", NULL };
	assert_int_equal(canon_put(st, CANON_RETURN_LINES, row, "api", NULL), 0);
}

static void test_put_inserts_then_updates(void **state)
{
	struct fixture *f = *state;
	const char *row[P_COUNT] = { "p1", "1042", "TSH-001", "Tee", "Soft", "https://s/p1",
				     "[\"https://s/1.jpg\"]", "T-shirts", "12", "2026-01-01T00:00:00Z", "0" };
	bool applied = false;
	assert_int_equal(canon_put(f->st, CANON_PRODUCTS, row, "api", &applied), 0);
	assert_true(applied);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM products"), 1);
	assert_string_equal(query_text(f->st, "SELECT source_id || '|' || parent_reference || '|' || title"
				       " || '|' || description || '|' || url || '|' || images || '|' || category"
				       " || '|' || department_id || '|' || updated_at || '|' || deactivated"
				       " || '|' || source FROM products"),
			    "1042|TSH-001|Tee|Soft|https://s/p1|[\"https://s/1.jpg\"]|T-shirts|12|"
			    "2026-01-01T00:00:00Z|0|api");

	/* The same key again: one row, every column replaced, NULL included. */
	const char *row2[P_COUNT] = { "p1", "1042", NULL, "Tee 2", NULL, NULL, NULL, NULL, NULL,
				      "2026-01-02T00:00:00Z", "1" };
	assert_int_equal(canon_put(f->st, CANON_PRODUCTS, row2, "sftp", &applied), 0);
	assert_true(applied);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM products"), 1);
	assert_string_equal(query_text(f->st, "SELECT title FROM products"), "Tee 2");
	assert_string_equal(query_text(f->st, "SELECT parent_reference FROM products"), "(null)");
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT deactivated FROM products"), 1);
	assert_string_equal(query_text(f->st, "SELECT source FROM products"), "sftp");

	/* Tables without a time always take the later write. */
	put_variant(f->st, "v1", "p1", "A");
	put_variant(f->st, "v1", "p1", "B");
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM variants"), 1);
	assert_string_equal(query_text(f->st, "SELECT sku FROM variants"), "B");
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT stock FROM variants"), 3); /* integer text to INTEGER */

	/* Labels are keyed by (entity, entity_id, lang, field). */
	put_label(f->st, "product", "p1", "fr", "name", "Tee");
	put_label(f->st, "product", "p1", "fr", "name", "Tee bleu");
	put_label(f->st, "product", "p1", "en", "name", "Blue tee");
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM labels"), 2);
	assert_string_equal(query_text(f->st, "SELECT value FROM labels WHERE lang = 'fr'"), "Tee bleu");

	/* Order lines by (order_id, line_no). */
	put_order(f->st, "o1");
	put_order_line(f->st, "o1", "1");
	put_order_line(f->st, "o1", "2");
	put_order_line(f->st, "o1", "1");
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM order_lines"), 2);
}

typedef int put_fn(struct store *st, enum canon_table t, const char *const *values,
		   const char *source, bool *applied);

/* Products, orders and returns: an older source time never replaces a newer row. */
static void newer_wins_with(put_fn *put, struct store *st, enum canon_table t, int updated_col,
			    int text_col)
{
	const char *table = canon_table_name(t);
	const char *row[CANON_COLS_MAX] = { 0 };
	char sql[160];
	bool applied;
	struct {
		const char *updated, *text;
		bool applied;
		const char *want_text, *want_updated;
	} steps[] = {
		{ "2026-01-02T00:00:00Z", "a", true, "a", "2026-01-02T00:00:00Z" },
		{ "2026-01-01T00:00:00Z", "older", false, "a", "2026-01-02T00:00:00Z" },
		{ "2026-01-02T00:00:00Z", "tie", true, "tie", "2026-01-02T00:00:00Z" },
		{ "2026-01-03T00:00:00Z", "newer", true, "newer", "2026-01-03T00:00:00Z" },
		{ "2026-01-02T23:59:59Z", "older2", false, "newer", "2026-01-03T00:00:00Z" },
		{ NULL, "unknown", true, "unknown", "(null)" },
		/* The row's time is unknown now: any write goes. */
		{ "2025-01-01T00:00:00Z", "old but known", true, "old but known", "2025-01-01T00:00:00Z" },
	};

	row[0] = "k1";
	if (t == CANON_PRODUCTS)
		row[P_DEACTIVATED] = "0";
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		row[updated_col] = steps[i].updated;
		row[text_col] = steps[i].text;
		applied = !steps[i].applied;
		assert_int_equal(put(st, t, row, i % 2 ? "sftp" : "api", &applied), 0);
		if (applied != steps[i].applied)
			fail_msg("%s step %zu (%s): applied %d", table, i, steps[i].text, applied);
		snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE %s = 'k1'", canon_columns(t)[text_col], table,
			 canon_columns(t)[0]);
		assert_string_equal(query_text(st, sql), steps[i].want_text);
		snprintf(sql, sizeof(sql), "SELECT updated_at FROM %s", table);
		assert_string_equal(query_text(st, sql), steps[i].want_updated);
	}
	/* A refused write leaves the source too: the last applied step was source "api" (i = 6). */
	snprintf(sql, sizeof(sql), "SELECT source FROM %s", table);
	assert_string_equal(query_text(st, sql), "api");
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	assert_int_equal(unit_query_int(store_db(st), sql), 1);
}

static void newer_wins(struct store *st, enum canon_table t, int updated_col, int text_col)
{
	newer_wins_with(canon_put, st, t, updated_col, text_col);
	/* canon_put_stored decides alike, by its narrow update (title, status: no index
	 * holds them) or by canon_put (a return's order_id is indexed) */
	const char *table = canon_table_name(t);
	char sql[80];
	snprintf(sql, sizeof(sql), "DELETE FROM %s", table);
	assert_int_equal(store_exec(st, sql), 0);
	newer_wins_with(canon_put_stored, st, t, updated_col, text_col);
}

static void test_newer_wins_products(void **state)
{
	struct fixture *f = *state;
	newer_wins(f->st, CANON_PRODUCTS, P_UPDATED_AT, P_TITLE);
}

static void test_newer_wins_orders(void **state)
{
	struct fixture *f = *state;
	newer_wins(f->st, CANON_ORDERS, O_UPDATED_AT, O_STATUS);
}

static void test_newer_wins_returns(void **state)
{
	struct fixture *f = *state;
	newer_wins(f->st, CANON_RETURNS, R_UPDATED_AT, R_ORDER_ID);
}

/* canon_put_stored: the indexes follow an indexed column that changes; an unchanged row
 * is not written; a row not stored yet is inserted. */
static void test_put_stored(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db = store_db(f->st);
	bool applied = false;
	const char *o[O_COUNT] = { "o1", "WS-1", "paid", "2026-01-01T00:00:00Z",
				   "2026-01-01T00:00:00Z", "EUR", NULL };
	assert_int_equal(canon_put_stored(f->st, CANON_ORDERS, o, "api", &applied), 0);
	assert_true(applied);
	o[O_STATUS] = "shipped";
	o[O_UPDATED_AT] = "2026-01-02T00:00:00Z";
	assert_int_equal(canon_put_stored(f->st, CANON_ORDERS, o, "api", &applied), 0);
	assert_true(applied);
	assert_string_equal(query_text(f->st, "SELECT status FROM orders"), "shipped");
	o[O_ORDERED_AT] = "2026-01-03T00:00:00Z";
	o[O_UPDATED_AT] = "2026-01-03T00:00:00Z";
	assert_int_equal(canon_put_stored(f->st, CANON_ORDERS, o, "api", &applied), 0);
	assert_true(applied);
	assert_int_equal(unit_query_int(db, "SELECT count(*) FROM orders INDEXED BY orders_ordered"
					    " WHERE ordered_at = '2026-01-03T00:00:00Z'"), 1);
	assert_int_equal(unit_query_int(db, "SELECT count(*) FROM orders INDEXED BY orders_ordered"
					    " WHERE ordered_at = '2026-01-01T00:00:00Z'"), 0);

	put_product(f->st, "p1", "Tee", NULL, "api", true);
	const char *v[V_COUNT] = { "v1", "p1", "SKU-1", NULL, "4", "M", "3" };
	assert_int_equal(canon_put_stored(f->st, CANON_VARIANTS, v, "api", &applied), 0);
	assert_true(applied);
	assert_int_equal(canon_put_stored(f->st, CANON_VARIANTS, v, "api", &applied), 0);
	assert_false(applied); /* the same row: not written */
	v[V_STOCK] = "2";
	assert_int_equal(canon_put_stored(f->st, CANON_VARIANTS, v, "api", &applied), 0);
	assert_true(applied);
	v[V_SKU] = "SKU-2";
	assert_int_equal(canon_put_stored(f->st, CANON_VARIANTS, v, "api", &applied), 0);
	assert_true(applied);
	assert_string_equal(query_text(f->st, "SELECT stock || ' ' || sku FROM variants INDEXED BY"
					      " variants_sku WHERE sku = 'SKU-2'"), "2 SKU-2");
	assert_int_equal(unit_query_int(db, "SELECT count(*) FROM variants INDEXED BY variants_sku"
					    " WHERE sku = 'SKU-1'"), 0);
	assert_string_equal(query_text(f->st, "PRAGMA integrity_check"), "ok");
}

/* A refused product write leaves its variants alone (they are only replaced after an applied put). */
static void test_refused_write_keeps_children(void **state)
{
	struct fixture *f = *state;
	put_product(f->st, "p1", "new", "2026-02-01T00:00:00Z", "sftp", true);
	put_variant(f->st, "v1", "p1", "A");
	put_product(f->st, "p1", "stale", "2026-01-01T00:00:00Z", "api", false);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM variants WHERE product_id = 'p1'"), 1);
	assert_string_equal(query_text(f->st, "SELECT title FROM products"), "new");
	assert_string_equal(query_text(f->st, "SELECT source FROM products"), "sftp");
}

static void test_delete_children_of_one_parent(void **state)
{
	struct fixture *f = *state;
	put_product(f->st, "p1", "one", NULL, "api", true);
	put_product(f->st, "p2", "two", NULL, "api", true);
	put_variant(f->st, "v1", "p1", "A");
	put_variant(f->st, "v2", "p1", "B");
	put_variant(f->st, "v3", "p2", "C");
	assert_int_equal(canon_delete_children(f->st, CANON_VARIANTS, NULL, "p1"), 0);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM variants"), 1);
	assert_string_equal(query_text(f->st, "SELECT variant_id FROM variants"), "v3");
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM products"), 2);

	put_order(f->st, "o1");
	put_order(f->st, "o2");
	put_order_line(f->st, "o1", "1");
	put_order_line(f->st, "o1", "2");
	put_order_line(f->st, "o2", "1");
	assert_int_equal(canon_delete_children(f->st, CANON_ORDER_LINES, NULL, "o1"), 0);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM order_lines"), 1);
	assert_string_equal(query_text(f->st, "SELECT order_id FROM order_lines"), "o2");
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM orders"), 2);

	put_return(f->st, "r1");
	put_return(f->st, "r2");
	put_return_line(f->st, "r1", "1");
	put_return_line(f->st, "r2", "1");
	put_return_line(f->st, "r2", "2");
	assert_int_equal(canon_delete_children(f->st, CANON_RETURN_LINES, NULL, "r2"), 0);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM return_lines"), 1);
	assert_string_equal(query_text(f->st, "SELECT return_id FROM return_lines"), "r1");

	/* Labels of one (entity, id): the same id under another entity, and other ids, stay. */
	put_label(f->st, "product", "p1", "fr", "name", "Tee");
	put_label(f->st, "product", "p1", "en", "name", "Tee");
	put_label(f->st, "product", "p1", "fr", "url", "https://s/p1");
	put_label(f->st, "product", "p2", "fr", "name", "Polo");
	put_label(f->st, "size", "p1", "fr", "label", "M");
	assert_int_equal(canon_delete_children(f->st, CANON_LABELS, "product", "p1"), 0);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM labels"), 2);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM labels WHERE entity = 'product' AND entity_id = 'p2'"), 1);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM labels WHERE entity = 'size' AND entity_id = 'p1'"), 1);

	/* A table that is nobody's child is refused and nothing goes. */
	assert_int_equal(canon_delete_children(f->st, CANON_PRODUCTS, NULL, "p1"), -EINVAL);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM products"), 2);
}

static void test_delete_and_cascade(void **state)
{
	struct fixture *f = *state;
	put_product(f->st, "p1", "one", NULL, "api", true);
	put_product(f->st, "p2", "two", NULL, "api", true);
	put_variant(f->st, "v1", "p1", "A");
	put_variant(f->st, "v2", "p1", "B");
	put_variant(f->st, "v3", "p2", "C");

	assert_int_equal(canon_delete(f->st, CANON_PRODUCTS, "p1"), 0);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM products"), 1);
	assert_string_equal(query_text(f->st, "SELECT product_id FROM products"), "p2");
	/* Its variants went with it (ON DELETE CASCADE); the other product's stayed. */
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM variants"), 1);
	assert_string_equal(query_text(f->st, "SELECT variant_id FROM variants"), "v3");
	/* Deleting a key that is not there is not an error. */
	assert_int_equal(canon_delete(f->st, CANON_PRODUCTS, "nope"), 0);

	put_order(f->st, "o1");
	put_order(f->st, "o2");
	put_order_line(f->st, "o1", "1");
	put_order_line(f->st, "o2", "1");
	assert_int_equal(canon_delete(f->st, CANON_ORDERS, "o1"), 0);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM orders"), 1);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM order_lines WHERE order_id = 'o1'"), 0);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM order_lines WHERE order_id = 'o2'"), 1);

	put_return(f->st, "r1");
	put_return_line(f->st, "r1", "1");
	assert_int_equal(canon_delete(f->st, CANON_RETURNS, "r1"), 0);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM return_lines"), 0);

	const char *size[S_COUNT] = { "4", "M" };
	const char *size5[S_COUNT] = { "5", "L" };
	assert_int_equal(canon_put(f->st, CANON_SIZES, size, "api", NULL), 0);
	assert_int_equal(canon_put(f->st, CANON_SIZES, size5, "api", NULL), 0);
	assert_int_equal(canon_delete(f->st, CANON_SIZES, "4"), 0);
	assert_string_equal(query_text(f->st, "SELECT group_concat(size_id) FROM sizes"), "5");
}

/* A variant needs its product (foreign key): canon_put reports the failure. */
static void test_variant_without_product_is_refused(void **state)
{
	struct fixture *f = *state;
	const char *row[V_COUNT] = { "v9", "no-such-product", "SKU", NULL, NULL, NULL, NULL };
	assert_int_equal(canon_put(f->st, CANON_VARIANTS, row, "api", NULL), -EIO);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM variants"), 0);
}

static void test_column_helpers_match_the_schema(void **state)
{
	struct fixture *f = *state;
	static const struct {
		enum canon_table t;
		const char *name;
		int count;
		int derived; /* columns kleepd fills outside canon_put (fit.c) */
	} want[] = {
		{ CANON_PRODUCTS, "products", P_COUNT, 0 },
		{ CANON_VARIANTS, "variants", V_COUNT, 0 },
		{ CANON_DEPARTMENTS, "departments", D_COUNT, 0 },
		{ CANON_ATTRIBUTES, "attributes", A_COUNT, 0 },
		{ CANON_SIZES, "sizes", S_COUNT, 0 },
		{ CANON_LABELS, "labels", L_COUNT, 0 },
		{ CANON_ORDERS, "orders", O_COUNT, 0 },
		{ CANON_ORDER_LINES, "order_lines", OL_COUNT, 0 },
		{ CANON_RETURNS, "returns", R_COUNT, 0 },
		{ CANON_RETURN_LINES, "return_lines", RL_COUNT, 0 },
		{ CANON_RETURN_REASONS, "return_reasons", RR_COUNT, 2 },
		{ CANON_DIMENSIONS, "dimensions", DM_COUNT, 0 },
	};
	assert_int_equal(sizeof(want) / sizeof(want[0]), CANON_TABLE_COUNT);
	for (size_t i = 0; i < CANON_TABLE_COUNT; i++) {
		enum canon_table t = want[i].t;
		assert_string_equal(canon_table_name(t), want[i].name);
		assert_int_equal(canon_column_count(t), want[i].count);
		assert_true(canon_column_count(t) <= CANON_COLS_MAX);
		const char *const *cols = canon_columns(t);
		assert_null(cols[want[i].count]);
		/* The table has exactly these columns plus source (and the derived ones). */
		char sql[200];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM pragma_table_info('%s')", want[i].name);
		assert_int_equal(unit_query_int(store_db(f->st), sql), want[i].count + 1 + want[i].derived);
		for (int c = 0; c < want[i].count; c++) {
			snprintf(sql, sizeof(sql), "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
				 want[i].name, cols[c]);
			if (unit_query_int(store_db(f->st), sql) != 1)
				fail_msg("%s has no column %s", want[i].name, cols[c]);
		}
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM pragma_table_info('%s') WHERE name = 'source'",
			 want[i].name);
		assert_int_equal(unit_query_int(store_db(f->st), sql), 1);
	}
	/* The enums name the columns they index. */
	assert_string_equal(canon_columns(CANON_PRODUCTS)[P_UPDATED_AT], "updated_at");
	assert_string_equal(canon_columns(CANON_PRODUCTS)[P_DEACTIVATED], "deactivated");
	assert_string_equal(canon_columns(CANON_VARIANTS)[V_SIZE_LABEL], "size_label");
	assert_string_equal(canon_columns(CANON_ORDERS)[O_CUSTOMER_HASH], "customer_hash");
	assert_string_equal(canon_columns(CANON_ORDER_LINES)[OL_UNIT_PRICE_MINOR], "unit_price_minor");
	assert_string_equal(canon_columns(CANON_ORDER_LINES)[OL_CURRENCY], "currency");
	assert_string_equal(canon_columns(CANON_RETURNS)[R_UPDATED_AT], "updated_at");
	assert_string_equal(canon_columns(CANON_RETURN_LINES)[RL_COMMENT], "comment");
	assert_string_equal(canon_columns(CANON_RETURN_REASONS)[RR_LABEL], "label");
	assert_string_equal(canon_columns(CANON_DIMENSIONS)[DM_UPDATED_AT], "updated_at");
	assert_string_equal(canon_columns(CANON_LABELS)[L_VALUE], "value");
}

static void test_dimensions_keyed_by_kind_id_measurement(void **state)
{
	struct fixture *f = *state;
	const char *a[DM_COUNT] = { "variant", "v1", "chest", "p1", "v1", "52", "cm", NULL };
	const char *b[DM_COUNT] = { "variant", "v1", "chest", "p1", "v1", "53.5", "cm", NULL };
	const char *c[DM_COUNT] = { "product", "v1", "chest", "p1", NULL, "50", "cm", NULL };
	assert_int_equal(canon_put(f->st, CANON_DIMENSIONS, a, "sftp", NULL), 0);
	assert_int_equal(canon_put(f->st, CANON_DIMENSIONS, b, "sftp", NULL), 0);
	assert_int_equal(canon_put(f->st, CANON_DIMENSIONS, c, "sftp", NULL), 0);
	assert_int_equal(unit_query_int(store_db(f->st), "SELECT count(*) FROM dimensions"), 2);
	assert_string_equal(query_text(f->st, "SELECT value FROM dimensions WHERE key_kind = 'variant'"), "53.5");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_inserts_then_updates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_wins_products, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_wins_orders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_wins_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_stored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_write_keeps_children, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_children_of_one_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_and_cascade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_variant_without_product_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_column_helpers_match_the_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dimensions_keyed_by_kind_id_measurement, setup, teardown),
	};
	return cmocka_run_group_tests_name("canon", tests, NULL, NULL);
}
