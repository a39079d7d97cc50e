#!/bin/sh
# test_environ.sh - no code of lib/ or daemon/ writes the environment or calls tzset.
#
# glibc's setenv/putenv/unsetenv are not safe against getenv on another thread
# (libcurl, SQLite and config reload all call getenv), and tzset reads TZ
# under glibc's lock: once the worker pool runs, nobody may call them.  The
# check reads the undefined symbols of every built object of lib/ and of the
# two binaries (daemon/ is linked straight into them), then looks for the
# libsystemd calls that unset variables themselves (unset_environment = 1).
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
FORBIDDEN="setenv putenv unsetenv clearenv tzset"
# libsystemd calls allowed to unset their variables, with the most of each and why.
# sd_listen_fds(1) must run in main before any thread starts (the daemon does so).
ALLOWED="sd_listen_fds(1):1"
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }

# undefined symbols of one object or binary, without version suffixes
undefined() {
	nm -u "$1" 2>/dev/null | awk '{ print $NF }' | sed 's/@.*//'
}

check_symbols() {
	syms=$(undefined "$1")
	if [ -z "$syms" ] && ! nm -u "$1" >/dev/null 2>&1; then
		bad "$1: nm cannot read it"
		return
	fi
	found=""
	for s in $FORBIDDEN; do
		if printf '%s\n' "$syms" | grep -qx "$s"; then
			found="$found $s"
		fi
	done
	if [ -n "$found" ]; then bad "$1 calls$found"; else ok "$1"; fi
}

n=0
for o in "$BUILD"/lib/*.o "$BUILD"/kleepd "$BUILD"/kleepctl; do
	[ -f "$o" ] || continue
	n=$((n + 1))
	check_symbols "$o"
done
[ "$n" -gt 2 ] || bad "no objects under $BUILD (run make all first)"

# libsystemd's own unsetenv: a first argument other than 0 unsets the variables read
calls=$(grep -nE 'sd_(listen_fds|listen_fds_with_names|notify|notifyf|pid_notify|pid_notifyf|pid_notify_with_fds)\(' \
	lib/*.c daemon/*.c | grep -vE 'sd_[a-z_]+\((0|[a-z_]+, *0)[,)]')
if [ -z "$calls" ]; then
	ok "no libsystemd call unsets the environment"
else
	rest=$calls
	for a in $ALLOWED; do
		pat=${a%:*} max=${a##*:}
		count=$(printf '%s\n' "$calls" | grep -cF "$pat")
		if [ "$count" -le "$max" ]; then
			[ "$count" -eq 0 ] || ok "allowed: $pat ($count call, before threads)"
		else
			bad "$pat called $count times, at most $max allowed"
		fi
		rest=$(printf '%s\n' "$rest" | grep -vF "$pat")
	done
	if [ -n "$rest" ]; then
		bad "libsystemd calls that unset the environment: $rest"
	else
		ok "no other libsystemd call unsets the environment"
	fi
fi

# ... and main calls it, before the pool starts: not the runtime or the control socket.
if grep -q 'sd_listen_fds(1)' daemon/kleepd.c && ! grep -q 'sd_listen_fds' daemon/control.c daemon/runtime.c \
	daemon/sched.c daemon/job.c; then
	ok "sd_listen_fds is main's, not the runtime's or the control socket's"
else
	bad "sd_listen_fds is not called from main alone"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
