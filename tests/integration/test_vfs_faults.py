#!/usr/bin/python3
"""test_vfs_faults.py - every write, fsync and truncate of a sync fails once, in turn.

The way SQLite tests itself: build/tests/faultvfs.so (tests/faultvfs.c), preloaded into
the real kleepd, wraps the default VFS and fails the N-th xWrite/xSync/xTruncate with
ENOSPC or EIO.  A synced mirror is copied, the shop changes (the same changes each
time), and an incremental `kleepd --once` of every stream runs with the fault at N, for
every N from 1 to the number of such calls the run makes (or at least 200 spread values
when there are more).  After each fault:
- the run fails with class storage and the words of the fault (disk full for a write
  without room, I/O error otherwise), and so do the failed runs sync_runs records;
- PRAGMA integrity_check says ok;
- a rerun without faults succeeds and the mirror is exactly the shop (the same
  comparison as test_sync.py), with no full re-read: each dated stream serves fewer
  records than it holds.
Prints the number of fault points tried.  Environment: BUILD, KEEP=1, FAULT_POINTS=N
(at most N values of N, spread; default 200).
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kleeptest as kt  # noqa: E402

C = kt.Checks()
FAULTVFS = kt._abs(os.path.join(kt.BUILD, "tests", "faultvfs.so"))
FAST = {"retry.base_ms": 20, "retry.cap_ms": 200, "request_timeout_s": 5, "paging.limit": 20}
CHANGES = (("orders", dict(update=12, add=4)), ("products", dict(update=5, add=1)),
           ("returns", dict(update=2, add=1)))


def env_with(at, errno_name, count_file):
    env = dict(os.environ)
    env["LD_PRELOAD"] = FAULTVFS + (" " + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
    env["KLEEP_FAULT_AT"] = str(at)
    env["KLEEP_FAULT_ERRNO"] = errno_name
    env["KLEEP_FAULT_COUNT"] = count_file
    # The shim is preloaded ahead of the sanitizer runtime of an ASan build.
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    return env


def read_count(path):
    """(calls, whether the fault fired, which kind of call it hit)."""
    with open(path) as f:
        calls, fired, op = f.read().split()
    return int(calls), fired == "1", op


def restore(baseline, state):
    shutil.rmtree(state, ignore_errors=True)
    shutil.copytree(baseline, state)


def change_shop(emu):
    emu.reset()
    for stream, ops in CHANGES:
        emu.bulk(stream, **ops)
    emu.reset_stats()


def spread(total, limit):
    if total <= limit:
        return list(range(1, total + 1))
    step = total / limit
    return sorted({max(1, min(total, round(1 + i * step))) for i in range(limit)} | {total})


def main():
    if not os.path.exists(FAULTVFS):
        C.check(f"{FAULTVFS} is built (make all)", False)
        C.finish()
    limit = int(os.environ.get("FAULT_POINTS") or 200)
    with kt.TempDir(prefix="kleep-vfs-") as root, \
            kt.Emulator(products=30, orders=90, returns=12) as emu:
        m = kt.Merchant("shop", emu, overrides=FAST)
        conf = kt.write_config(os.path.join(root, "c"), [m])
        state = kt.state_dir_of(conf)
        db = kt.db_path(conf, "shop")
        run = kt.run_kleepd(conf)
        C.check("the baseline sync succeeds", run.rc == 0, run.summary())
        baseline = os.path.join(root, "baseline")
        shutil.copytree(state, baseline)
        totals = {s: len(emu.truth(s)) for s in kt.DATED_STREAMS}
        last_baseline_run = kt.query(db, "SELECT max(run_id) FROM sync_runs")[0][0]

        # How many fault points the faulted run has.
        count_file = os.path.join(root, "count")
        restore(baseline, state)
        change_shop(emu)
        run = kt.run_kleepd(conf, env=env_with(0, "ENOSPC", count_file))
        total, _, _ = read_count(count_file)
        C.check(f"the run without a fault succeeds through the shim ({total} writes, fsyncs "
                f"and truncates)", run.rc == 0 and total > 0, run.summary())
        points = spread(total, limit)
        problems = {"not_fired": [], "not_storage": [], "integrity": [], "rerun": [],
                    "mirror": [], "reread": [], "crash": []}
        for i, n in enumerate(points):
            errno_name = "ENOSPC" if i % 2 == 0 else "EIO"
            restore(baseline, state)
            change_shop(emu)
            run = kt.run_kleepd(conf, env=env_with(n, errno_name, count_file))
            _, fired, op = read_count(count_file)
            # SQLite calls a failed write for want of room SQLITE_FULL; a failed fsync or
            # truncate is an I/O error whatever its errno.
            words = ("disk full",) if errno_name == "ENOSPC" and op == "write" else \
                ("disk full", "I/O error") if errno_name == "ENOSPC" else ("I/O error",)
            if run.crashed():
                problems["crash"].append(f"N={n}: {run.summary()[-1500:]}")
                continue
            if not fired:
                problems["not_fired"].append(n)
                continue
            fails = [line for line in run.out.splitlines() if "failed" in line]
            if run.rc != 1 or not fails or not all("(storage)" in f and any(w in f for w in words)
                                                   for f in fails):
                problems["not_storage"].append(f"N={n} {errno_name}: rc={run.rc} {run.out.strip()}")
            if kt.query(db, "PRAGMA integrity_check") != [("ok",)]:
                problems["integrity"].append(n)
            # What `kleepctl runs` shows: the failed runs that could be recorded.
            classes = kt.query(db, "SELECT error_class FROM sync_runs WHERE outcome = 'failed' "
                                   "AND run_id > ?", (last_baseline_run,))
            if any(c != ("storage",) for c in classes):
                problems["not_storage"].append(f"N={n}: sync_runs says {classes}")
            emu.reset_stats()
            rerun = kt.run_kleepd(conf)
            if rerun.rc != 0:
                problems["rerun"].append(f"N={n}: {rerun.summary()[-1500:]}")
                continue
            served = emu.stats()["records_served"]
            reread = [s for s in kt.DATED_STREAMS if served.get(s, 0) >= totals[s]]
            if reread or "periodic full read" in rerun.err:
                problems["reread"].append(f"N={n}: {reread} served {served}")
            truth = emu.truth()
            diffs = kt.compare(db, kt.canonical_from_truth(truth, m))
            diffs += kt.compare_records(db, truth)
            if diffs:
                problems["mirror"].append(f"N={n}: {'; '.join(diffs)[:600]}")
        C.say(f"# {len(points)} fault points tried (of {total} writes, fsyncs and truncates "
              f"in the run), ENOSPC and EIO in turn")
        C.check("every fault fired, and no crash", not problems["not_fired"]
                and not problems["crash"], f"not fired at {problems['not_fired'][:20]} "
                f"{problems['crash'][:2]}")
        C.check("each faulted run fails with class storage and the words of the fault",
                not problems["not_storage"], "\n".join(problems["not_storage"][:10]))
        C.check("PRAGMA integrity_check is ok after each fault", not problems["integrity"],
                problems["integrity"][:20])
        C.check("each rerun without faults succeeds", not problems["rerun"],
                "\n".join(problems["rerun"][:3]))
        C.check("each rerun converges to the exact mirror", not problems["mirror"],
                "\n".join(problems["mirror"][:5]))
        C.check("no rerun reads a dated stream whole again", not problems["reread"],
                "\n".join(problems["reread"][:5]))
    C.finish()


if __name__ == "__main__":
    main()
