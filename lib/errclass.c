/* errclass.c - the names of the failure classes, in one table. */
#include <stddef.h>

#include "errclass.h"

static const char *const names[] = {
	[ERRC_NONE] = NULL,
	[ERRC_CONFIG] = "config",
	[ERRC_AUTH] = "auth",
	[ERRC_UNAUTHORIZED] = "unauthorized",
	[ERRC_TRANSIENT] = "transient",
	[ERRC_BAD_REPLY] = "bad_reply",
	[ERRC_STORAGE] = "storage",
	[ERRC_STOPPED] = "stopped",
};

const char *errclass_name(enum errclass c)
{
	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : NULL;
}
