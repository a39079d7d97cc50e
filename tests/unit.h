/* unit.h - what every cmocka unit test includes, plus a scratch folder helper. */
#ifndef KLEEP_UNIT_H
#define KLEEP_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* A fresh folder under $TMPDIR (or /tmp) for one test; removed by unit_rmtree. */
static inline char *unit_tmpdir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *dir;
	if (asprintf(&dir, "%s/kleep-unit-XXXXXX", base) < 0 || !mkdtemp(dir))
		fail_msg("cannot make a temporary folder");
	return dir;
}

static inline void unit_rmtree(char *dir)
{
	char *cmd;
	if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0) {
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
		free(cmd);
	}
	free(dir);
}

#endif
