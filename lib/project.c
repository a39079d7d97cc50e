/* project.c - the profile-driven mapping from raw API records to the canonical tables.
 *
 * Field names are the default profile's (DOMAIN.md §1) and go through
 * profile_field(), so another API's names are a profile change.  Values that
 * depend on other streams (a variant's size label, a product's category, an
 * order line's product_id) are looked up in the mirror; project_refresh()
 * brings them up to date when those streams change.
 *
 * This file holds the entry points and what every record needs (text of
 * values, look-ups, parent rows); project_catalog.c maps products and the
 * reference streams, project_orders.c orders, returns and their lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "outcome.h"
#include "project_priv.h"

/* n in decimal into b (SCRATCH_LEN bytes): what "%lld" writes, without printf's cost per id. */
static const char *integer_text(char *b, json_int_t n)
{
	char tmp[24];
	size_t len = 0;
	unsigned long long u = n < 0 ? 0ull - (unsigned long long)n : (unsigned long long)n;
	do {
		tmp[len++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	size_t i = 0;
	if (n < 0)
		b[i++] = '-';
	while (len)
		b[i++] = tmp[--len];
	b[i] = 0;
	return b;
}

/* A JSON scalar as canonical text: strings as they are ("" is NULL), numbers in JSON form. */
const char *project_text(struct scratch *sc, json_t *v)
{
	if (json_is_string(v))
		return json_string_length(v) ? json_string_value(v) : NULL;
	if (json_is_integer(v))
		return integer_text(scratch_take(sc), json_integer_value(v));
	if (json_is_real(v)) {
		/* The shortest text that reads back as the same number: 19.9, not 19.899999999999999. */
		char *b = scratch_take(sc);
		double d = json_real_value(v);
		snprintf(b, SCRATCH_LEN, "%.15g", d);
		if (strtod(b, NULL) != d)
			snprintf(b, SCRATCH_LEN, "%.17g", d);
		return b;
	}
	if (json_is_boolean(v))
		return json_is_true(v) ? "1" : "0";
	return NULL;
}

/*
 * A shop-local time field as UTC text, or NULL when it is absent or does not
 * parse ("0000-00-00 00:00:00"): the record is still mirrored, whole in the
 * raw layer, and its stream goes on; project_identity reports such a date.
 */
const char *project_field_time(const struct project_ctx *c, struct scratch *sc, json_t *obj,
			       const char *name)
{
	const char *v = json_string_value(get(c, obj, name));
	time_t t;
	if (!v || !*v || tstamp_from_local(c->m->tz, v, &t) < 0)
		return NULL;
	char *b = scratch_take(sc);
	tstamp_format(t, b);
	return b;
}

/* A looked-up column copied to scratch (the statement's text goes stale at its reset). */
const char *project_column_copy(struct scratch *sc, sqlite3_stmt *s, int i)
{
	const char *v = (const char *)sqlite3_column_text(s, i);
	if (!v)
		return NULL;
	size_t n = (size_t)sqlite3_column_bytes(s, i);
	char *b = scratch_take(sc);
	if (n >= SCRATCH_LEN)
		n = SCRATCH_LEN - 1;
	memcpy(b, v, n);
	b[n] = 0;
	return b;
}

int project_identity(const struct project_ctx *c, enum stream s, json_t *rec,
		     char id[PROJECT_ID_MAX], tstamp_t updated, char *err, size_t errlen)
{
	struct scratch sc = { .used = 0 };
	const char *v = project_text(&sc, get(c, rec, "id"));
	const char *when;

	updated[0] = 0;
	if (!json_is_object(rec) || !v) {
		snprintf(err, errlen, "a %s record has no '%s'", stream_name(s), profile_field(c->p, "id"));
		return -EINVAL;
	}
	size_t n = strlen(v);
	if (n >= PROJECT_ID_MAX) {
		snprintf(err, errlen, "a %s record has an id longer than %d bytes", stream_name(s),
			 PROJECT_ID_MAX - 1);
		return -EINVAL;
	}
	memcpy(id, v, n + 1);
	when = project_field_time(c, &sc, rec, "date_upd");
	if (when) {
		memcpy(updated, when, TSTAMP_LEN); /* a scratch slot: longer than a tstamp_t */
		return 0;
	}
	const char *raw = json_string_value(get(c, rec, "date_upd"));
	if (raw && *raw) {
		snprintf(err, errlen, "%s %s: '%s' is not a date (\"%.40s\"); kept without one",
			 stream_name(s), id, profile_field(c->p, "date_upd"), raw);
		return 1;
	}
	return 0;
}

/* Whether v (not NULL) is among the n texts of list. */
static bool seen(char *const *list, size_t n, const char *v)
{
	for (size_t i = 0; v && i < n; i++)
		if (list[i] && strcmp(list[i], v) == 0)
			return true;
	return false;
}

/*
 * Rows of a query with one text parameter, as strdup'd texts (cols per row,
 * NULL kept), appended to *out.  Collected before anything else runs, since
 * projecting reuses the store's cached statements.  A one-column query's
 * repeated values are kept once: the queries ask for ids without DISTINCT,
 * whose temporary B-tree cost more than the query (a page zeroed per call).
 */
int project_collect(const struct project_ctx *c, const char *sql, const char *param, int cols,
		    char ***out, size_t *n)
{
	sqlite3_stmt *q = store_stmt(c->st, sql);
	int rc;
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, param, -1, SQLITE_STATIC);
	size_t first = *n;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (cols == 1 && seen(*out + first, *n - first, (const char *)sqlite3_column_text(q, 0)))
			continue;
		char **grown = realloc(*out, (*n + (size_t)cols) * sizeof(**out));
		if (!grown) {
			rc = SQLITE_NOMEM;
			break;
		}
		*out = grown;
		for (int i = 0; i < cols; i++) {
			const char *v = (const char *)sqlite3_column_text(q, i);
			(*out)[(*n)++] = v ? strdup(v) : NULL;
		}
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

void project_collected_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ?1 entity (when given), ?2 id, ?3 kept (when given); count receives a one-row result. */
static int children_step(const struct project_ctx *c, const char *sql, const char *entity,
			 const char *id, const char *kept, sqlite3_int64 *count)
{
	sqlite3_stmt *s = store_stmt(c->st, sql);
	if (!s)
		return -EIO;
	if (entity)
		sqlite3_bind_text(s, 1, entity, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	if (kept)
		sqlite3_bind_text(s, 3, kept, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (count && rc == SQLITE_ROW)
		*count = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == (count ? SQLITE_ROW : SQLITE_DONE) ? 0 : -EIO;
}

int project_children_count(const struct project_ctx *c, const char *count_sql,
			   const char *entity, const char *id, sqlite3_int64 *count)
{
	return children_step(c, count_sql, entity, id, NULL, count);
}

int project_children_prune(const struct project_ctx *c, const char *prune_sql,
			   const char *entity, const char *id, const char *kept)
{
	return children_step(c, prune_sql, entity, id, kept, NULL);
}

/*
 * canon_put of a parent row; *fresh when it was inserted rather than updated.
 * A new parent has no child rows yet (their foreign keys are enforced), so
 * there are none to delete or compare: a statement or two less per record of
 * an initial sync.
 */
int project_put_parent(const struct project_ctx *c, enum canon_table t, const char *const *row,
		       bool *applied, bool *fresh)
{
	sqlite3 *db = store_db(c->st);
	sqlite3_int64 before = sqlite3_last_insert_rowid(db);
	if ((c->stored ? canon_put_stored : canon_put)(c->st, t, row, "api", applied) < 0)
		return -EIO;
	*fresh = *applied && sqlite3_last_insert_rowid(db) != before;
	return 0;
}

int project_record(const struct project_ctx *c, enum stream s, json_t *rec, char *err, size_t errlen)
{
	switch (s) {
	case STREAM_PRODUCTS:
		return project_product(c, rec, err, errlen);
	case STREAM_ORDERS:
		return project_order(c, rec);
	case STREAM_RETURNS:
		return project_return(c, rec);
	default:
		return project_reference(c, s, rec);
	}
}

static const char *SQL_DEACTIVATE =
	"UPDATE products SET deactivated = 1 WHERE source_id = ?1 AND source = 'api'";

int project_forget(const struct project_ctx *c, enum stream s, const char *id)
{
	static const struct {
		enum canon_table table;
		const char *entity;
	} ref[STREAM_API_COUNT] = {
		[STREAM_SIZES] = { CANON_SIZES, "size" },
		[STREAM_DEPARTMENTS] = { CANON_DEPARTMENTS, "department" },
		[STREAM_ATTRIBUTES] = { CANON_ATTRIBUTES, "attribute" },
		[STREAM_RETURN_REASONS] = { CANON_RETURN_REASONS, "return_reason" },
		[STREAM_ORDERS] = { CANON_ORDERS, NULL },
		[STREAM_RETURNS] = { CANON_RETURNS, NULL },
	};
	if (s == STREAM_PRODUCTS) {
		sqlite3_stmt *q = store_stmt(c->st, SQL_DEACTIVATE);
		if (!q)
			return -EIO;
		sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
		int rc = sqlite3_step(q);
		sqlite3_reset(q);
		return rc == SQLITE_DONE ? 0 : -EIO;
	}
	if (canon_delete(c->st, ref[s].table, id) < 0 ||
	    (s == STREAM_ORDERS && outcome_relink(c->st, id) < 0))
		return -EIO;
	if (ref[s].entity && canon_delete_children(c->st, CANON_LABELS, ref[s].entity, id) < 0)
		return -EIO;
	return 0;
}

static const char *SQL_REFRESH_SIZES =
	"UPDATE variants SET size_label = (SELECT label FROM sizes WHERE size_id = variants.size_id)"
	" WHERE source = 'api' AND size_label IS NOT"
	"       (SELECT label FROM sizes WHERE size_id = variants.size_id)";
static const char *SQL_REFRESH_CATEGORIES =
	"UPDATE products SET category ="
	"       (SELECT label FROM departments WHERE department_id = products.department_id)"
	" WHERE source = 'api' AND category IS NOT"
	"       (SELECT label FROM departments WHERE department_id = products.department_id)";

/*
 * Order and return lines took their size label from their variant when they
 * were written (line_refs); a renamed size must reach them too.  A line
 * follows when it still holds its variant's old label, so a label the line
 * carried itself is kept.  Run before SQL_REFRESH_SIZES, which changes the
 * variants' labels, and only when SQL_SIZES_STALE finds one to change.
 */
static const char *SQL_SIZES_STALE =
	"SELECT 1 FROM variants WHERE source = 'api' AND size_label IS NOT"
	"       (SELECT label FROM sizes WHERE size_id = variants.size_id) LIMIT 1";
#define SQL_REFRESH_LINE_SIZES(lines)                                                          \
	"UPDATE " lines " SET size_label = (SELECT (SELECT label FROM sizes"                   \
	"       WHERE size_id = v.size_id) FROM variants v WHERE v.variant_id = " lines ".variant_id)" \
	" WHERE source = 'api' AND EXISTS (SELECT 1 FROM variants v"                           \
	"       WHERE v.variant_id = " lines ".variant_id AND v.source = 'api'"                \
	"       AND v.size_label IS " lines ".size_label AND v.size_label IS NOT"              \
	"       (SELECT label FROM sizes WHERE size_id = v.size_id))"
static const char *SQL_REFRESH_ORDER_LINE_SIZES = SQL_REFRESH_LINE_SIZES("order_lines");
static const char *SQL_REFRESH_RETURN_LINE_SIZES = SQL_REFRESH_LINE_SIZES("return_lines");

static int step_once(const struct project_ctx *c, const char *sql, bool *row)
{
	sqlite3_stmt *q = store_stmt(c->st, sql);
	if (!q)
		return -EIO;
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (row)
		*row = rc == SQLITE_ROW;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

int project_refresh(const struct project_ctx *c, enum stream s)
{
	if (s == STREAM_DEPARTMENTS)
		return step_once(c, SQL_REFRESH_CATEGORIES, NULL);
	if (s != STREAM_SIZES)
		return 0;
	bool stale = false;
	if (step_once(c, SQL_SIZES_STALE, &stale) < 0)
		return -EIO;
	if (!stale)
		return 0;
	if (step_once(c, SQL_REFRESH_ORDER_LINE_SIZES, NULL) < 0 ||
	    step_once(c, SQL_REFRESH_RETURN_LINE_SIZES, NULL) < 0)
		return -EIO;
	return step_once(c, SQL_REFRESH_SIZES, NULL);
}
