/* jsonstr.h - where a JSON string's plain bytes end, eight bytes at a time.
 *
 * A 64-bit word holds a stop byte when one of its bytes equals '"' or '\\'
 * or is below 0x20.  The classic zero-byte test (v - 0x01..) & ~v & 0x80..
 * is non-zero exactly when some byte of v is zero; x ^ '"'.. turns the
 * quotes into zeros, and (x - 0x20..) & ~x & 0x80.. flags bytes below 0x20
 * the same way.  A flagged word is then walked byte by byte, which finds the
 * first stop exactly (the tests' borrows can only flag bytes after a true one).
 * Inline: the reader and the writers call it for every string, most of them short.
 */
#ifndef KLEEP_JSONSTR_H
#define KLEEP_JSONSTR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define JSONSTR_ONES UINT64_C(0x0101010101010101)
#define JSONSTR_HIGHS UINT64_C(0x8080808080808080)

static inline uint64_t jsonstr_below(uint64_t w, unsigned char b)
{
	return (w - JSONSTR_ONES * b) & ~w & JSONSTR_HIGHS;
}

/*
 * How many bytes of s (n of them) come before the first one a JSON string
 * cannot hold as it is: '"', '\\' or a control character (below 0x20); n
 * when there is none.  Every byte passed over is OR-ed into *high, so that
 * (*high & 0x80) says whether any was not ASCII.  The reader, the record
 * writer and the CSV row writer all scan their strings with it.
 */
static inline size_t jsonstr_plain(const char *s, size_t n, unsigned char *high)
{
	size_t i = 0;
	uint64_t seen = 0;
	for (; n - i >= 8; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, sizeof(w));
		if (jsonstr_below(w ^ (JSONSTR_ONES * '"'), 1) |
		    jsonstr_below(w ^ (JSONSTR_ONES * '\\'), 1) | jsonstr_below(w, 0x20))
			break;
		seen |= w;
	}
	unsigned char h = (seen & JSONSTR_HIGHS) ? 0x80 : 0;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == '"' || c == '\\')
			break;
		h |= c;
	}
	*high |= h;
	return i;
}

#endif
