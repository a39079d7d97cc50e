/* stream.c - stream names. */
#include <string.h>

#include "stream.h"

static const char *const stream_names[STREAM_COUNT] = {
	[STREAM_PRODUCTS] = "products",
	[STREAM_SIZES] = "sizes",
	[STREAM_DEPARTMENTS] = "departments",
	[STREAM_ATTRIBUTES] = "attributes",
	[STREAM_ORDERS] = "orders",
	[STREAM_RETURNS] = "returns",
	[STREAM_RETURN_REASONS] = "return_reasons",
	[STREAM_SFTP] = "sftp",
};

const char *stream_name(enum stream s)
{
	if ((unsigned)s >= STREAM_COUNT)
		return "?";
	return stream_names[s];
}

int stream_from_name(const char *s)
{
	for (int i = 0; i < STREAM_COUNT; i++)
		if (strcmp(stream_names[i], s) == 0)
			return i;
	return -1;
}
