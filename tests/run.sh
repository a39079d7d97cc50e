#!/bin/sh
# run.sh - every test: the unit tests, the golden config tests, the integration tests.
# Each suite ends with a line "N passed, M failed"; this script adds them up and prints
# the total the same way.  Environment: BUILD (default build), PY (default /usr/bin/python3),
# TESTS (a pattern to run only some suites, e.g. TESTS=store).
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
TESTS=${TESTS:-}
export BUILD PY
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
# Tests see no journal unless they start one, and never a systemd they did not ask for.
unset NOTIFY_SOCKET WATCHDOG_USEC CREDENTIALS_DIRECTORY LISTEN_FDS LISTEN_PID

log=$(mktemp -d "${TMPDIR:-/tmp}/kleep-tests-XXXXXX")
trap 'rm -rf "$log"' EXIT
passed=0 failed=0 broken=""

# Run one suite; its output goes to the terminal and is scanned for its counts.
suite() {
	name=$1; shift
	case "$name" in *"$TESTS"*) ;; *) return ;; esac
	echo "=== $name"
	"$@" >"$log/out" 2>&1
	rc=$?
	cat "$log/out"
	p=$(sed -n 's/^.*\[  PASSED  \] \([0-9]*\) test.*/\1/p; s/^\([0-9][0-9]*\) passed, [0-9]* failed.*/\1/p' "$log/out" | tail -n 1)
	f=$(sed -n 's/^.*\[  FAILED  \] \([0-9]*\) test(s), listed.*/\1/p; s/^[0-9][0-9]* passed, \([0-9]*\) failed.*/\1/p' "$log/out" | tail -n 1)
	p=${p:-0} f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1  # a crash or an exit code without counts still fails
	fi
	passed=$((passed + p)) failed=$((failed + f))
	[ "$f" -eq 0 ] || broken="$broken $name"
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] && suite "unit/${t##*/}" "$t"
done
# Each fuzz target replays its corpus: the inputs that found bugs, and the seeds.
for t in "$BUILD"/tests/fuzz_*; do
	[ -x "$t" ] && suite "fuzz-corpus/${t##*/}" "$t" "tests/fuzz/corpus/${t##*/}"
done
[ -f tests/config/run.sh ] && suite "config" sh tests/config/run.sh "$BUILD/kleepd"
for t in tests/integration/test_*.py; do
	[ -f "$t" ] && suite "integration/${t##*/}" "$PY" "$t"
done
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] && suite "integration/${t##*/}" sh "$t"
done

echo
[ -z "$broken" ] || echo "failing suites:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
