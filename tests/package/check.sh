#!/bin/bash
# check.sh [BUILD] - `make check-package`: the Debian package on a bare Debian 12.
#
# Builds (once, cached in /var/cache/kleep-package-root, outside the tree; KLEEP_PACKAGE_ROOT
# moves it) a minimal Debian 12 root file system with mmdebstrap, unpacks a fresh copy,
# installs BUILD/kleepd_<version>_<arch>.deb there with `apt-get install ./kleepd_*.deb`
# (apt uses this host's apt sources), and checks what an operator relies on: kleepd
# --check-config on the shipped configuration, kleepctl --version, systemd-analyze verify,
# the user and groups, the folders, the conffiles, the enabled unit, man pages, completion
# and journal catalog, kleepd running idle with no merchant; then that removing the
# package keeps the mirrors and configuration, and purging removes the configuration.
# Needs root (chroot, mounts).  Prints `ok`/`FAIL` lines and "N passed, M failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
cache=${KLEEP_PACKAGE_ROOT:-/var/cache/kleep-package-root}
tarball=$cache/debian12-minbase.tar.gz
version=$(dpkg-parsechangelog -S Version) arch=$(dpkg --print-architecture)
deb=$build/kleepd_${version}_${arch}.deb
passed=0 failed=0
say() { echo "check-package: $*"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }
fatal() { say "$*"; failed=$((failed + 1)); finish; }

[ "$(id -u)" = 0 ] || fatal "needs root (chroot, mounts)"
[ -s "$deb" ] || fatal "no $deb: run make deb"
sources=()   # this host's apt sources: the root reaches the same mirrors
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] && grep -q '^[^#[:space:]]' "$f" && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || fatal "this host has no apt sources to give the root"

# 1. The bare root file system, built once.
if [ ! -s "$tarball" ]; then
	mkdir -p "$cache"
	say "building a minimal Debian 12 root with mmdebstrap (once; cached as $tarball)"
	if ! mmdebstrap --variant=minbase bookworm "$cache/.building.tar.gz" "${sources[@]}" \
		>"$cache/build.log" 2>&1; then
		rm -f "$cache/.building.tar.gz"; tail -n 5 "$cache/build.log"
		fatal "mmdebstrap failed (see $cache/build.log)"
	fi
	mv "$cache/.building.tar.gz" "$tarball"
fi

# 2. A fresh copy, with /proc, /sys, /dev and a tmpfs /run as on a booted machine.
tmp=$(mktemp -d) || exit 2
root=$(readlink -f "$tmp")/root
# shellcheck disable=SC2317  # inside and cleanup run from the EXIT trap
inside() {  # PIDs of processes whose root is in ours
	local p l; for p in /proc/[0-9]*; do l=$(readlink "$p/root" 2>/dev/null) || continue
		case "$l" in "$root"|"$root"/*) echo "${p#/proc/}";; esac; done; }
# shellcheck disable=SC2317
cleanup() {
	local pids; pids=$(inside)
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086  # a list of PIDs
		kill $pids 2>/dev/null; sleep 1
	fi
	for m in dev sys proc run; do
		if mountpoint -q "$root/$m"; then umount -R "$root/$m" || umount -R -l "$root/$m"; fi
	done
	if grep -q " $root/" /proc/self/mounts; then say "still mounted under $root: not removed"
	else rm -rf --one-file-system "$tmp"; fi; }
trap cleanup EXIT; trap 'exit 130' INT TERM HUP
if ! { mkdir "$root" && tar -C "$root" --numeric-owner -xpzf "$tarball"; }; then
	fatal "cannot unpack $tarball"
fi
for m in proc sys dev dev/pts; do
	if ! { mount --bind "/$m" "$root/$m" && mount --make-rslave "$root/$m"; }; then
		fatal "cannot mount /$m"
	fi
done
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs "$root/run" || fatal "cannot mount a tmpfs on /run"
rm -f "$root/etc/resolv.conf" "$root"/etc/apt/sources.list "$root"/etc/apt/sources.list.d/*
cp -L /etc/resolv.conf "$root/etc/resolv.conf"; cp "${sources[@]}" "$root/etc/apt/sources.list.d/"
if [ -s "$root/etc/apt/sources.list.d/sources.list" ]; then
	mv "$root/etc/apt/sources.list.d/sources.list" "$root/etc/apt/sources.list"
fi
cp "$deb" "$root/root/"

in_root() {  # run a shell command in the root; its output on stdout
	chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 /bin/sh -c "$1" 2>&1 </dev/null; }
check() {  # $1 what, $2 shell command in the root that must succeed; shows its output on failure
	local out
	if out=$(timeout 600 chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 /bin/sh -c "$2" 2>&1 </dev/null); then
		echo "ok $1"; passed=$((passed + 1))
	else
		echo "FAIL $1"; echo "$out" | tail -n 20 | sed 's/^/  | /'; failed=$((failed + 1))
	fi
}

# 3. Install, as an operator does.
check "apt-get install ./${deb##*/} on a bare Debian 12" \
	"apt-get update -qq && apt-get install -y -qq --no-install-recommends ./root/${deb##*/} >/tmp/apt.log 2>&1 || { tail -n 20 /tmp/apt.log; exit 1; }"
in_root "dpkg-query -W -f='\${db:Status-Abbrev}' kleepd" | grep -q '^ii' || fatal "kleepd is not installed: stopping"
check "kleepd --check-config: the shipped configuration is valid, with no merchant" \
	"kleepd --check-config | grep -qx '/etc/kleep/kleepd.conf: ok, 0 merchants'"
check "kleepctl --version" "kleepctl --version | grep -qx 'kleepctl $version'"
# --man=no: a bare machine has no man(1); the pages themselves are checked below.
check "systemd-analyze verify kleepd.service kleepd.socket" \
	"out=\$(systemd-analyze verify --man=no /lib/systemd/system/kleepd.service /lib/systemd/system/kleepd.socket 2>&1); echo \"\$out\"; [ -z \"\$out\" ]"
check "system user kleep, home /var/lib/kleep, no login shell" \
	"getent passwd kleep | awk -F: '\$3 < 1000 && \$6 == \"/var/lib/kleep\" && \$7 ~ /nologin\$/ {ok=1} END {exit !ok}'"
check "groups kleep and kleep-admin" "getent group kleep && getent group kleep-admin"
check "state folder /var/lib/kleep: kleep:kleep 0750" "[ \"\$(stat -c '%U:%G %a' /var/lib/kleep)\" = 'kleep:kleep 750' ]"
check "runtime folder /run/kleep: kleep:kleep 0750" "[ \"\$(stat -c '%U:%G %a' /run/kleep)\" = 'kleep:kleep 750' ]"
check "/etc/kleep/merchants.d 0755 and /etc/kleep/credentials 0700, root's" \
	"[ \"\$(stat -c '%U %a' /etc/kleep/merchants.d /etc/kleep/credentials | paste -sd,)\" = 'root 755,root 700' ]"
check "conffile /etc/kleep/kleepd.conf" "dpkg-query -W -f='\${Conffiles}' kleepd | grep -q '^ /etc/kleep/kleepd.conf '"
check "the unit is enabled, the optional socket is not" \
	"[ -L /etc/systemd/system/multi-user.target.wants/kleepd.service ] && [ ! -e /etc/systemd/system/sockets.target.wants/kleepd.socket ]"
check "man pages kleepd(8), kleepd.conf(5), kleepctl(1)" \
	"[ -f /usr/share/man/man8/kleepd.8.gz ] && [ -f /usr/share/man/man5/kleepd.conf.5.gz ] && [ -f /usr/share/man/man1/kleepctl.1.gz ]"
check "bash completion, docs and example alerting rules" \
	"[ -f /usr/share/bash-completion/completions/kleepctl ] && [ -f /usr/share/doc/kleepd/copyright ] && [ -f /usr/share/doc/kleepd/examples/kleepd-alerts.yml ]"
check "journal catalog compiled: journalctl --list-catalog knows kleepd's MESSAGE_IDs" \
	"journalctl --list-catalog 7d1a0f6a3a8e4c63b0f1b0c2a4e5d603 | grep -q 'kleepd sync run failed'"
check "kleepd runs as kleep with no merchant; kleepctl status says how to add one" \
	"setpriv --reuid=kleep --regid=kleep --init-groups kleepd -f >/tmp/kleepd.log 2>&1 & pid=\$!
	 i=0; while [ ! -S /run/kleep/kleepd.sock ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
	 out=\$(kleepctl status); rc=\$?; kill \$pid; wait \$pid; echo \"\$out\"; cat /tmp/kleepd.log
	 [ \$rc = 0 ] && echo \"\$out\" | grep -q 'No merchants configured'"

# 4. Remove: the mirrors and the configuration stay.  Purge: the configuration goes.
in_root "printf 'SQLite format 3' >/var/lib/kleep/acme-fr.db && chown kleep:kleep /var/lib/kleep/acme-fr.db
	echo '# kept' >>/etc/kleep/kleepd.conf && echo '[merchant]' >/etc/kleep/merchants.d/acme-fr.conf" >/dev/null
check "apt-get remove kleepd" "apt-get remove -y -qq kleepd >/tmp/apt.log 2>&1 || { tail -n 20 /tmp/apt.log; exit 1; }"
check "after remove: programs gone, mirrors and configuration kept" \
	"[ ! -e /usr/sbin/kleepd ] && [ -f /var/lib/kleep/acme-fr.db ] && grep -q '# kept' /etc/kleep/kleepd.conf"
check "apt-get purge kleepd" "apt-get purge -y -qq kleepd >/tmp/apt.log 2>&1 || { tail -n 20 /tmp/apt.log; exit 1; }"
check "after purge: /etc/kleep gone, the mirrors kept, the unit no longer enabled" \
	"[ ! -e /etc/kleep ] && [ -f /var/lib/kleep/acme-fr.db ] && [ ! -e /etc/systemd/system/multi-user.target.wants/kleepd.service ] && ! dpkg-query -W -f='\${db:Status-Abbrev}' kleepd 2>/dev/null | grep -q '^[ir]'"
finish
