/* utf8.c - strict UTF-8 checks, after the well-formed byte sequences of Unicode's table 3-7.
 *
 * The second byte's range depends on the first: that is what keeps out
 * overlong forms (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code
 * points past U+10FFFF (F4 90..BF, F5..FF).
 */
#include <stdint.h>
#include <string.h>

#include "utf8.h"

/*
 * How many bytes of s (n of them) follow a valid sequence, up to its length
 * *len; *len is 0 when s[0] starts none.
 */
static size_t match(const unsigned char *s, size_t n, size_t *len)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t k;

	*len = c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	for (k = 1; k < *len && k < n; k++) {
		if (s[k] < lo || s[k] > hi)
			break;
		lo = 0x80, hi = 0xBF;
	}
	return *len ? k : 0;
}

size_t utf8_seq(const char *s, size_t n)
{
	size_t len, k = match((const unsigned char *)s, n, &len);
	return k == len ? len : 0;
}

bool utf8_cut(const char *s, size_t n)
{
	size_t len, k = match((const unsigned char *)s, n, &len);
	return n > 0 && k == n && n < len;
}

bool utf8_valid(const char *s, size_t n)
{
	size_t i = 0, k;
	while (i < n) {
		/* Most text is ASCII: pass it eight bytes at a time. */
		uint64_t w;
		while (n - i >= 8 && (memcpy(&w, s + i, sizeof(w)), !(w & UINT64_C(0x8080808080808080))))
			i += 8;
		if (i == n)
			break;
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		if (!(k = utf8_seq(s + i, n - i)))
			return false;
		i += k;
	}
	return true;
}
