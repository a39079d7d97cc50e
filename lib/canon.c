/* canon.c - write canonical rows with one upsert per table, built once from a column table. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"

struct canon_desc {
	const char *name;
	const char *cols[CANON_COLS_MAX + 1];
	int n_key;             /* the first n_key columns are the primary key */
	bool newer_wins;       /* compare updated_at before replacing */
};

static const struct canon_desc descs[CANON_TABLE_COUNT] = {
	[CANON_PRODUCTS] = { "products",
		{ "product_id", "source_id", "parent_reference", "title", "description", "url",
		  "images", "category", "department_id", "updated_at", "deactivated" }, 1, true },
	[CANON_VARIANTS] = { "variants",
		{ "variant_id", "product_id", "sku", "ean", "size_id", "size_label", "stock" }, 1, false },
	[CANON_DEPARTMENTS] = { "departments", { "department_id", "parent_id", "label" }, 1, false },
	[CANON_ATTRIBUTES] = { "attributes", { "attribute_id", "code", "label" }, 1, false },
	[CANON_SIZES] = { "sizes", { "size_id", "label" }, 1, false },
	[CANON_LABELS] = { "labels", { "entity", "entity_id", "lang", "field", "value" }, 4, false },
	[CANON_ORDERS] = { "orders",
		{ "order_id", "reference", "status", "ordered_at", "updated_at", "currency",
		  "customer_hash" }, 1, true },
	[CANON_ORDER_LINES] = { "order_lines",
		{ "order_id", "line_no", "product_id", "variant_id", "sku", "size_label", "quantity",
		  "unit_price_minor", "currency" }, 2, false },
	[CANON_RETURNS] = { "returns", { "return_id", "order_id", "returned_at", "updated_at" }, 1, true },
	[CANON_RETURN_LINES] = { "return_lines",
		{ "return_id", "line_no", "order_id", "product_id", "variant_id", "sku", "size_label",
		  "quantity", "reason_id", "comment", "order_line_no" }, 2, false },
	[CANON_RETURN_REASONS] = { "return_reasons", { "reason_id", "code", "label" }, 1, false },
	[CANON_DIMENSIONS] = { "dimensions",
		{ "key_kind", "key_id", "measurement", "product_id", "variant_id", "value", "unit",
		  "updated_at" }, 3, false },
};

/* Generated once; their addresses are the store's statement-cache keys. */
static char *sql_put[CANON_TABLE_COUNT];
static char *sql_delete[CANON_TABLE_COUNT];
static pthread_once_t sql_once = PTHREAD_ONCE_INIT;

static const char *const children_sql[CANON_TABLE_COUNT] = {
	[CANON_VARIANTS] = "DELETE FROM variants WHERE product_id = ?2",
	[CANON_ORDER_LINES] = "DELETE FROM order_lines WHERE order_id = ?2",
	[CANON_RETURN_LINES] = "DELETE FROM return_lines WHERE return_id = ?2",
	[CANON_LABELS] = "DELETE FROM labels WHERE entity = ?1 AND entity_id = ?2",
};

const char *canon_table_name(enum canon_table t)
{
	return descs[t].name;
}

const char *const *canon_columns(enum canon_table t)
{
	return descs[t].cols;
}

int canon_column_count(enum canon_table t)
{
	int n = 0;
	while (descs[t].cols[n])
		n++;
	return n;
}

/* Append to a fixed buffer; the statements are short and their size is known. */
static void cat(char *buf, size_t size, const char *s)
{
	size_t n = strlen(buf);
	snprintf(buf + n, size - n, "%s", s);
}

static void build_sql(void)
{
	for (int t = 0; t < CANON_TABLE_COUNT; t++) {
		const struct canon_desc *d = &descs[t];
		int n = canon_column_count(t);
		char buf[2048] = "", num[16];

		cat(buf, sizeof(buf), "INSERT INTO ");
		cat(buf, sizeof(buf), d->name);
		cat(buf, sizeof(buf), " (");
		for (int i = 0; i < n; i++) {
			cat(buf, sizeof(buf), d->cols[i]);
			cat(buf, sizeof(buf), ", ");
		}
		cat(buf, sizeof(buf), "source) VALUES (");
		for (int i = 0; i <= n; i++) {
			snprintf(num, sizeof(num), "%s?%d", i ? ", " : "", i + 1);
			cat(buf, sizeof(buf), num);
		}
		cat(buf, sizeof(buf), ") ON CONFLICT (");
		for (int i = 0; i < d->n_key; i++) {
			cat(buf, sizeof(buf), i ? ", " : "");
			cat(buf, sizeof(buf), d->cols[i]);
		}
		cat(buf, sizeof(buf), ") DO UPDATE SET ");
		for (int i = d->n_key; i < n; i++) {
			cat(buf, sizeof(buf), d->cols[i]);
			cat(buf, sizeof(buf), " = excluded.");
			cat(buf, sizeof(buf), d->cols[i]);
			cat(buf, sizeof(buf), ", ");
		}
		cat(buf, sizeof(buf), "source = excluded.source");
		if (!d->newer_wins) {
			/* A row that would not change is not written (nor its indexes). */
			cat(buf, sizeof(buf), " WHERE (");
			for (int i = d->n_key; i < n; i++) {
				cat(buf, sizeof(buf), d->name);
				cat(buf, sizeof(buf), ".");
				cat(buf, sizeof(buf), d->cols[i]);
				cat(buf, sizeof(buf), ", ");
			}
			cat(buf, sizeof(buf), d->name);
			cat(buf, sizeof(buf), ".source) IS NOT (");
			for (int i = d->n_key; i < n; i++) {
				cat(buf, sizeof(buf), "excluded.");
				cat(buf, sizeof(buf), d->cols[i]);
				cat(buf, sizeof(buf), ", ");
			}
			cat(buf, sizeof(buf), "excluded.source)");
		} else {
			cat(buf, sizeof(buf), " WHERE excluded.updated_at IS NULL OR ");
			cat(buf, sizeof(buf), d->name);
			cat(buf, sizeof(buf), ".updated_at IS NULL OR excluded.updated_at >= ");
			cat(buf, sizeof(buf), d->name);
			cat(buf, sizeof(buf), ".updated_at");
		}
		sql_put[t] = strdup(buf);

		snprintf(buf, sizeof(buf), "DELETE FROM %s WHERE %s = ?1", d->name, d->cols[0]);
		sql_delete[t] = strdup(buf);
	}
}

static const char *put_sql(enum canon_table t)
{
	pthread_once(&sql_once, build_sql);
	return sql_put[t];
}

/* Run sql (one of this table's statements) with values as ?1..?n and source as ?n+1. */
static int put_with(struct store *st, enum canon_table t, const char *sql,
		    const char *const *values, const char *source, bool *applied)
{
	sqlite3_stmt *s = sql ? store_stmt(st, sql) : NULL;
	if (!s)
		return -EIO;
	int n = canon_column_count(t);
	for (int i = 0; i < n; i++) {
		if (values[i])
			sqlite3_bind_text(s, i + 1, values[i], -1, SQLITE_STATIC);
	}
	sqlite3_bind_text(s, n + 1, source, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (applied)
		*applied = rc == SQLITE_DONE && sqlite3_changes(store_db(st)) > 0;
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int canon_put(struct store *st, enum canon_table t, const char *const *values, const char *source,
	      bool *applied)
{
	return put_with(st, t, put_sql(t), values, source, applied);
}

/*
 * The narrow update of each table: the columns no index holds, where the row
 * is there with the same indexed columns and would be written by canon_put
 * (the same newer-wins or changed-content condition).  NULL for a table with
 * no indexed column to spare, or whose indexes could not be read.  Built once,
 * from the first mirror's schema (every mirror is at the latest migration);
 * an index made since only costs its writes, never correctness: SQLite keeps
 * every index of the columns a statement sets.
 */
static char *sql_narrow[CANON_TABLE_COUNT];
static bool narrow_built;
static pthread_mutex_t narrow_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *SQL_INDEXED =
	"SELECT ii.name FROM pragma_index_list(?1) AS il, pragma_index_info(il.name) AS ii";

/* Which columns of t some index holds (indexed[i] for column i); -1 when unknown. */
static int indexed_columns(sqlite3 *db, enum canon_table t, bool *indexed)
{
	const struct canon_desc *d = &descs[t];
	sqlite3_stmt *s;
	int rc, r = 0;
	if (sqlite3_prepare_v2(db, SQL_INDEXED, -1, &s, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(s, 1, d->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(s, 0);
		if (!col) {
			r = -1; /* an index on an expression: any column may be in it */
			break;
		}
		for (int i = 0; d->cols[i]; i++)
			if (strcmp(col, d->cols[i]) == 0)
				indexed[i] = true;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = -1;
	sqlite3_finalize(s);
	return r;
}

static char *narrow_sql(sqlite3 *db, enum canon_table t)
{
	const struct canon_desc *d = &descs[t];
	bool indexed[CANON_COLS_MAX + 1] = { false };
	int n = canon_column_count(t), n_idx = 0, n_free = 0;
	char buf[2048] = "", num[80];

	if (indexed_columns(db, t, indexed) < 0)
		return NULL;
	for (int i = d->n_key; i < n; i++)
		indexed[i] ? n_idx++ : n_free++;
	if (n_idx == 0 || n_free == 0)
		return NULL; /* canon_put writes no index entry anyway, or has nothing else to write */
	cat(buf, sizeof(buf), "UPDATE ");
	cat(buf, sizeof(buf), d->name);
	cat(buf, sizeof(buf), " SET ");
	for (int i = d->n_key; i < n; i++) {
		if (indexed[i])
			continue;
		snprintf(num, sizeof(num), " = ?%d, ", i + 1);
		cat(buf, sizeof(buf), d->cols[i]);
		cat(buf, sizeof(buf), num);
	}
	snprintf(num, sizeof(num), "source = ?%d WHERE ", n + 1);
	cat(buf, sizeof(buf), num);
	for (int i = 0; i < n; i++) {
		if (i >= d->n_key && !indexed[i])
			continue;
		snprintf(num, sizeof(num), " %s ?%d AND ", i < d->n_key ? "=" : "IS", i + 1);
		cat(buf, sizeof(buf), d->cols[i]);
		cat(buf, sizeof(buf), num);
	}
	if (d->newer_wins) {
		int u = 0;
		while (strcmp(d->cols[u], "updated_at") != 0)
			u++;
		snprintf(num, sizeof(num), "(?%d IS NULL OR updated_at IS NULL OR ?%d >= updated_at)",
			 u + 1, u + 1);
		cat(buf, sizeof(buf), num);
	} else {
		cat(buf, sizeof(buf), "(");
		for (int i = d->n_key; i < n; i++) {
			if (indexed[i])
				continue;
			cat(buf, sizeof(buf), d->cols[i]);
			cat(buf, sizeof(buf), ", ");
		}
		cat(buf, sizeof(buf), "source) IS NOT (");
		for (int i = d->n_key; i < n; i++) {
			if (indexed[i])
				continue;
			snprintf(num, sizeof(num), "?%d, ", i + 1);
			cat(buf, sizeof(buf), num);
		}
		snprintf(num, sizeof(num), "?%d)", n + 1);
		cat(buf, sizeof(buf), num);
	}
	return strdup(buf);
}

static const char *narrow_sql_of(struct store *st, enum canon_table t)
{
	pthread_mutex_lock(&narrow_lock);
	if (!narrow_built) {
		for (int k = 0; k < CANON_TABLE_COUNT; k++)
			sql_narrow[k] = narrow_sql(store_db(st), k);
		narrow_built = true;
	}
	pthread_mutex_unlock(&narrow_lock);
	return sql_narrow[t];
}

int canon_put_stored(struct store *st, enum canon_table t, const char *const *values,
		     const char *source, bool *applied)
{
	const char *sql = narrow_sql_of(st, t);
	bool done = false;
	if (sql && put_with(st, t, sql, values, source, &done) < 0)
		return -EIO;
	if (done) {
		if (applied)
			*applied = true;
		return 0;
	}
	return canon_put(st, t, values, source, applied);
}

int canon_delete_children(struct store *st, enum canon_table child, const char *entity,
			  const char *parent_id)
{
	if (!children_sql[child])
		return -EINVAL;
	sqlite3_stmt *s = store_stmt(st, children_sql[child]);
	if (!s)
		return -EIO;
	if (entity)
		sqlite3_bind_text(s, 1, entity, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, parent_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int canon_delete(struct store *st, enum canon_table t, const char *key)
{
	pthread_once(&sql_once, build_sql);
	sqlite3_stmt *s = sql_delete[t] ? store_stmt(st, sql_delete[t]) : NULL;
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}
