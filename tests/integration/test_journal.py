#!/usr/bin/python3
"""test_journal.py - kleepd's log lines reach journald with their structured fields.

Starts systemd-journald by hand (nothing else runs one here), has the log
module send lines through build/tests/test_log, and reads them back with
journalctl -o json, filtering on the MERCHANT field as an operator would.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

BUILD = os.environ.get("BUILD", "build")
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def main():
    journald = "/lib/systemd/systemd-journald"
    if not os.path.exists(journald):
        check("systemd-journald is installed", False, journald)
        return
    # A journald left by someone else would own the socket: start from clean.
    shutil.rmtree("/run/systemd/journal", ignore_errors=True)
    proc = subprocess.Popen([journald], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists("/run/systemd/journal/socket"):
                break
            time.sleep(0.05)
        marker = "test-" + uuid.uuid4().hex[:12]
        env = dict(os.environ, KLEEP_JOURNAL_TEST=marker)
        r = subprocess.run([f"{BUILD}/tests/test_log"], env=env, capture_output=True, text=True)
        check("log test binary ran", r.returncode == 0, r.stdout + r.stderr)
        entries = []
        for _ in range(50):
            subprocess.run(["journalctl", "--sync"], capture_output=True)
            out = subprocess.run(["journalctl", "-o", "json", "--no-pager", f"MERCHANT={marker}"],
                                 capture_output=True, text=True).stdout
            entries = [json.loads(line) for line in out.splitlines() if line.strip()]
            if len(entries) >= 2:
                break
            time.sleep(0.1)
        check("both lines found by MERCHANT=", len(entries) == 2, f"got {len(entries)}")
        run = [e for e in entries if e.get("STREAM") == "returns"]
        check("STREAM and RUN_ID fields", len(run) == 1 and run[0].get("RUN_ID") == "7", str(run))
        if run:
            e = run[0]
            check("MESSAGE", e.get("MESSAGE") == "run finished: 3 rows", e.get("MESSAGE"))
            check("PRIORITY is notice (5)", e.get("PRIORITY") == "5", e.get("PRIORITY"))
            check("SYSLOG_IDENTIFIER=kleepd", e.get("SYSLOG_IDENTIFIER") == "kleepd")
            check("MESSAGE_ID of run finished",
                  e.get("MESSAGE_ID") == "7d1a0f6a3a8e4c63b0f1b0c2a4e5d602", e.get("MESSAGE_ID"))
        bare = [e for e in entries if "STREAM" not in e]
        check("a merchant-level line carries no STREAM or RUN_ID",
              len(bare) == 1 and "RUN_ID" not in bare[0] and bare[0].get("PRIORITY") == "4")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree("/run/systemd/journal", ignore_errors=True)


main()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
