#!/bin/sh
# run.sh - `make check-tsan`: the unit tests and the daemon and control-socket integration
# tests against a ThreadSanitizer build (BUILD, default build/tsan).  Every report goes to
# a file; any report fails the check, whatever the suites said.  Suppressions are for
# third-party code only, each with its reason (tests/tsan/suppressions.txt).
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build/tsan}
PY=${PY:-/usr/bin/python3}
reports=$(mktemp -d "${TMPDIR:-/tmp}/kleep-tsan-XXXXXX")
trap 'rm -rf "$reports"' EXIT
TSAN_OPTIONS="log_path=$reports/tsan second_deadlock_stack=1 suppressions=$PWD/tests/tsan/suppressions.txt"
export TSAN_OPTIONS BUILD PY
rc=0
for suite in unit/ integration/test_daemon integration/test_ctl integration/test_runtime; do
	TESTS=$suite sh tests/run.sh || rc=1
done
if [ -n "$(ls -A "$reports")" ]; then
	echo "check-tsan: ThreadSanitizer reports:"
	cat "$reports"/*
	rc=1
fi
[ "$rc" -eq 0 ] && echo "check-tsan: no ThreadSanitizer report"
exit $rc
