#!/usr/bin/python3
"""test_runtime.py - what the runtime promises operators (issues 10, 11, 12).

- One rate cap and one token per merchant: with rate_limit = 2, a sync of every stream
  and `kleepctl check` of the same merchant at once; the emulator's request times show
  no calendar second with more than 2 requests plus the stated burst of 1, and one
  authentication serves the whole sync pass.

- A failure the mirror cannot record (its file root-owned while kleepd runs as another
  user) still shows: status, the summary STATUS= carries, metrics, an err line naming
  merchant and stream (issue 10 defect 1).
- `sync M --wait` without a stream waits for every stream it queued, one line each,
  exit 1 when any failed (issue 10 defect 9).
- Roles on the control socket with real users made by useradd: group kleep reads and is
  refused sync with "permission denied"; group kleep-admin may sync (issue 10 defect 8).
- metrics: `promtool check metrics` passes on a live daemon's metrics; OpenMetrics only
  when asked; no last-success sample for a stream that never succeeded (issue 11).
- status of 40 merchants, written a few per loop turn, is one well-formed reply.

Environment: BUILD (default build), PY, KEEP=1 (see kleeptest.py).
"""
import collections
import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kleeptest as kt  # noqa: E402
import daemontest as dt  # noqa: E402

LONG_POLLS = {f"poll_{s}": "1h" for s in ("products", "departments", "attributes", "sizes",
                                          "orders", "returns", "return_reasons")}
RATE_BURST = 1  # kleepd.conf(5): a request held up on its way may land in the next second


def test_rate_limit(c):
    """rate_limit = 2 holds for the merchant, whichever of its jobs calls the shop."""
    with kt.TempDir(prefix="kleep-rt-rate-") as tmp, \
            kt.Emulator(products=20, orders=40, returns=10) as emu:
        m = kt.Merchant("shop", emu, rate_limit=2, overrides={"paging.limit": 10})
        conf, sock = dt.write_daemon_config(tmp, [m], defaults=LONG_POLLS)
        with dt.Daemon(conf, sock) as d:
            emu.reset_stats()
            out = {}

            def run(name, *args):
                out[name] = d.ctl(*args, timeout=300)
            threads = [threading.Thread(target=run, args=("sync", "sync", "shop")),
                       threading.Thread(target=run, args=("check", "check", "shop"))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

            def settled():
                st = dt.streams_of(d.status(), "shop") or {}
                return st and all(s["last_success"] and s["state"] == "idle" for s in st.values())
            c.check("rate: the sync pass ran", out["sync"].rc == 0 and dt.wait_until(settled, 120),
                    f"{out['sync']} {d.status()}")
            c.check("rate: the check ran", out["check"].rc in (0, 1) and "WSHOP credentials: accepted"
                    in out["check"].out, out["check"])
            times = emu.stats()["times"]
            per_second = collections.Counter(int(t) for t, _ in times)
            worst = max(per_second.values()) if per_second else 0
            c.check(f"rate: {len(times)} requests, no second with more than 2 (+{RATE_BURST} burst)",
                    len(times) > 10 and worst <= 2 + RATE_BURST,
                    f"busiest second had {worst}: {sorted(per_second.items())}")
            auths = sum(1 for _, a in times if a in ("/authenticate", "/authentificate"))
            c.check("rate: one authentication for the sync pass, one for the check",
                    auths <= 2, f"{auths} authentications")


API_STREAMS = ("products", "departments", "attributes", "sizes", "orders", "returns",
               "return_reasons")


def test_sync_wait_all(c):
    """sync M --wait: every stream it queued, one line each; exit 1 when one failed."""
    with kt.TempDir(prefix="kleep-rt-wait-") as tmp, \
            kt.Emulator(products=10, orders=10, returns=5) as emu:
        conf, sock = dt.write_daemon_config(tmp, [kt.Merchant("shop", emu)], defaults=LONG_POLLS)
        with dt.Daemon(conf, sock) as d:
            r = d.ctl("sync", "shop", "--wait", timeout=120)
            lines = [ln for ln in r.out.splitlines() if ln.startswith("shop/")]
            c.check("wait-all: exit 0 when every stream succeeded", r.rc == 0, r)
            c.equal("wait-all: one line per API stream", sorted(ln.split(":")[0] for ln in lines),
                    sorted(f"shop/{s}" for s in API_STREAMS))
            emu.revoke("/returns/get")
            r = d.ctl("sync", "shop", "--wait", timeout=120)
            lines = [ln for ln in r.out.splitlines() if ln.startswith("shop/")]
            c.check("wait-all: exit 1 when a stream failed", r.rc == 1, r)
            c.check("wait-all: the failed stream's line says why",
                    any(ln.startswith("shop/returns: failed (unauthorized)") for ln in lines), r)
            c.equal("wait-all: still one line per stream", len(lines), len(API_STREAMS))


class Users:
    """System users (and groups) made with useradd/groupadd for a test, removed after."""

    def __init__(self):
        self.users, self.groups = [], []

    def group(self, name):
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            subprocess.run(["groupadd", "--system", name], check=True)
            self.groups.append(name)
            return grp.getgrnam(name).gr_gid

    def user(self, name, groups=()):
        for g in groups:
            self.group(g)
        subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell",
                        "/usr/sbin/nologin"] + (["--groups", ",".join(groups)] if groups else [])
                       + [name], check=True)
        self.users.append(name)
        return pwd.getpwnam(name)

    def run_as(self, name):
        pw = pwd.getpwnam(name)
        return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for u in self.users:
            subprocess.run(["userdel", u], capture_output=True)
        for g in self.groups:
            subprocess.run(["groupdel", g], capture_output=True)
        return False


def ctl_as(users, user, sock, *args):
    p = subprocess.run(users.run_as(user) + [dt.KLEEPCTL, "--socket", sock] + list(args),
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    return dt.CtlResult(p.returncode, p.stdout, p.stderr)


def open_path(path):
    """Let other users reach path: every folder above it traversable."""
    while path not in ("/", ""):
        st = os.stat(path)
        if os.path.isdir(path):
            os.chmod(path, st.st_mode | 0o711)
        path = os.path.dirname(path)


def test_roles(c):
    """group kleep reads; kleep-admin (or root, kleepd's user) changes."""
    if os.geteuid() != 0:
        c.check("roles: the test runs as root (useradd)", False)
        return
    with kt.TempDir(prefix="kleep-rt-roles-") as tmp, Users() as users, \
            kt.Emulator(products=5, orders=5, returns=1) as emu:
        users.group("kleep")
        users.group("kleep-admin")
        users.user("kt-reader", ["kleep"])
        users.user("kt-admin", ["kleep", "kleep-admin"])
        users.user("kt-outsider")
        conf, sock = dt.write_daemon_config(tmp, [kt.Merchant("shop", emu)], defaults=LONG_POLLS)
        with dt.Daemon(conf, sock) as d:
            open_path(os.path.dirname(sock))
            r = ctl_as(users, "kt-reader", sock, "status")
            c.check("roles: a user in group kleep reads status", r.rc == 0 and "shop" in r.out, r)
            r = ctl_as(users, "kt-reader", sock, "sync", "shop")
            c.check("roles: ... and is refused sync with the words 'permission denied'",
                    r.rc == 1 and "permission denied" in r.err and "Broken pipe" not in r.err, r)
            r = ctl_as(users, "kt-reader", sock, "reload")
            c.check("roles: ... and reload", r.rc == 1 and "permission denied" in r.err, r)
            r = ctl_as(users, "kt-admin", sock, "sync", "shop")
            c.check("roles: a user in kleep-admin may sync", r.rc == 0 and "queued" in r.out, r)
            os.chmod(sock, 0o666)  # only the daemon's check can refuse the outsider now
            r = ctl_as(users, "kt-outsider", sock, "status")
            c.check("roles: a user in neither group gets permission_denied, not a broken pipe",
                    r.rc == 1 and "permission denied" in r.err and "Broken pipe" not in r.err, r)
            os.chmod(sock, 0o660)
            c.check("roles: the log names the refused reader",
                    re.search(r"refused 'sync' to uid %d" % pwd.getpwnam("kt-reader").pw_uid, d.log()),
                    d.log()[-1500:])


def test_unrecorded_failure(c):
    """A mirror kleepd cannot write: the failure still shows in status, STATUS=, metrics, log."""
    if os.geteuid() != 0:
        c.check("unrecorded: the test runs as root (useradd)", False)
        return
    with kt.TempDir(prefix="kleep-rt-ro-") as tmp, Users() as users, \
            kt.Emulator(products=5, orders=5, returns=1) as emu:
        users.user("kt-kleepd")
        conf, sock = dt.write_daemon_config(tmp, [kt.Merchant("shop", emu)], defaults=LONG_POLLS)
        ns = dt.NotifySocket(tmp)
        subprocess.run(["chown", "-R", "kt-kleepd:", tmp], check=True)
        open_path(tmp)
        with dt.Daemon(conf, sock, prefix=users.run_as("kt-kleepd"),
                       extra_env={"NOTIFY_SOCKET": ns.path}) as d:
            r = d.ctl("sync", "shop", "orders", "--wait", timeout=120)
            c.check("unrecorded: the first run succeeds", r.rc == 0, r)
            db = kt.db_path(conf, "shop")
            os.chown(db, 0, 0)
            os.chmod(db, 0o644)
            r = d.ctl("sync", "shop", "orders", "--wait", timeout=120)
            c.check("unrecorded: a run on the root-owned mirror fails", r.rc == 1, r)
            st = (dt.streams_of(d.status(), "shop") or {}).get("orders", {})
            c.check("unrecorded: status shows the stream failing, with the error",
                    st.get("state") == "failing" and st.get("error_class")
                    and "readonly" in (st.get("last_error") or ""), st)
            c.check("unrecorded: the summary counts it failing",
                    "1 failing" in d.status()["summary"], d.status()["summary"])
            c.check("unrecorded: STATUS= says 1 failing",
                    ns.wait_for("STATUS", None, timeout=5) and dt.wait_until(
                        lambda: any("1 failing" in f.get("STATUS", "") for _, f, _ in ns.messages), 5),
                    [f.get("STATUS") for _, f, _ in ns.messages][-5:])
            m = d.ctl("metrics").out
            c.check("unrecorded: metrics count the error",
                    re.search(r'^kleep_errors_total\{merchant="shop",stream="orders"\} 1$', m, re.M), m)
            c.check("unrecorded: an err line names merchant and stream",
                    re.search(r"kleepd err shop/orders.*readonly", d.log()), d.log()[-1500:])
        ns.close()


def test_metrics(c):
    """Prometheus text that promtool accepts; OpenMetrics only when asked."""
    promtool = shutil.which("promtool")
    if not promtool:
        c.check("metrics: promtool is installed (Debian package prometheus)", False)
        return
    with kt.TempDir(prefix="kleep-rt-metrics-") as tmp, \
            kt.Emulator(products=5, orders=5, returns=1) as emu:
        conf, sock = dt.write_daemon_config(tmp, [kt.Merchant("shop", emu)], defaults=LONG_POLLS)
        with dt.Daemon(conf, sock) as d:
            before = d.ctl("metrics").out
            c.check("metrics: no last-success sample for a stream that never succeeded",
                    "kleep_last_success_timestamp_seconds{" not in before, before)
            d.ctl("sync", "shop", "orders", "--wait", timeout=120)
            text = d.ctl("metrics").out
            p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                               text=True)
            c.check("metrics: promtool check metrics passes", p.returncode == 0,
                    p.stdout + p.stderr + text[:1500])
            c.check("metrics: no '# EOF' in the Prometheus text", "# EOF" not in text, text[-300:])
            c.check("metrics: the synced stream has its last-success sample",
                    'kleep_last_success_timestamp_seconds{merchant="shop",stream="orders"}' in text, text)
            # What the example alerting rules (examples/prometheus) divide by and count.
            c.check("metrics: each stream's interval, as configured (1h)",
                    'kleep_interval_seconds{merchant="shop",stream="orders"} 3600\n' in text, text)
            c.check("metrics: no SFTP rejected-files counter for a merchant without [sftp]",
                    "kleep_sftp_files_rejected_total{" not in text, text)
            om = d.ctl("metrics", "--openmetrics").out
            c.check("metrics: --openmetrics ends with # EOF and types counters by family",
                    om.rstrip().endswith("# EOF") and "# TYPE kleep_runs counter" in om, om[-600:])


def test_many_status(c):
    """status of 40 merchants is one well-formed reply listing each once."""
    with kt.TempDir(prefix="kleep-rt-many-") as tmp, \
            kt.Emulator(products=2, orders=2, returns=1) as emu:
        ms = [kt.Merchant(f"m{i:02d}", emu) for i in range(40)]
        conf, sock = dt.write_daemon_config(tmp, ms, defaults=LONG_POLLS)
        with dt.Daemon(conf, sock) as d:
            st = d.status()
            c.equal("many: 40 merchants, each once", dt.merchant_ids(st), sorted(m.id for m in ms))
            c.check("many: the daemon's part is there too", "summary" in st and "uptime_s" in st, st)


def main():
    kt.Checks().run_all((test_rate_limit, test_sync_wait_all, test_roles, test_unrecorded_failure,
                         test_metrics, test_many_status))


if __name__ == "__main__":
    main()
