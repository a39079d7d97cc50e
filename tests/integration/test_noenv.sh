#!/bin/sh
# test_noenv.sh - nothing touches the environment once threads exist (DESIGN.md §2):
# no object of libkleep calls setenv, putenv, unsetenv or tzset, and daemon/ calls them
# only in main before the pool starts (sd_listen_fds, inside libsystemd).  lib/tstamp.c
# is the one exception left, until its conversion stops pointing TZ at each zone.
# Prints "N passed, M failed" for tests/run.sh.
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
passed=0 failed=0
check() { # name, condition result (0 ok), detail
	if [ "$2" -eq 0 ]; then
		echo "ok $1"; passed=$((passed + 1))
	else
		echo "FAIL $1 $3"; failed=$((failed + 1))
	fi
}
callers=""
for o in "$BUILD"/lib/*.o; do
	[ "${o##*/}" = tstamp.o ] && continue
	if nm -u "$o" | grep -qE ' (setenv|putenv|unsetenv|tzset|clearenv)$'; then
		callers="$callers ${o##*/}"
	fi
done
[ -z "$callers" ]; check "no libkleep object but tstamp.o calls setenv/putenv/unsetenv/tzset" $? "$callers"
hits=$(grep -nE '\b(setenv|putenv|unsetenv|tzset|clearenv)\(' daemon/*.c || true)
[ -z "$hits" ]; check "daemon/ calls none of them" $? "$hits"
n=$(grep -c 'sd_listen_fds' daemon/kleepd.c)
[ "$n" -ge 1 ] && ! grep -q 'sd_listen_fds' daemon/control.c daemon/runtime.c
check "sd_listen_fds (which unsets LISTEN_*) is main's, not the runtime's or control's" $? ""
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
