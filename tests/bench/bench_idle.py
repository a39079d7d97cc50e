#!/usr/bin/python3
"""bench_idle.py - 1000 merchants, idle after their first sync: CPU, memory, timer spread.

One emulator with a tiny shop (5 products, 5 orders, 2 returns) serves 1000 merchants;
every stream polls hourly.  Once every stream of every merchant has synced once, kleepd
is left alone for BENCH_IDLE_SECONDS (default 60) and measured:

- CPU: utime + stime from /proc/PID/stat over the idle window, as % of one core
  (target < 1 %);
- memory: VmRSS and VmHWM from /proc/PID/status (target < 64 MiB);
- wake-ups: the main thread's context switches over the window (how often the loop
  woke; WATCHDOG_USEC is set as the unit's WatchdogSec=60s sets it), and how the 7000
  timers' next runs (`kleepctl --json status`, next_in_s) are
  spread: distinct seconds, the busiest second, the largest share in one minute.

Not a test: it prints figures.  BENCH_MERCHANTS (default 1000) and BENCH_IDLE_SECONDS
shorten a quick try.
"""
import collections
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import kleeptest as kt  # noqa: E402
import daemontest as dt  # noqa: E402

MERCHANTS = int(os.environ.get("BENCH_MERCHANTS", "1000"))
IDLE = float(os.environ.get("BENCH_IDLE_SECONDS", "60"))
FIRST_SYNC_TIMEOUT = float(os.environ.get("BENCH_FIRST_SYNC_TIMEOUT", "1200"))
POLL = "1h"


def thread_ctxt(pid, tid):
    """Voluntary + involuntary context switches of one thread (its wake-ups, roughly)."""
    n = 0
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                n += int(line.split()[1])
    return n


def all_ctxt(pid):
    return {int(t): thread_ctxt(pid, t) for t in os.listdir(f"/proc/{pid}/task")}


def main():
    t_begin = time.monotonic()
    with kt.TempDir(prefix="kleep-bench-idle-") as tmp, \
            kt.Emulator(products=5, orders=5, returns=2) as emu:
        ms = [kt.Merchant(f"m{i:04d}", emu) for i in range(MERCHANTS)]
        defaults = {f"poll_{s}": POLL for s in kt.STREAMS}
        conf, sock = dt.write_daemon_config(tmp, ms, log_level="notice", defaults=defaults)
        print(f"{MERCHANTS} merchants against one emulator, every stream every {POLL}; "
              f"config written in {time.monotonic() - t_begin:.1f} s", flush=True)
        # As under systemd: a notify socket read at once, and the unit's WatchdogSec=60s.
        ns = dt.NotifySocket(tmp)
        env = {"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "60000000"}
        with dt.Daemon(conf, sock, extra_env=env) as d:
            t0 = time.monotonic()
            status = None
            last_print = 0
            while True:
                status = d.status()
                streams = [s for m in status["merchants"] for s in m["streams"]]
                done = sum(1 for s in streams if s["last_success"])
                failing = sum(1 for s in streams if s["error_class"])
                if done == len(streams) and status["jobs_running"] == 0 and status["queue"] == 0:
                    break
                if time.monotonic() - t0 > FIRST_SYNC_TIMEOUT:
                    print(f"first sync incomplete after {FIRST_SYNC_TIMEOUT:.0f} s: {done} of "
                          f"{len(streams)} streams synced, {failing} failing")
                    print(d.log()[-2000:])
                    return 1
                if time.monotonic() - last_print > 15:
                    print(f"  {time.monotonic() - t0:5.0f} s: {done}/{len(streams)} streams synced,"
                          f" {failing} failing, {status['jobs_running']} running, "
                          f"{status['queue']} queued", flush=True)
                    last_print = time.monotonic()
                time.sleep(2)
            first = time.monotonic() - t0
            hwm_first = dt.proc_status_kib(d.pid, "VmHWM")
            print(f"first sync of {MERCHANTS} merchants x {len(kt.STREAMS)} streams: {first:.1f} s "
                  f"({len(streams) / first:.0f} runs/s), VmHWM after it {hwm_first / 1024:.1f} MiB",
                  flush=True)

            n_status = sum(1 for _, f, _ in ns.messages if "STATUS" in f)
            print(f"sd_notify during the first sync: {n_status} STATUS= messages "
                  f"({n_status / first:.0f}/s)")

            # A status of everything costs what?
            t1 = time.monotonic()
            raw = dt.request(sock, {"v": 1, "cmd": "status"})
            t_status = time.monotonic() - t1
            size = len(json.dumps(raw))

            # Idle window.
            time.sleep(2)
            n_msgs = len(ns.messages)
            cpu0, ctx0, w0 = dt.proc_cpu_seconds(d.pid), all_ctxt(d.pid), time.monotonic()
            time.sleep(IDLE)
            cpu1, ctx1, w1 = dt.proc_cpu_seconds(d.pid), all_ctxt(d.pid), time.monotonic()
            idle_msgs = [m[2].strip() for m in ns.messages[n_msgs:]]
            window = w1 - w0
            cpu_pct = (cpu1 - cpu0) / window * 100
            rss = dt.proc_status_kib(d.pid, "VmRSS")
            hwm = dt.proc_status_kib(d.pid, "VmHWM")
            main_wakes = ctx1.get(d.pid, 0) - ctx0.get(d.pid, 0)
            worker_wakes = sum(ctx1[t] - ctx0.get(t, 0) for t in ctx1 if t != d.pid)

            # Timer spread, from a status taken after the window.
            status = d.status()
            nexts = [s["next_in_s"] for m in status["merchants"] for s in m["streams"]
                     if isinstance(s.get("next_in_s"), int)]
            per_sec = collections.Counter(nexts)
            per_min = collections.Counter(n // 60 for n in nexts)
            uniq = sorted(per_sec)
            gaps = [b - a for a, b in zip(uniq, uniq[1:])]
            runs = sum(dt.count_runs(kt.db_path(conf, m.id)) for m in ms[:50])

            print()
            print(f"idle window: {window:.1f} s")
            print(f"  CPU: {cpu1 - cpu0:.3f} s = {cpu_pct:.3f} % of one core "
                  f"(target < 1 %): {'ok' if cpu_pct < 1 else 'OVER'}")
            print(f"  memory: VmRSS {rss / 1024:.1f} MiB, VmHWM {hwm / 1024:.1f} MiB "
                  f"(target < 64 MiB): RSS {'ok' if rss < 64 * 1024 else 'OVER'}, "
                  f"HWM {'ok' if hwm < 64 * 1024 else 'OVER'}")
            print(f"  wake-ups: main thread {main_wakes} context switches "
                  f"({main_wakes / window:.2f}/s), workers {worker_wakes}")
            print(f"  sd_notify messages meanwhile: {len(idle_msgs)} "
                  f"({collections.Counter(idle_msgs).most_common(3)}) with WATCHDOG_USEC=60 s")
            print(f"  sync runs meanwhile: {runs - 7 * min(50, MERCHANTS)} extra in the first 50 "
                  "merchants (expected 0)")
            print(f"timers: {len(nexts)} next runs due in {min(nexts)}..{max(nexts)} s "
                  f"(interval 3600 s +/- 10 %)")
            print(f"  {len(per_sec)} distinct seconds; busiest second {max(per_sec.values())} timers, "
                  f"mean {len(nexts) / len(per_sec):.1f} per used second; "
                  f"largest gap between used seconds {max(gaps) if gaps else 0} s")
            print(f"  per minute: " + " ".join(f"{per_min[k]}" for k in sorted(per_min)))
            print(f"  busiest minute holds {max(per_min.values()) / len(nexts) * 100:.1f} % of the "
                  f"timers; stdev of next_in_s {statistics.pstdev(nexts):.0f} s")
            print(f"status of all {MERCHANTS} merchants: {size / 1024:.0f} KiB in "
                  f"{t_status * 1000:.0f} ms")
        ns.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
