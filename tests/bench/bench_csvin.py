#!/usr/bin/python3
"""bench_csvin.py - SFTP CSV ingestion benchmark (`make bench`; not a test).

A returns CSV of 1,000,000 rows (two lines per return, no line_no, so every line is
placed by its variant) is dropped on a real sshd on 127.0.0.1 and ingested by
`kleepd --once --stream sftp`; then 10x smaller.  Prints rows/s, kleepd's wall and CPU
seconds and peak RSS (wait4 on kleepd itself), and the ratio against the sqlite3 shell
`.import`ing the same file into a bare table, measured in the same run.

Targets (issue 6): peak RSS under 32 MiB whatever the file size; within 3x of the
import.  Exit status 0 even when a target is missed (a benchmark reports), 1 when the
ingestion itself failed.  Needs root (sshd).  Environment: BUILD as for the tests;
ROWS (default 1000000); KEEP=1 keeps the temporary folder.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import test_sftp  # noqa: E402  (its Env: keys, sshd, config)

MIB = 1024 * 1024
RSS_TARGET_MIB = 32
RATIO_TARGET = 3.0


def timed_child(args):
    """Run args; (returncode, wall s, CPU s, peak RSS bytes) of that child alone (wait4)."""
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    wall = time.monotonic() - t0
    return os.waitstatus_to_exitcode(status), wall, ru.ru_utime + ru.ru_stime, \
        ru.ru_maxrss * 1024, err


def write_returns(path, rows):
    with open(path, "w") as f:
        f.write("return_id,order_id,returned_at,product_id,variant_id,quantity,reason_id,"
                "comment,updated_at\n")
        for i in range(rows):
            d = 1 + i % 28
            f.write(f"R{i // 2},O{i // 3},2025-01-{d:02d},P{i % 5000},V{i % 20000},1,{i % 7},"
                    f"{'trop petit' if i % 3 == 0 else ''},2025-02-{d:02d} 10:{i % 60:02d}:00\n")


def one(env, rows, n):
    name = f"returns/returns_2025-01-{10 + n:02d}T02-00-00.csv"
    path = os.path.join(env.shop, name)
    for suffix in ("", "-wal", "-shm"):  # each size into an empty mirror
        if os.path.exists(env.db + suffix):
            os.unlink(env.db + suffix)
    write_returns(path, rows)
    os.utime(path, (test_sftp.OLD, test_sftp.OLD))
    size = os.path.getsize(path)
    rc, wall, cpu, rss, err = timed_child(env.kleepd_args())
    got = env.q1("SELECT rows FROM sftp_files WHERE path = ?", name)
    if rc != 0 or got != rows:
        print(f"ingestion of {rows} rows failed (exit {rc}, {got} rows applied): {err[-2000:]}")
        return None
    imp = os.path.join(env.tmp, f"import-{n}.db")
    irc, iwall, icpu, _, ierr = timed_child(["sqlite3", imp, ".mode csv", f".import {path} t"])
    if irc != 0:
        print(f"sqlite3 .import failed: {ierr}")
        return None
    print(f"{rows:>9} rows, {size / MIB:6.1f} MiB: kleepd {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
          f"{rows / wall:8.0f} rows/s, peak RSS {rss / MIB:5.1f} MiB | sqlite3 .import "
          f"{iwall:5.2f} s wall, {icpu:5.2f} s CPU | ratio {wall / iwall:4.1f}x wall, "
          f"{cpu / icpu:4.1f}x CPU")
    os.unlink(path)
    return rss, wall / iwall


def main():
    rows = int(os.environ.get("ROWS", "1000000"))
    if os.geteuid() != 0:
        print("bench_csvin: needs root to run sshd; skipped")
        return 0
    env = test_sftp.Env()
    try:
        if not env.start_sshd():
            print("bench_csvin: sshd did not start")
            return 1
        results = []
        for n, r in enumerate((max(rows // 10, 1), rows)):
            res = one(env, r, n)
            if res is None:
                return 1
            results.append(res)
        rss = max(r[0] for r in results)
        ratio = results[-1][1]
        print(f"peak RSS {rss / MIB:.1f} MiB (target < {RSS_TARGET_MIB}): "
              f"{'met' if rss < RSS_TARGET_MIB * MIB else 'MISSED'}; "
              f"time {ratio:.1f}x sqlite3 .import (target <= {RATIO_TARGET}): "
              f"{'met' if ratio <= RATIO_TARGET else 'MISSED'}")
        return 0
    finally:
        if os.environ.get("KEEP"):
            env.stop_sshd()
            print(f"kept {env.tmp}")
        else:
            env.cleanup()


if __name__ == "__main__":
    sys.exit(main())
