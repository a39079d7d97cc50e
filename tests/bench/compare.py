#!/usr/bin/python3
"""compare.py - `BASE=<git revision> make bench`: this build and BASE's side by side.

BASE is built from `git archive` into a temporary folder; both kleepd binaries then run
on the same emulator data in the same run, one after the other, each into its own
mirror, each with the profile it ships (so BASE asks for the page size it asked for).
Absolute figures on a shared machine are noise; the ratios HEAD/BASE of one run are not.

  1. API sync, rate limit lifted, on the shop of issue 13 (4,000 products, 30,000
     orders, 6,000 returns; SCALE scales it): initial sync, then an incremental run with
     nothing changed, then one with 5 % of products, orders and returns changed.  Per
     run: requests, kleepd CPU seconds per record served (wait4 on kleepd alone), peak
     RSS.
  2. Initial sync at the default rate limit (rate_limit = 2) on the same shop
     (RATE_SCALE, default 1; BASE needs about 3.5 minutes, this build about 50 s; 0.5
     halves that, but then the fixed requests of the reference streams and of
     authentication weigh twice as much in the ratio): requests and wall time.
  4. Peak RSS of this build at 10x the data (40,000 products, 300,000 orders), page size
     500.  BIG=0 skips it; BIG_BASE=1 runs BASE on it too.
  3. SFTP CSV ingestion of a returns file (ROWS, default 1,000,000; needs root for sshd):
     rows/s of each build, and the ratio to two floors: the sqlite3 shell `.import`ing the
     file into a bare table, and the sqlite3 shell inserting the same final rows into the
     mirror's own tables and indexes (schema from sql/, one transaction).

ROUNDS (default 3) repeats part 1 on fresh mirrors and a reset shop, and keeps for each
figure the round with the least CPU: CPU time moves with what else runs on the machine.

Exit status 0 even when a target is missed (a benchmark reports), 1 when a build or a
run failed.  KEEP=1 keeps the temporary folder.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
from kleeptest import (ENDPOINTS, KLEEPD, PROFILE_DIR, ROOT, Emulator, Merchant,  # noqa: E402
                       write_config, db_path, kleepd_args)
from bench_sync import timed_child, write_inserts, table_counts  # noqa: E402

MIB = 1024 * 1024
SHOP = (4000, 30000, 6000)       # products, orders, returns (issue 13)
BIG_SHOP = (40000, 300000, 6000)
CHANGED = 0.05


def build_base(rev, folder):
    """Build rev's kleepd in folder; its path, or None."""
    src = os.path.join(folder, "src")
    os.makedirs(src)
    log = os.path.join(folder, "build.log")
    with open(log, "w") as out:
        arch = subprocess.Popen(["git", "-C", ROOT, "archive", "--format=tar", rev],
                                stdout=subprocess.PIPE, stderr=out)
        tar = subprocess.run(["tar", "-x", "-C", src], stdin=arch.stdout, stderr=out)
        arch.stdout.close()
        if arch.wait() != 0 or tar.returncode != 0:
            print(f"bench: cannot export {rev} (see {log})")
            return None
        r = subprocess.run(["make", "-C", src, "-j2", "BUILD=build", "build/kleepd"],
                           stdout=out, stderr=out)
    if r.returncode != 0:
        print(f"bench: building {rev} failed:\n" + open(log).read()[-3000:])
        return None
    return os.path.join(src, "build", "kleepd")


def requests_of(stats):
    return sum(n for path, n in stats["requests"].items() if not path.startswith("/_emulator"))


def one_run(binary, conf, emu):
    """kleepd --once with binary; figures of that run alone, or None."""
    emu.reset_stats()
    args = kleepd_args(conf)
    args[0] = binary
    with tempfile.TemporaryFile() as out:
        rc, wall, cpu, rss = timed_child(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if rc != 0:
        print(f"   {binary} failed (rc {rc}):\n{text[-3000:]}")
        return None
    st = emu.stats()
    served = sum(st["records_served"].values())
    per_stream = {s: st["requests"].get(p, 0) for s, p in ENDPOINTS.items()}
    return {"wall": wall, "cpu": cpu, "rss": rss, "requests": requests_of(st),
            "per_stream": per_stream, "records": served}


def setups(root, label, emu, rate_limit, builds):
    """One config (and mirror) per build, each reading its own build's profiles; {name: conf}."""
    confs = {}
    for name, binary in builds:
        folder = os.path.join(root, f"{label}-{name}")
        os.makedirs(folder)
        m = Merchant("bench", emu, rate_limit=rate_limit)
        conf = write_config(folder, [m], log_level="notice")
        profiles = os.path.join(os.path.dirname(os.path.dirname(binary)), "lib", "profiles")
        if binary != KLEEPD:
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(text.replace(f"profile_dir = {PROFILE_DIR}\n",
                                     f"profile_dir = {profiles}\n"))
        confs[name] = conf
    return confs


def ratio(head, base):
    return head / base if base else float("inf")


def show(what, figs, builds, key, fmt, scale=1.0):
    vals = [figs[n][key] * scale for n, _ in builds]
    cells = "  ".join(f"{n} {fmt.format(v)}" for (n, _), v in zip(builds, vals))
    r = ratio(vals[1], vals[0]) if len(vals) == 2 else None
    print(f"   {what:34s} {cells}" + (f"  ratio {r:.3f}" if r is not None else ""))
    return r


API_RUNS = ("initial", "unchanged", "changed 5 %")


def api_rounds(root, builds, emu, rounds, shop):
    """rounds x (initial, unchanged, changed 5 %) on fresh mirrors and a reset shop; per run
    and build, the figures of the round with the least CPU; None when a run failed."""
    best = {run: {} for run in API_RUNS}
    for k in range(rounds):
        if k:
            emu.reset()
        confs = setups(root, f"api{k}", emu, 1000, builds)
        for run in API_RUNS:
            if run == "changed 5 %":
                for stream, n in zip(("products", "orders", "returns"), shop):
                    emu.bulk(stream, update=max(int(n * CHANGED), 1))
            for name, binary in builds:
                f = one_run(binary, confs[name], emu)
                if not f:
                    return None, None
                f["cpu_us"] = 1e6 * f["cpu"] / max(f["records"], 1)
                if name not in best[run] or f["cpu"] < best[run][name]["cpu"]:
                    best[run][name] = f
    return best, confs


def api_phase(root, builds, scale, rounds):
    shop = tuple(max(int(n * scale), 1) for n in SHOP)
    print(f"\n== API sync, rate limit lifted: {shop[0]} products, {shop[1]} orders, {shop[2]} "
          f"returns; each figure the round with the least CPU of {rounds}", flush=True)
    out = {}
    with Emulator(products=shop[0], orders=shop[1], returns=shop[2], start_timeout=600) as emu:
        best, confs = api_rounds(root, builds, emu, rounds, shop)
        if not best:
            return None
        for run in API_RUNS:
            figs = best[run]
            print(f"\n   -- {run}: {figs[builds[0][0]]['records']} records served to each")
            rr = show("requests", figs, builds, "requests", "{:8.0f}")
            rc = show("CPU us per record", figs, builds, "cpu_us", "{:8.1f}")
            show("CPU s", figs, builds, "cpu", "{:8.2f}")
            show("peak RSS MiB", figs, builds, "rss", "{:8.1f}", 1 / MIB)
            if run == "unchanged":
                for name, _ in builds:
                    ps = figs[name]["per_stream"]
                    print(f"   {name} requests per stream: "
                          + ", ".join(f"{s} {n}" for s, n in ps.items()))
            out[run] = (rr, rc, figs)
        for name, _ in builds:
            counts = table_counts(db_path(confs[name], "bench"))
            print(f"   {name} mirror: " + ", ".join(
                f"{t} {counts[t]}" for t in ("products", "variants", "orders", "order_lines",
                                             "returns", "return_lines", "records")))
    return out


def rate_phase(root, builds, scale):
    p, o, r = (max(int(n * scale), 1) for n in SHOP)
    print(f"\n== initial sync at the default rate limit (2 requests/s): {p} products, "
          f"{o} orders, {r} returns", flush=True)
    with Emulator(products=p, orders=o, returns=r, start_timeout=600) as emu:
        confs = setups(root, "rate", emu, 2, builds)
        figs = {}
        for name, binary in builds:
            f = one_run(binary, confs[name], emu)
            if not f:
                return None
            figs[name] = f
    rr = show("requests", figs, builds, "requests", "{:8.0f}")
    rw = show("wall s", figs, builds, "wall", "{:8.1f}")
    return rr, rw


def big_phase(root, builds):
    p, o, r = BIG_SHOP
    print(f"\n== 10x the data: {p} products, {o} orders, {r} returns, rate limit lifted",
          flush=True)
    with Emulator(products=p, orders=o, returns=r, start_timeout=1800) as emu:
        confs = setups(root, "big", emu, 1000, builds)
        figs = {}
        for name, binary in builds:
            f = one_run(binary, confs[name], emu)
            if not f:
                return None
            figs[name] = f
            print(f"   {name}: {f['records']} records, CPU {f['cpu']:.1f} s "
                  f"({1e6 * f['cpu'] / f['records']:.1f} us per record), "
                  f"peak RSS {f['rss'] / MIB:.1f} MiB", flush=True)
    return figs


def csv_phase(root, builds, rows):
    import bench_csvin
    import test_sftp
    print(f"\n== SFTP CSV ingestion: a returns file of {rows} rows", flush=True)
    if os.geteuid() != 0:
        print("   needs root to run sshd; skipped")
        return None
    env = test_sftp.Env()
    try:
        if not env.start_sshd():
            print("   sshd did not start")
            return None
        name = "returns/returns_2025-01-10T02-00-00.csv"
        path = os.path.join(env.shop, name)
        bench_csvin.write_returns(path, rows)
        os.utime(path, (test_sftp.OLD, test_sftp.OLD))
        figs = {}
        for bname, binary in builds:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(env.db + suffix):
                    os.unlink(env.db + suffix)
            args = env.kleepd_args()
            args[0] = binary
            rc, wall, cpu, rss, err = bench_csvin.timed_child(args)
            got = env.q1("SELECT rows FROM sftp_files WHERE path = ?", name)
            if rc != 0 or got != rows:
                print(f"   {bname}: ingestion failed (exit {rc}, {got} rows): {err[-2000:]}")
                return None
            figs[bname] = {"wall": wall, "cpu": cpu, "rss": rss, "rows_s": rows / wall,
                           "rows_cpu_s": rows / cpu}
        # Floor 1: .import into a bare table.
        imp = os.path.join(root, "import.db")
        _, iwall, icpu, _, _ = bench_csvin.timed_child(["sqlite3", imp, ".mode csv",
                                                        f".import {path} t"])
        # Floor 2: the same final rows (HEAD's mirror) into the mirror's own tables.
        counts = table_counts(env.db)
        tables = [t for t in ("records", "returns", "return_lines") if counts.get(t)]
        sql = os.path.join(root, "csv-inserts.sql")
        n = write_inserts(env.db, sql, tables)
        with open(sql, "rb") as f:
            _, swall, scpu, _ = timed_child(["sqlite3", "-bail", os.path.join(root, "shell.db")],
                                            stdin=f, stdout=subprocess.DEVNULL)
        os.unlink(sql)
    finally:
        env.cleanup()
    r = show("rows/s (wall)", figs, builds, "rows_s", "{:9.0f}")
    rc = show("rows per CPU second", figs, builds, "rows_cpu_s", "{:9.0f}")
    show("wall s", figs, builds, "wall", "{:8.2f}")
    show("CPU s", figs, builds, "cpu", "{:8.2f}")
    show("peak RSS MiB", figs, builds, "rss", "{:8.1f}", 1 / MIB)
    print(f"   floor 1, sqlite3 .import into a bare table: {iwall:.2f} s wall, {icpu:.2f} s CPU")
    print(f"   floor 2, sqlite3 inserting the same {n} final rows ({', '.join(tables)}) into "
          f"the mirror's tables and indexes: {swall:.2f} s wall, {scpu:.2f} s CPU")
    for bname, _ in builds:
        f = figs[bname]
        print(f"   {bname}: {f['wall'] / iwall:5.1f}x floor 1, {f['wall'] / swall:5.2f}x floor 2 "
              f"(wall); {f['cpu'] / icpu:5.1f}x, {f['cpu'] / scpu:5.2f}x (CPU)")
    print("   (ingestion waits on the disk most of its wall time here, and other users' I/O"
          " moves it: read the CPU ratio next to it)")
    return r, rc


def verdict(name, value, target, le=True):
    if value is None:
        print(f"   {name}: not measured")
        return
    ok = value <= target if le else value >= target
    print(f"   {name}: {value:.3f} ({'<=' if le else '>='} {target}): {'met' if ok else 'MISSED'}")


def main():
    rev = os.environ.get("BASE", "")
    if not rev:
        print("compare.py: set BASE=<git revision>")
        return 2
    if not os.access(KLEEPD, os.X_OK):
        print(f"bench: {KLEEPD} is not built")
        return 1
    scale = float(os.environ.get("SCALE", "1"))
    rate_scale = float(os.environ.get("RATE_SCALE", "1"))
    rows = int(os.environ.get("ROWS", "1000000"))
    root = tempfile.mkdtemp(prefix="kleep-compare-")
    try:
        t0 = time.monotonic()
        sha = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", rev],
                             capture_output=True, text=True).stdout.strip()
        head = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                              capture_output=True, text=True).stdout.strip()
        print(f"== building BASE {rev} ({sha}) in {root}", flush=True)
        base = build_base(rev, root)
        if not base:
            return 1
        print(f"   built in {time.monotonic() - t0:.0f} s; HEAD is {KLEEPD} ({head})")
        builds = [("BASE", base), ("HEAD", KLEEPD)]
        api = api_phase(root, builds, scale, int(os.environ.get("ROUNDS", "3")))
        rate = rate_phase(root, builds, rate_scale)
        csv = csv_phase(root, builds, rows)
        big = None
        if os.environ.get("BIG", "1") != "0":
            big = big_phase(root, builds if os.environ.get("BIG_BASE") else builds[1:])
        if not api or not rate:
            return 1
        print("\n== targets (ratios HEAD/BASE of this run)")
        verdict("initial sync requests, unlimited", api["initial"][0], 0.25)
        verdict("initial sync requests, rate limit 2", rate[0], 0.25)
        verdict("initial sync wall time, rate limit 2", rate[1], 0.25)
        verdict("CPU per record, initial", api["initial"][1], 0.5)
        verdict("CPU per record, incremental 5 % changed", api["changed 5 %"][1], 0.5)
        unchanged = api["unchanged"][2]["HEAD"]["per_stream"]
        print(f"   incremental, nothing changed: at most one request per stream: "
              f"{'met' if max(unchanged.values()) <= 1 else 'MISSED'} ({unchanged})")
        if big:
            rss = big["HEAD"]["rss"] / MIB
            print(f"   peak RSS at 10x the data {rss:.1f} MiB (< 32): "
                  f"{'met' if rss < 32 else 'MISSED'}")
        verdict("CSV rows/s (wall) HEAD/BASE", csv[0] if csv else None, 2.0, le=False)
        verdict("CSV rows per CPU second HEAD/BASE", csv[1] if csv else None, 2.0, le=False)
        print(f"   (whole comparison took {time.monotonic() - t0:.0f} s)")
        return 0
    finally:
        if os.environ.get("KEEP"):
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
