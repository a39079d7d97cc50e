#!/usr/bin/python3
"""bench_ctl.py - control socket `status` round trip while 4 syncs run: p50 and p99.

Four merchants page a large emulated shop (small pages, so their syncs last);
meanwhile one client sends {"v":1,"cmd":"status"} over one connection, one
request at a time, and times each reply.  Target: p99 under 5 ms.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import kleeptest as kt  # noqa: E402

BUILD = os.environ.get("BUILD", "build")
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))


def main():
    with kt.TempDir(prefix="kleep-bench-ctl-") as tmp, \
            kt.Emulator(products=2000, orders=20000, returns=2000) as emu:
        merchants = [kt.Merchant(f"shop{i}", emu, overrides={"paging.limit": 50}) for i in range(4)]
        conf = kt.write_config(tmp, merchants)
        text = open(conf).read().replace("[daemon]\n", f"[daemon]\nruntime_dir = {tmp}/run\nworkers = 4\n", 1)
        open(conf, "w").write(text)
        sock_path = os.path.join(tmp, "run", "kleepd.sock")
        d = subprocess.Popen([os.path.join(BUILD, "kleepd"), "-f", "-c", conf],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if os.path.exists(sock_path):
                    break
                time.sleep(0.05)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock_path)
            f = s.makefile("rb")
            req = b'{"v":1,"cmd":"status"}\n'
            # First runs are spread over a few seconds: measure once all four page.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                s.sendall(req)
                if json.loads(f.readline())["data"]["jobs_running"] >= 4:
                    break
                time.sleep(0.05)
            times, running = [], []
            for _ in range(REQUESTS):
                t0 = time.perf_counter()
                s.sendall(req)
                line = f.readline()
                times.append((time.perf_counter() - t0) * 1000)
                data = json.loads(line)["data"]
                running.append(data["jobs_running"])
            s.close()
            times.sort()
            p50 = statistics.median(times)
            p99 = times[int(len(times) * 0.99) - 1]
            busy = sum(1 for r in running if r >= 4)
            print(f"status round trip over {len(times)} requests: p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
                  f"max {times[-1]:.3f} ms (target p99 < 5 ms)")
            print(f"jobs running during the requests: 4 in {busy} of {len(running)} replies, "
                  f"mean {statistics.mean(running):.2f}")
        finally:
            d.terminate()
            d.wait(timeout=15)


if __name__ == "__main__":
    main()
