/* bulkload.c - secondary indexes set aside during a large load, built again before its commit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulkload.h"

/* The indexes set aside: not the key's (no sql), nor a partial one, whose rebuild would
 * scan the whole table for the few rows it holds (bulkload.h). */
static const char *SQL_INDEXES =
	"SELECT s.name, s.sql FROM sqlite_schema AS s JOIN pragma_index_list(?1) AS il"
	" ON il.name = s.name"
	" WHERE s.type = 'index' AND s.tbl_name = ?1 AND s.sql IS NOT NULL AND il.partial = 0"
	" ORDER BY s.name";

void bulkload_forget(struct bulkload *b)
{
	for (int i = 0; i < b->n; i++)
		free(b->sql[i]);
	b->n = 0;
}

/* Whether table holds more than limit rows; -EIO on a database error. */
static int holds_more(struct store *st, const char *table, int64_t limit)
{
	char *sql = sqlite3_mprintf("SELECT count(*) FROM (SELECT 1 FROM \"%w\" LIMIT %lld)",
				    table, (long long)limit + 1);
	sqlite3_stmt *s = NULL;
	int r = -EIO;
	if (sql && sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		r = sqlite3_column_int64(s, 0) > limit;
	sqlite3_finalize(s);
	sqlite3_free(sql);
	return r;
}

/* Drop table's secondary indexes into b. */
static int set_aside(struct store *st, struct bulkload *b, const char *table)
{
	sqlite3_stmt *s = store_stmt(st, SQL_INDEXES);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
	int rc, r = 0;
	char *drop[BULKLOAD_INDEX_MAX];
	int n = 0;
	while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (b->n == BULKLOAD_INDEX_MAX)
			break; /* the rest keep being written row by row */
		const char *name = (const char *)sqlite3_column_text(s, 0);
		const char *create = (const char *)sqlite3_column_text(s, 1);
		char *d = name ? sqlite3_mprintf("DROP INDEX \"%w\"", name) : NULL;
		char *c = create ? strdup(create) : NULL;
		if (!d || !c) {
			sqlite3_free(d);
			free(c);
			r = -ENOMEM;
			break;
		}
		drop[n++] = d;
		b->sql[b->n++] = c;
	}
	if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = -EIO;
	sqlite3_reset(s);
	/* Dropped after the walk: a schema change under a running statement would stop it. */
	for (int i = 0; i < n; i++) {
		if (r == 0 && store_exec(st, drop[i]) < 0)
			r = -EIO;
		sqlite3_free(drop[i]);
	}
	return r;
}

int bulkload_begin(struct store *st, struct bulkload *b, const char *const *tables, int64_t rows)
{
	b->n = 0;
	if (rows < BULKLOAD_MIN_ROWS)
		return 0;
	for (int i = 0; tables[i]; i++) {
		int more = holds_more(st, tables[i], rows * BULKLOAD_STORED_PER_ROW);
		if (more != 0)
			return more < 0 ? -EIO : 0;
	}
	for (int i = 0; tables[i]; i++) {
		int r = set_aside(st, b, tables[i]);
		if (r < 0)
			return r; /* the caller rolls back, which restores what was dropped */
	}
	return 0;
}

/* The page cache's size, as PRAGMA cache_size says it (negative: KiB); 0 when unknown. */
static int cache_size(struct store *st)
{
	sqlite3_stmt *s = NULL;
	int v = 0;
	if (sqlite3_prepare_v2(store_db(st), "PRAGMA cache_size", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

int bulkload_end(struct store *st, struct bulkload *b)
{
	int r = 0;
	if (b->n == 0)
		return 0;
	/* CREATE INDEX sorts in as much memory as the page cache may hold, on top of
	 * it: the cache shrinks meanwhile so that both stay within the daemon's own. */
	int was = cache_size(st);
	char sql[64];
	if (was != 0 && store_exec(st, "PRAGMA cache_size = " BULKLOAD_CACHE) < 0)
		r = -EIO;
	for (int i = 0; i < b->n && r == 0; i++)
		if (store_exec(st, b->sql[i]) < 0)
			r = -EIO;
	/* After a failure, the connection's error must stay for the caller to read
	 * (the cache stays small until the job's connection closes). */
	snprintf(sql, sizeof(sql), "PRAGMA cache_size = %d", was);
	if (r == 0 && was != 0 && store_exec(st, sql) < 0)
		r = -EIO;
	bulkload_forget(b);
	return r;
}
