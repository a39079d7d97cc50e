#!/bin/sh
# hardening.sh [BUILD_DIR] - `make check-hardening`: build kleepd and kleepctl with the
# flags a Debian package build uses (dpkg-buildflags, hardening=+all) into BUILD_DIR
# (default build/release), then check in the binaries what those flags promise:
# immediate binding (BIND_NOW), read-only relocations, PIE, the stack protector and
# fortified libc calls (the *_chk imports of _FORTIFY_SOURCE).
set -u
cd "$(dirname "$0")/../.." || exit 2
out=${1:-build/release}
passed=0 failed=0

check() {  # $1 what, then the command that must succeed
	what=$1; shift
	if "$@" >/dev/null 2>&1; then
		echo "ok $what"; passed=$((passed + 1))
	else
		echo "FAIL $what"; failed=$((failed + 1))
	fi
}

has() {  # $1 text, $2 extended regex found in it
	printf '%s\n' "$1" | grep -Eq "$2"
}

eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)" || exit 2
echo "CPPFLAGS=$CPPFLAGS"
echo "LDFLAGS=$LDFLAGS"
# WERROR=0 as a distribution builds: a newer compiler's new warning must not stop it.
if ! make --no-print-directory BUILD="$out" WERROR=0 bins >"$out.log" 2>&1; then
	cat "$out.log"; echo "0 passed, 1 failed"; exit 1
fi
for b in "$out/kleepd" "$out/kleepctl"; do
	dyn=$(readelf -d "$b") hdr=$(readelf -lh "$b") imports=$(nm -D --undefined-only "$b")
	check "$b: BIND_NOW" has "$dyn" '\(FLAGS(_1)?\).*\b(BIND_NOW|NOW)\b'
	check "$b: RELRO" has "$hdr" 'GNU_RELRO'
	check "$b: PIE" has "$hdr" 'Type: +DYN'
	check "$b: stack protector" has "$imports" '__stack_chk_fail'
	check "$b: fortified calls (_chk imports)" has "$(echo "$imports" | grep -v __stack_chk_fail)" '__[a-z_]+_chk\b'
	echo "  $(echo "$imports" | grep -Eo '__[a-z_]+_chk' | grep -vc __stack_chk_fail) _chk imports"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
