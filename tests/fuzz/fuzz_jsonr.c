/* fuzz_jsonr.c - libFuzzer target: the reply parser and the record writer against jansson.
 * Any bytes as a reply body: jsonr_loadb accepts exactly what json_loadb(..., 0, ...) accepts
 * and builds the same tree (values, types, key order); the record writer writes byte for
 * byte what json_dumpb(JSON_COMPACT | JSON_ENCODE_ANY) writes for it.  Both were written
 * for speed (a word at a time through strings), so jansson is the oracle.  One difference is
 * meant (jsonr.h): jansson skips a NUL byte straight after a number or a literal, which jsonr
 * refuses; such an input must then read, with its NUL bytes taken out, as jansson read it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonr.h"
#include "jsonw.h"

static void differ(const char *what, const uint8_t *data, size_t size)
{
	fprintf(stderr, "fuzz_jsonr: %s on %zu bytes: \"%.*s\"\n", what, size,
		(int)(size > 300 ? 300 : size), (const char *)data);
	abort();
}

/*
 * jansson's stream takes a NUL byte for "nothing buffered", so the one it puts back after a
 * number or a literal is never read again.  Any other NUL byte it refuses: when it accepted
 * data, every NUL byte of data was one of those.  jsonr's tree of data without them.
 */
static json_t *without_nul(const uint8_t *data, size_t size, json_error_t *err)
{
	char *clean = malloc(size);
	if (!clean)
		abort();
	size_t n = 0;
	for (size_t i = 0; i < size; i++)
		if (data[i])
			clean[n++] = (char)data[i];
	json_t *v = jsonr_loadb(clean, n, err);
	free(clean);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t e1, e2;
	json_t *want = json_loadb((const char *)data, size, 0, &e1);
	json_t *got = jsonr_loadb((const char *)data, size, &e2);

	if (want && memchr(data, 0, size)) {
		if (got)
			differ("jsonr accepts a NUL byte", data, size);
		got = without_nul(data, size, &e2);
	}
	if (!want != !got)
		differ(want ? "jansson accepts, jsonr refuses" : "jansson refuses, jsonr accepts",
		       data, size);
	if (!got) {
		if (e2.text[0] == 0)
			differ("refused without a reason", data, size);
		return 0;
	}
	char *a = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
	char *b = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!a || !b)
		abort(); /* out of memory in the fuzzer: not a finding to keep */
	if (strcmp(a, b) != 0 || !json_equal(want, got))
		differ("the trees differ", data, size);

	struct buf w;
	buf_init(&w, 1u << 26);
	const char *text = jsonw_compact(&w, got);
	if (!text || strcmp(text, a) != 0)
		differ("jsonw_compact differs from json_dumps", data, size);
	buf_free(&w);
	free(a);
	free(b);
	json_decref(want);
	json_decref(got);
	return 0;
}
