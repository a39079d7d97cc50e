/* project_catalog.c - the catalog's records: products with their variants and labels, and the
 * reference streams (sizes, departments, attributes, return reasons).
 *
 * A product update reaches the order and return lines that took a sku or a
 * size label from its variants (late_lines, relink_lines).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "fit.h"
#include "project_priv.h"

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
		out = project_column_copy(sc, s, 0);
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

/* Children written in place (project_children_count, _prune): ?1 the entity
 * (labels), ?2 the owner's id, ?3 a JSON array of the keys written. */
static const char *SQL_LABELS_COUNT =
	"SELECT count(*) FROM labels WHERE entity = ?1 AND entity_id = ?2";
static const char *SQL_LABELS_PRUNE =
	"DELETE FROM labels WHERE entity = ?1 AND entity_id = ?2"
	" AND lang || char(31) || field NOT IN (SELECT value FROM json_each(?3))";
static const char *SQL_VARIANTS_COUNT = "SELECT count(*) FROM variants WHERE product_id = ?2";
static const char *SQL_VARIANTS_PRUNE =
	"DELETE FROM variants WHERE product_id = ?2"
	" AND variant_id NOT IN (SELECT value FROM json_each(?3))";

/* keys: a JSON object whose member names are the keys written, as a set. */
static int leave_over(const struct project_ctx *c, const char *count_sql, const char *prune_sql,
		      const char *entity, const char *id, json_t *keys)
{
	sqlite3_int64 stored = -1;
	if (project_children_count(c, count_sql, entity, id, &stored) < 0)
		return -EIO;
	if ((size_t)stored == json_object_size(keys))
		return 0;
	json_t *list = json_array(), *v;
	const char *k;
	int r = list ? 0 : -ENOMEM;
	json_object_foreach(keys, k, v) {
		if (r == 0 && json_array_append_new(list, json_string(k)) < 0)
			r = -ENOMEM;
	}
	char *text = r == 0 ? json_dumps(list, JSON_COMPACT) : NULL;
	if (r == 0)
		r = text ? project_children_prune(c, prune_sql, entity, id, text) : -ENOMEM;
	free(text);
	json_decref(list);
	return r;
}

/* Add "<lang>\x1f<field>" (a label's key, as SQL_LABELS_PRUNE spells it) to the set keys. */
static int key_add(json_t *keys, const char *lang, const char *field)
{
	char small[SCRATCH_LEN], *key = small;
	size_t a = strlen(lang), b = strlen(field);
	if (a + b + 2 > sizeof(small) && !(key = malloc(a + b + 2)))
		return -ENOMEM;
	memcpy(key, lang, a);
	key[a] = '\x1f';
	memcpy(key + a + 1, field, b + 1);
	int r = json_object_set_new(keys, key, json_true()) < 0 ? -ENOMEM : 0;
	if (key != small)
		free(key);
	return r;
}

/*
 * The labels of (entity, id) become those of every language served.  Each is
 * written over the stored one (an unchanged label is not written at all) and
 * only the stored labels the record no longer has are deleted; an entity
 * written for the first time (fresh) has none.
 */
static int put_labels(const struct project_ctx *c, const char *entity, const char *id, json_t *tr,
		      const char *const *fields, bool fresh)
{
	const char *lang;
	json_t *v, *keys = fresh ? NULL : json_object();
	int r = keys || fresh ? 0 : -ENOMEM;

	json_object_foreach(tr, lang, v) {
		for (int f = 0; r == 0 && fields[f]; f++) {
			json_t *val = strcmp(fields[f], "label") == 0 && json_is_string(v) ? v
				      : get(c, v, fields[f]);
			if (!json_string_length(val))
				continue;
			const char *row[L_COUNT] = { entity, id, lang, fields[f], json_string_value(val) };
			if (keys)
				r = key_add(keys, lang, fields[f]);
			if (r == 0 && canon_put(c->st, CANON_LABELS, row, "api", NULL) < 0)
				r = -EIO;
		}
	}
	if (r == 0 && keys)
		r = leave_over(c, SQL_LABELS_COUNT, SQL_LABELS_PRUNE, entity, id, keys);
	json_decref(keys);
	return r;
}

/* parent_reference_field names a field of the product, or an attribute code. */
static const char *parent_reference(const struct project_ctx *c, struct scratch *sc, json_t *rec)
{
	const char *name = c->m->parent_reference_field;
	json_t *v = get(c, rec, name);
	if (v)
		return project_text(sc, v);
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
			return project_text(sc, get(c, a, "value"));
	}
	return NULL;
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

static const char *SQL_VARIANT_NOW = "SELECT sku, size_id FROM variants WHERE variant_id = ?1";
static const char *SQL_ORDERS_OF_VARIANT =
	"SELECT order_id FROM order_lines WHERE variant_id = ?1 AND source = 'api'";
static const char *SQL_RETURNS_OF_VARIANT =
	"SELECT return_id FROM return_lines WHERE variant_id = ?1 AND source = 'api'";

static bool same(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) == 0 : a == b;
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
		r = project_collect(c, SQL_VARIANT_NOW, old[i], 2, &now, &n_now);
		bool changed = r == 0 && (n_now == 0 || !same(now[0], old[i + 1]) ||
					  !same(now[1], old[i + 2]));
		project_collected_free(now, n_now);
		if (changed)
			r = project_collect(c, SQL_ORDERS_OF_VARIANT, old[i], 1, &orders, &n_orders) < 0 ||
			    project_collect(c, SQL_RETURNS_OF_VARIANT, old[i], 1, &returns, &n_returns) < 0
				? -EIO : 0;
	}
	for (size_t i = 0; r == 0 && i < n_orders; i++)
		r = project_reproject(c, STREAM_ORDERS, orders[i]);
	for (size_t i = 0; r == 0 && i < n_returns; i++)
		r = project_reproject(c, STREAM_RETURNS, returns[i]);
	project_collected_free(orders, n_orders);
	project_collected_free(returns, n_returns);
	return r;
}

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
	row[P_UPDATED_AT] = project_field_time(c, sc, rec, "date_upd");
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

/*
 * The product's sizes as its variants rows, written over the stored ones; when
 * the product was stored already (!fresh), its variants the record no longer
 * has are deleted.
 */
static int put_variants(const struct project_ctx *c, json_t *rec, const char *product_id, bool fresh)
{
	size_t i;
	json_t *v, *ids = fresh ? NULL : json_object();
	int r = ids || fresh ? 0 : -ENOMEM;
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
		if (ids && json_object_set_new(ids, vr[V_VARIANT_ID], json_true()) < 0)
			r = -ENOMEM;
		else if (canon_put(c->st, CANON_VARIANTS, vr, "api", NULL) < 0)
			r = -EIO;
		if (r < 0)
			break;
	}
	if (r == 0 && ids)
		r = leave_over(c, SQL_VARIANTS_COUNT, SQL_VARIANTS_PRUNE, NULL, product_id, ids);
	json_decref(ids);
	return r;
}

/*
 * Lines written before their product or variant was known kept the raw
 * product id or no sku: project those orders and returns again.  The
 * product's variants are now the record's (put_variants deleted the others,
 * a new product had none): one query each for the orders and the returns
 * whose lines wait for them.
 */
static int late_lines(const struct project_ctx *c, const char *const *row)
{
	char **late = NULL; /* orders, then returns */
	size_t n_late = 0, n_orders;
	bool raw = strcmp(row[P_SOURCE_ID], row[P_PRODUCT_ID]) != 0;
	int r = -EIO;
	if ((raw && project_collect(c, SQL_ORDERS_OF_RAW_PRODUCT, row[P_SOURCE_ID], 1, &late, &n_late) < 0) ||
	    project_collect(c, SQL_ORDERS_UNFILLED, row[P_PRODUCT_ID], 1, &late, &n_late) < 0)
		goto out;
	n_orders = n_late;
	if ((raw && project_collect(c, SQL_RETURNS_OF_RAW_PRODUCT, row[P_SOURCE_ID], 1, &late, &n_late) < 0) ||
	    project_collect(c, SQL_RETURNS_UNFILLED, row[P_PRODUCT_ID], 1, &late, &n_late) < 0)
		goto out;
	r = 0;
	for (size_t k = 0; r == 0 && k < n_late; k++)
		r = project_reproject(c, k < n_orders ? STREAM_ORDERS : STREAM_RETURNS, late[k]);
out:
	project_collected_free(late, n_late);
	return r;
}

int project_product(const struct project_ctx *c, json_t *rec, char *err, size_t errlen)
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
	if (drop_renamed(c, row) < 0 || project_put_parent(c, CANON_PRODUCTS, row, &applied, &fresh) < 0)
		goto out;
	r = 0;
	if (!applied) /* an SFTP row with a newer time holds this product */
		goto out;
	/* The variants before this update: lines pointing to one that goes or
	 * changes follow it (relink_lines). */
	r = -EIO;
	if ((!fresh && project_collect(c, SQL_PRODUCT_VARIANTS, row[P_PRODUCT_ID], 3, &old, &n_old) < 0) ||
	    put_labels(c, "product", row[P_PRODUCT_ID], tr, fields, fresh) < 0 ||
	    put_variants(c, rec, row[P_PRODUCT_ID], fresh) < 0)
		goto out;
	r = late_lines(c, row);
	if (r == 0 && n_old)
		r = relink_lines(c, old, n_old);
out:
	project_collected_free(old, n_old);
	free(images);
	return r;
}

/* How each reference stream's record becomes its row. */
static const struct {
	enum canon_table table;
	const char *entity;   /* of its labels; NULL: not a reference stream */
	int id, label;        /* columns */
	int extra;            /* the column filled from field, or -1 */
	const char *field;
	bool own_label;       /* a "label" field comes before the translations */
	bool zero_is_null;    /* field "0" is no value (a department's root parent) */
} refs[STREAM_API_COUNT] = {
	[STREAM_SIZES] = { CANON_SIZES, "size", S_SIZE_ID, S_LABEL, -1, NULL, true, false },
	[STREAM_DEPARTMENTS] = { CANON_DEPARTMENTS, "department", D_DEPARTMENT_ID, D_LABEL,
				 D_PARENT_ID, "parent_id", false, true },
	[STREAM_ATTRIBUTES] = { CANON_ATTRIBUTES, "attribute", A_ATTRIBUTE_ID, A_LABEL, A_CODE,
				"code", false, false },
	[STREAM_RETURN_REASONS] = { CANON_RETURN_REASONS, "return_reason", RR_REASON_ID, RR_LABEL,
				    RR_CODE, "code", false, false },
};

/* Sizes, departments, attributes and return reasons: one row and its labels. */
int project_reference(const struct project_ctx *c, enum stream s, json_t *rec)
{
	static const char *const label_field[] = { "label", NULL };
	struct scratch sc = { .used = 0 };
	const char *row[CANON_COLS_MAX] = { 0 };

	if ((unsigned)s >= STREAM_API_COUNT || !refs[s].entity)
		return -EINVAL;
	json_t *tr = get(c, rec, "translations");
	const char *id = field_text(c, &sc, rec, "id");
	row[refs[s].id] = id;
	if (refs[s].field) {
		const char *v = field_text(c, &sc, rec, refs[s].field);
		/* a root, however the shop spells it */
		row[refs[s].extra] = refs[s].zero_is_null && v && strcmp(v, "0") == 0 ? NULL : v;
	}
	if (refs[s].own_label)
		row[refs[s].label] = field_text(c, &sc, rec, "label");
	if (!row[refs[s].label])
		row[refs[s].label] = translated(c, tr, NULL);
	if (canon_put(c->st, refs[s].table, row, "api", NULL) < 0 ||
	    put_labels(c, refs[s].entity, id, tr, label_field, false) < 0)
		return -EIO;
	return s == STREAM_RETURN_REASONS ? fit_reason_update(c->st, c->m->fit, id) : 0;
}
