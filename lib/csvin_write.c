/* csvin_write.c - one good record into the raw layer and the canonical tables. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <csv.h>
#include <jansson.h>

#include "canon.h"
#include "csvin_ctx.h"
#include "fit.h"
#include "jsonw.h"
#include "money.h"
#include "outcome.h"
#include "tstamp.h"
#include "utf8.h"


/* ---- one record: apply ---- */

/*
 * The records id of this row: its n parts joined as they are, in a buffer
 * owned by x, valid until the next key_set.  NULL when out of memory.
 */
static const char *key_set(struct ctx *x, int n, ...)
{
	va_list ap;
	int r = 0;
	buf_reset(&x->key);
	va_start(ap, n);
	for (int i = 0; r == 0 && i < n; i++) {
		const char *part = va_arg(ap, const char *);
		r = buf_addstr(&x->key, part ? part : "");
	}
	va_end(ap);
	return r == 0 ? buf_str(&x->key) : NULL;
}

/* The row's source modification time: its updated_at, else the file name's time. */
static const char *src_time(const struct ctx *x)
{
	return x->v[C_UPDATED_AT] ? x->v[C_UPDATED_AT] : x->o->file_time;
}

/*
 * Write a parent row with canon_put (*applied as it says), unless it is the
 * very row written just before (*repeat), whose outcome then stands: between
 * two lines of one parent nothing else touches it, so the repeat would change
 * nothing but cost a B-tree lookup per line.
 */
static int put_parent(struct ctx *x, enum canon_table t, const char *const *vals, int n,
		      bool *applied, bool *repeat)
{
	struct buf *now = &x->parent[1], *last = &x->parent[0];
	buf_reset(now);
	for (int i = 0; i < n; i++) {
		/* "\0\1" ends a value, "\0\2" stands for NULL: tells NULL from "". */
		if ((vals[i] && buf_addstr(now, vals[i]) < 0) ||
		    buf_add(now, vals[i] ? "\0\1" : "\0\2", 2) < 0)
			return -ENOMEM;
	}
	*repeat = x->parent_valid && last->len == now->len &&
		  memcmp(last->data, now->data, now->len) == 0;
	if (*repeat) {
		*applied = x->parent_applied;
		return 0;
	}
	/* The same parent with other values (another date, say): its lines stay as they are. */
	bool same_key = x->parent_valid && x->parent_table == t && vals[0] &&
			strcmp(last->data, vals[0]) == 0;
	x->parent_valid = false;
	if (!same_key)
		csvin_lines_forget(x);
	sqlite3 *db = store_db(x->st);
	sqlite3_int64 before = sqlite3_last_insert_rowid(db);
	if (canon_put(x->st, t, vals, "sftp", applied) < 0)
		return -EIO;
	/* Inserted, not updated: it has no lines yet (their foreign key holds). */
	if (!same_key)
		x->lines_known = *applied && sqlite3_last_insert_rowid(db) != before;
	x->parent_table = t;
	struct buf swap = *last;
	*last = *now;
	*now = swap;
	x->parent_valid = true;
	x->parent_applied = *applied;
	return 0;
}

/* Append n bytes to the row's JSON text; false when out of memory. */
static bool json_add(struct ctx *x, const char *s, size_t n)
{
	return buf_add(&x->json, s, n) == 0;
}

/*
 * The row as a JSON object of its cells, named by the header (empty cells
 * are null).  Written by hand into one reused buffer: this runs for every
 * row of every file, and building a jansson object per row cost a tenth of
 * the ingestion.
 */
/* The header's names as JSON keys ("name":), escaped once per file into x->keys. */
static bool keys_build(struct ctx *x)
{
	buf_reset(&x->json);
	for (int i = 0; i < x->ncols; i++) {
		x->key_off[i] = x->json.len;
		if (!jsonw_string(&x->json, x->names[i], strlen(x->names[i])) || !json_add(x, ":", 1))
			return false;
	}
	x->key_off[x->ncols] = x->json.len;
	x->keys = strdup(buf_str(&x->json));
	if (!x->keys)
		return false;
	return true;
}

static int put_record(struct ctx *x, const char *id)
{
	if (!x->keys && !keys_build(x))
		return -ENOMEM;
	buf_reset(&x->json);
	bool ok = json_add(x, "{", 1);
	for (int i = 0; ok && i < x->ncols; i++) {
		ok = (i == 0 || json_add(x, ",", 1)) &&
		     json_add(x, x->keys + x->key_off[i], x->key_off[i + 1] - x->key_off[i]) &&
		     (x->flen[i] ? jsonw_string(&x->json, cell(x, i), x->flen[i]) : json_add(x, "null", 4));
	}
	if (!ok || !json_add(x, "}", 1))
		return -ENOMEM;
	struct store_record rec = {
		.stream = csvin_kind_name(x->o->kind),
		.id = id,
		.source = "sftp",
		.source_updated_at = src_time(x),
		.json = buf_str(&x->json),
	};
	return store_record_put(x->st, &rec, x->now, x->o->run_id, NULL);
}

/* Run a one-row query with up to two text parameters; 1 row, 0 none, -EIO.  The caller resets. */
static int query(struct ctx *x, const char *sql, const char *a, const char *b, sqlite3_stmt **out)
{
	sqlite3_stmt *s = store_stmt(x->st, sql);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
	*out = s;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static const char *SQL_VARIANT_GET = "SELECT sku, size_label FROM variants WHERE variant_id = ?1";

static int apply_product(struct ctx *x)
{
	const char *const *v = x->v;
	const char *pv[P_COUNT] = { NULL }, *vv[V_COUNT] = { NULL };
	bool applied;
	sqlite3_stmt *q = NULL;

	pv[P_PRODUCT_ID] = v[C_PRODUCT_ID];
	pv[P_PARENT_REFERENCE] = v[C_PARENT_REFERENCE];
	pv[P_TITLE] = v[C_TITLE];
	pv[P_DESCRIPTION] = v[C_DESCRIPTION];
	pv[P_URL] = v[C_URL];
	pv[P_IMAGES] = v[C_IMAGES];
	pv[P_CATEGORY] = v[C_CATEGORY];
	pv[P_UPDATED_AT] = src_time(x);
	pv[P_DEACTIVATED] = v[C_DEACTIVATED] ? v[C_DEACTIVATED] : "0";
	bool repeat;
	int r = put_parent(x, CANON_PRODUCTS, pv, P_COUNT, &applied, &repeat);
	if (r < 0)
		return r;
	if (applied && !repeat) {
		static const struct {
			const char *field;
			enum col c;
		} texts[] = { { "name", C_TITLE }, { "description", C_DESCRIPTION }, { "url", C_URL } };
		for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
			if (!v[texts[i].c])
				continue;
			const char *lv[L_COUNT] = { "product", v[C_PRODUCT_ID], x->lang0, texts[i].field,
						    v[texts[i].c] };
			if (canon_put(x->st, CANON_LABELS, lv, "sftp", NULL) < 0)
				return -EIO;
		}
	}
	/* The variant follows its product: a product kept because it is newer
	 * elsewhere keeps its variant too, unless the variant is new. */
	int found = applied ? 0 : query(x, SQL_VARIANT_GET, v[C_VARIANT_ID], NULL, &q);
	if (found < 0)
		return -EIO;
	if (found)
		sqlite3_reset(q);
	else {
		vv[V_VARIANT_ID] = v[C_VARIANT_ID];
		vv[V_PRODUCT_ID] = v[C_PRODUCT_ID];
		vv[V_SKU] = v[C_SKU];
		vv[V_EAN] = v[C_EAN];
		vv[V_SIZE_LABEL] = v[C_SIZE_LABEL];
		if (canon_put(x->st, CANON_VARIANTS, vv, "sftp", NULL) < 0)
			return -EIO;
	}
	const char *id = key_set(x, 2, "variant:", v[C_VARIANT_ID]);
	return id ? put_record(x, id) : -ENOMEM;
}

/* The statements that place a line within its order or return. */
/* by_variant and by_sku also give the next free number, in one statement. */
struct line_sql {
	const char *by_line, *by_variant, *by_sku;
};

#define LINE_OR_NEXT(lines, parent, col)                                                  \
	"SELECT (SELECT line_no FROM " lines " WHERE " parent " = ?1 AND " col " = ?2"         \
	"        ORDER BY line_no LIMIT 1),"                                                  \
	"       (SELECT COALESCE(MAX(line_no), 0) + 1 FROM " lines " WHERE " parent " = ?1)"

static const struct line_sql order_line_sql = {
	"SELECT line_no FROM order_lines WHERE order_id = ?1 AND line_no = ?2",
	LINE_OR_NEXT("order_lines", "order_id", "variant_id"),
	LINE_OR_NEXT("order_lines", "order_id", "sku"),
};

static const struct line_sql return_line_sql = {
	"SELECT line_no FROM return_lines WHERE return_id = ?1 AND line_no = ?2",
	LINE_OR_NEXT("return_lines", "return_id", "variant_id"),
	LINE_OR_NEXT("return_lines", "return_id", "sku"),
};

void csvin_lines_forget(struct ctx *x)
{
	for (int i = 0; i < x->n_known; i++) {
		free(x->known[i].variant);
		free(x->known[i].sku);
	}
	x->n_known = 0;
	x->lines_known = false;
}

static bool same_text(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0; /* SQL's =: NULL matches nothing */
}

/*
 * place_line for a parent whose lines are all known: what by_variant or
 * by_sku would find, from memory (the first line holding this variant, or
 * sku, else the next number).
 */
static int place_known(struct ctx *x, const char *parent, char *line_no, bool *exists,
		       const char **id)
{
	const char *variant = x->v[C_VARIANT_ID], *sku = x->v[C_SKU];
	int k = 0;
	while (k < x->n_known && !(variant ? same_text(x->known[k].variant, variant)
					   : same_text(x->known[k].sku, sku)))
		k++;
	*exists = k < x->n_known;
	x->known_at = k;
	snprintf(line_no, NORM_LEN, "%d", k + 1);
	*id = variant ? key_set(x, 3, parent, ":variant:", variant)
		      : key_set(x, 3, parent, ":sku:", sku);
	return *id ? 0 : -ENOMEM;
}

/* The line placed by place_known was written with this variant and sku. */
static int known_written(struct ctx *x, const char *variant, const char *sku)
{
	if (!x->lines_known)
		return 0;
	int k = x->known_at;
	if (k == x->n_known) {
		if (k == CSVIN_LINES_KNOWN_MAX) {
			csvin_lines_forget(x);
			return 0;
		}
		x->known[k].variant = x->known[k].sku = NULL;
		x->n_known++;
	}
	free(x->known[k].variant);
	free(x->known[k].sku);
	x->known[k].variant = variant ? strdup(variant) : NULL;
	x->known[k].sku = sku ? strdup(sku) : NULL;
	if ((variant && !x->known[k].variant) || (sku && !x->known[k].sku))
		return -ENOMEM;
	return 0;
}

/*
 * Place the row's line in its parent: its line_no when the file has one;
 * else the line already holding this variant (or sku), so that the same line
 * in a later file replaces it; else the next free number, which numbers a new
 * parent's lines in file order.  *exists says whether that line is stored (not
 * looked up for a numbered line of an applied parent: it is written anyway).
 * Also sets the records id (parent:line:N, parent:variant:V or parent:sku:S).
 */
static int place_line(struct ctx *x, const struct line_sql *sql, const char *parent,
		      bool parent_applied, char *line_no, bool *exists, const char **id)
{
	const char *const *v = x->v;
	sqlite3_stmt *q = NULL;
	int found;

	if (v[C_LINE_NO])
		csvin_lines_forget(x); /* a numbered line: the next free number is the mirror's */
	if (x->lines_known)
		return place_known(x, parent, line_no, exists, id);
	if (v[C_LINE_NO]) {
		snprintf(line_no, NORM_LEN, "%s", v[C_LINE_NO]);
		found = parent_applied ? 0 : query(x, sql->by_line, parent, v[C_LINE_NO], &q);
		*id = key_set(x, 3, parent, ":line:", v[C_LINE_NO]);
	} else if (v[C_VARIANT_ID]) {
		found = query(x, sql->by_variant, parent, v[C_VARIANT_ID], &q);
		*id = key_set(x, 3, parent, ":variant:", v[C_VARIANT_ID]);
	} else {
		found = query(x, sql->by_sku, parent, v[C_SKU], &q);
		*id = key_set(x, 3, parent, ":sku:", v[C_SKU]);
	}
	if (found < 0 || (!v[C_LINE_NO] && found != 1))
		return -EIO;
	if (!*id)
		return -ENOMEM;
	if (v[C_LINE_NO]) {
		*exists = found;
		if (found)
			sqlite3_reset(q);
		return 0;
	}
	/* The line holding this variant (or sku), else the next free number. */
	*exists = sqlite3_column_type(q, 0) != SQLITE_NULL;
	snprintf(line_no, NORM_LEN, "%lld", (long long)sqlite3_column_int64(q, *exists ? 0 : 1));
	sqlite3_reset(q);
	return 0;
}

/* A line without sku or size label takes them from its variant (DOMAIN.md §1). */
static int fill_from_variant(struct ctx *x, const char **sku, const char **size)
{
	sqlite3_stmt *q = NULL;
	*sku = x->v[C_SKU];
	*size = x->v[C_SIZE_LABEL];
	if (!x->v[C_VARIANT_ID] || (*sku && *size))
		return 0;
	int found = query(x, SQL_VARIANT_GET, x->v[C_VARIANT_ID], NULL, &q);
	if (found <= 0)
		return found;
	const char *s = (const char *)sqlite3_column_text(q, 0);
	const char *z = (const char *)sqlite3_column_text(q, 1);
	if (!*sku && s && !(*sku = x->fill_sku = strdup(s)))
		found = -ENOMEM;
	if (!*size && z && !(*size = x->fill_size = strdup(z)))
		found = -ENOMEM;
	sqlite3_reset(q);
	return found < 0 ? found : 0;
}

static int apply_order(struct ctx *x)
{
	const char *const *v = x->v;
	const char *ov[O_COUNT] = { NULL }, *lv[OL_COUNT] = { NULL }, *id, *sku, *size;
	char line_no[NORM_LEN];
	bool applied, exists, repeat;

	ov[O_ORDER_ID] = v[C_ORDER_ID];
	ov[O_STATUS] = v[C_STATUS];
	ov[O_ORDERED_AT] = v[C_ORDERED_AT];
	ov[O_UPDATED_AT] = src_time(x);
	ov[O_CURRENCY] = v[C_CURRENCY];
	int r = put_parent(x, CANON_ORDERS, ov, O_COUNT, &applied, &repeat);
	if (r < 0)
		return r;
	r = place_line(x, &order_line_sql, v[C_ORDER_ID], applied, line_no, &exists, &id);
	if (r < 0)
		return r;
	/* the line follows its order, as a variant its product */
	if (applied || !exists) {
		if ((r = fill_from_variant(x, &sku, &size)) < 0)
			return r;
		lv[OL_ORDER_ID] = v[C_ORDER_ID];
		lv[OL_LINE_NO] = line_no;
		lv[OL_PRODUCT_ID] = v[C_PRODUCT_ID];
		lv[OL_VARIANT_ID] = v[C_VARIANT_ID];
		lv[OL_SKU] = sku;
		lv[OL_SIZE_LABEL] = size;
		lv[OL_QUANTITY] = v[C_QUANTITY];
		lv[OL_CURRENCY] = v[C_CURRENCY];
		char minor[MONEY_TEXT_LEN];
		if (money_minor_text(x->st, &x->money, v[C_PRICE], v[C_CURRENCY], minor, &lv[OL_UNIT_PRICE_MINOR]) < 0 ||
		    canon_put(x->st, CANON_ORDER_LINES, lv, "sftp", NULL) < 0 ||
		    outcome_relink(x->st, v[C_ORDER_ID]) < 0)
			return -EIO;
		if ((r = known_written(x, v[C_VARIANT_ID], sku)) < 0)
			return r;
	}
	return put_record(x, id);
}

static int apply_return(struct ctx *x)
{
	const char *const *v = x->v;
	const char *rv[R_COUNT] = { NULL }, *lv[RL_COUNT] = { NULL }, *id, *sku, *size;
	char line_no[NORM_LEN];
	bool applied, exists, repeat;

	rv[R_RETURN_ID] = v[C_RETURN_ID];
	rv[R_ORDER_ID] = v[C_ORDER_ID];
	rv[R_RETURNED_AT] = v[C_RETURNED_AT];
	rv[R_UPDATED_AT] = src_time(x);
	int r = put_parent(x, CANON_RETURNS, rv, R_COUNT, &applied, &repeat);
	if (r < 0)
		return r;
	r = place_line(x, &return_line_sql, v[C_RETURN_ID], applied, line_no, &exists, &id);
	if (r < 0)
		return r;
	if (applied || !exists) {
		if ((r = fill_from_variant(x, &sku, &size)) < 0)
			return r;
		lv[RL_RETURN_ID] = v[C_RETURN_ID];
		lv[RL_LINE_NO] = line_no;
		lv[RL_ORDER_ID] = v[C_ORDER_ID];
		lv[RL_PRODUCT_ID] = v[C_PRODUCT_ID];
		lv[RL_VARIANT_ID] = v[C_VARIANT_ID];
		lv[RL_SKU] = sku;
		lv[RL_SIZE_LABEL] = size;
		lv[RL_QUANTITY] = v[C_QUANTITY];
		lv[RL_REASON_ID] = v[C_REASON_ID];
		lv[RL_COMMENT] = v[C_COMMENT];
		char order_line[OUTCOME_LINE_LEN];
		if (outcome_order_line(x->st, v[C_ORDER_ID], v[C_VARIANT_ID], sku, order_line,
				       &lv[RL_ORDER_LINE_NO]) < 0 ||
		    canon_put(x->st, CANON_RETURN_LINES, lv, "sftp", NULL) < 0)
			return -EIO;
		if ((r = known_written(x, v[C_VARIANT_ID], sku)) < 0)
			return r;
	}
	return put_record(x, id);
}

static const char *SQL_REASON_CODE = "SELECT code FROM return_reasons WHERE reason_id = ?1";
static const char *SQL_REASON_LABELS =
	"SELECT lang, value FROM labels WHERE entity = 'return_reason' AND entity_id = ?1"
	" AND field = 'label' ORDER BY lang";

/*
 * A reason row carries one language's label.  Every label goes to labels; the
 * reason's own label is then the first configured language that has one,
 * else the next configured, else any (DOMAIN.md §1), so a file in English
 * does not overwrite the French label of a French-first merchant.
 */
static int apply_reason(struct ctx *x)
{
	const char *const *v = x->v;
	const char *lang = v[C_LANG] ? v[C_LANG] : x->lang0;
	char *code = NULL, *label = NULL;
	int best = CONFIG_LANG_MAX + 1, r = -EIO;
	sqlite3_stmt *q = NULL;

	if (v[C_LABEL]) {
		const char *lv[L_COUNT] = { "return_reason", v[C_REASON_ID], lang, "label", v[C_LABEL] };
		if (canon_put(x->st, CANON_LABELS, lv, "sftp", NULL) < 0)
			return -EIO;
	}
	int found = v[C_CODE] ? 0 : query(x, SQL_REASON_CODE, v[C_REASON_ID], NULL, &q);
	if (found < 0)
		return -EIO;
	if (found) {
		const char *c = (const char *)sqlite3_column_text(q, 0);
		code = c ? strdup(c) : NULL;
		sqlite3_reset(q);
		if (c && !code)
			return -ENOMEM;
	}
	sqlite3_stmt *s = store_stmt(x->st, SQL_REASON_LABELS);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, v[C_REASON_ID], -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *l = (const char *)sqlite3_column_text(s, 0);
		const char *val = (const char *)sqlite3_column_text(s, 1);
		int rank = CONFIG_LANG_MAX;
		for (int i = 0; i < x->o->m->n_languages; i++)
			if (l && strcmp(l, x->o->m->languages[i]) == 0)
				rank = i;
		if (val && rank < best) {
			char *copy = strdup(val);
			if (!copy) {
				sqlite3_reset(s);
				r = -ENOMEM;
				goto out;
			}
			free(label);
			label = copy;
			best = rank;
		}
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		goto out;
	const char *rr[RR_COUNT] = { v[C_REASON_ID], v[C_CODE] ? v[C_CODE] : code, label };
	if (canon_put(x->st, CANON_RETURN_REASONS, rr, "sftp", NULL) < 0 ||
	    fit_reason_update(x->st, x->o->m->fit, v[C_REASON_ID]) < 0)
		goto out;
	const char *id = v[C_LANG] ? key_set(x, 3, v[C_REASON_ID], ":", lang) : v[C_REASON_ID];
	r = id ? put_record(x, id) : -ENOMEM;
out:
	free(code);
	free(label);
	return r;
}

static int apply_dimension(struct ctx *x)
{
	const char *const *v = x->v;
	const char *kind = v[C_VARIANT_ID] ? "variant" : "product";
	const char *kid = v[C_VARIANT_ID] ? v[C_VARIANT_ID] : v[C_PRODUCT_ID];
	const char *dv[DM_COUNT] = { kind, kid, v[C_MEASUREMENT], v[C_PRODUCT_ID], v[C_VARIANT_ID],
				     v[C_VALUE], v[C_UNIT], src_time(x) };
	if (canon_put(x->st, CANON_DIMENSIONS, dv, "sftp", NULL) < 0)
		return -EIO;
	const char *id = key_set(x, 5, kind, ":", kid, ":", v[C_MEASUREMENT]);
	return id ? put_record(x, id) : -ENOMEM;
}

int csvin_write_row(struct ctx *x)
{
	switch (x->o->kind) {
	case CSVIN_PRODUCTS: return apply_product(x);
	case CSVIN_ORDERS: return apply_order(x);
	case CSVIN_RETURNS: return apply_return(x);
	case CSVIN_RETURN_REASONS: return apply_reason(x);
	case CSVIN_DIMENSIONS: return apply_dimension(x);
	default: return -EINVAL;
	}
}
