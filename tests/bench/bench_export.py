#!/usr/bin/python3
"""bench_export.py - `kleepctl export M orders` over 1,000,000 order lines: rows/s and peak RSS.

The mirror is filled straight with SQL (the schema from sql/, rows from a
recursive CTE), kleepd runs only to tell kleepctl where the mirror is, and
kleepctl's own peak RSS is read from getrusage of the child.  Target: RSS under
32 MiB whatever the size (it streams); the figure at 100,000 lines shows it is flat.
"""
import glob
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import kleeptest as kt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
LINES = int(os.environ.get("BENCH_LINES", "1000000"))


def make_mirror(path, lines):
    db = sqlite3.connect(path)
    for f in sorted(glob.glob(os.path.join(ROOT, "sql", "[0-9][0-9][0-9]_*.sql"))):
        db.executescript(open(f).read())
    db.execute(f"PRAGMA user_version = {len(glob.glob(os.path.join(ROOT, 'sql', '[0-9][0-9][0-9]_*.sql')))}")
    orders = lines // 2
    db.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                  INSERT INTO orders (order_id, reference, status, ordered_at, updated_at, currency, source)
                  SELECT i, 'WS-' || i, 'shipped', '2026-01-01T10:00:00Z', '2026-01-02T10:00:00Z', 'EUR', 'api'
                  FROM n""", (orders,))
    db.execute("""WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
                  INSERT INTO order_lines (order_id, line_no, product_id, variant_id, sku, size_label,
                                           quantity, unit_price_minor, currency, source)
                  SELECT i / 2 + 1, i % 2 + 1, 1000 + i % 5000, 50000 + i % 30000, 'SKU-' || (i % 30000),
                         'M', 1, 1990, 'EUR', 'api' FROM n""", (lines,))
    db.commit()
    db.close()


def export(sock, merchant):
    """Run kleepctl export; its own rusage comes from wait4, not from every child's."""
    t0 = time.monotonic()
    with open(os.devnull, "w") as null, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([os.path.join(BUILD, "kleepctl"), "--socket", sock, "export", merchant, "orders"],
                             stdout=null, stderr=err, text=True)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - t0
        err.seek(0)
        msg = err.read()
    if p.returncode != 0:
        sys.exit(f"export failed: {msg}")
    rows = int(msg.split()[1])
    return rows, elapsed, ru.ru_maxrss / 1024, ru.ru_utime + ru.ru_stime


def run(lines):
    with tempfile.TemporaryDirectory(prefix="kleep-bench-export-") as tmp:
        state = os.path.join(tmp, "state")
        os.makedirs(state)
        make_mirror(os.path.join(state, "big.db"), lines)
        m = kt.Merchant("big", api_url="http://127.0.0.1:9")  # never reached: kleepd only serves status
        conf = kt.write_config(tmp, [m], state_dir=state)
        sock = os.path.join(tmp, "run", "kleepd.sock")
        text = open(conf).read().replace("[daemon]\n", f"[daemon]\nruntime_dir = {tmp}/run\n", 1)
        open(conf, "w").write(text)
        d = subprocess.Popen([os.path.join(BUILD, "kleepd"), "-f", "-c", conf], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            return export(sock, "big")
        finally:
            d.terminate()
            d.wait(timeout=10)


def main():
    for lines in (LINES // 10, LINES):
        rows, elapsed, rss, cpu = run(lines)
        print(f"export orders: {rows} lines in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s, "
              f"CPU {cpu:.2f} s, kleepctl peak RSS {rss:.1f} MiB (target < 32 MiB)")


if __name__ == "__main__":
    main()
