/* csvin.c - stream one gap-fill CSV file through libcsv into records and the canonical tables.
 *
 * Memory stays constant whatever the file's size: the file is read in blocks,
 * libcsv holds one cell (capped through its realloc hook), and one record's
 * cells are kept at a time (capped too).  The input is fed to libcsv one
 * physical line at a time, so that the line where each record starts is
 * known even when quoted cells span lines: a record starts on the line being
 * fed whenever the parser stood between records before it.
 *
 * A file is one transaction.  Bad records are recorded as they come; when
 * there are too many, the transaction is rolled back and the file read again
 * in a second, validating pass that records only its rejects, so that a
 * rejected file leaves an explanation and nothing else.
 */
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
#include "csvin.h"
#include "fit.h"
#include "money.h"
#include "outcome.h"
#include "tstamp.h"
#include "utf8.h"

#define READ_BLOCK (64 * 1024)
#define CSV_BLOCK  4096 /* libcsv grows its cell buffer by this much */
#define ROW_PARSER_NOT_BEGUN 0 /* libcsv's ROW_NOT_BEGUN: the parser stands between records */
#define VALUE_QUOTE_MAX 40 /* bytes of a bad value quoted back in a reject reason */

static const char *const kind_names[CSVIN_KIND_COUNT] = {
	[CSVIN_RETURN_REASONS] = "return_reasons",
	[CSVIN_PRODUCTS] = "products",
	[CSVIN_ORDERS] = "orders",
	[CSVIN_RETURNS] = "returns",
	[CSVIN_DIMENSIONS] = "dimensions",
};

const char *csvin_kind_name(enum csvin_kind k)
{
	return (unsigned)k < CSVIN_KIND_COUNT ? kind_names[k] : "?";
}

int csvin_kind_from_name(const char *s)
{
	for (int i = 0; i < CSVIN_KIND_COUNT; i++)
		if (strcmp(kind_names[i], s) == 0)
			return i;
	return -1;
}

const char *csvin_outcome_name(enum csvin_outcome o)
{
	switch (o) {
	case CSVIN_APPLIED: return "applied";
	case CSVIN_APPLIED_WITH_REJECTS: return "applied_with_rejects";
	default: return "rejected";
	}
}

/* ---- the column contract (DOMAIN.md §3) ---- */

enum ctype { T_TEXT, T_INT, T_POSINT, T_DECIMAL, T_DATE, T_BOOL, T_IMAGES, T_LANG };

enum col {
	C_PRODUCT_ID, C_VARIANT_ID, C_SKU, C_EAN, C_TITLE, C_DESCRIPTION, C_URL, C_IMAGES,
	C_CATEGORY, C_SIZE_LABEL, C_PARENT_REFERENCE, C_UPDATED_AT, C_DEACTIVATED,
	C_ORDER_ID, C_ORDERED_AT, C_QUANTITY, C_LINE_NO, C_PRICE, C_CURRENCY, C_STATUS,
	C_RETURN_ID, C_RETURNED_AT, C_REASON_ID, C_COMMENT, C_CODE, C_LABEL, C_LANG,
	C_MEASUREMENT, C_VALUE, C_UNIT, C_COUNT
};

static const struct {
	const char *name;
	enum ctype type;
} cols[C_COUNT] = {
	[C_PRODUCT_ID] = { "product_id", T_TEXT },
	[C_VARIANT_ID] = { "variant_id", T_TEXT },
	[C_SKU] = { "sku", T_TEXT },
	[C_EAN] = { "ean", T_TEXT },
	[C_TITLE] = { "title", T_TEXT },
	[C_DESCRIPTION] = { "description", T_TEXT },
	[C_URL] = { "url", T_TEXT },
	[C_IMAGES] = { "images", T_IMAGES },
	[C_CATEGORY] = { "category", T_TEXT },
	[C_SIZE_LABEL] = { "size_label", T_TEXT },
	[C_PARENT_REFERENCE] = { "parent_reference", T_TEXT },
	[C_UPDATED_AT] = { "updated_at", T_DATE },
	[C_DEACTIVATED] = { "deactivated", T_BOOL },
	[C_ORDER_ID] = { "order_id", T_TEXT },
	[C_ORDERED_AT] = { "ordered_at", T_DATE },
	[C_QUANTITY] = { "quantity", T_INT },
	[C_LINE_NO] = { "line_no", T_POSINT },
	[C_PRICE] = { "price", T_DECIMAL },
	[C_CURRENCY] = { "currency", T_TEXT },
	[C_STATUS] = { "status", T_TEXT },
	[C_RETURN_ID] = { "return_id", T_TEXT },
	[C_RETURNED_AT] = { "returned_at", T_DATE },
	[C_REASON_ID] = { "reason_id", T_TEXT },
	[C_COMMENT] = { "comment", T_TEXT },
	[C_CODE] = { "code", T_TEXT },
	[C_LABEL] = { "label", T_TEXT },
	[C_LANG] = { "lang", T_LANG },
	[C_MEASUREMENT] = { "measurement", T_TEXT },
	[C_VALUE] = { "value", T_DECIMAL },
	[C_UNIT] = { "unit", T_TEXT },
};

#define B(c) (UINT64_C(1) << (c))

/* updated_at is accepted in every kind: it is the row's source modification time. */
static const struct {
	uint64_t allowed, required;
} kinds[CSVIN_KIND_COUNT] = {
	[CSVIN_PRODUCTS] = {
		B(C_PRODUCT_ID) | B(C_VARIANT_ID) | B(C_SKU) | B(C_EAN) | B(C_TITLE) |
		B(C_DESCRIPTION) | B(C_URL) | B(C_IMAGES) | B(C_CATEGORY) | B(C_SIZE_LABEL) |
		B(C_PARENT_REFERENCE) | B(C_UPDATED_AT) | B(C_DEACTIVATED),
		B(C_PRODUCT_ID) | B(C_VARIANT_ID) },
	[CSVIN_ORDERS] = {
		B(C_ORDER_ID) | B(C_ORDERED_AT) | B(C_PRODUCT_ID) | B(C_QUANTITY) | B(C_LINE_NO) |
		B(C_VARIANT_ID) | B(C_SKU) | B(C_SIZE_LABEL) | B(C_PRICE) | B(C_CURRENCY) |
		B(C_STATUS) | B(C_UPDATED_AT),
		B(C_ORDER_ID) | B(C_ORDERED_AT) | B(C_PRODUCT_ID) | B(C_QUANTITY) },
	[CSVIN_RETURNS] = {
		B(C_RETURN_ID) | B(C_ORDER_ID) | B(C_RETURNED_AT) | B(C_PRODUCT_ID) |
		B(C_QUANTITY) | B(C_LINE_NO) | B(C_VARIANT_ID) | B(C_SKU) | B(C_SIZE_LABEL) |
		B(C_REASON_ID) | B(C_COMMENT) | B(C_UPDATED_AT),
		B(C_RETURN_ID) | B(C_ORDER_ID) | B(C_RETURNED_AT) | B(C_PRODUCT_ID) | B(C_QUANTITY) },
	[CSVIN_RETURN_REASONS] = {
		B(C_REASON_ID) | B(C_CODE) | B(C_LABEL) | B(C_LANG) | B(C_UPDATED_AT),
		B(C_REASON_ID) },
	[CSVIN_DIMENSIONS] = {
		B(C_MEASUREMENT) | B(C_VALUE) | B(C_PRODUCT_ID) | B(C_VARIANT_ID) | B(C_UNIT) |
		B(C_UPDATED_AT),
		B(C_MEASUREMENT) | B(C_VALUE) },
};

/* ---- state of one pass over one file ---- */

#define NORM_LEN 48 /* a normalized number, date or flag */

struct ctx {
	struct store *st;
	const struct csvin_opts *o;
	struct csvin_result *res;
	bool dry;                  /* the second pass over a rejected file: rejects only */
	const struct tz *tz;
	const char *lang0;         /* the merchant's first language */
	tstamp_t now;

	struct csv_parser p;
	bool parser_live;
	unsigned char delim;
	int64_t line;              /* the physical line being fed, from 1 */
	int64_t row_line;          /* where the record being parsed started */
	bool skip_line;            /* after a parse error: drop input up to the next LF */
	int fatal;                 /* negative errno: stop, roll back */
	bool file_bad;             /* rejected whole; res->reason says why */
	int64_t whole_line;        /* the line that reason is about: the header's, or 0 */

	/* the header */
	bool header_done;
	int ncols;
	char *names[CSVIN_COLS_MAX];
	int at[C_COUNT];           /* cell index of each known column, -1 when absent */

	/* the record being parsed: its cells, each NUL-terminated, in one buffer */
	char *buf;
	size_t len, cap;
	size_t off[CSVIN_COLS_MAX], flen[CSVIN_COLS_MAX];
	int n;
	const char *bad;           /* why the record is bad while still parsing, or NULL */

	/* the record being applied */
	const char *v[C_COUNT];    /* normalized value of each known column, NULL when empty */
	char norm[C_COUNT][NORM_LEN];
	char *images;              /* normalized images JSON, owned */
	char *json;                /* the raw record's JSON text, reused row after row; owned */
	size_t json_len, json_cap;
	char reason[256];
	struct {
		char in[40];
		tstamp_t out;
	} dcache[C_COUNT];         /* the last date converted per column: dates repeat */
	char *key;                 /* the records id being built, owned */
	size_t key_cap;
	char *fill_sku, *fill_size; /* looked up from variants, owned */
	/* the parent row (product, order, return) last written, serialized, and whether
	 * it was applied: the lines of one parent come together and repeat it */
	char *parent[2];
	size_t parent_len, parent_cap[2];
	bool parent_valid, parent_applied;
	int64_t rows_since_tick;
};

/* libcsv grows its cell buffer through this: refusing is how a cell is capped. */
static void *capped_realloc(void *p, size_t size)
{
	if (size > CSVIN_FIELD_MAX + 1)
		return NULL;
	return realloc(p, size);
}

static int parser_start(struct ctx *x)
{
	if (x->parser_live)
		csv_free(&x->p);
	x->parser_live = false;
	if (csv_init(&x->p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
		return -ENOMEM;
	csv_set_delim(&x->p, x->delim);
	csv_set_realloc_func(&x->p, capped_realloc);
	csv_set_blk_size(&x->p, CSV_BLOCK);
	x->parser_live = true;
	return 0;
}

static void set_fatal(struct ctx *x, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_fatal(struct ctx *x, int err, const char *fmt, ...)
{
	if (x->fatal)
		return;
	x->fatal = err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->res->reason, sizeof(x->res->reason), fmt, ap);
	va_end(ap);
}

static void db_fatal(struct ctx *x)
{
	set_fatal(x, -EIO, "%s: database error: %s", x->o->path, store_errmsg(x->st));
}

static void file_reject(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void file_reject(struct ctx *x, const char *fmt, ...)
{
	if (x->file_bad || x->fatal)
		return;
	x->file_bad = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->res->reason, sizeof(x->res->reason), fmt, ap);
	va_end(ap);
}

/* Valid UTF-8 without NUL (SQLite text and JSON would cut or choke on it). */
static bool utf8_ok(const char *s, size_t n)
{
	return !memchr(s, 0, n) && utf8_valid(s, n);
}

/* How many bytes of valid UTF-8 s to quote in a message without cutting a character. */
static int clip(const char *s)
{
	size_t n = strlen(s);
	if (n <= VALUE_QUOTE_MAX)
		return (int)n;
	n = VALUE_QUOTE_MAX;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return (int)n;
}

static const char *cell(const struct ctx *x, int i)
{
	return x->buf + x->off[i];
}

static void row_reset(struct ctx *x)
{
	x->len = 0;
	x->n = 0;
	x->bad = NULL;
	free(x->images);
	x->images = NULL;
	free(x->fill_sku);
	free(x->fill_size);
	x->fill_sku = x->fill_size = NULL;
}

static void on_cell(void *s, size_t len, void *data)
{
	struct ctx *x = data;
	if (x->bad || x->fatal || x->file_bad)
		return;
	if (x->n == CSVIN_COLS_MAX) {
		x->bad = "more than 512 fields";
		return;
	}
	if (x->len + len + 1 > CSVIN_ROW_MAX) {
		x->bad = "record larger than 4 MiB";
		return;
	}
	if (x->len + len + 1 > x->cap) {
		size_t ncap = x->cap ? x->cap : 4096;
		while (ncap < x->len + len + 1)
			ncap *= 2;
		char *nb = realloc(x->buf, ncap);
		if (!nb) {
			set_fatal(x, -ENOMEM, "%s: out of memory", x->o->path);
			return;
		}
		x->buf = nb;
		x->cap = ncap;
	}
	if (len)
		memcpy(x->buf + x->len, s, len);
	x->buf[x->len + len] = '\0';
	x->off[x->n] = x->len;
	x->flen[x->n] = len;
	x->n++;
	x->len += len + 1;
}

static const char *SQL_REJECT_ADD = "INSERT INTO csv_rejects (path, line, reason) VALUES (?1, ?2, ?3)";
static const char *SQL_REJECT_CLEAR = "DELETE FROM csv_rejects WHERE path = ?1";

static void reject(struct ctx *x, int64_t line, const char *why)
{
	x->res->rejects++;
	sqlite3_stmt *s = store_stmt(x->st, SQL_REJECT_ADD);
	if (!s) {
		db_fatal(x);
		return;
	}
	sqlite3_bind_text(s, 1, x->o->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, line);
	sqlite3_bind_text(s, 3, why, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		db_fatal(x);
}

/* ---- the header ---- */

static void header(struct ctx *x)
{
	uint64_t allowed = kinds[x->o->kind].allowed, required = kinds[x->o->kind].required;

	x->whole_line = x->row_line;
	if (x->bad) {
		file_reject(x, "header line %lld: %s", (long long)x->row_line, x->bad);
		return;
	}
	for (int c = 0; c < C_COUNT; c++)
		x->at[c] = -1;
	for (int i = 0; i < x->n; i++) {
		char *name = x->buf + x->off[i];
		size_t len = x->flen[i];
		if (!utf8_ok(name, len)) {
			file_reject(x, "header line %lld: column %d's name is not valid UTF-8",
				    (long long)x->row_line, i + 1);
			return;
		}
		while (len && isspace((unsigned char)name[len - 1]))
			name[--len] = '\0';
		while (len && isspace((unsigned char)*name))
			name++, len--;
		char *copy;
		if (len)
			copy = strdup(name);
		else if (asprintf(&copy, "column_%d", i + 1) < 0)
			copy = NULL;
		if (!copy) {
			set_fatal(x, -ENOMEM, "%s: out of memory", x->o->path);
			return;
		}
		x->names[x->ncols++] = copy;
		for (int c = 0; c < C_COUNT; c++) {
			if (!(allowed & B(c)) || strcasecmp(copy, cols[c].name) != 0)
				continue;
			if (x->at[c] >= 0) {
				file_reject(x, "header line %lld: column %s appears twice",
					    (long long)x->row_line, cols[c].name);
				return;
			}
			x->at[c] = i;
		}
	}
	char missing[200] = "";
	int n_missing = 0;
	for (int c = 0; c < C_COUNT; c++) {
		if ((required & B(c)) && x->at[c] < 0) {
			size_t l = strlen(missing);
			snprintf(missing + l, sizeof(missing) - l, "%s%s", n_missing ? ", " : "",
				 cols[c].name);
			n_missing++;
		}
	}
	if (n_missing) {
		file_reject(x, "header line %lld: missing required column%s %s",
			    (long long)x->row_line, n_missing > 1 ? "s" : "", missing);
		return;
	}
	if (x->o->kind == CSVIN_DIMENSIONS && x->at[C_PRODUCT_ID] < 0 && x->at[C_VARIANT_ID] < 0) {
		file_reject(x, "header line %lld: missing required column variant_id or product_id",
			    (long long)x->row_line);
		return;
	}
	x->header_done = true;
}

/* ---- one record: validate and normalize ---- */

static bool parse_int(const char *s, long long min, long long *out)
{
	const char *p = s;
	long long v = 0;
	bool neg = false;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (!isdigit((unsigned char)*p))
		return false;
	for (int n = 0; isdigit((unsigned char)*p); p++, n++) {
		if (n == 18)
			return false;
		v = v * 10 + (*p - '0');
	}
	if (*p)
		return false;
	*out = neg ? -v : v;
	return *out >= min;
}

/* "19.90", "19,90" (a decimal comma, common with semicolon files), "-3", "12.5". */
static bool parse_decimal(const char *s, char *out, size_t size)
{
	const char *p = s;
	size_t n = 0;
	if (strlen(s) >= size)
		return false;
	if (*p == '+' || *p == '-') {
		if (*p == '-')
			out[n++] = '-';
		p++;
	}
	if (!isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p))
		out[n++] = *p++;
	if (*p == '.' || *p == ',') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		out[n++] = '.';
		while (isdigit((unsigned char)*p))
			out[n++] = *p++;
	}
	out[n] = '\0';
	return *p == '\0';
}

/* A JSON array of strings, or URLs separated by '|'; the result is compact JSON, owned by x. */
static bool parse_images(struct ctx *x, const char *s)
{
	json_t *a = NULL;
	if (*s == '[') {
		a = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_array(a))
			goto bad;
		size_t i;
		json_t *e;
		json_array_foreach(a, i, e)
			if (!json_is_string(e))
				goto bad;
	} else {
		a = json_array();
		if (!a)
			goto bad;
		const char *p = s;
		while (*p) {
			const char *bar = strchr(p, '|');
			const char *end = bar ? bar : p + strlen(p);
			const char *b = p, *e = end;
			while (b < e && isspace((unsigned char)*b))
				b++;
			while (e > b && isspace((unsigned char)e[-1]))
				e--;
			if (e > b && json_array_append_new(a, json_stringn(b, (size_t)(e - b))) < 0)
				goto bad;
			p = bar ? bar + 1 : end;
		}
	}
	x->images = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return x->images != NULL;
bad:
	json_decref(a);
	return false;
}

static const char *why(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static const char *why(struct ctx *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->reason, sizeof(x->reason), fmt, ap);
	va_end(ap);
	return x->reason;
}

static const char *normalize(struct ctx *x, int c, const char *raw)
{
	char *out = x->norm[c];
	long long n;

	switch (cols[c].type) {
	case T_TEXT:
		x->v[c] = raw;
		return NULL;
	case T_INT:
	case T_POSINT:
		if (!parse_int(raw, cols[c].type == T_POSINT ? 1 : INT64_MIN + 1, &n))
			return why(x, "%s '%.*s' is not %s", cols[c].name, clip(raw), raw,
				   cols[c].type == T_POSINT ? "a positive integer" : "an integer");
		snprintf(out, NORM_LEN, "%lld", n);
		break;
	case T_DECIMAL:
		if (!parse_decimal(raw, out, NORM_LEN))
			return why(x, "%s '%.*s' is not a number", cols[c].name, clip(raw), raw);
		break;
	case T_DATE:
		if (strcmp(x->dcache[c].in, raw) == 0 && x->dcache[c].in[0]) {
			memcpy(out, x->dcache[c].out, TSTAMP_LEN);
		} else {
			time_t t;
			if (tstamp_from_local(x->tz, raw, &t) < 0)
				return why(x, "%s '%.*s' is not a date (ISO 8601 or DD/MM/YYYY)",
					   cols[c].name, clip(raw), raw);
			tstamp_format(t, out);
			if (strlen(raw) < sizeof(x->dcache[c].in)) {
				strcpy(x->dcache[c].in, raw);
				memcpy(x->dcache[c].out, out, TSTAMP_LEN);
			}
		}
		break;
	case T_BOOL:
		if (strcmp(raw, "1") == 0 || strcasecmp(raw, "true") == 0)
			strcpy(out, "1");
		else if (strcmp(raw, "0") == 0 || strcasecmp(raw, "false") == 0)
			strcpy(out, "0");
		else
			return why(x, "%s '%.*s' is not 0, 1, true or false", cols[c].name, clip(raw),
				   raw);
		break;
	case T_IMAGES:
		if (!parse_images(x, raw))
			return why(x, "images is neither a JSON array of URLs nor URLs separated by |");
		x->v[c] = x->images;
		return NULL;
	case T_LANG:
		if (strlen(raw) != 2)
			return why(x, "lang '%.*s' is not a language code", clip(raw), raw);
		out[0] = (char)tolower((unsigned char)raw[0]);
		out[1] = (char)tolower((unsigned char)raw[1]);
		out[2] = '\0';
		if (!config_language_valid(out))
			return why(x, "lang '%s' is not one of the supported languages", out);
		break;
	}
	x->v[c] = out;
	return NULL;
}

/* NULL when the record is good (x->v filled), else why it is bad. */
static const char *validate(struct ctx *x)
{
	uint64_t required = kinds[x->o->kind].required;

	if (x->bad)
		return x->bad;
	if (x->n < x->ncols)
		return why(x, "%d fields, the header has %d", x->n, x->ncols);
	for (int i = x->ncols; i < x->n; i++)
		if (x->flen[i])
			return why(x, "%d fields, the header has %d", x->n, x->ncols);
	for (int i = 0; i < x->ncols; i++)
		if (!utf8_ok(cell(x, i), x->flen[i]))
			return why(x, "column %s is not valid UTF-8", x->names[i]);
	for (int c = 0; c < C_COUNT; c++) {
		x->v[c] = NULL;
		if (x->at[c] < 0 || x->flen[x->at[c]] == 0) {
			if (required & B(c))
				return why(x, "required %s is empty", cols[c].name);
			continue;
		}
		const char *e = normalize(x, c, cell(x, x->at[c]));
		if (e)
			return e;
	}
	switch (x->o->kind) {
	case CSVIN_ORDERS:
	case CSVIN_RETURNS:
		if (!x->v[C_LINE_NO] && !x->v[C_VARIANT_ID] && !x->v[C_SKU])
			return "no line_no, variant_id or sku to tell the line apart";
		break;
	case CSVIN_DIMENSIONS:
		if (!x->v[C_VARIANT_ID] && !x->v[C_PRODUCT_ID])
			return "neither variant_id nor product_id is set";
		break;
	default:
		break;
	}
	return NULL;
}

/* ---- one record: apply ---- */

static const char *key_set(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The records id of this row, in a buffer owned by x. */
static const char *key_set(struct ctx *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(x->key, x->key_cap, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	if ((size_t)n >= x->key_cap) {
		char *nk = realloc(x->key, (size_t)n + 1);
		if (!nk)
			return NULL;
		x->key = nk;
		x->key_cap = (size_t)n + 1;
		va_start(ap, fmt);
		vsnprintf(x->key, x->key_cap, fmt, ap);
		va_end(ap);
	}
	return x->key;
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
	size_t need = 0, len = 0;
	for (int i = 0; i < n; i++)
		need += (vals[i] ? strlen(vals[i]) : 0) + 2;
	if (need > x->parent_cap[1]) {
		char *nb = realloc(x->parent[1], need);
		if (!nb)
			return -ENOMEM;
		x->parent[1] = nb;
		x->parent_cap[1] = need;
	}
	for (int i = 0; i < n; i++) {
		if (vals[i]) {
			size_t l = strlen(vals[i]);
			memcpy(x->parent[1] + len, vals[i], l);
			len += l;
		}
		x->parent[1][len++] = '\0';
		x->parent[1][len++] = vals[i] ? '\1' : '\2'; /* tells NULL from "" */
	}
	*repeat = x->parent_valid && x->parent_len == len &&
		  memcmp(x->parent[0], x->parent[1], len) == 0;
	if (*repeat) {
		*applied = x->parent_applied;
		return 0;
	}
	x->parent_valid = false;
	if (canon_put(x->st, t, vals, "sftp", applied) < 0)
		return -EIO;
	char *tb = x->parent[0];
	size_t tc = x->parent_cap[0];
	x->parent[0] = x->parent[1];
	x->parent_cap[0] = x->parent_cap[1];
	x->parent[1] = tb;
	x->parent_cap[1] = tc;
	x->parent_len = len;
	x->parent_valid = true;
	x->parent_applied = *applied;
	return 0;
}

/* Append n bytes to the row's JSON text; false when out of memory. */
static bool json_add(struct ctx *x, const char *s, size_t n)
{
	if (x->json_len + n + 1 > x->json_cap) {
		size_t cap = x->json_cap ? x->json_cap : 1024;
		while (cap < x->json_len + n + 1)
			cap *= 2;
		char *g = realloc(x->json, cap);
		if (!g)
			return false;
		x->json = g;
		x->json_cap = cap;
	}
	memcpy(x->json + x->json_len, s, n);
	x->json_len += n;
	x->json[x->json_len] = 0;
	return true;
}

/* A JSON string literal of s (n bytes of valid UTF-8): quotes, backslashes and controls escaped. */
static bool json_add_string(struct ctx *x, const char *s, size_t n)
{
	if (!json_add(x, "\"", 1))
		return false;
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		char esc[8];
		int k = ch == '"' ? snprintf(esc, sizeof(esc), "\\\"")
			: ch == '\\' ? snprintf(esc, sizeof(esc), "\\\\")
			: ch == '\n' ? snprintf(esc, sizeof(esc), "\\n")
			: ch == '\r' ? snprintf(esc, sizeof(esc), "\\r")
			: ch == '\t' ? snprintf(esc, sizeof(esc), "\\t")
			: snprintf(esc, sizeof(esc), "\\u%04x", ch);
		if (!json_add(x, s + run, i - run) || !json_add(x, esc, (size_t)k))
			return false;
		run = i + 1;
	}
	return json_add(x, s + run, n - run) && json_add(x, "\"", 1);
}

/*
 * The row as a JSON object of its cells, named by the header (empty cells
 * are null).  Written by hand into one reused buffer: this runs for every
 * row of every file, and building a jansson object per row cost a tenth of
 * the ingestion.
 */
static int put_record(struct ctx *x, const char *id)
{
	x->json_len = 0;
	bool ok = json_add(x, "{", 1);
	for (int i = 0; ok && i < x->ncols; i++) {
		ok = (i == 0 || json_add(x, ",", 1)) &&
		     json_add_string(x, x->names[i], strlen(x->names[i])) && json_add(x, ":", 1) &&
		     (x->flen[i] ? json_add_string(x, cell(x, i), x->flen[i]) : json_add(x, "null", 4));
	}
	if (!ok || !json_add(x, "}", 1))
		return -ENOMEM;
	struct store_record rec = {
		.stream = csvin_kind_name(x->o->kind),
		.id = id,
		.source = "sftp",
		.source_updated_at = src_time(x),
		.json = x->json,
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
	const char *id = key_set(x, "variant:%s", v[C_VARIANT_ID]);
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

	if (v[C_LINE_NO]) {
		snprintf(line_no, NORM_LEN, "%s", v[C_LINE_NO]);
		found = parent_applied ? 0 : query(x, sql->by_line, parent, v[C_LINE_NO], &q);
		*id = key_set(x, "%s:line:%s", parent, v[C_LINE_NO]);
	} else if (v[C_VARIANT_ID]) {
		found = query(x, sql->by_variant, parent, v[C_VARIANT_ID], &q);
		*id = key_set(x, "%s:variant:%s", parent, v[C_VARIANT_ID]);
	} else {
		found = query(x, sql->by_sku, parent, v[C_SKU], &q);
		*id = key_set(x, "%s:sku:%s", parent, v[C_SKU]);
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
		if (money_minor_text(x->st, v[C_PRICE], v[C_CURRENCY], minor, &lv[OL_UNIT_PRICE_MINOR]) < 0 ||
		    canon_put(x->st, CANON_ORDER_LINES, lv, "sftp", NULL) < 0 ||
		    outcome_relink(x->st, v[C_ORDER_ID]) < 0)
			return -EIO;
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
	const char *id = v[C_LANG] ? key_set(x, "%s:%s", v[C_REASON_ID], lang) : v[C_REASON_ID];
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
	const char *id = key_set(x, "%s:%s:%s", kind, kid, v[C_MEASUREMENT]);
	return id ? put_record(x, id) : -ENOMEM;
}

static int apply_row(struct ctx *x)
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

static bool row_blank(const struct ctx *x)
{
	if (x->bad)
		return false;
	for (int i = 0; i < x->n; i++)
		if (x->flen[i])
			return false;
	return true;
}

static void on_row(int c, void *data)
{
	struct ctx *x = data;
	(void)c;
	if (x->fatal || x->file_bad)
		goto out;
	if (!x->header_done) {
		header(x);
		goto out;
	}
	if (row_blank(x))
		goto out; /* a line of bare delimiters, as spreadsheets leave behind */
	x->res->rows++;
	const char *bad = validate(x);
	if (bad)
		reject(x, x->row_line, bad);
	else if (!x->dry) {
		int r = apply_row(x);
		if (r == -ENOMEM)
			set_fatal(x, r, "%s: out of memory", x->o->path);
		else if (r < 0)
			db_fatal(x);
		else
			x->res->applied++;
	}
	if (++x->rows_since_tick >= CSVIN_TICK_ROWS) {
		x->rows_since_tick = 0;
		if (x->o->tick)
			x->o->tick(x->o->tick_arg);
	}
out:
	row_reset(x);
}

/* libcsv stopped on bad input: the record it was in is bad; resume on the next line. */
static void parse_failed(struct ctx *x, const char *what)
{
	if (!what)
		what = csv_error(&x->p) == CSV_ENOMEM ? "a field longer than 1 MiB"
						      : "malformed quoting (a quote inside an "
							"unquoted field, or text after a closing quote)";
	if (!x->header_done) {
		x->whole_line = x->row_line;
		file_reject(x, "header line %lld: %s", (long long)x->row_line, what);
	}
	else {
		x->res->rows++;
		reject(x, x->row_line, what);
	}
	row_reset(x);
	if (parser_start(x) < 0)
		set_fatal(x, -ENOMEM, "%s: out of memory", x->o->path);
}

/* Feed a block to libcsv one physical line at a time (see the top of the file). */
static void feed(struct ctx *x, const char *p, size_t n)
{
	while (n > 0 && !x->fatal && !x->file_bad) {
		const char *lf = memchr(p, '\n', n);
		size_t seg = lf ? (size_t)(lf - p) + 1 : n;
		if (!x->skip_line) {
			if (x->p.pstate == ROW_PARSER_NOT_BEGUN)
				x->row_line = x->line;
			size_t done = csv_parse(&x->p, p, seg, on_cell, on_row, x);
			if (done < seg) {
				parse_failed(x, NULL);
				x->skip_line = true;
				p += done;
				n -= done;
				continue;
			}
		} else if (lf) {
			x->skip_line = false;
		}
		if (lf)
			x->line++;
		p += seg;
		n -= seg;
	}
}

/* Comma or semicolon: whichever the header line has more of outside quotes. */
static unsigned char detect_delim(const char *p, size_t n)
{
	size_t commas = 0, semis = 0;
	bool quoted = false, content = false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '"')
			quoted = !quoted;
		else if (quoted)
			continue;
		else if (c == ',')
			commas++;
		else if (c == ';')
			semis++;
		else if (c == '\n' && content)
			break;
		if (!isspace((unsigned char)c))
			content = true;
	}
	return semis > commas ? ';' : ',';
}

/* One pass over f.  0, or the fatal error (x->file_bad is not an error here). */
static int pass(struct ctx *x, FILE *f)
{
	char *buf = malloc(READ_BLOCK);
	int r = 0;
	if (!buf) {
		set_fatal(x, -ENOMEM, "%s: out of memory", x->o->path);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, READ_BLOCK, f), start = 0;
	if (ferror(f)) {
		set_fatal(x, -EIO, "%s: cannot read the downloaded file", x->o->path);
		goto out;
	}
	if (n == 0) {
		file_reject(x, "empty file (0 bytes)");
		goto out;
	}
	if (n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		start = 3;
	x->delim = detect_delim(buf + start, n - start);
	if (parser_start(x) < 0) {
		set_fatal(x, -ENOMEM, "%s: out of memory", x->o->path);
		goto out;
	}
	x->line = 1;
	for (;;) {
		feed(x, buf + start, n - start);
		if (x->fatal || x->file_bad)
			goto out;
		if (x->o->stop && atomic_load(x->o->stop)) {
			set_fatal(x, -EAGAIN, "%s: stopped", x->o->path);
			goto out;
		}
		start = 0;
		n = fread(buf, 1, READ_BLOCK, f);
		if (n == 0) {
			if (ferror(f))
				set_fatal(x, -EIO, "%s: cannot read the downloaded file", x->o->path);
			break;
		}
	}
	if (!x->fatal && !x->skip_line && csv_fini(&x->p, on_cell, on_row, x) != 0)
		parse_failed(x, "a quoted field is not closed before the end of the file");
	if (!x->fatal && !x->header_done)
		file_reject(x, "no header line");
out:
	free(buf);
	if (x->fatal)
		r = x->fatal;
	return r;
}

static void ctx_init(struct ctx *x, struct store *st, const struct csvin_opts *o,
		     struct csvin_result *res, bool dry)
{
	memset(x, 0, sizeof(*x));
	x->st = st;
	x->o = o;
	x->res = res;
	x->dry = dry;
	x->tz = o->m ? o->m->tz : NULL;
	x->lang0 = o->m && o->m->n_languages > 0 ? o->m->languages[0] : "fr";
	tstamp_now(x->now);
	memset(res, 0, sizeof(*res));
}

static void ctx_free(struct ctx *x)
{
	row_reset(x);
	if (x->parser_live)
		csv_free(&x->p);
	for (int i = 0; i < x->ncols; i++)
		free(x->names[i]);
	free(x->buf);
	free(x->json);
	free(x->key);
	free(x->parent[0]);
	free(x->parent[1]);
}

static int clear_rejects(struct store *st, const char *path)
{
	sqlite3_stmt *s = store_stmt(st, SQL_REJECT_CLEAR);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int finish(struct store *st, const struct csvin_opts *o, struct csvin_result *res)
{
	int r = o->before_commit ? o->before_commit(st, res, o->commit_arg) : 0;
	if (r < 0) {
		if (!res->reason[0])
			snprintf(res->reason, sizeof(res->reason), "%s: cannot record the outcome",
				 o->path);
		return r;
	}
	if (store_commit(st) < 0) {
		snprintf(res->reason, sizeof(res->reason), "%s: database error: %s", o->path,
			 store_errmsg(st));
		return -EIO;
	}
	return 0;
}

/* A file rejected whole for a reason of its own: the reason is its only reject. */
static int reject_whole(struct store *st, const struct csvin_opts *o, struct csvin_result *res,
			int64_t line)
{
	char reason[sizeof(res->reason)];
	memcpy(reason, res->reason, sizeof(reason));
	res->outcome = CSVIN_REJECTED;
	res->applied = 0;
	int r = -EIO;
	if (store_begin(st) < 0 || clear_rejects(st, o->path) < 0)
		goto fail;
	sqlite3_stmt *s = store_stmt(st, SQL_REJECT_ADD);
	if (!s)
		goto fail;
	sqlite3_bind_text(s, 1, o->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, line);
	sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		goto fail;
	if ((r = finish(st, o, res)) < 0)
		goto rollback;
	return 0;
fail:
	snprintf(res->reason, sizeof(res->reason), "%s: database error: %s", o->path,
		 store_errmsg(st));
rollback:
	store_rollback(st);
	return r;
}

int csvin_apply(struct store *st, const struct csvin_opts *o, FILE *f, struct csvin_result *res)
{
	struct ctx x;
	int r;

	ctx_init(&x, st, o, res, false);
	if (!o->m || !o->m->tz || !o->path || (unsigned)o->kind >= CSVIN_KIND_COUNT) {
		snprintf(res->reason, sizeof(res->reason), "csvin: kind, path and merchant are required");
		return -EINVAL;
	}
	if (store_begin(st) < 0 || clear_rejects(st, o->path) < 0) {
		snprintf(res->reason, sizeof(res->reason), "%s: database error: %s", o->path,
			 store_errmsg(st));
		store_rollback(st);
		return -EIO;
	}
	r = pass(&x, f);
	int64_t whole_line = x.whole_line;
	bool file_bad = x.file_bad;
	ctx_free(&x);
	if (r < 0) {
		store_rollback(st);
		return r;
	}
	if (file_bad) {
		store_rollback(st);
		return reject_whole(st, o, res, whole_line);
	}

	double ratio = o->m->sftp.max_reject_ratio;
	if (res->rows > 0 && (double)res->rejects / (double)res->rows > ratio) {
		/* too many bad rows: nothing of the file stays but its rejects */
		store_rollback(st);
		if (fseek(f, 0, SEEK_SET) != 0) {
			snprintf(res->reason, sizeof(res->reason),
				 "%s: cannot read the file again to record its rejects", o->path);
			return -EIO;
		}
		ctx_init(&x, st, o, res, true);
		if (store_begin(st) < 0 || clear_rejects(st, o->path) < 0) {
			snprintf(res->reason, sizeof(res->reason), "%s: database error: %s", o->path,
				 store_errmsg(st));
			ctx_free(&x);
			store_rollback(st);
			return -EIO;
		}
		r = pass(&x, f);
		ctx_free(&x);
		if (r < 0) {
			store_rollback(st);
			return r;
		}
		res->outcome = CSVIN_REJECTED;
		res->applied = 0;
		snprintf(res->reason, sizeof(res->reason),
			 "%lld of %lld rows are bad (%.1f%%), more than max_reject_ratio %g: "
			 "nothing applied", (long long)res->rejects, (long long)res->rows,
			 100.0 * (double)res->rejects / (double)res->rows, ratio);
	} else if (res->rejects) {
		res->outcome = CSVIN_APPLIED_WITH_REJECTS;
		snprintf(res->reason, sizeof(res->reason),
			 "%lld of %lld rows are bad (see csv_rejects); the others were applied",
			 (long long)res->rejects, (long long)res->rows);
	} else {
		res->outcome = CSVIN_APPLIED;
	}
	r = finish(st, o, res);
	if (r < 0)
		store_rollback(st);
	return r;
}

int csvin_apply_fd(struct store *st, const struct csvin_opts *o, int fd, struct csvin_result *res)
{
	int dupfd = dup(fd);
	FILE *f = dupfd >= 0 ? fdopen(dupfd, "r") : NULL;
	if (!f) {
		if (dupfd >= 0)
			close(dupfd);
		memset(res, 0, sizeof(*res));
		snprintf(res->reason, sizeof(res->reason), "%s: cannot read the downloaded file: %s",
			 o->path ? o->path : "?", strerror(errno));
		return -EIO;
	}
	int r = fseek(f, 0, SEEK_SET) == 0 ? csvin_apply(st, o, f, res) : -EIO;
	if (r == -EIO && !res->reason[0])
		snprintf(res->reason, sizeof(res->reason), "%s: cannot read the downloaded file",
			 o->path ? o->path : "?");
	fclose(f);
	return r;
}
