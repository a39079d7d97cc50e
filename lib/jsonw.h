/* jsonw.h - compact JSON text of a jansson value, byte for byte what json_dumpb(JSON_COMPACT) writes. */
#ifndef KLEEP_JSONW_H
#define KLEEP_JSONW_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"

/*
 * v as compact JSON, keys in the object's order, into b (emptied first; its
 * cap holds): the same text as json_dumpb(v, JSON_COMPACT | JSON_ENCODE_ANY),
 * at a fraction of its cost (it runs for every record of every page).
 * Returns b's text, valid until the next change of b; NULL when out of
 * memory, past b's cap, or v holds a value jansson would not write.
 */
const char *jsonw_compact(struct buf *b, const json_t *v);

/*
 * Append s (n bytes of valid UTF-8) to b as a JSON string literal, escaped as
 * jansson escapes it.  false when out of memory or past b's cap.  The CSV row
 * writer builds its records' text with it too.
 */
bool jsonw_string(struct buf *b, const char *s, size_t n);

#endif
