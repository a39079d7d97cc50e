#!/bin/sh
# run.sh - golden-file tests of kleepd --check-config: each tests/config/CASE holds
# kleepd.conf (and merchants.d/), the expected output and the expected exit code.
#
# usage: tests/config/run.sh path/to/kleepd [CASE...]
# Run from anywhere; cases run from the project root, so paths in the expected
# output read tests/config/CASE/...  To accept new output after a deliberate
# change: KLEEP_CONFIG_UPDATE=1 tests/config/run.sh build/kleepd CASE
set -u

if [ $# -lt 1 ]; then
	echo "usage: $0 path/to/kleepd [CASE...]" >&2
	exit 2
fi
case $1 in
/*) kleepd=$1 ;;
*) kleepd=$(pwd)/$1 ;;
esac
shift
cd "$(dirname "$0")/../.." || exit 2
if [ ! -x "$kleepd" ]; then
	echo "$0: $kleepd is not an executable" >&2
	exit 2
fi

# git keeps no file modes: secrets come out of a clone 0644, which kleepd refuses.
find tests/config -type f \( -name '*.password' -o -name '*.key' \) ! -name '*world-readable*' \
	-exec chmod 600 {} +
find tests/config -type f \( -name '*.password' -o -name '*.key' \) -name '*world-readable*' \
	-exec chmod 644 {} +
# secrets must resolve against each case's folder, not a systemd credentials folder
unset CREDENTIALS_DIRECTORY TZDIR

if [ $# -eq 0 ]; then
	# shellcheck disable=SC2046  # one word per case: case names have no blanks
	set -- $(cd tests/config && for d in */; do [ -f "$d/kleepd.conf" ] && echo "${d%/}"; done)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kleep-config-XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
for c in "$@"; do
	dir=tests/config/$c
	"$kleepd" --check-config -c "$dir/kleepd.conf" >"$tmp/out" 2>&1
	rc=$?
	if [ "${KLEEP_CONFIG_UPDATE:-}" = 1 ]; then
		cp "$tmp/out" "$dir/expected"
		echo "$rc" >"$dir/exit"
	fi
	want=$(cat "$dir/exit" 2>/dev/null || echo missing)
	if diff -u "$dir/expected" "$tmp/out" >"$tmp/diff" 2>&1 && [ "$rc" = "$want" ]; then
		echo "ok $c"
		passed=$((passed + 1))
	else
		echo "FAIL $c (exit $rc, expected $want)"
		cat "$tmp/diff"
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
