#!/bin/sh
# run.sh - `make bench`: every benchmark, one after the other, printing its figures.
# Benchmarks measure; they never pass or fail a build.  BENCH=name runs only the ones
# whose file name contains it.  BASE=<git revision> runs instead compare.py: this build
# and that revision's side by side on the same data, with the ratios.
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
export BUILD
if [ -n "${BASE:-}" ]; then
	exec "$PY" tests/bench/compare.py
fi
for b in tests/bench/bench_*.py; do
	[ -f "$b" ] || continue
	case "$b" in *"${BENCH:-}"*) ;; *) continue ;; esac
	echo "=== ${b##*/}"
	"$PY" "$b" || echo "=== ${b##*/}: did not complete (exit $?)"
	echo
done
