#!/bin/sh
# run.sh - `make bench`: every benchmark, one after the other, printing its figures.
# Benchmarks measure; they never pass or fail a build.  BENCH=name runs only the ones
# whose file name contains it.
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
export BUILD
for b in tests/bench/bench_*.py; do
	[ -f "$b" ] || continue
	case "$b" in *"${BENCH:-}"*) ;; *) continue ;; esac
	echo "=== ${b##*/}"
	"$PY" "$b" || echo "=== ${b##*/}: did not complete (exit $?)"
	echo
done
