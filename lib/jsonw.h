/* jsonw.h - compact JSON text of a jansson value, byte for byte what json_dumpb(JSON_COMPACT) writes. */
#ifndef KLEEP_JSONW_H
#define KLEEP_JSONW_H

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

#endif
