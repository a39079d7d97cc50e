/* jsonw.c - compact JSON text of a jansson value, the same bytes as jansson's own writer.
 *
 * jansson's json_dumpb walks a value through a callback per piece and decodes
 * every string one code point at a time; the raw layer stores each record's
 * text, so that walk was a tenth of a sync's CPU.  Strings held by jansson
 * are valid UTF-8 (its parser and setters check), so bytes from 0x20 up are
 * copied as they are, and only what jansson escapes is escaped, the same way.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "jsonstr.h"
#include "jsonw.h"

#define JSONW_DEPTH_MAX 2048 /* jansson refuses to parse deeper than this */

/* Room for n more bytes and the NUL. */
static inline bool room(struct buf *w, size_t n)
{
	return w->len + n < w->size || buf_reserve(w, n) == 0;
}

static inline bool put(struct buf *w, const char *s, size_t n)
{
	if (!room(w, n))
		return false;
	memcpy(w->data + w->len, s, n);
	w->len += n;
	return true;
}

static inline bool putc_(struct buf *w, char c)
{
	if (!room(w, 1))
		return false;
	w->data[w->len++] = c;
	return true;
}

/* jansson's escapes: the two-character forms, else \u00XX in upper-case hex. */
static bool put_escape(struct buf *w, unsigned char c)
{
	static const char hexd[] = "0123456789ABCDEF";
	char e[6] = { '\\', 0 };
	size_t n = 2;
	switch (c) {
	case '\\': e[1] = '\\'; break;
	case '"': e[1] = '"'; break;
	case '\b': e[1] = 'b'; break;
	case '\f': e[1] = 'f'; break;
	case '\n': e[1] = 'n'; break;
	case '\r': e[1] = 'r'; break;
	case '\t': e[1] = 't'; break;
	default:
		memcpy(e + 1, "u00", 3);
		e[4] = hexd[c >> 4];
		e[5] = hexd[c & 15];
		n = 6;
	}
	return put(w, e, n);
}

static bool put_string(struct buf *w, const char *s, size_t n)
{
	/* Most strings need no escape: one room check for the lot. */
	if (!room(w, n + 2))
		return false;
	w->data[w->len++] = '"';
	unsigned char high = 0;
	for (size_t i = 0;;) {
		size_t run = jsonstr_plain(s + i, n - i, &high);
		if (!put(w, s + i, run))
			return false;
		i += run;
		if (i == n)
			return putc_(w, '"');
		if (!put_escape(w, (unsigned char)s[i++]))
			return false;
	}
}

bool jsonw_string(struct buf *b, const char *s, size_t n)
{
	if (!put_string(b, s, n))
		return false;
	b->data[b->len] = 0; /* room() keeps a byte for it; buf's text stays terminated */
	return true;
}

static bool put_integer(struct buf *w, json_int_t v)
{
	char tmp[24];
	size_t len = 0;
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	do {
		tmp[sizeof(tmp) - ++len] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[sizeof(tmp) - ++len] = '-';
	return put(w, tmp + sizeof(tmp) - len, len);
}

/* Reals are rare in a shop's records: jansson's own text, exactly. */
static bool put_real(struct buf *w, const json_t *v)
{
	char b[64];
	size_t n = json_dumpb(v, b, sizeof(b), JSON_ENCODE_ANY | JSON_COMPACT);
	return n > 0 && n <= sizeof(b) && put(w, b, n);
}

static bool put_value(struct buf *w, const json_t *v, int depth)
{
	if (depth > JSONW_DEPTH_MAX)
		return false;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		/* The iterator takes a non-const object; it does not change it. */
		json_t *o = (json_t *)v;
		bool first = true;
		if (!putc_(w, '{'))
			return false;
		for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
			if ((!first && !putc_(w, ',')) ||
			    !put_string(w, json_object_iter_key(it), json_object_iter_key_len(it)) ||
			    !putc_(w, ':') || !put_value(w, json_object_iter_value(it), depth + 1))
				return false;
			first = false;
		}
		return putc_(w, '}');
	}
	case JSON_ARRAY: {
		size_t i, n = json_array_size(v);
		if (!putc_(w, '['))
			return false;
		for (i = 0; i < n; i++) {
			if ((i && !putc_(w, ',')) || !put_value(w, json_array_get(v, i), depth + 1))
				return false;
		}
		return putc_(w, ']');
	}
	case JSON_STRING:
		return put_string(w, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return put_integer(w, json_integer_value(v));
	case JSON_REAL:
		return put_real(w, v);
	case JSON_TRUE:
		return put(w, "true", 4);
	case JSON_FALSE:
		return put(w, "false", 5);
	case JSON_NULL:
		return put(w, "null", 4);
	}
	return false;
}

const char *jsonw_compact(struct buf *w, const json_t *v)
{
	buf_reset(w);
	if (!v || !put_value(w, v, 0) || !room(w, 0)) {
		buf_reset(w);
		return NULL;
	}
	w->data[w->len] = 0;
	return w->data;
}
