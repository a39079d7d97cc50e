/* csvin_check.c - the column contract: a header against its kind, a record's values checked and normalized. */
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
#include "tstamp.h"
#include "utf8.h"

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


/* ---- the header ---- */

void csvin_check_header(struct ctx *x)
{
	uint64_t allowed = kinds[x->o->kind].allowed, required = kinds[x->o->kind].required;

	x->whole_line = x->row_line;
	if (x->bad) {
		csvin_file_reject(x, "header line %lld: %s", (long long)x->row_line, x->bad);
		return;
	}
	for (int c = 0; c < C_COUNT; c++)
		x->at[c] = -1;
	for (int i = 0; i < x->n; i++) {
		char *name = x->row.data + x->off[i];
		size_t len = x->flen[i];
		if (!utf8_ok(name, len)) {
			csvin_file_reject(x, "header line %lld: column %d's name is not valid UTF-8",
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
			csvin_fatal(x, -ENOMEM, "%s: out of memory", x->o->path);
			return;
		}
		x->names[x->ncols++] = copy;
		for (int c = 0; c < C_COUNT; c++) {
			if (!(allowed & B(c)) || strcasecmp(copy, cols[c].name) != 0)
				continue;
			if (x->at[c] >= 0) {
				csvin_file_reject(x, "header line %lld: column %s appears twice",
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
		csvin_file_reject(x, "header line %lld: missing required column%s %s",
			    (long long)x->row_line, n_missing > 1 ? "s" : "", missing);
		return;
	}
	if (x->o->kind == CSVIN_DIMENSIONS && x->at[C_PRODUCT_ID] < 0 && x->at[C_VARIANT_ID] < 0) {
		csvin_file_reject(x, "header line %lld: missing required column variant_id or product_id",
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
const char *csvin_check_row(struct ctx *x)
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
