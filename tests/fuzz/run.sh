#!/bin/sh
# run.sh - `make fuzz`: build every tests/fuzz/fuzz_*.c with libFuzzer + ASan + UBSan and run
# each for FUZZ_SECONDS (default 60).  A finding fails the run and leaves its input in
# build/fuzz/<target>/ for a reproducer: build/fuzz/<target>.bin FILE.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SECONDS_EACH=${FUZZ_SECONDS:-60}
out=$BUILD/fuzz
mkdir -p "$out"
CC=${FUZZ_CC:-clang}
LIBS="$(pkg-config --cflags --libs libcurl jansson libssh2 sqlite3 libsystemd inih libcrypto) -lcsv -lpthread -lm"

fuzz_cc() {  # $1 the fuzzer to build, then its sources
	bin=$1; shift
	# shellcheck disable=SC2086  # CC may carry options; LIBS is pkg-config's list of flags
	$CC -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Ilib -I"$out/gen" -DKLEEP_VERSION='"fuzz"' -DKLEEP_DATADIR='"/nonexistent"' \
		-DKLEEP_SYSCONFDIR='"/nonexistent"' -o "$bin" "$@" $LIBS
}
mkdir -p "$out/gen"
sh sql/embed.sh "$out/gen/migrations" sql/[0-9][0-9][0-9]_*.sql
status=0
for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	echo "=== $name: building"
	# The fuzzer links the library sources directly: libFuzzer needs them instrumented
	# too.  A target names the ones it needs on a "fuzz-sources:" line.
	srcs=$(sed -n 's/.*fuzz-sources: *\(.*\)\*\/.*/\1/p' "$src")
	# shellcheck disable=SC2086  # srcs is a list of files
	fuzz_cc "$out/$name.bin" "$src" ${srcs:-lib/*.c} "$out/gen/migrations.c"
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
