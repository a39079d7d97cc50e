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
supp=$(mktemp "${TMPDIR:-/tmp}/kleep-tsan-supp-XXXXXX")
trap 'rm -rf "$reports" "$supp"' EXIT
# test_runtime runs kleepctl and kleepd as users it creates: they must be able to read
# the suppressions and write their reports too (a report they cannot write kills them).
cp tests/tsan/suppressions.txt "$supp" && chmod 644 "$supp" && chmod 1777 "$reports" || exit 2
TSAN_OPTIONS="log_path=$reports/tsan second_deadlock_stack=1 suppressions=$supp"
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
