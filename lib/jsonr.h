/* jsonr.h - parse a reply body into a jansson value, as json_loadb(..., 0, ...) does, faster. */
#ifndef KLEEP_JSONR_H
#define KLEEP_JSONR_H

#include <stddef.h>

#include <jansson.h>

/*
 * The JSON text buf (len bytes) as a new jansson value (the caller owns the
 * reference), or NULL with err filled (err may be NULL).  It accepts and
 * rejects what json_loadb(buf, len, 0, err) does: an object or an array at
 * the top, strict UTF-8, no \u0000, integers that fit json_int_t, reals that
 * do not overflow, nesting up to 2048, nothing but white space after the
 * value; a repeated key keeps its place and takes the later value.  It
 * builds the same tree, in the same key order.  One difference, on purpose:
 * a NUL byte straight after a number or a literal, which jansson skips
 * ("[1\0]" reads as [1]: its stream takes the byte it puts back for an empty
 * buffer), is refused like any other NUL byte outside a string.
 */
json_t *jsonr_loadb(const char *buf, size_t len, json_error_t *err);

#endif
