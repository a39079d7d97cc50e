/* test_store.c - the mirror: migrations, refusal of newer files, upserts, cursors, runs. */
#include <errno.h>
#include <sqlite3.h>

#include "unit.h"
#include "unit_sql.h"

#include "buf.h"
#include "migrations.h"
#include "store.h"

static const char *const tables[] = {
	"records", "products", "variants", "departments", "attributes", "sizes", "labels",
	"orders", "order_lines", "returns", "return_lines", "return_reasons", "sync_state",
	"sync_runs", "sftp_files", "csv_rejects", "dimensions",
};

/* The whole schema as text, to tell whether a second open changed anything. */
static char *schema_dump(sqlite3 *db)
{
	sqlite3_stmt *s;
	struct buf out;
	buf_init(&out, 1 << 20);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT coalesce(sql, name) FROM sqlite_schema ORDER BY name",
					    -1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		assert_int_equal(buf_addstr(&out, (const char *)sqlite3_column_text(s, 0)), 0);
		assert_int_equal(buf_addstr(&out, "\n"), 0);
	}
	sqlite3_finalize(s);
	char *text = strdup(buf_str(&out));
	buf_free(&out);
	return text;
}

static char *db_path(const char *dir)
{
	char *p;
	assert_true(asprintf(&p, "%s/m.db", dir) > 0);
	return p;
}

static void test_open_creates_every_table(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = db_path(dir), err[512];
	struct store *st;

	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(store_schema_version(st), store_schema_latest());
	assert_int_equal(store_schema_latest(), migrations_count);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char sql[160];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='%s'",
			 tables[i]);
		if (unit_query_int(store_db(st), sql) != 1)
			fail_msg("table %s missing", tables[i]);
	}
	assert_int_equal(unit_query_int(store_db(st), "PRAGMA foreign_keys"), 1);
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(store_db(st), "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	char *before = schema_dump(store_db(st));
	store_close(st);

	/* Opening again changes nothing. */
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	char *after = schema_dump(store_db(st));
	assert_string_equal(before, after);
	assert_int_equal(store_schema_version(st), migrations_count);
	store_close(st);
	free(before);
	free(after);
	free(path);
	unit_rmtree(dir);
}

/* A file made by every earlier version migrates to the newest, keeping its rows. */
static void test_migrate_from_every_version(void **state)
{
	(void)state;
	for (int from = 0; from < migrations_count; from++) {
		char *dir = unit_tmpdir(), *path = db_path(dir), err[512];
		sqlite3 *db;
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		for (int i = 0; i < from; i++)
			assert_int_equal(sqlite3_exec(db, migrations[i].sql, NULL, NULL, NULL), SQLITE_OK);
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", from);
		assert_int_equal(sqlite3_exec(db, pragma, NULL, NULL, NULL), SQLITE_OK);
		if (from >= 1)
			assert_int_equal(sqlite3_exec(db,
				"INSERT INTO orders (order_id, source) VALUES ('o1', 'api')",
				NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);

		struct store *st;
		assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
		assert_int_equal(store_schema_version(st), migrations_count);
		if (from >= 1)
			assert_int_equal(unit_query_int(store_db(st), "SELECT count(*) FROM orders"), 1);
		assert_int_equal(unit_query_int(store_db(st),
			"SELECT count(*) FROM sqlite_schema WHERE name = 'dimensions'"), 1);
		store_close(st);
		free(path);
		unit_rmtree(dir);
	}
}

static void test_newer_database_is_refused(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = db_path(dir), err[512];
	sqlite3 *db;
	struct store *st;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char pragma[64];
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", migrations_count + 1);
	assert_int_equal(sqlite3_exec(db, pragma, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	err[0] = 0;
	assert_int_equal(store_open(path, &st, err, sizeof(err)), -EPROTO);
	assert_null(st);
	assert_non_null(strstr(err, "newer than this kleepd"));
	assert_non_null(strstr(err, path));
	free(path);
	unit_rmtree(dir);
}

/* A file that is not SQLite: refused as storage, with the words and the file. */
static void test_not_a_database_is_named(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = db_path(dir), err[512];
	struct store *st;
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 200; i++)
		fputs("this is a text file, not a mirror\n", f);
	fclose(f);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), -EBADMSG);
	assert_null(st);
	assert_non_null(strstr(err, "not a database"));
	assert_non_null(strstr(err, path));
	free(path);
	unit_rmtree(dir);
}

/* sync_state takes the class storage (migration 008 widened its CHECK). */
static void test_state_takes_storage_class(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = db_path(dir), err[512];
	struct store *st;
	struct store_state s = { 0 };
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	store_state_set(&s.error_class, "storage");
	store_state_set(&s.last_error, "disk full");
	assert_int_equal(store_state_put(st, "orders", &s), 0);
	store_state_clear(&s);
	assert_int_equal(store_state_get(st, "orders", &s), 0);
	assert_string_equal(s.error_class, "storage");
	store_state_clear(&s);
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

/* keep_runs: the newest rows of a stream stay, other streams are untouched. */
static void test_runs_prune(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = db_path(dir), err[512];
	struct store *st;
	int64_t id;
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(store_run_start(st, "orders", "2026-01-01T00:00:00Z", &id), 0);
		assert_int_equal(store_run_start(st, "sizes", "2026-01-01T00:00:00Z", &id), 0);
	}
	assert_int_equal(store_runs_prune(st, "orders", 2), 0);
	assert_int_equal(unit_query_int(store_db(st), "SELECT count(*) FROM sync_runs WHERE stream = 'orders'"), 2);
	assert_int_equal(unit_query_int(store_db(st), "SELECT min(run_id) FROM sync_runs WHERE stream = 'orders'"), 7);
	assert_int_equal(unit_query_int(store_db(st), "SELECT count(*) FROM sync_runs WHERE stream = 'sizes'"), 5);
	assert_int_equal(store_runs_prune(st, "orders", 2), 0);
	assert_int_equal(unit_query_int(store_db(st), "SELECT count(*) FROM sync_runs WHERE stream = 'orders'"), 2);
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

static long file_size(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fclose(f);
	return n;
}

/* The checkpoint at a job's end empties the -wal, and says so when a reader holds it. */
static void test_checkpoint_truncates_or_names_the_reader(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = db_path(dir), err[512], msg[512], *wal;
	struct store *st;
	sqlite3 *reader;
	assert_true(asprintf(&wal, "%s-wal", path) > 0);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_open_v2(path, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM records;", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(store_exec(st, "BEGIN; CREATE TABLE t (x); INSERT INTO t VALUES"
				    " (randomblob(100000)), (randomblob(100000)); COMMIT;"), 0);
	assert_int_equal(store_checkpoint(st, msg, sizeof(msg)), -EBUSY);
	assert_non_null(strstr(msg, wal));
	assert_non_null(strstr(msg, "reader"));
	assert_true(file_size(wal) > 100000);
	sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(reader);
	assert_int_equal(store_checkpoint(st, msg, sizeof(msg)), 0);
	assert_int_equal(file_size(wal), 0);
	store_close(st);
	free(wal);
	free(path);
	unit_rmtree(dir);
}

static void test_record_upsert(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = db_path(dir), err[512];
	struct store *st;
	bool changed;
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);

	struct store_record r = { "orders", "42", "api", "2026-01-01T10:00:00Z", "{\"id\":42}" };
	assert_int_equal(store_record_put(st, &r, "2026-01-02T00:00:00Z", 1, &changed), 0);
	assert_true(changed);
	assert_int_equal(store_record_put(st, &r, "2026-01-03T00:00:00Z", 2, &changed), 0);
	assert_false(changed);
	r.json = "{\"id\":42,\"status\":\"shipped\"}";
	assert_int_equal(store_record_put(st, &r, "2026-01-04T00:00:00Z", 3, &changed), 0);
	assert_true(changed);

	sqlite3 *db = store_db(st);
	assert_int_equal(unit_query_int(db, "SELECT count(*) FROM records"), 1);
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT first_seen, last_seen, json, last_run FROM records",
					    -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "2026-01-02T00:00:00Z");
	assert_string_equal((const char *)sqlite3_column_text(s, 1), "2026-01-04T00:00:00Z");
	assert_string_equal((const char *)sqlite3_column_text(s, 2), r.json);
	assert_int_equal(sqlite3_column_int(s, 3), 3);
	sqlite3_finalize(s);

	/* A full read by run 4 that saw only record 7 marks 42 deleted, once. */
	struct store_record r7 = { "orders", "7", "api", NULL, "{}" };
	assert_int_equal(store_record_put(st, &r7, "2026-01-05T00:00:00Z", 4, NULL), 0);
	int n;
	assert_int_equal(store_record_sweep(st, "orders", "api", 4, "2026-01-05T00:00:00Z", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_record_sweep(st, "orders", "api", 4, "2026-01-05T00:00:00Z", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(unit_query_int(db, "SELECT deleted FROM records WHERE id = '42'"), 1);
	/* Seen again: undeleted, and that counts as a change. */
	assert_int_equal(store_record_put(st, &r, "2026-01-06T00:00:00Z", 5, &changed), 0);
	assert_true(changed);
	assert_int_equal(unit_query_int(db, "SELECT deleted FROM records WHERE id = '42'"), 0);
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

/* An unchanged record costs no write: none in an incremental window, only the seen mark in a full read. */
static void test_record_merge(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = db_path(dir), err[512];
	struct store *st;
	bool changed;
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	sqlite3 *db = store_db(st);

	struct store_record r = { "orders", "42", "api", "2026-01-01T10:00:00Z", "{\"id\":42}" };
	assert_int_equal(store_record_merge(st, &r, "2026-01-02T00:00:00Z", 1, false, &changed), 0);
	assert_true(changed);
	int before = sqlite3_total_changes(db);
	assert_int_equal(store_record_merge(st, &r, "2026-01-03T00:00:00Z", 2, false, &changed), 0);
	assert_false(changed);
	assert_int_equal(sqlite3_total_changes(db), before);
	assert_int_equal(unit_query_int(db, "SELECT last_run FROM records WHERE id = '42'"), 1);

	/* A full read marks it seen (for the sweep), and nothing else. */
	assert_int_equal(store_record_merge(st, &r, "2026-01-04T00:00:00Z", 3, true, &changed), 0);
	assert_false(changed);
	assert_int_equal(unit_query_int(db, "SELECT last_run = 3 AND last_seen = '2026-01-04T00:00:00Z'"
				       " AND first_seen = '2026-01-02T00:00:00Z' FROM records"), 1);

	/* New JSON, another source, or a deleted mark: written, and a change. */
	r.json = "{\"id\":42,\"status\":\"shipped\"}";
	assert_int_equal(store_record_merge(st, &r, "2026-01-05T00:00:00Z", 4, false, &changed), 0);
	assert_true(changed);
	r.source = "sftp";
	assert_int_equal(store_record_merge(st, &r, "2026-01-05T00:00:00Z", 4, false, &changed), 0);
	assert_true(changed);
	assert_int_equal(store_record_sweep(st, "orders", "sftp", 5, "2026-01-06T00:00:00Z", NULL), 0);
	assert_int_equal(store_record_merge(st, &r, "2026-01-07T00:00:00Z", 6, false, &changed), 0);
	assert_true(changed);
	assert_int_equal(unit_query_int(db, "SELECT deleted = 0 AND last_run = 6 AND source = 'sftp' AND"
				       " json LIKE '%shipped%' FROM records"), 1);
	assert_int_equal(unit_query_int(db, "SELECT count(*) FROM records"), 1);
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

static void test_state_and_runs(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path = db_path(dir), err[512];
	struct store *st;
	struct store_state s;
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);

	assert_int_equal(store_state_get(st, "orders", &s), 0);
	assert_null(s.cursor_time);
	assert_int_equal(s.rows_total, 0);
	store_state_set(&s.cursor_time, "2026-01-01T00:00:00Z");
	store_state_set(&s.cursor_id, "99");
	store_state_set(&s.error_class, "transient");
	s.window_page = 3;
	s.rows_total = 12;
	s.unauthorized = true;
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_state_put(st, "orders", &s), 0);
	assert_int_equal(store_commit(st), 0);
	store_state_clear(&s);

	assert_int_equal(store_state_get(st, "orders", &s), 0);
	assert_string_equal(s.cursor_time, "2026-01-01T00:00:00Z");
	assert_string_equal(s.cursor_id, "99");
	assert_string_equal(s.error_class, "transient");
	assert_int_equal(s.window_page, 3);
	assert_int_equal(s.rows_total, 12);
	assert_true(s.unauthorized);
	/* A class outside the five is refused by the schema. */
	store_state_set(&s.error_class, "oops");
	assert_int_equal(store_state_put(st, "orders", &s), -EIO);
	store_state_clear(&s);

	/* A rolled-back page leaves the cursor where it was. */
	assert_int_equal(store_state_get(st, "orders", &s), 0);
	assert_int_equal(store_begin(st), 0);
	store_state_set(&s.cursor_time, "2030-01-01T00:00:00Z");
	assert_int_equal(store_state_put(st, "orders", &s), 0);
	store_rollback(st);
	store_state_clear(&s);
	assert_int_equal(store_state_get(st, "orders", &s), 0);
	assert_string_equal(s.cursor_time, "2026-01-01T00:00:00Z");
	store_state_clear(&s);

	int64_t a, b;
	assert_int_equal(store_run_start(st, "orders", "2026-01-01T00:00:00Z", &a), 0);
	assert_int_equal(store_run_start(st, "products", "2026-01-01T00:00:00Z", &b), 0);
	assert_true(b > a);
	struct store_run r = { .run_id = a, .outcome = "success", .pages = 2, .rows_in = 150,
			       .rows_changed = 7, .http_requests = 3, .bytes = 1000 };
	assert_int_equal(store_run_finish(st, &r, "2026-01-01T00:01:00Z"), 0);
	assert_int_equal(store_run_reap(st, "2026-01-01T00:02:00Z"), 0);
	sqlite3 *db = store_db(st);
	assert_int_equal(unit_query_int(db, "SELECT count(*) FROM sync_runs WHERE outcome = 'success' AND rows_in = 150"), 1);
	assert_int_equal(unit_query_int(db, "SELECT count(*) FROM sync_runs WHERE outcome = 'interrupted'"), 1);
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

static void test_stmt_cache_returns_reset_statement(void **state)
{
	(void)state;
	static const char *SQL = "SELECT ?1";
	char *dir = unit_tmpdir(), *path = db_path(dir), err[512];
	struct store *st;
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	sqlite3_stmt *a = store_stmt(st, SQL);
	sqlite3_bind_int(a, 1, 5);
	assert_int_equal(sqlite3_step(a), SQLITE_ROW);
	sqlite3_stmt *b = store_stmt(st, SQL);
	assert_ptr_equal(a, b);
	assert_int_equal(sqlite3_step(b), SQLITE_ROW);
	assert_int_equal(sqlite3_column_type(b, 0), SQLITE_NULL); /* bindings cleared */
	assert_null(store_stmt(st, "SELECT nonsense FROM"));
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_creates_every_table),
		cmocka_unit_test(test_migrate_from_every_version),
		cmocka_unit_test(test_newer_database_is_refused),
		cmocka_unit_test(test_not_a_database_is_named),
		cmocka_unit_test(test_state_takes_storage_class),
		cmocka_unit_test(test_runs_prune),
		cmocka_unit_test(test_checkpoint_truncates_or_names_the_reader),
		cmocka_unit_test(test_record_upsert),
		cmocka_unit_test(test_record_merge),
		cmocka_unit_test(test_state_and_runs),
		cmocka_unit_test(test_stmt_cache_returns_reset_statement),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
