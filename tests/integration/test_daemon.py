#!/usr/bin/python3
"""test_daemon.py - the kleepd service: sd_notify, reload, graceful stop, the systemd unit.

- sd_notify read from the test's own NOTIFY_SOCKET: READY=1 once the control socket
  listens, STATUS= with the "N merchants, X syncing, Y failing" summary kept current,
  WATCHDOG=1 at WATCHDOG_USEC/2 or faster, RELOADING=1 + MONOTONIC_USEC on SIGHUP,
  STOPPING=1 on SIGTERM.
- SIGTERM in the middle of a large sync (20 000 orders in pages of 25) and while a
  request stalls: exit 0 within 5 s; `kleepd --once` afterwards converges to the exact
  ground truth of the emulator.
- SIGHUP adds a merchant and removes another while a third keeps syncing (and takes its
  changed settings); a broken config keeps the old one, logs FILE:LINE, and
  `kleepctl reload` exits 1 with the error.
- The unit: `systemd-analyze security --offline=true` exposure <= 2.0, and
  `systemd-analyze verify` against a `make install DESTDIR=` root.

Environment: BUILD (default build), PY, KEEP=1 (see kleeptest.py).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kleeptest as kt  # noqa: E402
import daemontest as dt  # noqa: E402

STATUS_RE = re.compile(r"^(\d+) merchants?, (\d+) syncing, (\d+) failing")
WATCHDOG_USEC = 2000000


def mono_usec():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)


def notify_values(ns, key):
    return [(t, f[key]) for t, f, _ in ns.messages if key in f]


# --------------------------------------------------------------------------- (a) + (d)

def test_notify_and_stop(c):
    """sd_notify over a whole life, and SIGTERM in the middle of a large sync."""
    with kt.TempDir(prefix="kleep-daemon-") as tmp, kt.Emulator(orders=20000) as emu:
        big = kt.Merchant("big", emu, overrides={"paging.limit": 25})
        conf, sock = dt.write_daemon_config(tmp, [big], workers=2)
        db = kt.db_path(conf, "big")
        # Each orders page waits 50 ms until the checks below are done, so the sync is
        # still paging whatever the first-run jitter; then it pages at full speed.
        emu.faults([{"endpoint": "/orders/get", "kind": "stall", "seconds": 0.05,
                     "count": 1000000}])
        ns = dt.NotifySocket(tmp)
        d = dt.Daemon(conf, sock, extra_env={"NOTIFY_SOCKET": ns.path,
                                             "WATCHDOG_USEC": str(WATCHDOG_USEC)})
        try:
            d.start(wait_socket=False)
            t_start = time.monotonic()
            ready = ns.wait_for("READY", "1", timeout=20)
            # Checked the moment READY=1 is read: the socket must already answer.
            answered = d.reachable()
            if not c.check("READY=1 arrives", ready is not None, d.log()[-2000:]):
                return
            c.check("the control socket answers when READY=1 arrives", answered)
            first_status = [(i, m) for i, m in enumerate(ns.messages) if "STATUS" in m[1]]
            c.check("STATUS= sent before READY=1",
                    bool(first_status) and first_status[0][0] < ready[0],
                    [m[2] for m in ns.messages[:5]])

            # Watchdog pings while the merchant waits for its first run.
            time.sleep(max(0.0, 4.5 - (time.monotonic() - t_start)))
            ns.poll()
            pings = [t for t, f, _ in ns.messages if f.get("WATCHDOG") == "1"]
            c.check("WATCHDOG=1 repeatedly (>= 3 in 4.5 s with WATCHDOG_USEC=2s)", len(pings) >= 3,
                    f"{len(pings)} pings")

            # SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again.
            since = len(ns.messages)
            before = mono_usec()
            d.signal(signal.SIGHUP)
            rel = ns.wait_for("RELOADING", "1", timeout=5, since=since)
            after = mono_usec()
            if c.check("RELOADING=1 on SIGHUP", rel is not None):
                mono = rel[1][1].get("MONOTONIC_USEC", "")
                c.check("RELOADING=1 carries MONOTONIC_USEC of CLOCK_MONOTONIC now",
                        mono.isdigit() and before - 1000 <= int(mono) <= after + 1000,
                        f"{mono!r} not in [{before}, {after}]")
                c.check("READY=1 again after the reload",
                        ns.wait_for("READY", "1", timeout=5, since=rel[0] + 1) is not None)

            # The large orders sync runs: STATUS says so.
            def paging():
                p = (dt.streams_of(d.status(), "big") or {}).get("orders", {}).get("progress")
                return p if p and p["pages"] >= 5 else None
            prog = dt.wait_until(paging, 30)
            if not c.check("the 20 000-order sync is paging", prog is not None, d.log()[-2000:]):
                return
            time.sleep(1.5)  # STATUS= goes out at most once a second
            ns.poll()
            statuses = [v for _, v in notify_values(ns, "STATUS")]
            c.check("every STATUS= is the 'N merchants, X syncing, Y failing' summary",
                    statuses and all(STATUS_RE.match(s) for s in statuses), statuses)
            c.check("STATUS= names the one merchant",
                    statuses and all(STATUS_RE.match(s).group(1) == "1" for s in statuses
                                     if STATUS_RE.match(s)), statuses)
            summary = d.status()["summary"]
            m = STATUS_RE.match(statuses[-1]) if statuses else None
            c.check("STATUS= kept current: '1 syncing' while the orders sync pages",
                    m is not None and m.group(2) == "1",
                    f"last STATUS={statuses[-1] if statuses else None!r}, status summary "
                    f"{summary!r}, while orders is at page {prog['pages']} (the job started on a "
                    "worker after the line was computed; nothing refreshes it until a job ends)")

            # SIGTERM in the middle of it, paging at full speed (~4 s for the whole sync).
            emu.clear_faults()
            at = prog["pages"]
            fast = dt.wait_until(lambda: (paging() or {"pages": 0})["pages"] >= at + 20, 10,
                                 step=0.01)
            c.check("the orders sync pages on at full speed", fast, d.log()[-1000:])
            since = len(ns.messages)
            t0 = time.monotonic()
            d.signal(signal.SIGTERM)
            rc = d.wait(10)
            took = time.monotonic() - t0
            c.check("SIGTERM mid-sync: exit status 0", rc == 0, f"rc={rc} {d.log()[-1500:]}")
            c.check("SIGTERM mid-sync: exits within 5 s", rc is not None and took <= 5.0,
                    f"{took:.2f} s")
            c.check("STOPPING=1 on SIGTERM",
                    ns.wait_for("STOPPING", "1", timeout=2, since=since) is not None,
                    [m[2] for m in ns.messages[since:]])
            pings = [t for t, f, _ in ns.messages if f.get("WATCHDOG") == "1"]
            gaps = [b - a for a, b in zip(pings, pings[1:])]
            c.check("WATCHDOG=1 never more than WATCHDOG_USEC apart, syncing or not",
                    gaps and max(gaps) < WATCHDOG_USEC / 1e6,
                    f"{len(pings)} pings, max gap {max(gaps) if gaps else None}")
            log = d.log()
            c.check("the log says the run was interrupted", "interrupted" in log, log[-1500:])
            runs = kt.query(db, "SELECT outcome, count(*) FROM sync_runs WHERE stream = 'orders' "
                                "GROUP BY outcome")
            c.check("the orders run is recorded as interrupted, none left running",
                    dict(runs).get("interrupted") == 1 and "running" not in dict(runs), runs)
            st = kt.sync_state(db, "orders")
            c.check("the interrupted sync left the orders cursor untouched",
                    st is not None and st["cursor_time"] is None and st["last_success"] is None, st)
        finally:
            d.stop()
            d.__exit__()
            ns.close()

        # SIGTERM while a request is stalled: the transfer in flight is aborted.
        emu.faults([{"endpoint": "/orders/get", "kind": "stall", "seconds": 30, "after": 2}])
        ns = dt.NotifySocket(tmp)
        d = dt.Daemon(conf, sock, extra_env={"NOTIFY_SOCKET": ns.path})
        try:
            d.start()
            fired = dt.wait_until(lambda: emu.faults()[0]["fired"] >= 1, 30, step=0.1)
            if c.check("a restarted kleepd resumes orders and hits the stalled request",
                       fired, d.log()[-1500:]):
                # STATUS= goes out at most once a second: give it two.
                def syncing_line():
                    ns.poll()
                    lines = [v for _, v in notify_values(ns, "STATUS")]
                    m = STATUS_RE.match(lines[-1]) if lines else None
                    return lines if m and m.group(2) == "1" else None
                dt.wait_until(syncing_line, 2.5, step=0.1)
                ns.poll()
                statuses = [v for _, v in notify_values(ns, "STATUS")]
                summary = d.status()["summary"]
                m = STATUS_RE.match(statuses[-1]) if statuses else None
                c.check("STATUS= kept current: '1 syncing' while a timer-started run stalls",
                        m is not None and m.group(2) == "1",
                        f"STATUS= lines {statuses}; status summary {summary!r}; orders state "
                        f"{(dt.streams_of(d.status(), 'big') or {}).get('orders', {}).get('state')}")
                t0 = time.monotonic()
                d.signal(signal.SIGTERM)
                rc = d.wait(10)
                took = time.monotonic() - t0
                c.check("SIGTERM during a stalled request: exit 0 within 5 s",
                        rc == 0 and took <= 5.0, f"rc={rc} after {took:.2f} s")
        finally:
            d.stop()
            d.__exit__()
            ns.close()
        emu.clear_faults()

        # A rerun converges to the exact ground truth.
        run = kt.run_kleepd(conf, timeout=180)
        c.check("kleepd --once after the interruptions succeeds", run.rc == 0 and
                run.all_success("big"), run.summary())
        c.no_diffs("the mirror equals the emulator's canonical rows", kt.compare(db, emu.canonical()))
        c.no_diffs("the raw layer holds exactly the emulator's records",
                   kt.compare_records(db, emu.truth()))
        dup = kt.query(db, "SELECT count(*) - count(DISTINCT order_id) FROM orders")[0][0]
        c.equal("no order twice", dup, 0)


def test_watchdog_pid(c):
    """WATCHDOG_PID set to kleepd's own pid pings; set to another pid it does not."""
    with kt.TempDir(prefix="kleep-daemon-wd-") as tmp:
        m = kt.Merchant("idle", api_url="http://127.0.0.1:9")
        conf, sock = dt.write_daemon_config(tmp, [m])
        for own, name in ((True, "own pid"), (False, "another pid")):
            ns = dt.NotifySocket(tmp)
            env = dict(os.environ, NOTIFY_SOCKET=ns.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
            pid_expr = "$$" if own else "1"
            p = subprocess.Popen(["sh", "-c", f'WATCHDOG_PID={pid_expr} exec "$0" -f -c "$1"',
                                  dt.KLEEPD, conf], env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                ns.wait_for("READY", "1", timeout=10)
                time.sleep(2.2)
                ns.poll()
                pings = sum(1 for _, f, _ in ns.messages if f.get("WATCHDOG") == "1")
                if own:
                    c.check("WATCHDOG_PID = kleepd's pid: WATCHDOG=1 sent", pings >= 2, pings)
                else:
                    c.check("WATCHDOG_PID = another pid: no WATCHDOG=1", pings == 0, pings)
            finally:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                ns.close()


# --------------------------------------------------------------------------- (b) + (c)

def test_reload(c):
    with kt.TempDir(prefix="kleep-daemon-reload-") as tmp, kt.Emulator() as emu:
        keep, gone = kt.Merchant("keep", emu), kt.Merchant("gone", emu)
        fast = {"poll_orders": "1s"}
        conf, sock = dt.write_daemon_config(tmp, [keep, gone],
                                            merchant_extra={"keep": fast, "gone": fast})
        mdir = os.path.join(tmp, "merchants.d")
        keep_db, gone_db, fresh_db = (kt.db_path(conf, x) for x in ("keep", "gone", "fresh"))
        with dt.Daemon(conf, sock) as d:
            ok = dt.wait_until(lambda: dt.all_synced(d.status(), "keep") and
                               dt.all_synced(d.status(), "gone") and
                               dt.count_runs(gone_db, "orders") >= 2, 30)
            if not c.check("keep and gone sync, orders every second", ok, d.log()[-2000:]):
                return

            # (b) add fresh, remove gone, change keep's returns interval; keep keeps syncing.
            dt.add_merchant_file(tmp, kt.Merchant("fresh", emu), extra=fast)
            os.unlink(os.path.join(mdir, "gone.conf"))
            with open(os.path.join(mdir, "keep.conf"), "a") as f:
                f.write("poll_returns = 30m\n")
            keep_runs = dt.count_runs(keep_db, "orders")
            log_at = len(d.log())
            d.signal(signal.SIGHUP)
            ids = dt.wait_until(lambda: dt.merchant_ids(d.status()) == ["fresh", "keep"] or None, 5)
            c.check("after SIGHUP status lists the added merchant and not the removed one",
                    ids, dt.merchant_ids(d.status()))
            log = d.log()[log_at:]
            c.check("the log says gone was removed and fresh added",
                    re.search(r"gone.*removed", log) and re.search(r"fresh.*added", log), log[-1500:])
            st = dt.streams_of(d.status(), "keep") or {}
            c.equal("a changed merchant takes its new settings (returns every 30m)",
                    st.get("returns", {}).get("interval_s"), 1800)
            c.check("the added merchant syncs every stream",
                    dt.wait_until(lambda: dt.all_synced(d.status(), "fresh"), 20),
                    dt.streams_of(d.status(), "fresh"))
            c.check("the removed merchant's runs stop (no new sync_runs in 2.5 s)",
                    _stable(gone_db, 2.5), "sync_runs of gone still grows")
            c.check("keep kept syncing through the reload",
                    dt.wait_until(lambda: dt.count_runs(keep_db, "orders") >= keep_runs + 2, 10),
                    f"{keep_runs} -> {dt.count_runs(keep_db, 'orders')}")
            bad = kt.query(keep_db, "SELECT count(*) FROM sync_runs WHERE outcome != 'success'")[0][0]
            c.equal("keep: no failed or interrupted run", bad, 0)
            r = d.ctl("status", "gone")
            c.check("kleepctl status of the removed merchant: exit 1", r.rc == 1, r)

            # (c) a broken file: the old configuration stays, the log names FILE:LINE.
            keep_conf = os.path.join(mdir, "keep.conf")
            with open(keep_conf) as f:
                n_lines = len(f.read().splitlines())
            with open(keep_conf, "a") as f:
                f.write("this line is not a setting\n")
            where = f"merchants.d/keep.conf:{n_lines + 1}"
            os.unlink(os.path.join(mdir, "fresh.conf"))  # not applied: the reload is refused whole
            log_at = len(d.log())
            keep_runs = dt.count_runs(keep_db, "orders")
            d.signal(signal.SIGHUP)
            refused = dt.wait_until(lambda: "refused" in d.log()[log_at:] and d.log()[log_at:], 5)
            c.check("a broken config on SIGHUP is refused in the log", refused, d.log()[log_at:])
            c.check("the refusal names FILE:LINE", refused and where in refused,
                    f"want {where!r} in {refused!r}")
            c.check("the daemon still runs after a refused reload", d.proc.poll() is None)
            c.equal("the old merchants stay", dt.merchant_ids(d.status()), ["fresh", "keep"])
            c.check("keep keeps syncing under the old configuration",
                    dt.wait_until(lambda: dt.count_runs(keep_db, "orders") >= keep_runs + 2, 10),
                    f"{keep_runs} -> {dt.count_runs(keep_db, 'orders')}")
            r = d.ctl("reload")
            c.check("kleepctl reload of a broken config: exit 1 naming FILE:LINE",
                    r.rc == 1 and where in r.err and "bad_config" in r.err, r)
            r = d.ctl("reload", json_out=True)
            try:
                j = r.json()
            except ValueError:
                j = {}
            c.check("kleepctl --json reload of a broken config: exit 1, code bad_config",
                    r.rc == 1 and j.get("ok") is False and
                    j.get("error", {}).get("code") == "bad_config" and
                    where in j.get("error", {}).get("message", ""), r)
            # Fixed: the reload goes through, fresh's removal included.
            with open(keep_conf) as f:
                text = f.read().replace("this line is not a setting\n", "")
            with open(keep_conf, "w") as f:
                f.write(text)
            r = d.ctl("reload")
            c.check("kleepctl reload of the fixed config: exit 0", r.rc == 0, r)
            c.equal("after the fixed reload only keep remains", dt.merchant_ids(d.status()), ["keep"])
            c.check("fresh's mirror is kept on disk", os.path.exists(fresh_db))
            d.stop()
            c.equal("kleepd exits 0 on SIGTERM", d.rc, 0)
            log = d.log()
            c.check("no crash or sanitizer report in the log",
                    not re.search(r"Sanitizer|runtime error:|Segmentation|Assertion", log), log[-2000:])


def _stable(db, seconds):
    """True when sync_runs of db does not grow for the given seconds."""
    n = dt.count_runs(db)
    time.sleep(seconds)
    return dt.count_runs(db) == n


def test_first_runs_reference_first(c):
    """A merchant's first runs go reference data first (sizes, departments, ...) then products."""
    with kt.TempDir(prefix="kleep-daemon-order-") as tmp, kt.Emulator(products=5, orders=5,
                                                                      returns=2) as emu:
        ms = [kt.Merchant(f"o{i}", emu) for i in range(3)]
        conf, sock = dt.write_daemon_config(tmp, ms, workers=2)
        with dt.Daemon(conf, sock) as d:
            ok = dt.wait_until(lambda: all(dt.all_synced(d.status(), m.id) for m in ms), 30)
            if not c.check("three merchants sync once", ok, d.log()[-1500:]):
                return
            want = ["sizes", "departments", "attributes", "return_reasons", "products", "orders",
                    "returns"]
            got = {m.id: [r[0] for r in kt.query(kt.db_path(conf, m.id),
                                                  "SELECT stream FROM sync_runs ORDER BY run_id")]
                   for m in ms}
            c.check("first runs follow sync_order (reference data before products)",
                    all(g[:7] == want for g in got.values()), got)


# --------------------------------------------------------------------------- (e)

def test_unit(c):
    unit = os.path.join(kt.ROOT, "systemd", "kleepd.service")
    if not shutil.which("systemd-analyze"):
        c.check("systemd-analyze is installed", False)
        return
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", unit],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for kleepd\.service: ([0-9.]+)", r.stdout + r.stderr)
    c.check("systemd-analyze security --offline=true: exposure <= 2.0",
            m and float(m.group(1)) <= 2.0, (r.stdout + r.stderr)[-1500:])
    if m:
        c.say(f"# exposure level {m.group(1)}")

    root = tempfile.mkdtemp(prefix="kleep-install-")
    try:
        # -o bins: install what the suite runs as built; never rebuild it here (under
        # check-asan a rebuild without the sanitizer flags would break BUILD).
        # UNITDIR: the same place whatever systemd's pkg-config file says on this machine.
        r = subprocess.run(["make", "-s", "-o", "bins", "install", f"DESTDIR={root}", "PREFIX=/usr",
                            "UNITDIR=/usr/lib/systemd/system", f"BUILD={dt.BUILD}"], cwd=kt.ROOT,
                           capture_output=True, text=True, timeout=600)
        if not c.check("make install DESTDIR=... PREFIX=/usr", r.returncode == 0,
                       (r.stdout + r.stderr)[-2000:]):
            return
        want = ["usr/sbin/kleepd", "usr/bin/kleepctl", "usr/lib/systemd/system/kleepd.service",
                "usr/lib/systemd/system/kleepd.socket", "usr/lib/sysusers.d/kleep.conf",
                "usr/lib/tmpfiles.d/kleep.conf", "usr/share/kleep/profiles/default.json",
                "etc/kleep/kleepd.conf", "usr/share/doc/kleepd/examples/kleepd.conf"]
        missing = [p for p in want if not os.path.exists(os.path.join(root, p))]
        c.check("make install installs binaries, units, sysusers/tmpfiles, profile, example",
                not missing, missing)
        man = ["usr/share/man/man8/kleepd.8", "usr/share/man/man5/kleepd.conf.5",
               "usr/share/man/man1/kleepctl.1"]
        missing = [p for p in man if not os.path.exists(os.path.join(root, p))]
        c.check("make install installs the man pages kleepd(8), kleepd.conf(5), kleepctl(1)",
                not missing, f"missing {missing} (man/ holds {sorted(os.listdir(os.path.join(kt.ROOT, 'man'))) if os.path.isdir(os.path.join(kt.ROOT, 'man')) else 'nothing'})")
        # ExecReload= runs /bin/kill: verify looks for it under the root too.
        os.makedirs(os.path.join(root, "bin"), exist_ok=True)
        shutil.copy2(shutil.which("kill") or "/bin/kill", os.path.join(root, "bin", "kill"))
        args = ["systemd-analyze", "verify", f"--root={root}", "--man=no", "--recursive-errors=no"]
        r = subprocess.run(args + ["kleepd.service"], capture_output=True, text=True, timeout=60)
        c.check("systemd-analyze verify kleepd.service: exit 0, no complaint",
                r.returncode == 0 and "kleepd" not in r.stdout + r.stderr,
                f"rc={r.returncode} {(r.stdout + r.stderr)[-1500:]}")
        r = subprocess.run(args + ["kleepd.socket"], capture_output=True, text=True, timeout=60)
        c.check("systemd-analyze verify kleepd.socket: exit 0", r.returncode == 0,
                f"rc={r.returncode} {(r.stdout + r.stderr)[-1500:]}")
        # The same invocation does catch a broken unit.
        path = os.path.join(root, "usr/lib/systemd/system/kleepd.service")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("ExecStart=/usr/sbin/kleepd", "ExecStart=/usr/sbin/no-kleepd"))
        r = subprocess.run(args + ["kleepd.service"], capture_output=True, text=True, timeout=60)
        c.check("... and fails on a unit whose ExecStart= is missing", r.returncode != 0,
                f"rc={r.returncode}")
    finally:
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(root, ignore_errors=True)


def test_readd_while_running(c):
    """A merchant removed and added back while its job runs keeps one job on its mirror."""
    with kt.TempDir(prefix="kleep-daemon-readd-") as tmp, \
            kt.Emulator(products=20, orders=20000, returns=5) as emu:
        big = kt.Merchant("big", emu, overrides={"paging.limit": 25})
        conf, sock = dt.write_daemon_config(tmp, [big])
        db = kt.db_path(conf, "big")
        path = os.path.join(tmp, "merchants.d", "big.conf")
        # Orders pages held at 50 ms each: the orders run lasts while we reload twice.
        emu.faults([{"endpoint": "/orders/get", "kind": "stall", "seconds": 0.05, "count": 100000}])
        with dt.Daemon(conf, sock) as d:
            def orders_paging():
                p = (dt.streams_of(d.status(), "big") or {}).get("orders", {}).get("progress")
                return p if p and p["pages"] >= 3 else None
            if not c.check("re-add: the big orders sync is paging", dt.wait_until(orders_paging, 30),
                           d.log()[-1500:]):
                return
            saved = open(path).read()
            os.unlink(path)
            d.signal(signal.SIGHUP)
            c.check("re-add: removed from status after the first reload",
                    dt.wait_until(lambda: dt.merchant_ids(d.status()) == [] or None, 5),
                    dt.merchant_ids(d.status()))
            with open(path, "w") as f:
                f.write(saved)
            d.signal(signal.SIGHUP)
            c.check("re-add: listed once again after the second reload",
                    dt.wait_until(lambda: dt.merchant_ids(d.status()) == ["big"] or None, 5),
                    dt.merchant_ids(d.status()))
            # Its first runs would come due within seconds if it were a new merchant: watch.
            most_jobs = most_rows = 0
            deadline = time.monotonic() + 7
            while time.monotonic() < deadline:
                most_jobs = max(most_jobs, d.status()["jobs_running"])
                most_rows = max(most_rows, kt.query(
                    db, "SELECT count(*) FROM sync_runs WHERE outcome = 'running'")[0][0])
                time.sleep(0.1)
            c.check("re-add: never two jobs at once for the one merchant", most_jobs <= 1,
                    f"{most_jobs} jobs running at once")
            c.check("re-add: never two runs at once on its mirror", most_rows <= 1,
                    f"{most_rows} runs 'running' at once")
            st = dt.streams_of(d.status(), "big") or {}
            c.equal("re-add: the orders run goes on", st.get("orders", {}).get("state"), "running")


def main():
    kt.Checks().run_all((test_notify_and_stop, test_watchdog_pid, test_reload,
                         test_readd_while_running, test_first_runs_reference_first, test_unit))


if __name__ == "__main__":
    main()
