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

int canon_put(struct store *st, enum canon_table t, const char *const *values, const char *source,
	      bool *applied)
{
	const char *sql = put_sql(t);
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
