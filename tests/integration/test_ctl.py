#!/usr/bin/python3
"""test_ctl.py - kleepctl and the control socket against a real kleepd and the emulator.

- Every kleepctl command in human and --json form: status (columns, one merchant),
  runs (-n, --stream), sync (queue all; --wait exits with the run's outcome; --full
  resets that one stream only), pause/resume (no run while paused), reload, metrics
  (OpenMetrics ending in # EOF), version, files/rejects (empty without SFTP), check
  (a revoked endpoint is unauthorized and exits 1), reproject, export,
  dimensions-template; unknown merchant -> 1, no daemon -> 3 naming the socket,
  bad usage -> 2.
- The socket itself: malformed JSON, wrong types, no "v", another version, an unknown
  command, a 1 MiB line, pipelined requests, a silent client, a client that never reads,
  500 concurrent clients asking status: every well-formed request answered, syncs keep
  running; a socket of mode 0660; a peer that is neither root, kleepd's user nor in
  group kleep is refused.

Environment: BUILD (default build), PY, KEEP=1 (see kleeptest.py).
"""
import grp
import json
import os
import pwd
import re
import selectors
import socket
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kleeptest as kt  # noqa: E402
import daemontest as dt  # noqa: E402

STATUS_COLUMNS = ("MERCHANT", "ENV", "STREAM", "STATE", "LAST SUCCESS", "AGE", "ROWS", "PROGRESS",
                  "NEXT", "ERROR")
STREAM_KEYS = ("stream", "state", "last_success", "age_s", "cursor", "rows_total", "next_run",
               "next_in_s", "error_class", "last_error", "interval_s")
STATUS_RE = re.compile(r"^(\d+) merchants?, (\d+) syncing, (\d+) failing")
METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$')


def jload(r):
    try:
        return json.loads(r.out)
    except ValueError:
        return None


def both(d, *args):
    """(human CtlResult, json CtlResult) of one kleepctl command."""
    return d.ctl(*args), d.ctl(*args, json_out=True)


def idle(d, merchant):
    st = dt.streams_of(d.status(), merchant) or {}
    return st and all(s["state"] not in ("running", "queued") for s in st.values())


def wait_idle(d, merchant, timeout=20):
    return dt.wait_until(lambda: idle(d, merchant), timeout)


def openmetrics_problems(text):
    """What makes text not OpenMetrics (a short list; [] when fine)."""
    problems = []
    if not text.endswith("# EOF\n"):
        problems.append(f"does not end with '# EOF\\n': {text[-40:]!r}")
    typed = {}
    for line in text.splitlines()[:-1]:
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            typed[name] = kind
        elif line.startswith("# HELP "):
            continue
        elif line.startswith("#"):
            problems.append(f"stray comment {line!r}")
        else:
            m = METRIC_RE.match(line)
            if not m:
                problems.append(f"bad sample {line!r}")
                continue
            name = m.group(1)
            fam = name[:-6] if name.endswith("_total") and name[:-6] in typed else name
            if fam not in typed:
                problems.append(f"sample without # TYPE: {line!r}")
            elif typed[fam] == "counter" and not name.endswith("_total"):
                problems.append(f"counter sample without _total: {line!r}")
    return problems[:10]


# --------------------------------------------------------------------------- kleepctl

def test_offline(c, sock):
    """Without a daemon: usage errors are 2, an unreachable socket is 3."""
    for j in (False, True):
        r = dt.kleepctl(sock, "status", json_out=j)
        c.check(f"no daemon{' --json' if j else ''}: exit 3 naming the socket",
                r.rc == 3 and sock in r.err, r)
    r = dt.kleepctl(sock, "status")
    c.check("no daemon: a hint how to point kleepctl elsewhere",
            "--socket" in r.err or "KLEEP_SOCKET" in r.err, r)
    for args in ([], ["frobnicate"], ["runs"], ["sync", "a", "b", "c"], ["status", "--bogus"],
                 ["metrics", "extra"], ["pause"], ["rejects"]):
        r = dt.kleepctl(sock, *args)
        c.check(f"bad usage {' '.join(args) or '(no command)'}: exit 2", r.rc == 2, r)


def test_commands(c, d, emu, conf):
    calm_db, shop_db = kt.db_path(conf, "calm"), kt.db_path(conf, "shop")

    # status
    h, j = both(d, "status")
    head = h.out.splitlines()[2] if len(h.out.splitlines()) > 2 else ""
    c.check("status: exit 0, every column", h.rc == 0 and all(col in head for col in STATUS_COLUMNS),
            h)
    c.check("status: a summary line first ('kleepd V: N merchants, X syncing, Y failing')",
            re.match(r"kleepd \S+: \d+ merchants?, \d+ syncing, \d+ failing", h.out), h.out[:300])
    rows = [line.split() for line in h.out.splitlines()[3:] if line.strip()]
    c.equal("status: one row per merchant and stream", sorted({(r[0], r[2]) for r in rows}),
            sorted((m, s) for m in ("calm", "shop") for s in kt.STREAMS))
    calm_orders = [r for r in rows if r[:3] == ["calm", "production", "orders"]]
    c.check("status: calm/orders, environment production, idle with its 200 rows",
            calm_orders and calm_orders[0][3] == "idle" and "200" in calm_orders[0], calm_orders)
    data = jload(j)
    ok = j.rc == 0 and data and STATUS_RE.match(data.get("summary", "")) and \
        dt.merchant_ids(data) == ["calm", "shop"]
    c.check("status --json: summary and both merchants", ok, j)
    if data:
        streams = [s for m in data["merchants"] for s in m["streams"]]
        c.check("status --json: every stream has state, last success, age, cursor, rows, next run,"
                " error", all(all(k in s for k in STREAM_KEYS) for s in streams),
                [sorted(set(STREAM_KEYS) - set(s)) for s in streams][:3])
        calm = dt.streams_of(data, "calm")
        c.check("status --json: calm synced: last_success, age_s, next_in_s, cursor of orders",
                all(s["last_success"] and isinstance(s["age_s"], int) and
                    isinstance(s["next_in_s"], int) for s in calm.values()) and
                calm["orders"]["cursor"] and calm["orders"]["rows_total"] == 200, calm.get("orders"))
    h, j = both(d, "status", "calm")
    data = jload(j)
    c.check("status calm: only calm", h.rc == 0 and "shop" not in h.out and "calm" in h.out and
            j.rc == 0 and data and dt.merchant_ids(data) == ["calm"], (h, j))

    # runs
    h, j = both(d, "runs", "calm")
    lines = h.out.splitlines()
    c.check("runs calm: a table with RUN ID, STREAM, OUTCOME and a row per run",
            h.rc == 0 and lines and all(k in lines[0] for k in ("RUN ID", "STREAM", "OUTCOME")) and
            len(lines) - 1 == min(20, dt.count_runs(calm_db)), h)
    data = jload(j)
    c.check("runs calm --json: newest first, with outcome, pages, rows",
            j.rc == 0 and isinstance(data, list) and data and
            [r["run_id"] for r in data] == sorted((r["run_id"] for r in data), reverse=True) and
            all(k in data[0] for k in ("run_id", "stream", "outcome", "pages", "rows_in")), j)
    r = d.ctl("runs", "calm", "-n", "3", json_out=True)
    c.check("runs calm -n 3: three rows", r.rc == 0 and len(jload(r) or []) == 3, r)
    r = d.ctl("runs", "calm", "-n", "2")
    c.check("runs calm -n 2 (human): two rows", r.rc == 0 and len(r.out.splitlines()) == 3, r)
    r = d.ctl("runs", "calm", "--stream", "orders", json_out=True)
    c.check("runs calm --stream orders: only orders",
            r.rc == 0 and jload(r) and all(x["stream"] == "orders" for x in jload(r)), r)

    # sync: everything now
    before = dt.count_runs(calm_db)
    h = d.ctl("sync", "calm")
    c.check("sync calm: exit 0, queued", h.rc == 0 and "queued" in h.out, h)
    c.check("sync calm: all seven streams run",
            dt.wait_until(lambda: dt.count_runs(calm_db) >= before + 7, 15) and wait_idle(d, "calm"),
            f"{before} -> {dt.count_runs(calm_db)}")
    j = d.ctl("sync", "calm", json_out=True)
    data = jload(j)
    c.check("sync calm --json: queued 7", j.rc == 0 and data and data.get("queued") == 7, j)
    wait_idle(d, "calm")
    dt.wait_until(lambda: dt.count_runs(calm_db) >= before + 14, 15)
    wait_idle(d, "calm")

    # sync --wait: the run's outcome
    h = d.ctl("sync", "calm", "orders", "--wait")
    c.check("sync calm orders --wait: exit 0, 'calm/orders: success'",
            h.rc == 0 and h.out.startswith("calm/orders: success"), h)
    j = d.ctl("sync", "calm", "orders", "--wait", json_out=True)
    data = jload(j) or {}
    last = kt.query(calm_db, "SELECT run_id, outcome FROM sync_runs WHERE stream = 'orders' "
                             "ORDER BY run_id DESC LIMIT 1")
    c.check("sync calm orders --wait --json: outcome success and the run's id",
            j.rc == 0 and data.get("outcome") == "success" and last and
            data.get("run_id") == last[0][0], (j, last))

    # sync --full: only that stream's cursor
    wait_idle(d, "calm")
    inc = jload(d.ctl("sync", "calm", "products", "--wait", json_out=True)) or {}
    states = {s: kt.sync_state(calm_db, s) for s in kt.STREAMS}
    time.sleep(1.1)  # a new second, so last_full visibly moves
    h = d.ctl("sync", "calm", "products", "--full", "--wait")
    c.check("sync calm products --full --wait: exit 0", h.rc == 0, h)
    full = jload(d.ctl("runs", "calm", "-n", "1", "--stream", "products", json_out=True)) or [{}]
    after = {s: kt.sync_state(calm_db, s) for s in kt.STREAMS}
    n_products = len(emu.truth("products"))
    c.check("--full re-reads the whole stream (incremental read few, full read all)",
            inc.get("rows", 99999) < n_products and full[0].get("rows_in") == n_products,
            f"incremental {inc.get('rows')}, full {full[0].get('rows_in')}, {n_products} products")
    c.check("--full: products' last_full moves",
            after["products"] and states["products"] and
            after["products"]["last_full"] > states["products"]["last_full"],
            (states["products"], after["products"]))
    changed = [s for s in kt.STREAMS if s != "products" and states[s] != after[s]]
    c.check("--full: every other stream's sync_state unchanged", not changed,
            {s: (states[s], after[s]) for s in changed})

    # a failing run, check, unauthorized state
    emu.revoke("/returns/get")
    try:
        h = d.ctl("sync", "calm", "returns", "--wait")
        c.check("sync --wait of a failing run: exit 1 naming the outcome",
                h.rc == 1 and "failed" in h.err and "returns" in h.err, h)
        j = d.ctl("sync", "calm", "returns", "--wait", json_out=True)
        data = jload(j) or {}
        c.check("sync --wait --json of a failing run: exit 1, ok false",
                j.rc == 1 and data.get("ok") is False and data.get("error", {}).get("code"), j)
        st = d.status()
        ret = (dt.streams_of(st, "calm") or {}).get("returns", {})
        c.check("status: the revoked stream is unauthorized, with its class and error",
                ret.get("state") == "unauthorized" and ret.get("error_class") == "unauthorized" and
                ret.get("last_error"), ret)
        m = STATUS_RE.match(st.get("summary", ""))
        c.check("status summary counts the failing merchant", m and m.group(3) == "1",
                st.get("summary"))
        h = d.ctl("status", "calm")
        c.check("status (human): the error column shows the class",
                any("returns" in line and "unauthorized" in line for line in h.out.splitlines()), h)
        h, j = both(d, "check", "calm")
        c.check("check with a revoked endpoint: exit 1, /returns/get unauthorized",
                h.rc == 1 and re.search(r"/returns/get\s+returns\s+unauthorized", h.out), h)
        data = jload(j) or {}
        ep = {e.get("endpoint"): e for e in data.get("endpoints", [])}
        c.check("check --json with a revoked endpoint: exit 1, go_live false, 403",
                j.rc == 1 and data.get("go_live") is False and
                ep.get("/returns/get", {}).get("status") == "unauthorized" and
                ep.get("/returns/get", {}).get("http") == 403, j)
    finally:
        emu.unrevoke()
    h = d.ctl("sync", "calm", "returns", "--wait")
    c.check("after unrevoke sync --wait: exit 0", h.rc == 0, h)
    h, j = both(d, "check", "calm")
    c.check("check: exit 0, ready to go live", h.rc == 0 and "Ready to go live" in h.out, h)
    c.check("check --json: go_live true", j.rc == 0 and (jload(j) or {}).get("go_live") is True, j)

    # pause / resume
    h = d.ctl("pause", "shop")
    c.check("pause shop: exit 0", h.rc == 0, h)
    wait_idle(d, "shop")
    st = d.status("shop")
    shop = dt.streams_of(st, "shop") or {}
    c.check("status: a paused merchant says paused, no next run",
            st["merchants"][0]["paused"] is True and
            all(s["state"] == "paused" and s["next_in_s"] is None for s in shop.values()), shop)
    n0 = dt.count_runs(shop_db)
    time.sleep(3)
    c.equal("pause: no run in 3 s (orders every 1 s)", dt.count_runs(shop_db), n0)
    h = d.ctl("sync", "shop", "orders")
    c.check("sync of a paused merchant: exit 1 'paused'", h.rc == 1 and "paused" in h.err, h)
    j = d.ctl("pause", "shop", json_out=True)
    c.check("pause --json: paused true", j.rc == 0 and (jload(j) or {}).get("paused") is True, j)

    # sync --wait while another stream of the merchant runs (shop stays paused: no
    # other merchant's request takes the stalled slot)
    emu.faults([{"endpoint": "/orders/get", "kind": "stall", "seconds": 3}])
    try:
        wait_idle(d, "calm")
        h = d.ctl("sync", "calm", "orders")
        running = dt.wait_until(
            lambda: (dt.streams_of(d.status(), "calm") or {}).get("orders", {}).get("state")
            == "running", 5)
        time.sleep(0.3)
        st = d.status()
        orders = (dt.streams_of(st, "calm") or {}).get("orders", {})
        c.check("status --json: a running stream shows its progress",
                running and "progress" in orders and "pages" in orders["progress"], orders)
        h = d.ctl("status", "calm")
        c.check("status (human): PROGRESS of the running stream",
                any(re.search(r"orders\s+running.*\d+ pages, \d+ rows", line)
                    for line in h.out.splitlines()), h)
        m = STATUS_RE.match(st.get("summary", ""))
        c.check("status summary: '1 syncing' while calm's orders run",
                m and m.group(2) == "1", f"summary {st.get('summary')!r}, jobs_running "
                f"{st.get('jobs_running')}, queue {st.get('queue')}")
        t0 = time.monotonic()
        h = d.ctl("sync", "calm", "returns", "--wait")
        c.check("sync M S --wait while another stream of M runs: waits, then exit 0",
                h.rc == 0 and h.out.startswith("calm/returns: success"),
                f"{h} after {time.monotonic() - t0:.1f} s")
    finally:
        emu.clear_faults()
    wait_idle(d, "calm")

    h = d.ctl("resume", "shop")
    c.check("resume shop: exit 0", h.rc == 0, h)
    n0 = dt.count_runs(shop_db)
    c.check("resume: runs start again",
            dt.wait_until(lambda: dt.count_runs(shop_db) >= n0 + 2, 8),
            f"{n0} -> {dt.count_runs(shop_db)}")
    j = d.ctl("resume", "shop", json_out=True)
    c.check("resume --json: paused false", j.rc == 0 and (jload(j) or {}).get("paused") is False, j)

    # metrics
    h, j = both(d, "metrics", "--openmetrics")  # the default, Prometheus text: test_runtime.py
    c.check("metrics --openmetrics: exit 0, OpenMetrics ending in # EOF",
            h.rc == 0 and not openmetrics_problems(h.out), openmetrics_problems(h.out) or h)
    for name in ("kleep_merchants 2", "kleep_jobs_running ", "kleep_queue_length ",
                 'kleep_last_success_timestamp_seconds{merchant="calm",stream="orders"} ',
                 'kleep_rows{merchant="calm",stream="orders"} 200',
                 'kleep_runs_total{merchant="shop",stream="orders"} ',
                 'kleep_errors_total{merchant="calm",stream="returns"} ',
                 'kleep_last_run_duration_seconds{merchant="calm",stream="orders"} '):
        c.check(f"metrics has {name.strip()}", name in h.out, h.out[:600])
    c.check("metrics --openmetrics --json: the same text", j.rc == 0 and
            (jload(j) or {}).get("text", "").endswith("# EOF\n"), j)

    # version
    h, j = both(d, "version")
    c.check("version: kleepctl and kleepd versions, protocol",
            h.rc == 0 and re.search(r"^kleepctl \S+\nkleepd \S+ \(protocol 1, schema \d+\)", h.out), h)
    data = jload(j) or {}
    c.check("version --json: version, protocol 1, schema",
            j.rc == 0 and data.get("version") and data.get("protocol") == 1 and
            isinstance(data.get("schema"), int), j)
    r = dt.kleepctl(None, "--version")
    c.check("kleepctl --version", r.rc == 0 and r.out.startswith("kleepctl "), r)

    # files / rejects without SFTP
    for args in (("files", "calm"), ("rejects", "calm"), ("rejects", "calm", "orders/x.csv")):
        h, j = both(d, *args)
        c.check(f"{' '.join(args)}: exit 0, (none)", h.rc == 0 and h.out.strip() == "(none)", h)
        c.check(f"{' '.join(args)} --json: []", j.rc == 0 and jload(j) == [], j)

    # reload
    h, j = both(d, "reload")
    c.check("reload: exit 0", h.rc == 0 and h.out.startswith("ok"), h)
    c.check("reload --json: merchants 2", j.rc == 0 and (jload(j) or {}).get("merchants") == 2, j)

    # reproject, export, dimensions-template
    h, j = both(d, "reproject", "calm")
    c.check("reproject calm: exit 0", h.rc == 0 and j.rc == 0 and
            (jload(j) or {}).get("records", 0) > 0, (h, j))
    h = d.ctl("export", "calm", "orders")
    c.check("export calm orders: CSV with a header and the order lines",
            h.rc == 0 and h.out.startswith("order_id,") and len(h.out.splitlines()) > 200, h)
    h = d.ctl("dimensions-template", "calm")
    c.check("dimensions-template calm: CSV", h.rc == 0 and h.out.startswith("product_id,"), h)

    # unknown merchant
    for args in (("status", "nosuch"), ("runs", "nosuch"), ("sync", "nosuch"),
                 ("sync", "nosuch", "orders", "--wait"), ("pause", "nosuch"), ("resume", "nosuch"),
                 ("files", "nosuch"), ("rejects", "nosuch"), ("check", "nosuch"),
                 ("reproject", "nosuch"), ("export", "nosuch", "orders")):
        h, j = both(d, *args)
        data = jload(j) or {}
        c.check(f"{' '.join(args)}: exit 1 both forms, no_such_merchant",
                h.rc == 1 and "nosuch" in h.err and j.rc == 1 and
                data.get("error", {}).get("code") == "no_such_merchant", (h, j))
    h = d.ctl("sync", "calm", "nostream")
    c.check("sync calm nostream: exit 1 or 2 naming the stream",
            h.rc in (1, 2) and "nostream" in h.err, h)


# --------------------------------------------------------------------------- socket

def raw_session(sock_path, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    return s, s.makefile("rb")


def read_reply(f):
    """One reply line, or None when none comes within the socket's timeout."""
    try:
        line = f.readline()
    except (socket.timeout, OSError):
        return None
    return json.loads(line) if line else None


def test_socket(c, d, conf):
    sock = d.sock
    shop_db = kt.db_path(conf, "shop")
    runs_before = dt.count_runs(shop_db)
    c.equal("the socket's mode is 0660", oct(os.stat(sock).st_mode & 0o777), oct(0o660))

    cases = [
        (b'{"v":1,"cmd":"status"\n', "bad_request", "malformed JSON"),
        (b'not json at all\n', "bad_request", "not JSON"),
        (b'[1,2]\n', "bad_request", "a JSON array"),
        (b'{"cmd":"status"}\n', "bad_request", "no \"v\""),
        (b'{"v":"1","cmd":"status"}\n', "bad_request", "\"v\" a string"),
        (b'{"v":2,"cmd":"status"}\n', "unsupported_version", "\"v\":2"),
        (b'{"v":1}\n', "bad_request", "no cmd"),
        (b'{"v":1,"cmd":"frobnicate"}\n', "unknown_command", "an unknown command"),
        (b'{"v":1,"cmd":"status","merchant":7}\n', "bad_request", "a merchant of the wrong type"),
        (b'{"v":1,"cmd":"runs","merchant":"calm","n":-1}\n', "bad_request", "a negative n"),
        (b'{"v":1,"cmd":"status","v":1}\n', "bad_request", "a duplicate key"),
        (b'\xff\xfe{"v":1}\n', "bad_request", "bytes that are not UTF-8"),
    ]
    s, f = raw_session(sock)
    try:
        for line, code, what in cases:
            s.sendall(line)
            r = read_reply(f)
            c.check(f"socket: {what} -> error {code}, connection kept",
                    r and r.get("ok") is False and r.get("error", {}).get("code") == code and
                    r["error"].get("message"), r)
        s.sendall(b'{"v":1,"cmd":"version"}\n')
        r = read_reply(f)
        c.check("socket: a good request after the bad ones is answered", r and r.get("ok"), r)
        s.sendall(b'\n')
        s.sendall(b'{"v":1,"cmd":"version"}\n')
        r = read_reply(f)
        c.check("socket: an empty line gets an error or nothing, and the next request its answer",
                r and (r.get("ok") or r.get("error", {}).get("code") == "bad_request"), r)
        if r and not r.get("ok"):
            r = read_reply(f)
            c.check("socket: ... the request after the empty line is answered", r and r.get("ok"), r)

        # Pipelined: three requests in one write, three replies in order.
        s.sendall(b'{"v":1,"cmd":"version"}\n{"v":1,"cmd":"frobnicate"}\n{"v":1,"cmd":"status",'
                  b'"merchant":"calm"}\n')
        rs = [read_reply(f) for _ in range(3)]
        c.check("socket: pipelined requests answered in order",
                rs[0] and rs[0].get("ok") and "protocol" in rs[0]["data"] and
                rs[1] and rs[1].get("error", {}).get("code") == "unknown_command" and
                rs[2] and rs[2].get("ok") and dt.merchant_ids(rs[2]["data"]) == ["calm"], rs)

        # Pipelined behind a sync --wait: answered once the run ends, without more input.
        s.sendall(b'{"v":1,"cmd":"sync","merchant":"calm","stream":"sizes","wait":true}\n'
                  b'{"v":1,"cmd":"version"}\n')
        rs = [read_reply(f) for _ in range(2)]
        c.check("socket: a request pipelined behind sync --wait is answered after the run",
                rs[0] and rs[0].get("ok") and rs[0]["data"].get("stream") == "sizes" and
                rs[1] and rs[1].get("ok") and "protocol" in rs[1]["data"], rs)

        # A request a little under the 64 KiB cap is fine; a 1 MiB line is refused once.
        pad = b'{"v":1,"cmd":"version","pad":"' + b"x" * (60 * 1024) + b'"}\n'
        s.sendall(pad)
        r = read_reply(f)
        c.check("socket: a 60 KiB request is answered", r and r.get("ok"), r)
        big = b'{"v":1,"cmd":"status","pad":"' + b"y" * (1024 * 1024) + b'"}\n'
        s.sendall(big)
        r = read_reply(f)
        c.check("socket: a 1 MiB line -> error too_large",
                r and r.get("error", {}).get("code") == "too_large", r)
        s.sendall(b'{"v":1,"cmd":"version"}\n')
        r = read_reply(f)
        c.check("socket: after the 1 MiB line the next request is answered",
                r and r.get("ok") and "protocol" in r.get("data", {}), r)
    finally:
        s.close()

    # 1 MiB without any newline, then the peer goes: the daemon lives on.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    try:
        s.sendall(b"z" * (1024 * 1024))
    except OSError:
        pass
    s.close()
    c.check("socket: 1 MiB without a newline, then close: kleepd still answers",
            d.request({"v": 1, "cmd": "version"}).get("ok"))

    # A silent client, a half-sent request and a client that pipelines requests without
    # ever reading the replies do not hold up anyone else.
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(sock)
    half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    half.connect(sock)
    half.sendall(b'{"v":1,"cmd":"sta')
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deaf.connect(sock)
    deaf.settimeout(0.1)
    sent = [0]
    flooding = [True]

    def flood():
        burst = b'{"v":1,"cmd":"status"}\n' * 200
        while flooding[0]:
            try:
                deaf.sendall(burst)
                sent[0] += 200
            except socket.timeout:
                pass
            except OSError:
                break

    th = threading.Thread(target=flood)
    th.start()
    times = []
    try:
        t_end = time.monotonic() + 2.5
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            r = d.request({"v": 1, "cmd": "status"}, timeout=30)
            times.append(time.monotonic() - t0)
            if not r.get("ok"):
                break
            time.sleep(0.02)
    finally:
        flooding[0] = False
        th.join()
        for x in (silent, half, deaf):
            x.close()
    slowest = max(times) if times else None
    c.check("socket: with a silent, a half-sent and a flooding non-reading client, every other "
            "request answered within 150 ms", len(times) >= 10 and slowest < 0.150,
            f"{len(times)} answers, slowest {slowest}, {sent[0]} requests sent by the flooder")
    c.say(f"# non-reading client sent {sent[0]} status requests; slowest other reply "
          f"{(slowest or 0) * 1000:.1f} ms of {len(times)}")
    with open(f"/proc/{d.pid}/maps") as f:
        maps = f.read()
        sanitized = "libasan" in maps or "libtsan" in maps
    if not sanitized:  # ASan's quarantine, TSan's shadow make VmHWM meaningless
        c.check("socket: kleepd's memory stays bounded under the flood (VmHWM < 64 MiB)",
                (dt.proc_status_kib(d.pid, "VmHWM") or 0) < 64 * 1024,
                f"VmHWM {dt.proc_status_kib(d.pid, 'VmHWM')} kB")

    # Clients that send a request and go at once: the reply cannot be sent, the
    # daemon drops them (and must not touch them after).
    for _ in range(200):
        x = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        x.connect(sock)
        x.sendall(b'{"v":1,"cmd":"status"}\n')
        x.close()
    c.check("socket: 200 clients that ask and hang up at once: kleepd lives on",
            d.proc.poll() is None and d.request({"v": 1, "cmd": "version"}).get("ok"),
            d.log()[-2000:])

    # 500 concurrent clients each asking status.
    n = 500
    socks = []
    t0 = time.monotonic()
    try:
        for _ in range(n):
            x = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            x.settimeout(10)
            x.connect(sock)
            socks.append(x)
        sel = selectors.DefaultSelector()
        bufs = {}
        for x in socks:
            x.sendall(b'{"v":1,"cmd":"status"}\n')
            x.setblocking(False)
            sel.register(x, selectors.EVENT_READ)
            bufs[x] = b""
        answered = {}
        deadline = time.monotonic() + 30
        while len(answered) < n and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                x = key.fileobj
                try:
                    chunk = x.recv(1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(x)
                    answered.setdefault(x, None)
                    continue
                bufs[x] += chunk
                if b"\n" in bufs[x]:
                    sel.unregister(x)
                    try:
                        answered[x] = json.loads(bufs[x].split(b"\n", 1)[0])
                    except ValueError:
                        answered[x] = None
        took = time.monotonic() - t0
        good = sum(1 for r in answered.values()
                   if r and r.get("ok") and dt.merchant_ids(r["data"]) == ["calm", "shop"])
        c.check(f"socket: {n} concurrent clients asking status all answered", good == n,
                f"{good} good answers of {n} ({len(answered)} replies) in {took:.1f} s")
        c.say(f"# {n} concurrent status clients answered in {took:.2f} s")
        sel.close()
    finally:
        for x in socks:
            x.close()
    c.check("socket: syncs kept running through the abuse",
            dt.wait_until(lambda: dt.count_runs(shop_db) >= runs_before + 2, 10),
            f"{runs_before} -> {dt.count_runs(shop_db)}")
    c.check("socket: kleepd still up", d.proc.poll() is None, d.log()[-1500:])


def test_hangup(c, d, emu):
    """A client waiting for a run (sync --wait) that goes away costs the daemon nothing."""
    wait_idle(d, "calm")
    # Only calm's returns ask /returns/get meanwhile (shop's returns run every 15 min).
    emu.faults([{"endpoint": "/returns/get", "kind": "stall", "seconds": 5}])
    try:
        p = subprocess.Popen([dt.KLEEPCTL, "--socket", d.sock, "sync", "calm", "returns", "--wait"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            running = dt.wait_until(
                lambda: (dt.streams_of(d.status(), "calm") or {}).get("returns", {}).get("state")
                == "running", 5)
            time.sleep(0.2)
        finally:
            p.kill()
            p.wait()
        c0 = dt.proc_cpu_seconds(d.pid)
        time.sleep(1.5)
        used = dt.proc_cpu_seconds(d.pid) - c0
        c.check("a sync --wait client killed while its run stalls: kleepd stays idle "
                "(< 0.3 s CPU in 1.5 s)", running and used < 0.3,
                f"running={running}, {used:.2f} s of CPU in 1.5 s")
        r = d.request({"v": 1, "cmd": "version"})
        c.check("... and answers the next client", r.get("ok"), r)
    finally:
        emu.clear_faults()
    c.check("... and the run still ends", wait_idle(d, "calm", 15), dt.streams_of(d.status(), "calm"))


def peer_attempt(sock, uid, gid, groups):
    """Fork a child that drops to uid/gid/groups and asks status; its result as a dict."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            res = {"uid": os.getuid()}
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(sock)
            res["connected"] = True
            try:
                s.sendall(b'{"v":1,"cmd":"status"}\n')
            except OSError as e:
                res["send_error"] = repr(e)
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        res["closed"] = True
                        break
                    data += chunk
                    if b"\n" in data and not res.get("keep_reading"):
                        # one line; see whether the daemon then closes
                        s.settimeout(2)
                        res["keep_reading"] = True
            except socket.timeout:
                res["closed"] = False
            except OSError as e:
                res["recv_error"] = repr(e)
                res["closed"] = True
            res["reply"] = data.decode("utf-8", "replace")[:2000]
        except Exception as e:  # noqa: BLE001
            res = {"error": repr(e)}
        os.write(wfd, json.dumps(res).encode())
        os._exit(0)
    os.close(wfd)
    out = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        out += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    try:
        return json.loads(out)
    except ValueError:
        return {"error": out.decode("utf-8", "replace")}


def test_peer(c, d, tmp):
    if os.geteuid() != 0:
        c.check("the peer test runs as root", False, "not root: cannot switch to nobody")
        return
    nobody = pwd.getpwnam("nobody")
    try:
        kleep = grp.getgrnam("kleep")
    except KeyError:
        kleep = None
    c.check("group kleep does not hold nobody (test precondition)",
            kleep is None or ("nobody" not in kleep.gr_mem and kleep.gr_gid != nobody.pw_gid),
            kleep)
    # Let nobody reach the socket file: only the SO_PEERCRED check may refuse it.
    os.chmod(tmp, 0o755)
    os.chmod(os.path.dirname(d.sock), 0o755)
    os.chmod(d.sock, 0o666)
    log_at = len(d.log())
    res = peer_attempt(d.sock, nobody.pw_uid, nobody.pw_gid, [])
    reply = res.get("reply", "")
    try:
        first = json.loads(reply.split("\n", 1)[0]) if reply else {}
    except ValueError:
        first = {}
    c.check("a peer outside root/kleepd's user/group kleep connects (file mode allows)",
            res.get("connected") and res.get("uid") == nobody.pw_uid, res)
    c.check("... and is refused: permission_denied, no status data",
            first.get("ok") is False and first.get("error", {}).get("code") == "permission_denied"
            and '"merchants"' not in reply, res)
    c.check("... and the connection is closed", res.get("closed") is True, res)
    c.check("... and the log says who was refused",
            dt.wait_until(lambda: re.search(r"refused.*uid %d" % nobody.pw_uid, d.log()[log_at:]), 3),
            d.log()[log_at:][-800:])
    if kleep is not None:
        res = peer_attempt(d.sock, nobody.pw_uid, kleep.gr_gid, [])
        reply = res.get("reply", "")
        c.check("a peer whose group is kleep is answered", '"ok":true' in reply, res)
    os.chmod(d.sock, 0o660)
    c.check("the daemon still answers root after the refusal",
            d.request({"v": 1, "cmd": "version"}).get("ok"))


def main():
    c = kt.Checks()
    try:
        with kt.TempDir(prefix="kleep-ctl-") as tmp, kt.Emulator() as emu:
            ms = [kt.Merchant("shop", emu), kt.Merchant("calm", emu)]
            conf, sock = dt.write_daemon_config(tmp, ms, merchant_extra={"shop": {"poll_orders":
                                                                                   "1s"}})
            test_offline(c, sock)
            with dt.Daemon(conf, sock) as d:
                ok = dt.wait_until(lambda: all(dt.all_synced(d.status(), m.id) for m in ms)
                                   and idle(d, "calm"), 30)
                if c.check("kleepd up, both merchants synced", ok, d.log()[-2000:]):
                    for t, args in ((test_commands, (c, d, emu, conf)), (test_socket, (c, d, conf)),
                                    (test_hangup, (c, d, emu)), (test_peer, (c, d, tmp))):
                        t0 = time.monotonic()
                        try:
                            t(*args)
                        except Exception:  # noqa: BLE001
                            c.check(f"{t.__name__} ran without an exception", False,
                                    traceback.format_exc())
                        c.say(f"# {t.__name__}: {time.monotonic() - t0:.1f} s")
                d.stop()
                c.equal("kleepd exits 0 on SIGTERM", d.rc, 0)
                log = d.log()
                c.check("no crash or sanitizer report in the log",
                        not re.search(r"Sanitizer|runtime error:|Segmentation|Assertion", log),
                        log[-2000:])
    except Exception:  # noqa: BLE001
        c.check("test_ctl ran without an exception", False, traceback.format_exc())
    c.finish()


if __name__ == "__main__":
    main()
