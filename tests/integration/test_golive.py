#!/usr/bin/python3
"""test_golive.py - a merchant moving from preprod to production never mixes the two (issue 15).

- Two emulators with different data, preprod and production.  The merchant is mirrored
  from preprod; its file is switched to production and kleepd reloaded: every stream
  stops with class config before any request reaches production, and status names both
  sources; `kleepctl check` still works; `kleepctl golive` archives the mirror as
  <id>.preprod.<UTC time>.db (complete without -wal, mode 0640) and the full sync it
  queues makes the mirror equal production exactly, while the archive equals preprod.
- Settings that are not the source (rate limit, intervals, languages) never stop a sync.
- rebind: the same shop at a second port (a forwarder): refused until `kleepctl rebind`,
  then the incremental run fetches only what changed, and the mirror is exact.
- A mirror made before sources were recorded adopts its source without a stop.
- The SFTP root moved (a real sshd): the scan stops the same way, naming both roots.

Environment: BUILD (default build), PY, KEEP=1 (see kleeptest.py).
"""
import glob
import os
import re
import socket
import sqlite3
import stat
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kleeptest as kt  # noqa: E402
import daemontest as dt  # noqa: E402
from test_sync import window_from_local  # noqa: E402

POLL_1H = {f"poll_{s}": "1h" for s in kt.STREAMS}


class Forwarder:
    """127.0.0.1:<free port> relayed to 127.0.0.1:target: the same shop at another address."""

    def __init__(self, target):
        self.target = target
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                cl, _ = self.srv.accept()
                up = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                return
            for a, b in ((cl, up), (up, cl)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.srv.close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


def set_source(path, environment, api_url, extra=""):
    """Point merchants.d/<id>.conf at another environment and API (what an operator edits)."""
    with open(path) as f:
        text = f.read()
    text = re.sub(r"(?m)^environment = .*\n", "", text)
    text = text.replace("[merchant]\n", f"[merchant]\nenvironment = {environment}\n", 1)
    text = re.sub(r"(?m)^api_url = .*$", f"api_url = {api_url}", text)
    with open(path + ".tmp", "w") as f:
        f.write(text + extra)
    os.replace(path + ".tmp", path)


def exact(db, emu, merchant):
    """The sync tests' comparison: every canonical table and the raw layer, as differences."""
    truth = emu.truth()
    return kt.compare(db, kt.canonical_from_truth(truth, merchant)) + kt.compare_records(db, truth)


def streams(d, mid="acme"):
    return dt.streams_of(d.status(), mid) or {}


def settled(d, since=None):
    """Every stream idle or failing (none queued or running), each attempted after since."""
    st = streams(d)
    return st and all(s["state"] not in ("running", "queued") and
                      (since is None or (s["last_attempt"] or "") >= since) for s in st.values())


def all_succeeded(d, since):
    st = streams(d)
    return settled(d, since) and all(s["error_class"] is None for s in st.values())


def requests(emu):
    return sum(emu.stats()["requests"].values())


def utc_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------- golive

def test_golive(c, tmp):
    with kt.Emulator(seed=11, products=30, orders=80, returns=20) as pre, \
            kt.Emulator(seed=22, products=24, orders=60, returns=15) as prod:
        m = kt.Merchant("acme", pre)
        conf, sock = dt.write_daemon_config(tmp, [m], defaults=POLL_1H)
        mfile = os.path.join(tmp, "merchants.d", "acme.conf")
        set_source(mfile, "preprod", pre.url)
        db = kt.db_path(conf, "acme")
        with dt.Daemon(conf, sock) as d:
            t0 = utc_now()
            if not c.check("preprod mirrored", dt.wait_until(lambda: all_succeeded(d, t0), 120),
                           (streams(d), d.log()[-2000:])):
                return
            c.no_diffs("the mirror equals preprod", exact(db, pre, m))
            c.equal("status: environment preprod", d.status("acme")["merchants"][0]["environment"],
                    "preprod")

            # Settings that are not the source: no stop.
            set_source(mfile, "preprod", pre.url, "poll_orders = 2h\n")
            with open(mfile) as f:
                text = f.read().replace("rate_limit = 1000", "rate_limit = 500")
                text = text.replace("languages = fr, en", "languages = fr, en, de")
            with open(mfile, "w") as f:
                f.write(text)
            r = d.ctl("reload")
            w = d.ctl("sync", "acme", "orders", "--wait")
            c.check("rate limit, interval and languages changed: syncs go on", r.rc == 0 and w.rc == 0,
                    (r, w))
            set_source(mfile, "preprod", pre.url)
            d.ctl("reload")

            # Production in the file, reloaded: stopped before any request.
            prod.reset_stats()
            t1 = utc_now()
            set_source(mfile, "production", prod.url)
            r = d.ctl("reload")
            c.check("reload with production: exit 0", r.rc == 0, r)
            refused = dt.wait_until(lambda: settled(d, t1) and all(
                s["error_class"] == "config" for s in streams(d).values()), 30)
            c.check("every stream stops with class config", refused, streams(d))
            w = d.ctl("sync", "acme", "orders", "--wait")
            c.check("sync --wait: exit 1, config", w.rc == 1 and "config" in w.err + w.out, w)
            c.equal("no request reached production", requests(prod), 0)
            st = d.status("acme")["merchants"][0]
            errors = [s["last_error"] or "" for s in st["streams"]]
            both = all(f"preprod (API {pre.url})" in e and f"production (API {prod.url})" in e and
                       "kleepctl golive acme" in e for e in errors)
            c.check("status names both sources and the way forward", both, errors[:1])
            c.check("status: environment production, source production",
                    st["environment"] == "production" and
                    st.get("source") == f"production (API {prod.url})", st.get("source"))
            h = d.ctl("status", "acme")
            c.check("status (human): ENV production, config error",
                    h.rc == 0 and re.search(r"acme\s+production\s+orders\s+failing", h.out) and
                    "config: syncs stopped" in h.out, h)
            c.no_diffs("the mirror still equals preprod", exact(db, pre, m))

            # check still works: it is how production is validated before going live.
            k = d.ctl("check", "acme")
            c.check("check against production: exit 0, ready", k.rc == 0 and "Ready to go live" in k.out,
                    k)

            # golive
            t2 = utc_now()
            g = d.ctl("golive", "acme")
            c.check("golive: exit 0, names the archive", g.rc == 0 and "acme.preprod." in g.out, g)
            done = dt.wait_until(lambda: all_succeeded(d, t2), 120)
            c.check("after golive every stream syncs", done, streams(d))
            c.no_diffs("the mirror equals production exactly", exact(db, prod, m))
            c.check("golive logged at notice for the merchant",
                    re.search(r"notice acme: went live", d.log()), d.log()[-1500:])
            archives = glob.glob(os.path.join(os.path.dirname(db), "acme.preprod.*"))
            c.check("one archive acme.preprod.<UTC time>.db, nothing beside it",
                    len(archives) == 1 and re.search(r"/acme\.preprod\.\d{8}T\d{6}Z\.db$", archives[0]),
                    archives)
            if archives:
                a = archives[0]
                c.equal("archive mode 0640", stat.S_IMODE(os.stat(a).st_mode), 0o640)
                c.no_diffs("the archive equals preprod exactly", exact(a, pre, m))
                c.equal("the archive records its preprod source",
                        kt.query(a, "SELECT environment FROM source_binding"), [("preprod",)])
            c.equal("the mirror records production, bound by golive",
                    kt.query(db, "SELECT environment, bound_by FROM source_binding"),
                    [("production", "golive")])
            g = d.ctl("golive", "acme")
            c.check("golive again: exit 1, nothing to do", g.rc == 1 and "still points" in g.err, g)

            test_rebind(c, d, db, mfile, prod, m)
            rc = d.stop()
            c.check("kleepd stops cleanly, no sanitizer report", rc == 0 and not re.search(
                r"Sanitizer|runtime error:|Segmentation|Assertion", d.log()), d.log()[-2000:])


# --------------------------------------------------------------------------- rebind

def test_rebind(c, d, db, mfile, prod, m):
    fwd = Forwarder(prod.port)
    try:
        cursor = kt.sync_state(db, "orders")["cursor_time"]
        t0 = utc_now()
        set_source(mfile, "production", fwd.url)
        prod.reset_stats()
        d.ctl("reload")
        refused = dt.wait_until(lambda: settled(d, t0) and all(
            s["error_class"] == "config" for s in streams(d).values()), 30)
        errors = [s["last_error"] or "" for s in streams(d).values()]
        c.check("the same shop at a new port: stopped, rebind offered", refused and all(
            "kleepctl rebind acme" in e and fwd.url in e for e in errors), errors[:1])
        c.equal("no request through the new address before rebind", requests(prod), 0)

        changed = prod.bulk("orders", update=3)["updated"]
        truth = prod.truth()
        prod.reset_stats()
        t1 = utc_now()
        r = d.ctl("rebind", "acme")
        c.check("rebind: exit 0", r.rc == 0 and "keeps its data and cursors" in r.out, r)
        c.check("after rebind every stream syncs", dt.wait_until(lambda: all_succeeded(d, t1), 120),
                streams(d))
        since = window_from_local(cursor)
        expect = sum(1 for o in truth["orders"] if o["date_upd"] >= since)
        served = prod.stats()["records_served"].get("orders")
        c.check(f"the incremental run after rebind fetched only what changed ({expect} of "
                f"{len(truth['orders'])} orders, {len(changed)} updated)",
                served == expect and expect < len(truth["orders"]) / 2, f"served {served}")
        c.no_diffs("after rebind the mirror equals the shop exactly", exact(db, prod, m))
        c.equal("bound by rebind", kt.query(db, "SELECT bound_by FROM source_binding"), [("rebind",)])
        c.check("rebind logged at notice for the merchant",
                re.search(r"notice acme: rebound to production", d.log()), d.log()[-1500:])
        r = d.ctl("rebind", "acme")
        c.check("rebind again: exit 1, nothing to rebind", r.rc == 1 and "nothing to rebind" in r.err, r)
    finally:
        fwd.close()


# --------------------------------------------------------------------------- adoption

def test_adopt(c, tmp):
    """A mirror from before sources were recorded: no stop, the current source recorded."""
    with kt.Emulator(seed=5, products=10, orders=20, returns=5) as emu:
        m = kt.Merchant("old", emu)
        conf = kt.write_config(tmp, [m])
        db = kt.db_path(conf, "old")
        run = kt.run_kleepd(conf)
        c.check("first mirror", run.all_success("old"), run.summary())
        # As the kleepd before this one left it, once upgraded: the migration that adds
        # source_binding leaves it empty (test_outcome upgrades a real schema-7 mirror).
        con = sqlite3.connect(db)
        con.execute("DELETE FROM source_binding")
        con.commit()
        con.close()
        emu.bulk("orders", add=2, update=2)
        run = kt.run_kleepd(conf)
        c.check("a mirror without a recorded source syncs on", run.all_success("old"), run.summary())
        c.equal("it adopted its source", kt.query(
            db, "SELECT environment, api_host, bound_by FROM source_binding"),
            [("production", f"127.0.0.1:{emu.port}", "first_use")])
        c.no_diffs("and equals the shop exactly", exact(db, emu, m))


# --------------------------------------------------------------------------- SFTP

def test_sftp_root(c):
    """The [sftp] root moved: the scan stops before it lists anything, naming both roots."""
    import test_sftp as ts
    if os.geteuid() != 0:
        c.check("runs as root (sshd needs it)", False, "skipped")
        return
    env = ts.Env()
    try:
        if not c.check("sshd starts", env.start_sshd()):
            return
        env.put("return_reasons/return_reasons_2025-01-14T02-00-00.csv", ts.REASONS)
        rc, out = env.scan()
        c.check("scan of root shop", rc == 0 and env.q1("SELECT count(*) FROM sftp_files") == 1, out)
        other = os.path.join(env.drop, "other")
        for sub in ("products", "orders", "returns", "return_reasons", "misc"):
            os.makedirs(os.path.join(other, sub))
        with open(os.path.join(other, "orders", "orders_2025-01-15T02-00-00.csv"), "w") as f:
            f.write(ts.ORDERS)
        mconf = os.path.join(env.etc, "merchants.d", "m.conf")
        with open(mconf) as f:
            text = f.read()
        with open(mconf, "w") as f:
            f.write(text.replace("root = shop\n", "root = other\n"))
        rc, out = env.scan()
        c.check("root moved: the scan fails, class config, both roots named",
                rc != 0 and "config" in out and "root shop)" in out and "root other)" in out, out)
        c.equal("nothing of the new root was read", env.q("SELECT path FROM sftp_files"),
                [("return_reasons/return_reasons_2025-01-14T02-00-00.csv",)])
        c.equal("the refusal is in sync_state",
                env.q("SELECT error_class FROM sync_state WHERE stream = 'sftp'"), [("config",)])
    finally:
        env.cleanup()


def main():
    c = kt.Checks()
    if not os.access(dt.KLEEPD, os.X_OK):
        c.check(f"{dt.KLEEPD} is built", False)
        c.finish()
    for name, test in (("golive", test_golive), ("adopt", test_adopt), ("sftp", test_sftp_root)):
        try:
            if name == "sftp":
                test(c)
            else:
                with kt.TempDir(prefix=f"kleep-{name}-") as tmp:
                    test(c, tmp)
        except Exception as e:  # a harness error fails the section, not the whole suite
            c.check(f"{name} ran to its end", False,
                    f"{type(e).__name__}: {e}\n{traceback.format_exc()[-3000:]}")
    c.finish()


if __name__ == "__main__":
    main()
