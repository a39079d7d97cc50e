#!/usr/bin/python3
"""bench_sync.py - initial API sync benchmark (`make bench`; not a test).

An initial sync of 20,000 products x 6 variants and about 100,000 order lines (50,000
orders of 2 lines on average) from the emulator, then the same at 10x smaller.  Prints:
records/s, kleepd's CPU seconds and peak RSS (from wait4 on kleepd itself), and the CPU
ratio against the sqlite3 shell inserting the same rows in one transaction, measured in
the same run: the rows are read back from kleepd's mirror and written as a .sql of
INSERTs (schema from sql/, then BEGIN; INSERT ...; COMMIT).  Two ratios: against all the
rows kleepd writes (raw records + canonical tables; the target), and against the
canonical rows alone.

Targets (issue 3): peak RSS under 64 MiB and flat when the data grows 10x; CPU per
record within 2x of the sqlite3 shell.  Exit status 0 even when a target is missed
(a benchmark reports; `make check` tests), 1 when the sync itself failed.

Environment: BUILD, KLEEPD, PY as for the integration tests; SCALE (default 1.0) scales
both sizes (e.g. SCALE=0.1 for a quick try); KEEP=1 keeps the temporary folder.
"""
import glob
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from kleeptest import (KLEEPD, ROOT, TABLES, Emulator, Merchant, TempDir, connect,  # noqa: E402
                       db_path, kleepd_args, write_config)

MIB = 1024 * 1024
RSS_TARGET_MIB = 64
CPU_RATIO_TARGET = 2.0
SKIP_TABLES = ("sync_state", "sync_runs", "sqlite_sequence")


def timed_child(args, stdin=None, stdout=None, stderr=None):
    """Run args; (returncode, wall s, CPU s, peak RSS bytes) of that child alone (wait4)."""
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdin=stdin, stdout=stdout, stderr=stderr)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    return p.returncode, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss * 1024


def sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def write_inserts(mirror, out_path, tables):
    """INSERTs for every row of tables in mirror, in one transaction; the row count."""
    db = connect(mirror)
    n = 0
    try:
        with open(out_path, "w", encoding="utf-8") as f:
            f.write("PRAGMA journal_mode = WAL;\nPRAGMA synchronous = NORMAL;\n"
                    "PRAGMA foreign_keys = ON;\n")
            for sql in sorted(glob.glob(os.path.join(ROOT, "sql", "[0-9][0-9][0-9]_*.sql"))):
                with open(sql, encoding="utf-8") as s:
                    f.write(s.read() + "\n")
            f.write("BEGIN;\n")
            for t in tables:
                cur = db.execute(f"SELECT * FROM {t}")
                cols = ", ".join(d[0] for d in cur.description)
                for row in cur:
                    f.write(f"INSERT INTO {t} ({cols}) VALUES ("
                            + ", ".join(sql_literal(v) for v in row) + ");\n")
                    n += 1
            f.write("COMMIT;\n")
    finally:
        db.close()
    return n


def table_counts(mirror):
    db = connect(mirror)
    try:
        names = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in names}
    finally:
        db.close()


def one_size(folder, products, orders, label):
    """Initial sync of one size; a dict of figures, or None when the sync failed."""
    print(f"\n== {label}: {products} products x 6 variants, {orders} orders", flush=True)
    t0 = time.monotonic()
    with Emulator(products=products, orders=orders, returns=0, variants=6,
                  start_timeout=600) as emu:
        print(f"   emulator ready in {time.monotonic() - t0:.1f} s", flush=True)
        m = Merchant("bench", emu, rate_limit=1000, overrides={"paging.limit": 500})
        conf = write_config(folder, [m], log_level="notice")
        mirror = db_path(conf, "bench")
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            rc, wall, cpu, rss = timed_child(kleepd_args(conf), stdout=out, stderr=err)
            out.seek(0)
            err.seek(0)
            text, errs = out.read().decode(), err.read().decode()
        if rc != 0:
            print(f"   kleepd failed (rc {rc}):\n{text}\n{errs[-3000:]}")
            return None
        served = emu.stats()["records_served"]
    counts = table_counts(mirror)
    records = sum(served.values())
    canon = [t for t in TABLES]
    canon_rows = sum(counts[t] for t in canon)
    # Parents before children (foreign keys are on, as in kleepd).
    all_tables = ["records"] + canon + sorted(t for t in counts if t not in SKIP_TABLES
                                              and t not in canon and t != "records"
                                              and counts[t])
    all_rows = sum(counts[t] for t in all_tables)
    print(f"   {records} records served ({served.get('products', 0)} products, "
          f"{served.get('orders', 0)} orders); mirror holds {counts['variants']} variants, "
          f"{counts['order_lines']} order lines, {canon_rows} canonical rows, "
          f"{counts['records']} raw records", flush=True)

    figures = {"records": records, "wall": wall, "cpu": cpu, "rss": rss,
               "canon_rows": canon_rows, "all_rows": all_rows,
               "db_bytes": os.path.getsize(mirror)}
    # The sqlite3 shell inserting the same rows, in one transaction.
    for key, tables in (("all", all_tables), ("canon", canon)):
        sql = os.path.join(folder, f"inserts-{key}.sql")
        n = write_inserts(mirror, sql, tables)
        target = os.path.join(folder, f"shell-{key}.db")
        with open(sql, "rb") as f:
            src, swall, scpu, _ = timed_child(["sqlite3", "-bail", target], stdin=f,
                                              stdout=subprocess.DEVNULL)
        if src != 0:
            print(f"   sqlite3 shell failed on {sql} (rc {src})")
            return None
        figures[f"shell_{key}_cpu"] = scpu
        figures[f"shell_{key}_rows"] = n
        figures[f"shell_{key}_sql_bytes"] = os.path.getsize(sql)
        os.unlink(sql)
    return figures


def main():
    scale = float(os.environ.get("SCALE", "1"))
    if not os.access(KLEEPD, os.X_OK):
        print(f"bench: {KLEEPD} is not built")
        return 1
    big_p, big_o = int(20000 * scale), int(50000 * scale)
    with TempDir(prefix="kleep-bench-") as root:
        big = one_size(os.path.join(root, "big"), big_p, big_o, "full size")
        small = one_size(os.path.join(root, "small"), big_p // 10, big_o // 10, "10x smaller")
    if not big or not small:
        return 1

    print("\n== figures (kleepd --once, initial sync; CPU and RSS from wait4 on kleepd)")
    for label, f in (("full size", big), ("10x smaller", small)):
        print(f"   {label:12s} {f['records']:7d} records in {f['wall']:6.2f} s wall = "
              f"{f['records'] / f['wall']:8.0f} records/s; kleepd CPU {f['cpu']:6.2f} s "
              f"({f['records'] / f['cpu']:8.0f} records per CPU s); peak RSS "
              f"{f['rss'] / MIB:6.1f} MiB; mirror {f['db_bytes'] / MIB:.0f} MiB")
    print("\n== CPU against the sqlite3 shell inserting the same rows (one transaction)")
    ratio = None
    for key, what in (("all", "all rows kleepd writes (raw records + canonical)"),
                      ("canon", "canonical rows only")):
        r = big["cpu"] / big[f"shell_{key}_cpu"]
        if key == "all":
            ratio = r
        print(f"   {what}: {big[f'shell_{key}_rows']} rows, .sql {big[f'shell_{key}_sql_bytes'] / MIB:.0f} MiB,"
              f" sqlite3 CPU {big[f'shell_{key}_cpu']:.2f} s; kleepd CPU {big['cpu']:.2f} s"
              f" -> ratio {r:.2f}x")

    flat = big["rss"] / small["rss"]
    print("\n== targets")
    rss_ok = big["rss"] < RSS_TARGET_MIB * MIB
    print(f"   peak RSS {big['rss'] / MIB:.1f} MiB < {RSS_TARGET_MIB} MiB: "
          f"{'met' if rss_ok else 'MISSED'}")
    flat_ok = flat < 1.5
    print(f"   RSS flat when data grows 10x: {small['rss'] / MIB:.1f} -> {big['rss'] / MIB:.1f} MiB "
          f"({flat:.2f}x; flat means under 1.5x): {'met' if flat_ok else 'MISSED'}")
    cpu_ok = ratio <= CPU_RATIO_TARGET
    print(f"   CPU per record within {CPU_RATIO_TARGET:.0f}x of the sqlite3 shell: {ratio:.2f}x: "
          f"{'met' if cpu_ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
