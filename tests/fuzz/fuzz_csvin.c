/* fuzz_csvin.c - libFuzzer target: any bytes as a gap-fill CSV file must be applied, rejected
 * or refused, never crash, leak or leave a transaction open.  The first byte picks the kind
 * and the reject ratio; the rest is the file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csvin.h"
#include "store.h"
#include "tz.h"

#define FUZZ_REOPEN_EVERY 5000 /* runs between fresh in-memory mirrors, so it does not grow forever */

static struct store *st;
static unsigned runs;
static struct tz *paris; /* loaded once, as the config would */

/* A fresh in-memory mirror now and then; the last one lives until exit. */
static struct store *mirror(void)
{
	char err[256];
	if (st && runs++ % FUZZ_REOPEN_EVERY != 0)
		return st;
	store_close(st);
	st = NULL;
	if (store_open(":memory:", &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_csvin: %s\n", err);
		abort();
	}
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const double ratios[] = { 0, 0.05, 1 };
	struct merchant_conf m;
	struct csvin_result res;

	if (size < 1)
		return 0;
	memset(&m, 0, sizeof(m));
	m.timezone = "Europe/Paris";
	if (!paris && tz_load(m.timezone, &paris, (char[256]){ 0 }, 256) < 0)
		abort();
	m.tz = paris;
	memcpy(m.languages[0], "fr", 3);
	memcpy(m.languages[1], "en", 3);
	m.n_languages = 2;
	m.has_sftp = true;
	m.sftp.max_reject_ratio = ratios[(data[0] / CSVIN_KIND_COUNT) % 3];

	/* fmemopen wants a writable buffer of at least one byte */
	size_t n = size - 1;
	char *copy = malloc(n ? n : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, n);
	FILE *f = n ? fmemopen(copy, n, "r") : fopen("/dev/null", "r");
	if (!f) {
		free(copy);
		return 0;
	}
	struct csvin_opts o = {
		.kind = (enum csvin_kind)(data[0] % CSVIN_KIND_COUNT),
		.path = "fuzz/fuzz_2025-01-15T02-00-00.csv",
		.file_time = "2025-01-15T01:00:00Z",
		.m = &m,
		.run_id = 1,
	};
	struct store *s = mirror();
	int r = csvin_apply(s, &o, f, &res);
	fclose(f);
	free(copy);
	/* every path ends its transaction */
	if (!sqlite3_get_autocommit(store_db(s)))
		abort();
	if (r == 0 && res.outcome != CSVIN_REJECTED && res.applied + res.rejects != res.rows)
		abort();
	if (r == 0 && res.outcome == CSVIN_REJECTED && res.applied != 0)
		abort();
	return 0;
}
