/* buf.h - a growable byte buffer with a hard size cap (after curl's dynbuf). */
#ifndef KLEEP_BUF_H
#define KLEEP_BUF_H

#include <stddef.h>
#include <string.h>

/*
 * Bytes that grow by doubling up to max.  data is NUL-terminated whenever it
 * is non-NULL, so text can be read in place; the NUL is not counted in len
 * nor in max.  Owned by whoever holds the struct: buf_free() releases it.
 */
struct buf {
	char *data;   /* NULL until the first byte is added */
	size_t len;   /* bytes held */
	size_t size;  /* bytes allocated (len + 1 at least once data is set) */
	size_t max;   /* hard cap on len, set by buf_init */
};

/* An empty buffer that will never hold more than max bytes. */
void buf_init(struct buf *b, size_t max);

/* buf_add when the bytes do not fit as the buffer is: grows it, or refuses. */
int buf_add_grow(struct buf *b, const void *p, size_t n);

/*
 * Append n bytes.  0 on success; -EMSGSIZE when len + n would pass max, and
 * -ENOMEM when memory runs out: on either error b is left as it was.  Inline
 * when they fit: the JSON and CSV writers append a few bytes at a time.
 */
static inline int buf_add(struct buf *b, const void *p, size_t n)
{
	if (n >= b->size - b->len || n > b->max - b->len) /* size - len >= 1 once data is set */
		return buf_add_grow(b, p, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

/*
 * Room for n more bytes past len and the NUL, for a writer that fills data
 * itself (then sets len); as buf_add's errors.
 */
int buf_reserve(struct buf *b, size_t n);

/* Append a NUL-terminated string; as buf_add. */
int buf_addstr(struct buf *b, const char *s);

/* The text held, "" when empty; valid until the next change of b. */
const char *buf_str(const struct buf *b);

/* Forget the bytes but keep the memory for reuse (len 0, data stays terminated). */
void buf_reset(struct buf *b);

/* Zero the bytes held (they were a secret), then buf_reset. */
void buf_wipe(struct buf *b);

/* Release the memory; b is empty again with the same max. */
void buf_free(struct buf *b);

#endif
