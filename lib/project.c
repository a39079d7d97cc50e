/* project.c - the profile-driven mapping from raw API records to the canonical tables.
 *
 * Field names are the default profile's (DOMAIN.md §1) and go through
 * profile_field(), so another API's names are a profile change.  Values that
 * depend on other streams (a variant's size label, a product's category, an
 * order line's product_id) are looked up in the mirror; project_refresh()
 * brings them up to date when those streams change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "fit.h"
#include "money.h"
#include "outcome.h"
#include "project.h"

#define SCRATCH_SLOTS 24
#define SCRATCH_LEN 160

/* Text forms of numbers and looked-up values, alive for one record. */
struct scratch {
	char slot[SCRATCH_SLOTS][SCRATCH_LEN];
	int used;
};

static char *scratch_take(struct scratch *sc)
{
	/* Each record takes a fixed number of slots (one per column at most);
	 * running out is a programming error, never silently reused memory. */
	if (sc->used == SCRATCH_SLOTS)
		abort();
	return sc->slot[sc->used++];
}

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
static const char *text(struct scratch *sc, json_t *v)
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

static json_t *get(const struct project_ctx *c, json_t *obj, const char *name)
{
	return json_object_get(obj, profile_field(c->p, name));
}

static const char *field_text(const struct project_ctx *c, struct scratch *sc, json_t *obj,
			      const char *name)
{
	return text(sc, get(c, obj, name));
}

/*
 * A shop-local time field as UTC text, or NULL when it is absent or does not
 * parse ("0000-00-00 00:00:00"): the record is still mirrored, whole in the
 * raw layer, and its stream goes on; project_identity reports such a date.
 */
static const char *field_time(const struct project_ctx *c, struct scratch *sc, json_t *obj,
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
static const char *column_copy(struct scratch *sc, sqlite3_stmt *s, int i)
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

/* One text column from a lookup query with one text parameter; NULL when no row. */
static const char *lookup(const struct project_ctx *c, struct scratch *sc, const char *sql,
			  const char *param)
{
	if (!param)
		return NULL;
	sqlite3_stmt *s = store_stmt(c->st, sql);
	const char *out = NULL;
	if (!s)
		return NULL;
	sqlite3_bind_text(s, 1, param, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		out = column_copy(sc, s, 0);
	sqlite3_reset(s);
	return out;
}

static const char *SQL_SIZE_LABEL = "SELECT label FROM sizes WHERE size_id = ?1";
static const char *SQL_DEPARTMENT_LABEL = "SELECT label FROM departments WHERE department_id = ?1";
static const char *SQL_ATTRIBUTE_BY_CODE = "SELECT attribute_id FROM attributes WHERE code = ?1";
/* The first tells whether the two deletes have anything to do (their IN costs a temporary B-tree). */
static const char *SQL_PRODUCT_RENAMED_ANY =
	"SELECT 1 FROM products WHERE source_id = ?1 AND product_id <> ?2 AND source = 'api' LIMIT 1";
static const char *SQL_PRODUCT_RENAMED_LABELS =
	"DELETE FROM labels WHERE entity = 'product' AND source = 'api' AND entity_id IN"
	" (SELECT product_id FROM products WHERE source_id = ?1 AND product_id <> ?2 AND source = 'api')";
static const char *SQL_PRODUCT_RENAMED =
	"DELETE FROM products WHERE source_id = ?1 AND product_id <> ?2 AND source = 'api'";

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The text of one translated field in the merchant's first configured
 * language, else the next configured one, else any served language (by code
 * order).  tr is {lang: value} or {lang: {field: value}} when field is set.
 */
static const char *translated(const struct project_ctx *c, json_t *tr, const char *field)
{
	const char *lang;
	json_t *v;

	for (int i = 0; i < c->m->n_languages; i++) {
		v = json_object_get(tr, c->m->languages[i]);
		v = field ? get(c, v, field) : v;
		if (json_string_length(v))
			return json_string_value(v);
	}
	const char *langs[64];
	size_t n = 0;
	json_object_foreach(tr, lang, v) {
		if (n < sizeof(langs) / sizeof(langs[0]))
			langs[n++] = lang;
	}
	qsort(langs, n, sizeof(langs[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		v = json_object_get(tr, langs[i]);
		v = field ? get(c, v, field) : v;
		if (json_string_length(v))
			return json_string_value(v);
	}
	return NULL;
}

/* Replace the labels of (entity, id) with every language served. */
static int put_labels(const struct project_ctx *c, const char *entity, const char *id, json_t *tr,
		      const char *const *fields)
{
	const char *lang;
	json_t *v;

	if (canon_delete_children(c->st, CANON_LABELS, entity, id) < 0)
		return -EIO;
	json_object_foreach(tr, lang, v) {
		for (int f = 0; fields[f]; f++) {
			json_t *val = strcmp(fields[f], "label") == 0 && json_is_string(v) ? v
				      : get(c, v, fields[f]);
			if (!json_string_length(val))
				continue;
			const char *row[L_COUNT] = { entity, id, lang, fields[f], json_string_value(val) };
			if (canon_put(c->st, CANON_LABELS, row, "api", NULL) < 0)
				return -EIO;
		}
	}
	return 0;
}

int project_identity(const struct project_ctx *c, enum stream s, json_t *rec,
		     char id[PROJECT_ID_MAX], tstamp_t updated, char *err, size_t errlen)
{
	struct scratch sc = { .used = 0 };
	const char *v = text(&sc, get(c, rec, "id"));
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
	when = field_time(c, &sc, rec, "date_upd");
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

/* parent_reference_field names a field of the product, or an attribute code. */
static const char *parent_reference(const struct project_ctx *c, struct scratch *sc, json_t *rec)
{
	const char *name = c->m->parent_reference_field;
	json_t *v = get(c, rec, name);
	if (v)
		return text(sc, v);
	const char *attr_id = lookup(c, sc, SQL_ATTRIBUTE_BY_CODE, name);
	size_t i;
	json_t *a;
	if (!attr_id)
		return NULL;
	/* Compared in a buffer of its own: a product may carry many attributes,
	 * and the scratch slots hold this record's other columns. */
	json_array_foreach(get(c, rec, "attributes"), i, a) {
		char id[SCRATCH_LEN];
		json_t *aid = get(c, a, "attribute_id");
		if (json_is_integer(aid))
			snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT, json_integer_value(aid));
		else if (json_is_string(aid))
			snprintf(id, sizeof(id), "%s", json_string_value(aid));
		else
			continue;
		if (strcmp(id, attr_id) == 0)
			return text(sc, get(c, a, "value"));
	}
	return NULL;
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
static int collect(const struct project_ctx *c, const char *sql, const char *param, int cols,
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

static void collected_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int relink_lines(const struct project_ctx *c, char **old, size_t n_old);
static int reproject(const struct project_ctx *c, enum stream s, const char *id);

/*
 * canon_put of a parent row; *fresh when it was inserted rather than updated.
 * A new parent has no child rows yet (their foreign keys are enforced), so
 * there are none to delete or compare: a statement or two less per record of
 * an initial sync.
 */
static int put_parent(const struct project_ctx *c, enum canon_table t, const char *const *row,
		      bool *applied, bool *fresh)
{
	sqlite3 *db = store_db(c->st);
	sqlite3_int64 before = sqlite3_last_insert_rowid(db);
	if (canon_put(c->st, t, row, "api", applied) < 0)
		return -EIO;
	*fresh = *applied && sqlite3_last_insert_rowid(db) != before;
	return 0;
}

static const char *SQL_ORDERS_OF_RAW_PRODUCT =
	"SELECT order_id FROM order_lines WHERE product_id = ?1 AND source = 'api'";
static const char *SQL_RETURNS_OF_RAW_PRODUCT =
	"SELECT return_id FROM return_lines WHERE product_id = ?1 AND source = 'api'";
/* Once the product's variants are written: the lines of any of them that lack a sku or size. */
#define SQL_UNFILLED(parent, lines)                                                            \
	"SELECT l." parent " FROM variants AS v JOIN " lines " AS l ON l.variant_id = v.variant_id" \
	" WHERE v.product_id = ?1 AND l.source = 'api' AND (l.sku IS NULL OR l.size_label IS NULL)"
static const char *SQL_ORDERS_UNFILLED = SQL_UNFILLED("order_id", "order_lines");
static const char *SQL_RETURNS_UNFILLED = SQL_UNFILLED("return_id", "return_lines");

static const char *SQL_PRODUCT_VARIANTS =
	"SELECT variant_id, sku, size_id FROM variants WHERE product_id = ?1 AND source = 'api'";

/* A product record as its products row; *images (JSON text) is the caller's to free. */
static int product_row(const struct project_ctx *c, struct scratch *sc, json_t *rec, json_t *tr,
		       const char **row, char **images, char *err, size_t errlen)
{
	row[P_SOURCE_ID] = field_text(c, sc, rec, "id");
	/* A product without the merchant's reference keeps its WSHOP id, so it
	 * is still mirrored; `kleepctl check` lists such products. */
	row[P_PRODUCT_ID] = field_text(c, sc, rec, c->m->product_id_field);
	if (!row[P_PRODUCT_ID])
		row[P_PRODUCT_ID] = row[P_SOURCE_ID];
	if (!row[P_PRODUCT_ID]) {
		snprintf(err, errlen, "a product has no '%s'", profile_field(c->p, "id"));
		return -EINVAL;
	}
	row[P_PARENT_REFERENCE] = parent_reference(c, sc, rec);
	row[P_TITLE] = translated(c, tr, "name");
	row[P_DESCRIPTION] = translated(c, tr, "description");
	row[P_URL] = translated(c, tr, "url");
	json_t *imgs = get(c, rec, "images");
	*images = json_is_array(imgs) ? json_dumps(imgs, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	row[P_IMAGES] = *images;
	row[P_DEPARTMENT_ID] = field_text(c, sc, rec, "department_id");
	row[P_CATEGORY] = lookup(c, sc, SQL_DEPARTMENT_LABEL, row[P_DEPARTMENT_ID]);
	row[P_UPDATED_AT] = field_time(c, sc, rec, "date_upd");
	json_t *active = get(c, rec, "active");
	row[P_DEACTIVATED] = json_is_false(active) || (json_is_integer(active) && !json_integer_value(active))
			     ? "1" : "0";
	return 0;
}

/* product_id_field changed since this product was last written: its old row
 * goes, with its variants (ON DELETE CASCADE) and its labels. */
static int drop_renamed(const struct project_ctx *c, const char *const *row)
{
	static const char *const *renamed[] = { &SQL_PRODUCT_RENAMED_ANY, &SQL_PRODUCT_RENAMED_LABELS,
						  &SQL_PRODUCT_RENAMED };
	for (size_t k = 0; k < 3; k++) {
		sqlite3_stmt *q = store_stmt(c->st, *renamed[k]);
		if (!q)
			return -EIO;
		sqlite3_bind_text(q, 1, row[P_SOURCE_ID], -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, row[P_PRODUCT_ID], -1, SQLITE_STATIC);
		int rc = sqlite3_step(q);
		sqlite3_reset(q);
		if (k == 0 && rc == SQLITE_DONE)
			return 0; /* not renamed: the usual case, one index probe */
		if (rc != (k == 0 ? SQLITE_ROW : SQLITE_DONE))
			return -EIO;
	}
	return 0;
}

/* The product's sizes as its variants rows. */
static int put_variants(const struct project_ctx *c, json_t *rec, const char *product_id)
{
	size_t i;
	json_t *v;
	json_array_foreach(get(c, rec, "sizes"), i, v) {
		struct scratch vs = { .used = 0 };
		const char *vr[V_COUNT] = { 0 };
		vr[V_VARIANT_ID] = field_text(c, &vs, v, "id");
		if (!vr[V_VARIANT_ID])
			continue;
		vr[V_PRODUCT_ID] = product_id;
		vr[V_SKU] = field_text(c, &vs, v, "sku");
		vr[V_EAN] = field_text(c, &vs, v, "ean");
		vr[V_SIZE_ID] = field_text(c, &vs, v, "size_id");
		vr[V_SIZE_LABEL] = lookup(c, &vs, SQL_SIZE_LABEL, vr[V_SIZE_ID]);
		vr[V_STOCK] = field_text(c, &vs, v, "stock");
		if (canon_put(c->st, CANON_VARIANTS, vr, "api", NULL) < 0)
			return -EIO;
	}
	return 0;
}

/*
 * Lines written before their product or variant was known kept the raw
 * product id or no sku: project those orders and returns again.  The
 * product's variants are now the record's (old ones went with
 * canon_delete_children, a new product had none): one query each for the
 * orders and the returns whose lines wait for them.
 */
static int late_lines(const struct project_ctx *c, const char *const *row)
{
	char **late = NULL; /* orders, then returns */
	size_t n_late = 0, n_orders;
	bool raw = strcmp(row[P_SOURCE_ID], row[P_PRODUCT_ID]) != 0;
	int r = -EIO;
	if ((raw && collect(c, SQL_ORDERS_OF_RAW_PRODUCT, row[P_SOURCE_ID], 1, &late, &n_late) < 0) ||
	    collect(c, SQL_ORDERS_UNFILLED, row[P_PRODUCT_ID], 1, &late, &n_late) < 0)
		goto out;
	n_orders = n_late;
	if ((raw && collect(c, SQL_RETURNS_OF_RAW_PRODUCT, row[P_SOURCE_ID], 1, &late, &n_late) < 0) ||
	    collect(c, SQL_RETURNS_UNFILLED, row[P_PRODUCT_ID], 1, &late, &n_late) < 0)
		goto out;
	r = 0;
	for (size_t k = 0; r == 0 && k < n_late; k++)
		r = reproject(c, k < n_orders ? STREAM_ORDERS : STREAM_RETURNS, late[k]);
out:
	collected_free(late, n_late);
	return r;
}

static int project_product(const struct project_ctx *c, json_t *rec, char *err, size_t errlen)
{
	struct scratch sc = { .used = 0 };
	const char *row[P_COUNT] = { 0 };
	json_t *tr = get(c, rec, "translations");
	static const char *const fields[] = { "name", "description", "url", NULL };
	char *images = NULL, **old = NULL;
	size_t n_old = 0;
	bool applied, fresh;

	int r = product_row(c, &sc, rec, tr, row, &images, err, errlen);
	if (r < 0)
		goto out;
	r = -EIO;
	if (drop_renamed(c, row) < 0 || put_parent(c, CANON_PRODUCTS, row, &applied, &fresh) < 0)
		goto out;
	r = 0;
	if (!applied) /* an SFTP row with a newer time holds this product */
		goto out;
	/* The variants before this update: lines pointing to one that goes or
	 * changes follow it (relink_lines). */
	r = -EIO;
	if ((!fresh && (collect(c, SQL_PRODUCT_VARIANTS, row[P_PRODUCT_ID], 3, &old, &n_old) < 0 ||
			canon_delete_children(c->st, CANON_VARIANTS, NULL, row[P_PRODUCT_ID]) < 0)) ||
	    put_labels(c, "product", row[P_PRODUCT_ID], tr, fields) < 0 ||
	    put_variants(c, rec, row[P_PRODUCT_ID]) < 0)
		goto out;
	r = late_lines(c, row);
	if (r == 0 && n_old)
		r = relink_lines(c, old, n_old);
out:
	collected_free(old, n_old);
	free(images);
	return r;
}

/* One statement for the three catalog look-ups of a line (it runs for every line). */
static const char *SQL_LINE_REFS =
	"SELECT p.product_id, v.sku, v.size_label FROM (SELECT ?1 AS source_id, ?2 AS variant_id) AS k"
	" LEFT JOIN products AS p ON p.source_id = k.source_id"
	" LEFT JOIN variants AS v ON v.variant_id = k.variant_id LIMIT 1";

/* An order or return line's product and variant columns, filled from the catalog. */
static void line_refs(const struct project_ctx *c, struct scratch *sc, json_t *line,
		      const char **product_id, const char **variant_id, const char **sku,
		      const char **size_label)
{
	const char *raw = field_text(c, sc, line, "product_id");
	*variant_id = field_text(c, sc, line, "product_size_id");
	*sku = field_text(c, sc, line, "sku");
	*size_label = field_text(c, sc, line, "size_label");
	*product_id = raw;
	if (!raw && (*sku || !*variant_id) && (*size_label || !*variant_id))
		return;
	sqlite3_stmt *s = store_stmt(c->st, SQL_LINE_REFS);
	if (!s)
		return;
	if (raw)
		sqlite3_bind_text(s, 1, raw, -1, SQLITE_STATIC);
	if (*variant_id)
		sqlite3_bind_text(s, 2, *variant_id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		const char *mapped = column_copy(sc, s, 0);
		if (mapped)
			*product_id = mapped;
		if (!*sku)
			*sku = column_copy(sc, s, 1);
		if (!*size_label)
			*size_label = column_copy(sc, s, 2);
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
	const char *count_sql;
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
	return money_minor_text(c->st, field_text(c, ls, l, "price"), lr[OL_CURRENCY],
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
	CANON_ORDER_LINES, "SELECT count(*) FROM order_lines WHERE order_id = ?1", order_line_row,
};
static const struct lines_of return_lines = {
	CANON_RETURN_LINES, "SELECT count(*) FROM return_lines WHERE return_id = ?1", return_line_row,
};

#define LINES_IN_PLACE_MAX 64

/*
 * Whether the lines' numbers are plain decimal integers (as the mirror stores
 * them) and none repeats: then writing the lines over the stored ones and
 * counting what the parent holds tells whether an old line is left over.
 */
static bool plainly_numbered(const struct project_ctx *c, json_t *lines)
{
	long long seen_no[LINES_IN_PLACE_MAX];
	size_t i, n = json_array_size(lines);
	json_t *l;
	if (n > LINES_IN_PLACE_MAX)
		return false;
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
	}
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
 * The parent's lines become the record's.  A new parent has none yet.  An
 * updated one most often keeps its lines, or changes one: they are written
 * over the stored ones (an unchanged line costs a look-up, no write), and
 * only when old lines are left over (or the numbers are not plain) are they
 * all deleted and written again (DOMAIN.md §1: child rows replaced wholesale).
 */
static int replace_lines(const struct project_ctx *c, const struct lines_of *lo, json_t *rec,
			 const char *const *parent, bool fresh)
{
	json_t *lines = get(c, rec, "lines");
	bool in_place = !fresh && plainly_numbered(c, lines);
	if (!fresh && !in_place && canon_delete_children(c->st, lo->table, NULL, parent[0]) < 0)
		return -EIO;
	if (put_lines(c, lo, lines, parent) < 0)
		return -EIO;
	if (!in_place)
		return 0;
	sqlite3_stmt *q = store_stmt(c->st, lo->count_sql);
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, parent[0], -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	sqlite3_int64 stored = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
	sqlite3_reset(q);
	if (rc != SQLITE_ROW)
		return -EIO;
	if ((size_t)stored == json_array_size(lines))
		return 0;
	return canon_delete_children(c->st, lo->table, NULL, parent[0]) < 0 ? -EIO
										: put_lines(c, lo, lines, parent);
}

static int project_order(const struct project_ctx *c, json_t *rec)
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
	row[O_ORDERED_AT] = field_time(c, &sc, rec, "date_add");
	row[O_UPDATED_AT] = field_time(c, &sc, rec, "date_upd");
	if (put_parent(c, CANON_ORDERS, row, &applied, &fresh) < 0)
		return -EIO;
	if (!applied)
		return 0;
	/* Lines came, went or changed: the order's returns follow them. */
	return replace_lines(c, &order_lines, rec, row, fresh) < 0 ? -EIO
								  : outcome_relink(c->st, row[O_ORDER_ID]);
}

static int project_return(const struct project_ctx *c, json_t *rec)
{
	struct scratch sc = { .used = 0 };
	const char *row[R_COUNT] = { 0 };
	bool applied, fresh;

	row[R_RETURN_ID] = field_text(c, &sc, rec, "id");
	row[R_ORDER_ID] = field_text(c, &sc, rec, "order_id");
	row[R_RETURNED_AT] = field_time(c, &sc, rec, "date_add");
	row[R_UPDATED_AT] = field_time(c, &sc, rec, "date_upd");
	if (put_parent(c, CANON_RETURNS, row, &applied, &fresh) < 0)
		return -EIO;
	return applied ? replace_lines(c, &return_lines, rec, row, fresh) : 0;
}

static const char *SQL_VARIANT_NOW = "SELECT sku, size_id FROM variants WHERE variant_id = ?1";
static const char *SQL_ORDERS_OF_VARIANT =
	"SELECT order_id FROM order_lines WHERE variant_id = ?1 AND source = 'api'";
static const char *SQL_RETURNS_OF_VARIANT =
	"SELECT return_id FROM return_lines WHERE variant_id = ?1 AND source = 'api'";
static const char *SQL_ORDER_JSON =
	"SELECT json FROM records WHERE stream = 'orders' AND id = ?1 AND source = 'api'"
	" AND deleted = 0";
static const char *SQL_RETURN_JSON =
	"SELECT json FROM records WHERE stream = 'returns' AND id = ?1 AND source = 'api'"
	" AND deleted = 0";

static bool same(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) == 0 : a == b;
}

/* Project an order or return again from its raw record, so its lines see the catalog now. */
static int reproject(const struct project_ctx *c, enum stream s, const char *id)
{
	char **js = NULL;
	size_t n = 0;
	int r = collect(c, s == STREAM_ORDERS ? SQL_ORDER_JSON : SQL_RETURN_JSON, id, 1, &js, &n);
	if (r == 0 && n && js[0]) {
		json_t *rec = json_loads(js[0], 0, NULL);
		if (!rec)
			r = -EIO;
		else
			r = s == STREAM_ORDERS ? project_order(c, rec)
					       : project_return(c, rec);
		json_decref(rec);
	}
	collected_free(js, n);
	return r;
}

/*
 * A product update removed variants or changed their sku or size: the order
 * and return lines that took their sku or size label from such a variant
 * are projected again from their raw records, so that a mirror kept up to
 * date equals one built afresh from the same source.  old holds (variant_id,
 * sku, size_id) triples from before the update.
 */
static int relink_lines(const struct project_ctx *c, char **old, size_t n_old)
{
	char **orders = NULL, **returns = NULL;
	size_t n_orders = 0, n_returns = 0;
	int r = 0;

	for (size_t i = 0; r == 0 && i + 2 < n_old; i += 3) {
		char **now = NULL;
		size_t n_now = 0;
		if (!old[i])
			continue;
		r = collect(c, SQL_VARIANT_NOW, old[i], 2, &now, &n_now);
		bool changed = r == 0 && (n_now == 0 || !same(now[0], old[i + 1]) ||
					  !same(now[1], old[i + 2]));
		collected_free(now, n_now);
		if (changed)
			r = collect(c, SQL_ORDERS_OF_VARIANT, old[i], 1, &orders, &n_orders) < 0 ||
			    collect(c, SQL_RETURNS_OF_VARIANT, old[i], 1, &returns, &n_returns) < 0
				? -EIO : 0;
	}
	for (size_t i = 0; r == 0 && i < n_orders; i++)
		r = reproject(c, STREAM_ORDERS, orders[i]);
	for (size_t i = 0; r == 0 && i < n_returns; i++)
		r = reproject(c, STREAM_RETURNS, returns[i]);
	collected_free(orders, n_orders);
	collected_free(returns, n_returns);
	return r;
}

/* Sizes, departments, attributes and return reasons: one row and its labels. */
static int project_reference(const struct project_ctx *c, enum stream s, json_t *rec)
{
	static const char *const label_field[] = { "label", NULL };
	struct scratch sc = { .used = 0 };
	const char *row[CANON_COLS_MAX] = { 0 };
	json_t *tr = get(c, rec, "translations");
	const char *id = field_text(c, &sc, rec, "id");
	const char *entity;
	enum canon_table t;

	switch (s) {
	case STREAM_SIZES:
		t = CANON_SIZES, entity = "size";
		row[S_SIZE_ID] = id;
		row[S_LABEL] = field_text(c, &sc, rec, "label");
		if (!row[S_LABEL])
			row[S_LABEL] = translated(c, tr, NULL);
		break;
	case STREAM_DEPARTMENTS:
		t = CANON_DEPARTMENTS, entity = "department";
		row[D_DEPARTMENT_ID] = id;
		row[D_PARENT_ID] = field_text(c, &sc, rec, "parent_id");
		if (row[D_PARENT_ID] && strcmp(row[D_PARENT_ID], "0") == 0)
			row[D_PARENT_ID] = NULL; /* a root, however the shop spells it */
		row[D_LABEL] = translated(c, tr, NULL);
		break;
	case STREAM_ATTRIBUTES:
		t = CANON_ATTRIBUTES, entity = "attribute";
		row[A_ATTRIBUTE_ID] = id;
		row[A_CODE] = field_text(c, &sc, rec, "code");
		row[A_LABEL] = translated(c, tr, NULL);
		break;
	case STREAM_RETURN_REASONS:
		t = CANON_RETURN_REASONS, entity = "return_reason";
		row[RR_REASON_ID] = id;
		row[RR_CODE] = field_text(c, &sc, rec, "code");
		row[RR_LABEL] = translated(c, tr, NULL);
		break;
	default:
		return -EINVAL;
	}
	if (canon_put(c->st, t, row, "api", NULL) < 0 || put_labels(c, entity, id, tr, label_field) < 0)
		return -EIO;
	return s == STREAM_RETURN_REASONS ? fit_reason_update(c->st, c->m->fit, id) : 0;
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
