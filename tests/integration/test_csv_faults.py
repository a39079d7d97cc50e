#!/usr/bin/python3
"""test_csv_faults.py - a large CSV file loaded in bulk, with every kind of disk fault.

An orders file and a returns file of BULK_ROWS rows each are large enough for csvin to
write them without their tables' secondary indexes and to build those again before the
commit (lib/bulkload.h).  build/tests/faultvfs.so, preloaded into the real kleepd (as in
test_vfs_faults.py), fails the N-th write, fsync or truncate of the scan that applies
them, for FAULT_POINTS values of N spread over all of them (default 24), ENOSPC and EIO
alternating.  After each fault:
- the scan fails with class storage and the words of the fault (disk full, I/O error),
  without crashing;
- PRAGMA integrity_check says ok and the mirror has every index it had, defined alike;
- each file is applied whole or not at all;
- a rerun without faults applies both files, and the mirror's tables are exactly those
  of the same scan run without a fault.
Then the state directory's disk is full (a small tmpfs mounted over it) while a file
downloads: the scan fails with class storage and "No space left on device", and leaves
no temporary file.
Needs root (sshd, mount).  Environment: BUILD, FAULT_POINTS, KEEP=1.
"""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kleeptest as kt  # noqa: E402
import test_sftp  # noqa: E402
from test_vfs_faults import FAULTVFS, env_with, read_count, spread  # noqa: E402

C = kt.Checks()
BULK_ROWS = 6000  # above BULKLOAD_MIN_ROWS (lib/bulkload.h)
ORDERS = "orders/orders_2025-01-10T02-00-00.csv"
RETURNS = "returns/returns_2025-01-10T03-00-00.csv"
TABLES = {"orders": "order_id", "order_lines": "order_id, line_no", "returns": "return_id",
          "return_lines": "return_id, line_no"}
INDEXES = "SELECT name, sql FROM sqlite_schema WHERE type = 'index' ORDER BY name"


def orders_csv(rows):
    out = ["order_id,ordered_at,product_id,quantity,variant_id,price,currency,status\n"]
    for i in range(rows):
        out.append(f"BO{i // 2},2025-01-{1 + i % 28:02d},P{i % 40},1,V{i},12.50,EUR,paid\n")
    return "".join(out)


def returns_csv(rows):
    out = ["return_id,order_id,returned_at,product_id,quantity,variant_id,reason_id,comment\n"]
    for i in range(rows):
        out.append(f"BR{i // 2},BO{i // 2},15/01/2025,P{i % 40},1,V{i},{i % 7},\n")
    return "".join(out)


def tables(env):
    """The canonical tables the files write, row by row, in key order."""
    return {t: env.q(f"SELECT * FROM {t} ORDER BY {key}") for t, key in TABLES.items()}


def applied_whole(env):
    """Per file, whether its rows are all there or none: a partial file is a bug."""
    counts = (env.q1("SELECT count(*) FROM order_lines WHERE order_id LIKE 'BO%'"),
              env.q1("SELECT count(*) FROM return_lines WHERE return_id LIKE 'BR%'"))
    return all(c in (0, BULK_ROWS) for c in counts), counts


def snapshot(state, to):
    shutil.rmtree(to, ignore_errors=True)
    shutil.copytree(state, to)


def scan(env, extra_env=None):
    r = subprocess.run(env.kleepd_args(), capture_output=True, text=True, timeout=300,
                          env=extra_env)
    return r.returncode, r.stdout + r.stderr


def full_state_dir(env):
    """The state directory's disk is full while a file downloads: the scan says storage."""
    rc, out = scan(env)
    C.check("full disk: the first scan (nothing to apply) succeeds", rc == 0, out)
    saved = os.path.join(env.tmp, "state-saved")
    shutil.copytree(env.state, saved)
    used = sum(os.path.getsize(os.path.join(saved, f)) for f in os.listdir(saved))
    size_k = used // 1024 + 512  # the mirror and half a MiB: too little for the file below
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_k}k", "tmpfs", env.state],
                       capture_output=True, text=True)
    if r.returncode != 0:
        C.say(f"# full disk: skipped, no tmpfs can be mounted here ({r.stderr.strip()})")
        return
    try:
        for f in os.listdir(saved):
            shutil.copy2(os.path.join(saved, f), env.state)
        env.put("returns/returns_2025-01-11T02-00-00.csv", returns_csv(40000))  # ~2 MiB
        rc, out = scan(env)
        fails = [line for line in out.splitlines() if "failed (" in line]
        C.check("full disk during a download: the scan fails with class storage and the "
                "system's words", rc == 1 and fails and all(
                    "(storage)" in f and "No space left on device" in f for f in fails), out)
        C.check("full disk during a download: no temporary file left behind",
                not [f for f in os.listdir(env.state) if ".sftp-" in f], os.listdir(env.state))
    finally:
        subprocess.run(["umount", env.state])


def main():
    if not os.path.exists(FAULTVFS):
        C.check(f"{FAULTVFS} is built (make all)", False)
        C.finish()
    if os.geteuid() != 0:
        C.check("runs as root (sshd needs it)", False, "skipped")
        C.finish()
    limit = int(os.environ.get("FAULT_POINTS") or 24)
    env = test_sftp.Env()
    try:
        if not C.check("sshd starts", env.start_sshd()):
            C.finish()
        # The mirror before the files: created by a scan of an empty drop.
        rc, out = scan(env)
        C.check("the first scan (nothing to apply) succeeds", rc == 0, out)
        baseline = os.path.join(env.tmp, "baseline")
        snapshot(env.state, baseline)
        indexes = env.q(INDEXES)
        env.put(ORDERS, orders_csv(BULK_ROWS))
        env.put(RETURNS, returns_csv(BULK_ROWS))

        count_file = os.path.join(env.tmp, "count")
        rc, out = scan(env, env_with(0, "ENOSPC", count_file))
        total, _, _ = read_count(count_file)
        C.check(f"the scan without a fault applies both files through the shim ({total} "
                f"writes, fsyncs and truncates)", rc == 0 and total > 0 and
                env.q("SELECT outcome FROM sftp_files ORDER BY path") == [("applied",)] * 2,
                out)
        want = tables(env)
        C.check("the files' rows are all there", applied_whole(env)[1] == (BULK_ROWS,) * 2,
                applied_whole(env))
        C.check("after the load, the same indexes, defined alike", env.q(INDEXES) == indexes,
                env.q(INDEXES))

        problems = {"crash": [], "not_fired": [], "not_storage": [], "integrity": [],
                    "indexes": [], "partial": [], "rerun": [], "mirror": []}
        points = spread(total, limit)
        for i, n in enumerate(points):
            errno_name = "ENOSPC" if i % 2 == 0 else "EIO"
            snapshot(baseline, env.state)
            rc, out = scan(env, env_with(n, errno_name, count_file))
            _, fired, _ = read_count(count_file)
            if rc < 0 or rc > 1:
                problems["crash"].append(f"N={n}: rc={rc} {out[-1500:]}")
                continue
            if not fired:
                problems["not_fired"].append(n)
                continue
            fails = [line for line in out.splitlines() if "failed (" in line]
            # The words of the fault, as store_failure gives them (never "not an error").
            if rc != 1 or not fails or not all("(storage)" in f and ("disk full" in f or
                                                                    "I/O error" in f)
                                               for f in fails):
                problems["not_storage"].append(f"N={n} {errno_name}: rc={rc} {out.strip()[-800:]}")
            if env.q("PRAGMA integrity_check") != [("ok",)]:
                problems["integrity"].append(n)
            if env.q(INDEXES) != indexes:
                problems["indexes"].append(f"N={n}: {[r[0] for r in env.q(INDEXES)]}")
            whole, counts = applied_whole(env)
            if not whole:
                problems["partial"].append(f"N={n}: {counts}")
            rc, out = scan(env)
            if rc != 0:
                problems["rerun"].append(f"N={n}: {out[-1500:]}")
                continue
            if tables(env) != want or env.q(INDEXES) != indexes:
                problems["mirror"].append(n)
        C.say(f"# {len(points)} fault points tried (of {total} writes, fsyncs and truncates)")
        full = test_sftp.Env()
        try:
            if C.check("full disk: sshd starts", full.start_sshd()):
                full_state_dir(full)
        finally:
            full.cleanup()
        for what, text in (("crash", "no fault crashes kleepd"),
                           ("not_fired", "every fault point is reached"),
                           ("not_storage", "every faulted scan fails with class storage "
                                           "and says why"),
                           ("integrity", "integrity_check is ok after every fault"),
                           ("indexes", "every index is there after every fault"),
                           ("partial", "a file is applied whole or not at all"),
                           ("rerun", "the rerun after every fault succeeds"),
                           ("mirror", "after every rerun the tables are exactly the faultless "
                                      "scan's")):
            C.check(text, not problems[what], "; ".join(map(str, problems[what][:6])))
    finally:
        if os.environ.get("KEEP"):
            env.stop_sshd()
            C.say(f"# kept {env.tmp}")
        else:
            env.cleanup()
    C.finish()


if __name__ == "__main__":
    main()
