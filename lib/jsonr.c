/* jsonr.c - a JSON parser that builds jansson values, for reply bodies.
 *
 * jansson's own parser reads its input one code point at a time through a
 * stream and copies every token through a string buffer: parsing a page was
 * a third of an initial sync's instructions.  This one scans the body in
 * place, validates UTF-8 only where a byte needs it, and hands jansson each
 * key and string straight from the body (copying only strings with escapes).
 * What it accepts and the tree it builds are jansson's (test_jsonr compares
 * both on valid, invalid and mutated texts).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonr.h"
#include "buf.h"
#include "jsonstr.h"
#include "utf8.h"

#define JSONR_DEPTH_MAX 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

struct parser {
	const char *p, *end, *start;
	int depth;
	struct buf esc;     /* a string with escapes, decoded (owned) */
	json_error_t *err;
};

static bool fail(struct parser *x, const char *what)
{
	if (x->err && !x->err->text[0]) {
		x->err->line = -1;
		x->err->column = -1;
		x->err->position = (int)(x->p - x->start);
		snprintf(x->err->text, sizeof(x->err->text), "%s", what);
		snprintf(x->err->source, sizeof(x->err->source), "<buffer>");
	}
	return false;
}

static inline void skip_ws(struct parser *x)
{
	while (x->p < x->end && (*x->p == ' ' || *x->p == '\n' || *x->p == '\r' || *x->p == '\t'))
		x->p++;
}

static json_t *value(struct parser *x);

static int hex4(const char *s)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* One \uXXXX escape (and its low surrogate) at x->p, past the backslash and u, as UTF-8 into d. */
static int unicode_escape(struct parser *x, char *d)
{
	if (x->end - x->p < 4)
		return -1;
	long cp = hex4(x->p);
	if (cp < 0)
		return -1;
	x->p += 4;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return -1;
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (x->end - x->p < 6 || x->p[0] != '\\' || x->p[1] != 'u')
			return -1;
		long lo = hex4(x->p + 2);
		if (lo < 0xDC00 || lo > 0xDFFF)
			return -1;
		x->p += 6;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	if (cp == 0)
		return -1; /* \u0000 needs JSON_ALLOW_NUL */
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xC0 | (cp >> 6));
		d[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xE0 | (cp >> 12));
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		d[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	d[0] = (char)(0xF0 | (cp >> 18));
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	d[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* The rest of a string with escapes, from x->p (inside it) into x->esc, which holds n bytes. */
static bool string_escaped(struct parser *x, size_t n, const char **s, size_t *len)
{
	while (x->p < x->end) {
		unsigned char c = (unsigned char)*x->p;
		if (buf_reserve(&x->esc, n + 4) < 0)
			return fail(x, "out of memory");
		if (c == '"') {
			x->p++;
			if (!utf8_valid(x->esc.data, n))
				return fail(x, "invalid UTF-8 in a string");
			*s = x->esc.data;
			*len = n;
			return true;
		}
		if (c < 0x20)
			return fail(x, "control character in a string");
		x->p++;
		if (c != '\\') {
			x->esc.data[n++] = (char)c;
			continue;
		}
		if (x->p == x->end)
			break;
		char e = *x->p++;
		static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
		const char *k = e ? strchr(from, e) : NULL;
		if (k) {
			x->esc.data[n++] = to[k - from];
		} else if (e == 'u') {
			int w = unicode_escape(x, x->esc.data + n);
			if (w < 0)
				return fail(x, "invalid \\u escape");
			n += (size_t)w;
		} else {
			return fail(x, "invalid escape");
		}
	}
	return fail(x, "premature end of input in a string");
}

/* A string at x->p (its opening quote): in place when it has no escape, else decoded. */
static bool string(struct parser *x, const char **s, size_t *len)
{
	const char *b = ++x->p;
	unsigned char hi = 0;
	x->p += jsonstr_plain(b, (size_t)(x->end - b), &hi);
	if (x->p == x->end)
		return fail(x, "premature end of input in a string");
	if (*x->p == '"') {
		*s = b;
		*len = (size_t)(x->p - b);
		x->p++;
		if (hi & 0x80 && !utf8_valid(b, *len))
			return fail(x, "invalid UTF-8 in a string");
		return true;
	}
	if (*x->p == '\\') {
		size_t n = (size_t)(x->p - b);
		if (buf_reserve(&x->esc, n + 4) < 0)
			return fail(x, "out of memory");
		memcpy(x->esc.data, b, n);
		return string_escaped(x, n, s, len);
	}
	return fail(x, "control character in a string");
}

static inline bool digit(const struct parser *x)
{
	return x->p < x->end && *x->p >= '0' && *x->p <= '9';
}

static json_t *number(struct parser *x)
{
	const char *b = x->p;
	bool real = false;
	if (*x->p == '-')
		x->p++;
	if (!digit(x))
		return fail(x, "invalid number"), NULL;
	if (*x->p++ == '0' && digit(x))
		return fail(x, "invalid number"), NULL;
	while (digit(x))
		x->p++;
	if (x->p < x->end && *x->p == '.') {
		real = true;
		x->p++;
		if (!digit(x))
			return fail(x, "invalid number"), NULL;
		while (digit(x))
			x->p++;
	}
	if (x->p < x->end && (*x->p == 'e' || *x->p == 'E')) {
		real = true;
		x->p++;
		if (x->p < x->end && (*x->p == '+' || *x->p == '-'))
			x->p++;
		if (!digit(x))
			return fail(x, "invalid number"), NULL;
		while (digit(x))
			x->p++;
	}
	char tmp[64], *text = tmp, *end;
	size_t n = (size_t)(x->p - b);
	if (n >= sizeof(tmp) && !(text = malloc(n + 1)))
		return fail(x, "out of memory"), NULL;
	memcpy(text, b, n);
	text[n] = 0;
	json_t *v = NULL;
	errno = 0;
	if (!real) {
		long long i = strtoll(text, &end, 10);
		if (errno == ERANGE)
			fail(x, "too big integer");
		else
			v = json_integer((json_int_t)i);
	} else {
		double d = strtod(text, &end);
		if (errno == ERANGE && (d > 1.0 || d < -1.0))
			fail(x, "real number overflow");
		else
			v = json_real(d);
	}
	if (text != tmp)
		free(text);
	return v;
}

static json_t *object(struct parser *x)
{
	json_t *o = json_object();
	if (!o)
		return fail(x, "out of memory"), NULL;
	x->p++;
	skip_ws(x);
	if (x->p < x->end && *x->p == '}') {
		x->p++;
		return o;
	}
	for (;;) {
		const char *k;
		size_t klen;
		skip_ws(x);
		if (x->p == x->end || *x->p != '"' || !string(x, &k, &klen)) {
			fail(x, "string or '}' expected");
			break;
		}
		/* The key may sit in x->esc, which the value's strings reuse. */
		char kbuf[128], *key = kbuf;
		if (k == x->esc.data) {
			if (klen >= sizeof(kbuf) && !(key = malloc(klen + 1)))
				break;
			memcpy(key, k, klen);
			k = key;
		}
		skip_ws(x);
		json_t *v = NULL;
		if (x->p < x->end && *x->p == ':') {
			x->p++;
			v = value(x);
		} else {
			fail(x, "':' expected");
		}
		int rc = v ? json_object_setn_new_nocheck(o, k, klen, v) : -1;
		if (key != kbuf)
			free(key);
		if (rc < 0)
			break;
		skip_ws(x);
		if (x->p < x->end && *x->p == ',') {
			x->p++;
			continue;
		}
		if (x->p < x->end && *x->p == '}') {
			x->p++;
			return o;
		}
		fail(x, "',' or '}' expected");
		break;
	}
	json_decref(o);
	return NULL;
}

static json_t *array(struct parser *x)
{
	json_t *a = json_array();
	if (!a)
		return fail(x, "out of memory"), NULL;
	x->p++;
	skip_ws(x);
	if (x->p < x->end && *x->p == ']') {
		x->p++;
		return a;
	}
	for (;;) {
		json_t *v = value(x);
		if (!v || json_array_append_new(a, v) < 0)
			break;
		skip_ws(x);
		if (x->p < x->end && *x->p == ',') {
			x->p++;
			continue;
		}
		if (x->p < x->end && *x->p == ']') {
			x->p++;
			return a;
		}
		fail(x, "',' or ']' expected");
		break;
	}
	json_decref(a);
	return NULL;
}

static json_t *word(struct parser *x, const char *w, size_t n, json_t *v)
{
	if ((size_t)(x->end - x->p) < n || memcmp(x->p, w, n) != 0)
		return fail(x, "invalid token"), NULL;
	x->p += n;
	return v;
}

static json_t *value(struct parser *x)
{
	skip_ws(x);
	if (x->p == x->end)
		return fail(x, "unexpected end of input"), NULL;
	switch (*x->p) {
	case '{':
	case '[': {
		if (++x->depth > JSONR_DEPTH_MAX)
			return fail(x, "maximum parsing depth reached"), NULL;
		json_t *v = *x->p == '{' ? object(x) : array(x);
		x->depth--;
		return v;
	}
	case '"': {
		const char *s;
		size_t n;
		if (!string(x, &s, &n))
			return NULL;
		json_t *v = json_stringn_nocheck(s, n);
		return v ? v : (fail(x, "out of memory"), NULL);
	}
	case 't':
		return word(x, "true", 4, json_true());
	case 'f':
		return word(x, "false", 5, json_false());
	case 'n':
		return word(x, "null", 4, json_null());
	default:
		if (*x->p == '-' || (*x->p >= '0' && *x->p <= '9'))
			return number(x);
		return fail(x, "invalid token"), NULL;
	}
}

json_t *jsonr_loadb(const char *buf, size_t len, json_error_t *err)
{
	struct parser x = { .p = buf, .end = buf + len, .start = buf, .err = err };
	buf_init(&x.esc, len + 8); /* a decoded string is never longer than its text */
	json_t *v = NULL;
	if (err)
		err->text[0] = 0;
	skip_ws(&x);
	if (x.p == x.end || (*x.p != '{' && *x.p != '['))
		fail(&x, "'[' or '{' expected");
	else if ((v = value(&x))) {
		skip_ws(&x);
		if (x.p != x.end) {
			fail(&x, "end of file expected");
			json_decref(v);
			v = NULL;
		}
	}
	buf_free(&x.esc);
	return v;
}
