#!/usr/bin/python3
"""test_journal.py - kleepd's log lines reach journald with their structured fields.

Starts systemd-journald by hand (nothing else runs one here), has the log
module send lines through build/tests/test_log, and reads them back with
journalctl -o json, filtering on the MERCHANT field as an operator would.
Then `journalctl -x` must explain a failed run with the text of
systemd/kleepd.catalog, which holds an entry for every MESSAGE_ID of lib/log.h.
journalctl -x reads the catalog database at a fixed path, so the check builds a
small root of its own (journalctl, its libraries, the catalog compiled there with
--update-catalog --root, a copy of the journal) and runs journalctl chrooted in
it: the machine's own catalog is never touched, and no mount is needed (a mount
namespace cannot be made private inside a chroot, where fresh-machine runs us).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
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


def check_catalog(marker):
    """Every MESSAGE_ID has a catalog entry, and journalctl -x shows it for a failed run."""
    with open("lib/log.h") as f:
        ids = re.findall(r'#define (LOG_MSGID_\w+)\s+"([0-9a-f]{32})"', f.read())
    with open("systemd/kleepd.catalog") as f:
        entries = set(re.findall(r"^-- ([0-9a-f]{32})$", f.read(), re.M))
    missing = [name for name, mid in ids if mid not in entries]
    check("a catalog entry for every MESSAGE_ID", ids and not missing, f"missing {missing}")
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(f"{root}/usr/lib/systemd/catalog")
        shutil.copy("systemd/kleepd.catalog", f"{root}/usr/lib/systemd/catalog/")
        r = subprocess.run(["journalctl", f"--root={root}", "--update-catalog"],
                           capture_output=True, text=True)
        check("journalctl --update-catalog compiles the catalog", r.returncode == 0, r.stderr)
        journalctl = shutil.which("journalctl")
        libs = re.findall(r"(/\S+) \(0x", subprocess.run(["ldd", journalctl], capture_output=True,
                                                         text=True).stdout)
        for f in [journalctl] + libs:
            os.makedirs(root + os.path.dirname(f), exist_ok=True)
            shutil.copy(f, root + f)
        shutil.copytree("/run/log/journal", f"{root}/journal")
        machine = os.listdir(f"{root}/journal")[0]
        r = subprocess.run(["chroot", root, journalctl, "-D", f"/journal/{machine}", "-x",
                            "--no-pager", f"MERCHANT={marker}", "STREAM=orders"],
                           capture_output=True, text=True)
        out = r.stdout
        check("journalctl -x explains a failed run with the catalog",
              "run failed (transient): timed out" in out
              and "Subject: A kleepd sync run failed or was interrupted" in out
              and f"Run 8 of stream orders for merchant {marker} did not finish." in out
              and "transient     network or server trouble" in out, out + r.stderr)


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
            if len(entries) >= 4:
                break
            time.sleep(0.1)
        check("every line found by MERCHANT=", len(entries) == 4, f"got {len(entries)}")
        run = [e for e in entries if e.get("STREAM") == "returns"]
        check("STREAM and RUN_ID fields", len(run) == 1 and run[0].get("RUN_ID") == "7", str(run))
        if run:
            e = run[0]
            check("MESSAGE", e.get("MESSAGE") == "run finished: 3 rows", e.get("MESSAGE"))
            check("PRIORITY is notice (5)", e.get("PRIORITY") == "5", e.get("PRIORITY"))
            check("SYSLOG_IDENTIFIER=kleepd", e.get("SYSLOG_IDENTIFIER") == "kleepd")
            check("MESSAGE_ID of run finished",
                  e.get("MESSAGE_ID") == "7d1a0f6a3a8e4c63b0f1b0c2a4e5d602", e.get("MESSAGE_ID"))
            # The caller's place in the source, not the log module's.
            check("CODE_FILE, CODE_LINE, CODE_FUNC name the caller",
                  e.get("CODE_FILE") == "tests/test_log.c" and e.get("CODE_FUNC") == "test_journal_send"
                  and str(e.get("CODE_LINE", "")).isdigit(),
                  f'{e.get("CODE_FILE")} {e.get("CODE_LINE")} {e.get("CODE_FUNC")}')
            check("no ERRNO when no errno caused the line", "ERRNO" not in e)
        bare = [e for e in entries if "STREAM" not in e]
        check("a merchant-level line carries no STREAM or RUN_ID",
              len(bare) == 1 and "RUN_ID" not in bare[0] and bare[0].get("PRIORITY") == "4")
        sys_err = [e for e in entries if e.get("STREAM") == "sftp"]
        check("ERRNO of a line caused by an errno, and its text in MESSAGE",
              len(sys_err) == 1 and sys_err[0].get("ERRNO") == "13"
              and sys_err[0].get("MESSAGE") == "cannot open ledger: Permission denied", str(sys_err))
        check_catalog(marker)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree("/run/systemd/journal", ignore_errors=True)


main()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
