#!/bin/sh
# run.sh - `make fuzz`: link every tests/fuzz/fuzz_*.c with libFuzzer + ASan + UBSan against the
# library built instrumented (FUZZ_LIB, which `make fuzz` builds first), and run each for
# FUZZ_SECONDS (default 60).  A finding fails the run and leaves its input in
# build/fuzz/<target>/ for a reproducer: build/fuzz/<target>.bin FILE, or the plain replay
# program `make` builds, $BUILD/tests/<target> FILE.  Worth keeping: copy it into
# tests/fuzz/corpus/<target>/, which `make check` replays.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
FUZZ_LIB=${FUZZ_LIB:-build/fuzz-lib}
SECONDS_EACH=${FUZZ_SECONDS:-60}
CC=${FUZZ_CC:-clang}
out=$BUILD/fuzz
PKGS="libcurl jansson libssh2 sqlite3 libsystemd inih libcrypto"
if [ ! -f "$FUZZ_LIB/libkleep.a" ]; then
	echo "run.sh: $FUZZ_LIB/libkleep.a is not built: run 'make fuzz'"
	exit 1
fi
mkdir -p "$out"
status=0
for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	echo "=== $name: building"
	# shellcheck disable=SC2046,SC2086  # PKGS is a list of names, pkg-config's answer of flags
	$CC -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all -Ilib -I"$FUZZ_LIB/gen" $(pkg-config --cflags $PKGS) \
		-o "$out/$name.bin" "$src" "$FUZZ_LIB/libkleep.a" \
		$(pkg-config --libs $PKGS) -lcsv -lpthread -lm
	mkdir -p "$out/$name" "$out/$name.corpus"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -n tests/fuzz/corpus/"$name"/* "$out/$name.corpus/" 2>/dev/null || true
	fi
	echo "=== $name: fuzzing for ${SECONDS_EACH}s"
	if ! "$out/$name.bin" -max_total_time="$SECONDS_EACH" -artifact_prefix="$out/$name/" \
		-max_len=70000 -print_final_stats=1 "$out/$name.corpus" >"$out/$name.log" 2>&1; then
		tail -n 40 "$out/$name.log"
		echo "=== $name: FINDING (inputs in $out/$name/)"
		status=1
	else
		grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$out/$name.log" | tail -n 2
		echo "=== $name: no finding"
	fi
done
exit $status
