/* jsonw.h - compact JSON text of a jansson value, byte for byte what json_dumpb(JSON_COMPACT) writes. */
#ifndef KLEEP_JSONW_H
#define KLEEP_JSONW_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/*
 * A growable text buffer with a hard cap.  Zero-initialise it; the buffer
 * (p) is owned by the struct, kept between uses (jsonw_compact starts it
 * empty) and freed by jsonw_free.
 */
struct jsonw {
	char *p;
	size_t len, cap;
	size_t max; /* bytes, NUL included; 0 means JSONW_MAX */
};

#define JSONW_MAX (64u << 20) /* bytes: above any page body wshop accepts */

/*
 * v as compact JSON, keys in the object's order, into w (NUL-terminated, w->len
 * bytes): the same text as json_dumpb(v, JSON_COMPACT | JSON_ENCODE_ANY), at a
 * fraction of its cost (it runs for every record of every page).  Returns
 * w->p, valid until the next use of w; NULL when out of memory, past the cap,
 * or v holds a value jansson would not write.
 */
const char *jsonw_compact(struct jsonw *w, const json_t *v);

/* Room for need bytes in all (the buffer grows, up to its cap); false when out of memory or past the cap. */
bool jsonw_reserve(struct jsonw *w, size_t need);

void jsonw_free(struct jsonw *w);

#endif
