/* test_outcome.c - schema 8 on a mirror of schema 7 (a fixture made by the code before it),
 * the links between return and order lines, the outcome views, and the README's query plans. */
#include <errno.h>
#include <inttypes.h>

#include "unit.h"
#include "unit_sql.h"
#include "unit_fixture.h"

#include "canon.h"
#include "csvin.h"
#include "migrations.h"
#include "money.h"
#include "outcome.h"
#include "store.h"

#define FIXTURE "tests/fixtures/schema7.db" /* tests run from the project root */
#define README "README.md"

/* A copy of the schema-7 fixture in a fresh folder; the caller frees the path and the folder. */
static char *fixture_copy(char **dir)
{
	char *path, *cmd;
	*dir = unit_tmpdir();
	assert_true(asprintf(&path, "%s/m.db", *dir) > 0);
	assert_true(asprintf(&cmd, "cp '%s' '%s'", FIXTURE, path) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return path;
}

/* An empty mirror of the current schema in a fresh folder; the caller frees path and dir. */
static struct store *fresh_store(char **dir, char **path)
{
	struct store *st;
	char err[256];
	*dir = unit_tmpdir();
	assert_true(asprintf(path, "%s/m.db", *dir) > 0);
	assert_int_equal(store_open(*path, &st, err, sizeof(err)), 0);
	return st;
}

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	return db;
}

static const char *const counted[] = {
	"records", "products", "variants", "departments", "attributes", "sizes", "labels", "orders",
	"order_lines", "returns", "return_lines", "return_reasons", "sync_state", "sync_runs",
	"sftp_files", "csv_rejects", "dimensions",
};
#define N_COUNTED (sizeof(counted) / sizeof(counted[0]))

static void count_rows(sqlite3 *db, int *n)
{
	for (size_t i = 0; i < N_COUNTED; i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", counted[i]);
		n[i] = unit_query_int(db, sql);
	}
}

/* Open (and so migrate) the fixture copy, then what a job's open does: cancelled statuses
 * from the default profile, fit classes with a [fit] that names R08. */
static struct store *open_migrated(const char *path)
{
	struct store *st;
	char err[512];
	struct merchant_conf m;
	memset(&m, 0, sizeof(m));
	m.fit[3] = "R08"; /* not_fit, by the merchant */
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	if (outcome_prepare(st, NULL, "/nonexistent", &m, err, sizeof(err)) < 0)
		fail_msg("outcome_prepare: %s", err);
	return st;
}

static void test_migration_keeps_data(void **state)
{
	(void)state;
	char *dir, *path = fixture_copy(&dir);
	int before[N_COUNTED], after[N_COUNTED];

	sqlite3 *db = raw_open(path);
	assert_int_equal(unit_query_int(db, "PRAGMA user_version"), 7);
	count_rows(db, before);
	/* The price text of every line before, with the currency it will carry. */
	char *prices = unit_rows(db, "SELECT l.order_id, l.line_no, l.price, o.currency FROM order_lines l"
				     " JOIN orders o USING (order_id) ORDER BY 1, 2");
	sqlite3_close(db);

	struct store *st = open_migrated(path);
	db = store_db(st);
	assert_int_equal(unit_query_int(db, "PRAGMA user_version"), migrations_count);
	count_rows(db, after);
	for (size_t i = 0; i < N_COUNTED; i++)
		if (before[i] != after[i])
			fail_msg("%s: %d rows before, %d after", counted[i], before[i], after[i]);
	assert_int_equal(unit_query_int(db, "SELECT count(*) FROM pragma_table_info('order_lines')"
					    " WHERE name = 'price'"), 0);

	/* Every price as the C conversion (what kleepd writes now) makes it: the SQL of the
	 * migration and lib/money.c agree, line by line. */
	char *line = prices, *next;
	int checked = 0;
	for (; line && *line; line = next) {
		next = strchr(line, '\n');
		*next++ = 0;
		char oid[64], lno[16], price[64], cur[16], sql[256];
		if (sscanf(line, "%63[^|]|%15[^|]|%63[^|]|%15s", oid, lno, price, cur) != 4)
			fail_msg("cannot read '%s'", line);
		char buf[MONEY_TEXT_LEN];
		const char *want;
		assert_int_equal(money_minor_text(st, NULL, strcmp(price, "~") ? price : NULL,
						  strcmp(cur, "~") ? cur : NULL, buf, &want), 0);
		snprintf(sql, sizeof(sql), "SELECT unit_price_minor, currency FROM order_lines"
			 " WHERE order_id = '%s' AND line_no = %s", oid, lno);
		char *got = unit_rows(db, sql), wanted[64];
		snprintf(wanted, sizeof(wanted), "%s|%s\n", want ? want : "~", cur);
		if (strcmp(got, wanted) != 0)
			fail_msg("line %s: price '%s' %s became %s", line, price, cur, got);
		free(got);
		checked++;
	}
	assert_int_equal(checked, before[8]);
	/* The edges the fixture holds on purpose. */
	unit_expect_rows(db, "SELECT order_id, line_no, unit_price_minor, currency FROM order_lines"
			     " WHERE order_id > '99100' ORDER BY 1, 2",
			 "99101|1|1235|EUR\n99102|1|1500|JPY\n99103|1|1235|KWD\n99104|1|~|XYZ\n"
			 "99105|1|~|~\n99106|1|1990|EUR\n99107|1|100|EUR\n99108|1|-500|EUR\n"
			 "99108|2|2990|EUR\nS-1|1|1990|EUR\nS-1|2|4900|EUR\nS-2|1|1500|JPY\nS-3|1|~|~\n");
	/* Return lines found their order line: by variant, else by sku; NULL when not found. */
	unit_expect_rows(db, "SELECT return_id, line_no, order_line_no FROM return_lines"
			     " WHERE return_id > '7100' ORDER BY 1, 2",
			 "7101|1|2\n7101|2|~\n7102|1|1\nSR-1|1|2\nSR-2|1|1\nSR-3|1|~\nSR-4|1|1\n");
	/* Reasons: by code and labels, R07 by its labels, R08 by the merchant's [fit]. */
	unit_expect_rows(db, "SELECT reason_id, fit, fit_source FROM return_reasons ORDER BY 1",
			 "1|too_large|default\n2|too_small|default\n3|not_fit|default\n"
			 "4|not_fit|default\n5|not_fit|default\n6|not_fit|default\n7|not_fit|default\n"
			 "R07|too_small|default\nR08|not_fit|config\n");
	unit_expect_rows(db, "SELECT status FROM cancelled_statuses ORDER BY 1", "canceled\ncancelled\n");
	free(prices);
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

/* The views after migration: size_outcomes against a plain count written here, and against
 * order_line_outcomes; cancelled orders (any case) sell nothing. */
static void test_views_after_migration(void **state)
{
	(void)state;
	char *dir, *path = fixture_copy(&dir);
	struct store *st = open_migrated(path);
	sqlite3 *db = store_db(st);

	char *plain = unit_rows(db,
		"WITH live AS (SELECT * FROM order_lines l JOIN orders o USING (order_id)"
		"              WHERE lower(coalesce(o.status, '')) NOT IN ('cancelled', 'canceled')),"
		" back AS (SELECT live.product_id, live.size_label, rl.quantity, rr.fit"
		"          FROM return_lines rl JOIN live ON live.order_id = rl.order_id"
		"          AND live.line_no = rl.order_line_no"
		"          LEFT JOIN return_reasons rr ON rr.reason_id = rl.reason_id)"
		" SELECT product_id, size_label, sum(quantity),"
		"   (SELECT coalesce(sum(quantity), 0) FROM back b WHERE b.product_id IS g.product_id"
		"    AND b.size_label IS g.size_label),"
		"   (SELECT coalesce(sum(quantity), 0) FROM back b WHERE b.product_id IS g.product_id"
		"    AND b.size_label IS g.size_label AND fit = 'too_small'),"
		"   (SELECT coalesce(sum(quantity), 0) FROM back b WHERE b.product_id IS g.product_id"
		"    AND b.size_label IS g.size_label AND fit = 'too_large')"
		" FROM live g GROUP BY product_id, size_label ORDER BY 1, 2");
	char *view = unit_rows(db, "SELECT product_id, size_label, units_sold, units_returned,"
				   " returned_too_small, returned_too_large FROM size_outcomes ORDER BY 1, 2");
	char *lines = unit_rows(db, "SELECT product_id, size_label, sum(quantity), sum(returned_quantity),"
				    " sum(returned_too_small), sum(returned_too_large) FROM order_line_outcomes"
				    " WHERE NOT cancelled GROUP BY 1, 2 ORDER BY 1, 2");
	assert_string_equal(view, plain);
	assert_string_equal(view, lines);
	assert_true(strlen(view) > 20);
	free(plain);
	free(view);
	free(lines);
	/* 1002 XS: 99108 line 2 (3 units, 1 back too small) and S-1 line 2 (1 unit, 1 back
	 * too small by R07's labels). */
	unit_expect_rows(db, "SELECT units_sold, units_returned, returned_too_small, returned_too_large,"
			     " return_rate FROM size_outcomes WHERE product_id = '1002' AND size_label = 'XS'",
			 "4|2|2|0|0.5\n");
	/* A cancelled order's line is there, marked, and counts nowhere. */
	unit_expect_rows(db, "SELECT order_id, cancelled FROM order_line_outcomes"
			     " WHERE order_id IN ('99107', 'S-3', 'S-2') ORDER BY 1",
			 "99107|1\nS-2|0\nS-3|1\n");
	unit_expect_rows(db, "SELECT order_id, line_no, returned_quantity, returned_too_small, fit"
			     " FROM order_line_outcomes WHERE order_id IN ('99108', 'S-2') ORDER BY 1, 2",
			 "99108|1|0|0|~\n99108|2|1|1|too_small\nS-2|1|1|0|not_fit\n");
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

static void put(struct store *st, enum canon_table t, const char *const *row)
{
	assert_int_equal(canon_put(st, t, row, "api", NULL), 0);
}

/* A return line as kleepd writes one: with the order line it finds now (lib/outcome.c). */
static void put_return_line(struct store *st, const char *const *row)
{
	const char *full[RL_COUNT];
	char buf[OUTCOME_LINE_LEN];
	memcpy(full, row, sizeof(full));
	assert_int_equal(outcome_order_line(st, row[RL_ORDER_ID], row[RL_VARIANT_ID], row[RL_SKU], buf,
					    &full[RL_ORDER_LINE_NO]), 0);
	put(st, CANON_RETURN_LINES, full);
}

/* An order line as kleepd writes one: its order's return lines follow (lib/outcome.c). */
static void put_order_line(struct store *st, const char *const *row)
{
	put(st, CANON_ORDER_LINES, row);
	assert_int_equal(outcome_relink(st, row[OL_ORDER_ID]), 0);
}

/* order_line_no follows whichever arrives first, and later changes to the order's lines. */
static void test_links_follow_the_lines(void **state)
{
	(void)state;
	char *dir, *path;
	struct store *st = fresh_store(&dir, &path);
	sqlite3 *db = store_db(st);
	const char *o1[O_COUNT] = { "o1" }, *o2[O_COUNT] = { "o2" };
	const char *r1[R_COUNT] = { "r1", "o1" }, *r2[R_COUNT] = { "r2", "o2" };
	/* Return first: nothing to tie to yet. */
	put(st, CANON_RETURNS, r1);
	const char *rl1[RL_COUNT] = { "r1", "1", "o1", "P", "V2", "S2", "M", "1" };
	const char *rl2[RL_COUNT] = { "r1", "2", "o1", "P", NULL, "S3", "L", "1" };
	put_return_line(st, rl1);
	put_return_line(st, rl2);
	unit_expect_rows(db, "SELECT line_no, order_line_no FROM return_lines ORDER BY 1", "1|~\n2|~\n");
	/* The order comes: by variant, by sku. */
	put(st, CANON_ORDERS, o1);
	const char *ol1[OL_COUNT] = { "o1", "1", "P", "V1", "S1", "S", "1" };
	const char *ol2[OL_COUNT] = { "o1", "2", "P", "V2", "S2", "M", "1" };
	const char *ol3[OL_COUNT] = { "o1", "3", "P", "V3", "S3", "L", "1" };
	put_order_line(st, ol1);
	put_order_line(st, ol2);
	put_order_line(st, ol3);
	unit_expect_rows(db, "SELECT line_no, order_line_no FROM return_lines ORDER BY 1", "1|2\n2|3\n");
	/* The order sent again without line 2: its return line is orphaned, then found again. */
	assert_int_equal(canon_delete_children(st, CANON_ORDER_LINES, NULL, "o1"), 0);
	assert_int_equal(outcome_relink(st, "o1"), 0);
	put_order_line(st, ol1);
	put_order_line(st, ol3);
	unit_expect_rows(db, "SELECT line_no, order_line_no FROM return_lines ORDER BY 1", "1|~\n2|3\n");
	/* A line takes the returned variant (updated in place): the return follows. */
	const char *ol1b[OL_COUNT] = { "o1", "1", "P", "V2", "S2", "M", "1" };
	put_order_line(st, ol1b);
	unit_expect_rows(db, "SELECT line_no, order_line_no FROM return_lines ORDER BY 1", "1|1\n2|3\n");
	/* A variant beats a sku, and the first line of two with the same variant is the one. */
	put(st, CANON_ORDERS, o2);
	const char *p1[OL_COUNT] = { "o2", "5", "P", "V9", "SX", "M", "1" };
	const char *p2[OL_COUNT] = { "o2", "7", "P", "V8", "S8", "M", "1" };
	const char *p3[OL_COUNT] = { "o2", "4", "P", "V8", "S8", "M", "1" };
	put_order_line(st, p1);
	put(st, CANON_RETURNS, r2);
	const char *rl3[RL_COUNT] = { "r2", "1", "o2", "P", "V8", "SX", "M", "1" };
	put_return_line(st, rl3);
	unit_expect_rows(db, "SELECT order_line_no FROM return_lines WHERE return_id = 'r2'", "5\n");
	put_order_line(st, p2);
	unit_expect_rows(db, "SELECT order_line_no FROM return_lines WHERE return_id = 'r2'", "7\n");
	put_order_line(st, p3);
	unit_expect_rows(db, "SELECT order_line_no FROM return_lines WHERE return_id = 'r2'", "4\n");
	/* The return line changes its variant: it follows. */
	const char *rl3b[RL_COUNT] = { "r2", "1", "o2", "P", "V9", "SX", "M", "1" };
	put_return_line(st, rl3b);
	unit_expect_rows(db, "SELECT order_line_no FROM return_lines WHERE return_id = 'r2'", "5\n");
	/* The order goes (deleted at the source): its returns lose their lines. */
	assert_int_equal(canon_delete(st, CANON_ORDERS, "o2"), 0);
	assert_int_equal(outcome_relink(st, "o2"), 0);
	unit_expect_rows(db, "SELECT order_line_no FROM return_lines WHERE return_id = 'r2'", "~\n");
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

static void ingest(struct store *st, enum csvin_kind kind, const char *name, const char *csv)
{
	struct merchant_conf m;
	struct tz *zones = NULL;
	unit_merchant(&m, "m", &zones);
	m.n_languages = 1; /* fr */
	m.sftp.max_reject_ratio = 0.05;
	FILE *in = fmemopen((void *)csv, strlen(csv), "r");
	assert_non_null(in);
	struct csvin_opts o = { .kind = kind, .path = name, .file_time = "2025-01-15T01:00:00Z",
				.m = &m, .run_id = 1 };
	struct csvin_result res;
	assert_int_equal(csvin_apply(st, &o, in, &res), 0);
	assert_int_equal(res.outcome, CSVIN_APPLIED);
	fclose(in);
	tz_free(zones);
}

/* From CSV files as from the API: a returns file before the orders file it returns, then an
 * orders file that changes a line; the views count the returns once they are tied. */
static void test_csv_returns_before_their_orders(void **state)
{
	(void)state;
	char *dir, *path;
	struct store *st = fresh_store(&dir, &path);
	sqlite3 *db = store_db(st);
	ingest(st, CSVIN_RETURNS, "returns/returns_2025-01-14T02-00-00.csv",
	       "return_id,order_id,returned_at,product_id,variant_id,sku,quantity,reason_id\n"
	       "R1,O1,2025-01-14,P,V2,,1,2\nR1,O1,2025-01-14,P,,S3,1,1\n");
	unit_expect_rows(db, "SELECT line_no, order_line_no FROM return_lines ORDER BY 1", "1|~\n2|~\n");
	unit_expect_rows(db, "SELECT count(*) FROM size_outcomes", "0\n");
	ingest(st, CSVIN_ORDERS, "orders/orders_2025-01-15T02-00-00.csv",
	       "order_id,ordered_at,product_id,variant_id,sku,size_label,quantity,line_no,price,currency\n"
	       "O1,2025-01-10,P,V1,S1,S,1,1,10,EUR\nO1,2025-01-10,P,V2,S2,M,2,2,10,EUR\n"
	       "O1,2025-01-10,P,V3,S3,L,1,3,10,EUR\n");
	unit_expect_rows(db, "SELECT line_no, order_line_no FROM return_lines ORDER BY 1", "1|2\n2|3\n");
	unit_expect_rows(db, "SELECT size_label, units_sold, units_returned FROM size_outcomes ORDER BY 1",
			 "L|1|1\nM|2|1\nS|1|0\n");
	/* Line 3 becomes another variant and sku: its return is no longer tied. */
	ingest(st, CSVIN_ORDERS, "orders/orders_2025-01-16T02-00-00.csv",
	       "order_id,ordered_at,product_id,variant_id,sku,size_label,quantity,line_no,price,currency,"
	       "updated_at\nO1,2025-01-10,P,V4,S4,XL,1,3,10,EUR,2025-01-16\n");
	unit_expect_rows(db, "SELECT line_no, order_line_no FROM return_lines ORDER BY 1", "1|2\n2|~\n");
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

/* Each SQL statement of the README's "Sizes, returns and fit" block uses the indexes its
 * "(uses: ...)" comment names. */
static void test_readme_query_plans(void **state)
{
	(void)state;
	FILE *f = fopen(README, "r");
	assert_non_null(f);
	char *text = NULL;
	size_t cap = 0;
	assert_true(getdelim(&text, &cap, 0, f) > 0);
	fclose(f);
	char *block = strstr(text, "### Sizes, returns and fit");
	assert_non_null(block);
	block = strstr(block, "```sql\n");
	assert_non_null(block);
	block += 7;
	char *end = strstr(block, "```");
	assert_non_null(end);
	*end = 0;

	char *dir, *path = fixture_copy(&dir);
	struct store *st = open_migrated(path);
	int queries = 0;
	for (char *stmt = block, *semi; (semi = strchr(stmt, ';')); stmt = semi + 1) {
		*semi = 0;
		char *uses = strstr(stmt, "(uses: ");
		if (!uses)
			fail_msg("a README query without '(uses: ...)': %s", stmt);
		char *plan_sql;
		assert_true(asprintf(&plan_sql, "EXPLAIN QUERY PLAN %s", stmt) > 0);
		char *plan = unit_rows(store_db(st), plan_sql);
		char names[256];
		assert_int_equal(sscanf(uses + 7, "%255[^)]", names), 1);
		for (char *save, *name = strtok_r(names, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
			char needle[300];
			snprintf(needle, sizeof(needle), "INDEX %s", name);
			if (!strstr(plan, needle))
				fail_msg("the plan of\n%s\ndoes not use %s:\n%s", stmt, name, plan);
		}
		free(plan);
		free(plan_sql);
		queries++;
	}
	assert_true(queries >= 6);
	store_close(st);
	free(path);
	unit_rmtree(dir);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migration_keeps_data),
		cmocka_unit_test(test_views_after_migration),
		cmocka_unit_test(test_links_follow_the_lines),
		cmocka_unit_test(test_csv_returns_before_their_orders),
		cmocka_unit_test(test_readme_query_plans),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
