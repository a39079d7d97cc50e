/* utf8.h - strict UTF-8 (RFC 3629): no overlong form, no surrogate, nothing past U+10FFFF. */
#ifndef KLEEP_UTF8_H
#define KLEEP_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the valid sequence starting s, which has n >= 1 bytes; 0 when there is none. */
size_t utf8_seq(const char *s, size_t n);

/* Whether s (n bytes) is nothing but the start of a valid sequence that its end cut. */
bool utf8_cut(const char *s, size_t n);

/* Whether s (n bytes) is valid UTF-8 throughout (U+0000 included). */
bool utf8_valid(const char *s, size_t n);

#endif
