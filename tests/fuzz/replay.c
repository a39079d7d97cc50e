/* replay.c - a fuzz target without libFuzzer: every file of the folders (or files) named on
 * the command line goes through LLVMFuzzerTestOneInput once, in name order.
 *
 * `make` links each tests/fuzz/fuzz_*.c with this driver and the library as
 * $(BUILD)/tests/fuzz_*, and the tests replay each target's corpus (tests/fuzz/corpus/),
 * under the sanitizers in check-asan: a target that no longer builds, or an input that
 * once found a bug, fails `make check`.  `make fuzz` runs the same targets under libFuzzer.
 * A target's own checks abort on a finding; this prints "N passed, 0 failed" otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int passed;

/* One input, in a buffer of exactly its size: ASan then sees a read past it. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat sb;
	if (!f || fstat(fileno(f), &sb) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	size_t n = (size_t)sb.st_size;
	uint8_t *data = malloc(n ? n : 1);
	int bad = !data || fread(data, 1, n, f) != n;
	fclose(f);
	if (bad) {
		fprintf(stderr, "replay: %s: cannot read it whole\n", path);
		free(data);
		return -1;
	}
	printf("replay %s (%zu bytes)\n", path, n);
	fflush(stdout);
	LLVMFuzzerTestOneInput(data, n);
	free(data);
	passed++;
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay_dir(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, by_name), r = 0;
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat sb;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    replay_file(path) < 0)
			r = -1;
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	int failed = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS-FOLDER-OR-FILE...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat sb;
		int r = stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode) ? replay_dir(argv[i])
								       : replay_file(argv[i]);
		failed += r < 0;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
