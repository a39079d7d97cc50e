/* project_orders.c - orders and returns, and their lines filled from the catalog.
 *
 * A line's product_id, sku and size label come from the mirror's products
 * and variants when the record lacks them (line_refs); project_reproject()
 * writes an order or return again once the catalog has changed under it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "money.h"
#include "outcome.h"
#include "project_priv.h"

/* One statement for the three catalog look-ups of a line (it runs for every line). */
static const char *SQL_LINE_REFS =
	"SELECT p.product_id, v.sku, v.size_label FROM (SELECT ?1 AS source_id, ?2 AS variant_id) AS k"
	" LEFT JOIN products AS p ON p.source_id = k.source_id"
	" LEFT JOIN variants AS v ON v.variant_id = k.variant_id LIMIT 1";

/* The variant's half of it, when the product needs no mapping. */
static const char *SQL_LINE_VARIANT =
	"SELECT NULL, sku, size_label FROM variants WHERE variant_id = ?2";

/*
 * An order or return line's product and variant columns, filled from the
 * catalog.  With the default product_id_field ("id") every API product's
 * product_id is its shop id (product_row), so the line's product id stands as
 * it is and only its variant is looked up, when the line lacks what it gives.
 */
static void line_refs(const struct project_ctx *c, struct scratch *sc, json_t *line,
		      const char **product_id, const char **variant_id, const char **sku,
		      const char **size_label)
{
	const char *raw = field_text(c, sc, line, "product_id");
	*variant_id = field_text(c, sc, line, "product_size_id");
	*sku = field_text(c, sc, line, "sku");
	*size_label = field_text(c, sc, line, "size_label");
	*product_id = raw;
	bool map_product = raw && strcmp(c->m->product_id_field, "id") != 0;
	bool need_variant = *variant_id && (!*sku || !*size_label);
	if (!map_product && !need_variant)
		return;
	sqlite3_stmt *s = store_stmt(c->st, map_product ? SQL_LINE_REFS : SQL_LINE_VARIANT);
	if (!s)
		return;
	if (map_product)
		sqlite3_bind_text(s, 1, raw, -1, SQLITE_STATIC);
	if (*variant_id)
		sqlite3_bind_text(s, 2, *variant_id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		const char *mapped = project_column_copy(sc, s, 0);
		if (mapped)
			*product_id = mapped;
		if (!*sku)
			*sku = project_column_copy(sc, s, 1);
		if (!*size_label)
			*size_label = project_column_copy(sc, s, 2);
	}
	sqlite3_reset(s);
}

/* A line's number: its id, else its place in the record (from 1). */
static const char *line_no(const struct project_ctx *c, struct scratch *sc, json_t *line, size_t i)
{
	const char *id = field_text(c, sc, line, "id");
	if (id)
		return id;
	char *b = scratch_take(sc);
	snprintf(b, SCRATCH_LEN, "%zu", i + 1);
	return b;
}

/* Order and return lines: which table, and how one line's row is built. */
struct lines_of {
	enum canon_table table;
	const char *count_sql; /* ?2 the parent (project_children_count) */
	const char *prune_sql; /* ?2 the parent, ?3 the line numbers kept (project_children_prune) */
	int (*row)(const struct project_ctx *c, struct scratch *sc, json_t *line, size_t i,
		   const char *const *parent, const char **out); /* 0, or -EIO */
};

static int order_line_row(const struct project_ctx *c, struct scratch *ls, json_t *l, size_t i,
			  const char *const *row, const char **lr)
{
	lr[OL_ORDER_ID] = row[O_ORDER_ID];
	lr[OL_LINE_NO] = line_no(c, ls, l, i);
	line_refs(c, ls, l, &lr[OL_PRODUCT_ID], &lr[OL_VARIANT_ID], &lr[OL_SKU], &lr[OL_SIZE_LABEL]);
	lr[OL_QUANTITY] = field_text(c, ls, l, "quantity");
	/* The price text stays in the raw record; the line holds it exactly. */
	lr[OL_CURRENCY] = row[O_CURRENCY];
	return money_minor_text(c->st, c->money, field_text(c, ls, l, "price"), lr[OL_CURRENCY],
				scratch_take(ls), &lr[OL_UNIT_PRICE_MINOR]);
}

static int return_line_row(const struct project_ctx *c, struct scratch *ls, json_t *l, size_t i,
			   const char *const *row, const char **lr)
{
	lr[RL_RETURN_ID] = row[R_RETURN_ID];
	lr[RL_LINE_NO] = line_no(c, ls, l, i);
	lr[RL_ORDER_ID] = row[R_ORDER_ID];
	line_refs(c, ls, l, &lr[RL_PRODUCT_ID], &lr[RL_VARIANT_ID], &lr[RL_SKU], &lr[RL_SIZE_LABEL]);
	lr[RL_QUANTITY] = field_text(c, ls, l, "quantity");
	lr[RL_REASON_ID] = field_text(c, ls, l, "reason_id");
	lr[RL_COMMENT] = field_text(c, ls, l, "comment");
	return outcome_order_line(c->st, lr[RL_ORDER_ID], lr[RL_VARIANT_ID], lr[RL_SKU],
				  scratch_take(ls), &lr[RL_ORDER_LINE_NO]);
}

static const struct lines_of order_lines = {
	CANON_ORDER_LINES,
	"SELECT count(*) FROM order_lines WHERE order_id = ?2",
	"DELETE FROM order_lines WHERE order_id = ?2 AND line_no NOT IN (SELECT value FROM json_each(?3))",
	order_line_row,
};
static const struct lines_of return_lines = {
	CANON_RETURN_LINES,
	"SELECT count(*) FROM return_lines WHERE return_id = ?2",
	"DELETE FROM return_lines WHERE return_id = ?2 AND line_no NOT IN (SELECT value FROM json_each(?3))",
	return_line_row,
};

#define LINES_IN_PLACE_MAX 64
#define LINE_NUMBERS_LEN (LINES_IN_PLACE_MAX * 20 + 3) /* "[n,n,...]" */

/*
 * Whether the lines' numbers are plain decimal integers (as the mirror stores
 * them) and none repeats: then the lines can be written over the stored ones,
 * and only the stored lines whose number is not in numbers (a JSON array) are
 * left over.
 */
static bool plainly_numbered(const struct project_ctx *c, json_t *lines,
			     char numbers[LINE_NUMBERS_LEN])
{
	long long seen_no[LINES_IN_PLACE_MAX];
	size_t i, n = json_array_size(lines), used = 1;
	json_t *l;
	if (n > LINES_IN_PLACE_MAX)
		return false;
	strcpy(numbers, "[");
	json_array_foreach(lines, i, l) {
		struct scratch ls = { .used = 0 };
		const char *t = line_no(c, &ls, l, i);
		size_t len = strlen(t);
		if (len == 0 || len > 18 || (t[0] == '0' && len > 1) || strspn(t, "0123456789") != len)
			return false;
		seen_no[i] = strtoll(t, NULL, 10);
		for (size_t k = 0; k < i; k++)
			if (seen_no[k] == seen_no[i])
				return false;
		used += (size_t)snprintf(numbers + used, LINE_NUMBERS_LEN - used, "%s%lld",
					 i ? "," : "", seen_no[i]);
	}
	snprintf(numbers + used, LINE_NUMBERS_LEN - used, "]");
	return true;
}

static int put_lines(const struct project_ctx *c, const struct lines_of *lo, json_t *lines,
		     const char *const *parent)
{
	size_t i;
	json_t *l;
	json_array_foreach(lines, i, l) {
		struct scratch ls = { .used = 0 };
		const char *lr[CANON_COLS_MAX] = { 0 };
		if (lo->row(c, &ls, l, i, parent, lr) < 0 ||
		    canon_put(c->st, lo->table, lr, "api", NULL) < 0)
			return -EIO;
	}
	return 0;
}

/*
 * The parent's lines become the record's (DOMAIN.md §1: child rows replaced
 * wholesale).  A new parent has none yet.  An updated one most often keeps
 * its lines, changes one or loses one: they are written over the stored ones
 * (an unchanged line costs a look-up, no write) and, when the parent holds
 * more lines than the record, the stored lines it no longer has are deleted:
 * a line and its index entries are written only when it changed.  Lines not
 * plainly numbered are all deleted and written again.
 */
static int replace_lines(const struct project_ctx *c, const struct lines_of *lo, json_t *rec,
			 const char *const *parent, bool fresh)
{
	json_t *lines = get(c, rec, "lines");
	char numbers[LINE_NUMBERS_LEN];
	bool in_place = !fresh && plainly_numbered(c, lines, numbers);
	if (!fresh && !in_place && canon_delete_children(c->st, lo->table, NULL, parent[0]) < 0)
		return -EIO;
	if (put_lines(c, lo, lines, parent) < 0)
		return -EIO;
	if (!in_place)
		return 0;
	/* The record's lines are all stored now, under distinct numbers: as
	 * many stored lines as it has means no other is left over. */
	sqlite3_int64 stored = -1;
	if (project_children_count(c, lo->count_sql, NULL, parent[0], &stored) < 0)
		return -EIO;
	if ((size_t)stored == json_array_size(lines))
		return 0;
	return project_children_prune(c, lo->prune_sql, NULL, parent[0], numbers);
}

int project_order(const struct project_ctx *c, json_t *rec)
{
	struct scratch sc = { .used = 0 };
	const char *row[O_COUNT] = { 0 };
	bool applied, fresh;

	row[O_ORDER_ID] = field_text(c, &sc, rec, "id");
	row[O_REFERENCE] = field_text(c, &sc, rec, "reference");
	row[O_STATUS] = field_text(c, &sc, rec, "status");
	row[O_CURRENCY] = field_text(c, &sc, rec, "currency");
	/* pii_scrub left the customer as its keyed hash. */
	row[O_CUSTOMER_HASH] = json_string_value(get(c, rec, "customer"));
	row[O_ORDERED_AT] = project_field_time(c, &sc, rec, "date_add");
	row[O_UPDATED_AT] = project_field_time(c, &sc, rec, "date_upd");
	if (project_put_parent(c, CANON_ORDERS, row, &applied, &fresh) < 0)
		return -EIO;
	if (!applied)
		return 0;
	/* Lines came, went or changed: the order's returns follow them. */
	return replace_lines(c, &order_lines, rec, row, fresh) < 0 ? -EIO
								  : outcome_relink(c->st, row[O_ORDER_ID]);
}

int project_return(const struct project_ctx *c, json_t *rec)
{
	struct scratch sc = { .used = 0 };
	const char *row[R_COUNT] = { 0 };
	bool applied, fresh;

	row[R_RETURN_ID] = field_text(c, &sc, rec, "id");
	row[R_ORDER_ID] = field_text(c, &sc, rec, "order_id");
	row[R_RETURNED_AT] = project_field_time(c, &sc, rec, "date_add");
	row[R_UPDATED_AT] = project_field_time(c, &sc, rec, "date_upd");
	if (project_put_parent(c, CANON_RETURNS, row, &applied, &fresh) < 0)
		return -EIO;
	return applied ? replace_lines(c, &return_lines, rec, row, fresh) : 0;
}

static const char *SQL_ORDER_JSON =
	"SELECT json FROM records WHERE stream = 'orders' AND id = ?1 AND source = 'api'"
	" AND deleted = 0";
static const char *SQL_RETURN_JSON =
	"SELECT json FROM records WHERE stream = 'returns' AND id = ?1 AND source = 'api'"
	" AND deleted = 0";

int project_reproject(const struct project_ctx *c, enum stream s, const char *id)
{
	char **js = NULL;
	size_t n = 0;
	int r = project_collect(c, s == STREAM_ORDERS ? SQL_ORDER_JSON : SQL_RETURN_JSON, id, 1,
				&js, &n);
	if (r == 0 && n && js[0]) {
		json_t *rec = json_loads(js[0], 0, NULL);
		if (!rec)
			r = -EIO;
		else
			r = s == STREAM_ORDERS ? project_order(c, rec) : project_return(c, rec);
		json_decref(rec);
	}
	project_collected_free(js, n);
	return r;
}

