#!/usr/bin/python3
"""bench_disk.py - `status` p99 of one client while others read a mirror of 100,000 rows.

One merchant's mirror holds 100,000 rows each in sync_runs, sftp_files and csv_rejects.
Two clients keep asking `runs`, `files` and `rejects` for all of them (-n 100000), one
request after the other; meanwhile another client sends `status` of that merchant over
one connection and times each reply.  Target: p99 under 5 ms (DESIGN.md §2: the loop
does no long disk work; those reads are pool jobs).
"""
import json
import multiprocessing
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import kleeptest as kt  # noqa: E402
import daemontest as dt  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
LONG_POLLS = {f"poll_{s}": "1h" for s in ("products", "departments", "attributes", "sizes",
                                          "orders", "returns", "return_reasons")}


def fill(db):
    con = sqlite3.connect(db)
    with con:
        con.executemany("INSERT INTO sync_runs (stream, started, finished, outcome, pages, rows_in)"
                        " VALUES ('orders', '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z',"
                        " 'success', 3, ?)", ((i,) for i in range(ROWS)))
        con.executemany("INSERT INTO sftp_files (path, kind, size, first_seen, outcome, rows)"
                        " VALUES (?, 'orders', 1000, '2026-01-01T00:00:00Z', 'applied', 10)",
                        ((f"orders/orders_{i:07d}.csv",) for i in range(ROWS)))
        con.executemany("INSERT INTO csv_rejects (path, line, reason) VALUES"
                        " ('orders/orders_0000001.csv', ?, 'bad date in column created_at')",
                        ((i,) for i in range(ROWS)))
    con.close()


def main():
    with kt.TempDir(prefix="kleep-bench-disk-") as tmp, \
            kt.Emulator(products=5, orders=5, returns=1) as emu:
        m = kt.Merchant("shop", emu)
        conf, sock = dt.write_daemon_config(tmp, [m], defaults=LONG_POLLS)
        kt.run_kleepd(conf, merchant="shop", stream="sizes")  # makes the mirror and its schema
        fill(kt.db_path(conf, "shop"))
        stop = multiprocessing.Event()
        reads = multiprocessing.Value("i", 0)

        def reader():
            # Replies are read whole but not parsed: the bench measures kleepd, not Python.
            # A process of its own: a reader thread would hold the timing thread's GIL.
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock)
            f = s.makefile("rb")
            while not stop.is_set():
                for cmd in ("runs", "files", "rejects"):
                    s.sendall(json.dumps({"v": 1, "cmd": cmd, "merchant": "shop", "n": ROWS}).encode()
                              + b"\n")
                    f.readline()
                    with reads.get_lock():
                        reads.value += 1
            s.close()
        with dt.Daemon(conf, sock):
            threads = [multiprocessing.Process(target=reader) for _ in range(2)]
            for t in threads:
                t.start()
            time.sleep(0.5)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock)
            f = s.makefile("rb")
            req = b'{"v":1,"cmd":"status","merchant":"shop"}\n'
            times = []
            end = time.monotonic() + SECONDS
            while time.monotonic() < end:
                t0 = time.perf_counter()
                s.sendall(req)
                json.loads(f.readline())
                times.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.002)
            s.close()
            stop.set()
            for t in threads:
                t.join()
        times.sort()
        p99 = times[int(len(times) * 0.99) - 1]
        print(f"status round trip over {len(times)} requests while {reads.value} reads of {ROWS} rows "
              f"ran: p50 {statistics.median(times):.3f} ms, p99 {p99:.3f} ms, max {times[-1]:.3f} ms "
              f"(target p99 < 5 ms)")


if __name__ == "__main__":
    main()
