#!/bin/sh
# test_alert_rules.sh - the example Prometheus alerting rules (examples/prometheus/) are
# valid (`promtool check rules`) and fire when they should and only then (`promtool test
# rules` with kleepd-alerts.test.yml).  promtool comes from Debian's prometheus package.
set -u
cd "$(dirname "$0")/../../examples/prometheus" || exit 2
passed=0 failed=0

check() {  # $1 what, then the command
	what=$1; shift
	if out=$("$@" 2>&1); then
		echo "ok $what"; passed=$((passed + 1))
	else
		echo "FAIL $what"; echo "$out" | sed 's/^/  | /'; failed=$((failed + 1))
	fi
}

if ! command -v promtool >/dev/null; then
	echo "FAIL promtool is not installed (make deps installs the prometheus package)"
	echo "0 passed, 1 failed"; exit 1
fi
check "promtool check rules kleepd-alerts.yml" promtool check rules kleepd-alerts.yml
check "promtool test rules kleepd-alerts.test.yml" promtool test rules kleepd-alerts.test.yml
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
