#!/usr/bin/python3
"""bench_outcomes.py - `SELECT * FROM size_outcomes` over 1,000,000 order lines: the plan and the time.

The mirror is filled straight with SQL (the schema from sql/, rows from recursive CTEs):
1,000,000 order lines of 333,334 orders (1 in 25 cancelled), 5,000 products in six sizes,
a return for one order in five (every line of it, tied to its order line), three reasons
classified too_large, too_small and not_fit.  The query runs three times on a warm cache
and the best and the median are printed.  Target: under 2 s.  BENCH_LINES changes the size.
"""
import glob
import os
import sqlite3
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINES = int(os.environ.get("BENCH_LINES", "1000000"))
QUERY = "SELECT * FROM size_outcomes"


def make_mirror(path, lines):
    db = sqlite3.connect(path)
    migrations = sorted(glob.glob(os.path.join(ROOT, "sql", "[0-9][0-9][0-9]_*.sql")))
    for f in migrations:
        with open(f) as sql:
            db.executescript(sql.read())
    db.execute(f"PRAGMA user_version = {len(migrations)}")
    orders = (lines + 2) // 3
    db.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                  INSERT INTO orders (order_id, reference, status, ordered_at, updated_at, currency, source)
                  SELECT i, 'WS-' || i, CASE WHEN i % 25 = 0 THEN 'cancelled' ELSE 'delivered' END,
                         strftime('%Y-%m-%dT%H:%M:%SZ', 1700000000 + i * 60, 'unixepoch'),
                         '2026-01-02T10:00:00Z', 'EUR', 'api' FROM n""", (orders,))
    db.execute("""WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
                  INSERT INTO order_lines (order_id, line_no, product_id, variant_id, sku, size_label,
                                           quantity, unit_price_minor, currency, source)
                  SELECT i / 3 + 1, i % 3 + 1, 1000 + (i * 7919) % 5000, 50000 + (i * 7919) % 30000,
                         'SKU-' || ((i * 7919) % 30000), substr('XSS M L XLXX', 1 + 2 * (i % 6), 2),
                         1 + i % 2, 1990, 'EUR', 'api' FROM n""", (lines,))
    db.execute("""INSERT INTO products (product_id, parent_reference, source)
                  SELECT DISTINCT product_id, 'P' || (product_id / 3), 'api' FROM order_lines""")
    db.execute("""INSERT INTO return_reasons (reason_id, code, label, source, fit, fit_source)
                  VALUES ('1', 'too_big', 'Too big', 'api', 'too_large', 'default'),
                         ('2', 'too_small', 'Too small', 'api', 'too_small', 'default'),
                         ('3', 'damaged', 'Damaged', 'api', 'not_fit', 'default')""")
    db.execute("""INSERT INTO returns (return_id, order_id, returned_at, updated_at, source)
                  SELECT order_id, order_id, '2026-01-01T00:00:00Z', NULL, 'api' FROM orders
                  WHERE CAST(order_id AS INTEGER) % 5 = 0""")
    db.execute("""INSERT INTO return_lines (return_id, line_no, order_id, product_id, variant_id, sku,
                                            size_label, quantity, reason_id, source)
                  SELECT l.order_id, l.line_no, l.order_id, l.product_id, l.variant_id, l.sku,
                         l.size_label, 1, 1 + l.line_no % 3, 'api' FROM order_lines l
                  WHERE CAST(l.order_id AS INTEGER) % 5 = 0""")
    db.execute("INSERT INTO cancelled_statuses (status) VALUES ('cancelled'), ('canceled')")
    db.commit()
    db.close()


def main():
    with tempfile.TemporaryDirectory(prefix="kleep-bench-outcomes-") as tmp:
        path = os.path.join(tmp, "big.db")
        t0 = time.monotonic()
        make_mirror(path, LINES)
        print(f"mirror: {LINES:,} order lines built in {time.monotonic() - t0:.0f} s "
              f"(sqlite {sqlite3.sqlite_version})")
        db = sqlite3.connect(path)
        print(f"plan of {QUERY}:")
        for row in db.execute("EXPLAIN QUERY PLAN " + QUERY):
            print(f"  {row[3]}")
        times, rows = [], 0
        for _ in range(3):
            t = time.monotonic()
            rows = len(db.execute(QUERY).fetchall())
            times.append(time.monotonic() - t)
        db.close()
        best, median = min(times), statistics.median(times)
        print(f"size_outcomes: {rows:,} rows in {best:.2f} s best, {median:.2f} s median "
              f"(target < 2 s: {'met' if best < 2 else 'MISSED'})")


if __name__ == "__main__":
    sys.exit(main())
