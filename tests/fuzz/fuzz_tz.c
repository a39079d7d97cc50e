/* fuzz_tz.c - libFuzzer target: any bytes as a zone file must load or be refused with a
 * reason, never crash or leak; a zone that loads answers every lookup, and a wall time read
 * back from an instant shows that wall time again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tstamp.h"
#include "tz.h"

static char dir[] = "/tmp/kleep-fuzz-tz-XXXXXX", path[sizeof(dir) + 2];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

/* One folder for the run, as TZDIR: the fuzzer is single-threaded, setenv is fine here. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (!mkdtemp(dir))
		abort();
	setenv("TZDIR", dir, 1);
	snprintf(path, sizeof(path), "%s/Z", dir);
	atexit(cleanup);
	return 0;
}

static void lookups(const struct tz *z, int64_t t)
{
	struct tz_local l;
	tz_at(z, t, &l);
	if (l.utoff < -26 * 3600 || l.utoff > 26 * 3600 || !l.abbr)
		abort();
	/* the instant's own wall time comes back to an instant with that wall time */
	int64_t wall = t + l.utoff, u = tz_from_wall(z, wall);
	tz_at(z, u, &l);
	if (u + l.utoff != wall)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	struct tz *z;
	char err[512] = "";
	if (tz_load("Z", &z, err, sizeof(err)) < 0) {
		if (!err[0] || z)
			abort();
		return 0;
	}
	static const int64_t at[] = { INT64_MIN, -4000000000000LL, -2208988800LL, 0, 1000000000,
				      1774746000, 2145916800, 4102444800LL, 253402300799LL, INT64_MAX };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		struct tz_local l;
		tz_at(z, at[i], &l);
	}
	for (int64_t t = -2300000000LL; t < 7000000000LL; t += 86400 * 61 + 3607)
		lookups(z, t);
	tz_free(z);
	return 0;
}
