/* buf.c - a growable byte buffer with a hard size cap (after curl's dynbuf). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define BUF_FIRST_SIZE 256 /* bytes of the first allocation; doubles from there */

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->size = 0;
	b->max = max;
}

/* Make room for n more bytes and the NUL, within max. */
static int buf_grow(struct buf *b, size_t n)
{
	if (n > b->max - b->len)
		return -EMSGSIZE;
	size_t need = b->len + n + 1;
	if (need <= b->size)
		return 0;
	size_t size = b->size ? b->size : BUF_FIRST_SIZE;
	while (size < need)
		size = size > SIZE_MAX / 2 ? need : size * 2;
	/* Never allocate much past what max allows. */
	if (b->max < SIZE_MAX && size > b->max + 1)
		size = b->max + 1;
	char *d = realloc(b->data, size);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->size = size;
	return 0;
}

int buf_reserve(struct buf *b, size_t n)
{
	return buf_grow(b, n);
}

int buf_add_grow(struct buf *b, const void *p, size_t n)
{
	int r = buf_grow(b, n);
	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = 0;
}

void buf_wipe(struct buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->len);
	buf_reset(b);
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}
