#!/usr/bin/python3
"""Self-test of the WSHOP emulator: both profiles, every fault kind, the control API.

Run: /usr/bin/python3 tests/emulator/selftest.py      (exit 0 and "N passed, 0 failed")
"""

import base64
import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from wshop_canonical import canonical, local_to_utc  # noqa: E402

USER, PASSWORD = "demo@example.com", "demo-password"
STREAM_ACTIONS = {
    "products": "/products/get", "sizes": "/sizes/get", "departments": "/departments/get",
    "attributes": "/attributes/get", "orders": "/orders/get", "returns": "/returns/get",
    "return_reasons": "/returns/getreasons",
}
ALT_PATHS = {
    "products": "/catalog/products/list", "sizes": "/catalog/sizes/list",
    "departments": "/catalog/departments/list", "attributes": "/catalog/attributes/list",
    "orders": "/sales/orders/list", "returns": "/sales/returns/list",
    "return_reasons": "/sales/returns/reasons",
}

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name} {detail}", flush=True)


class Emulator:
    """An emulator subprocess and a keep-alive connection to it."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "wshop_emulator.py"),
                                      "--port", "0", *args], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"emulator did not start: {line!r}")
        self.port = int(line.split()[1])
        self.conn = None

    def request(self, path, body=None, token=None, method="POST", headers=None, raw=None):
        """(status, headers, decoded JSON or raw bytes); reconnects after a dropped socket."""
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            resp = self.conn.getresponse()
            payload = resp.read()
        except Exception:
            self.conn.close()
            self.conn = None
            raise
        if resp.getheader("Content-Encoding") == "gzip":
            payload = gzip.decompress(payload)
        try:
            return resp.status, resp, json.loads(payload)
        except ValueError:
            return resp.status, resp, payload

    def control(self, path, body=None, method="POST"):
        status, _, reply = self.request("/_emulator/" + path, body, method=method)
        return status, reply

    def stop(self):
        if self.conn:
            self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=5)
        finally:
            self.proc.stdout.close()


def page_all(emu, path, token, page_param, first, limit_param, limit, extra=None, items=False):
    records, page = [], first
    while True:
        status, _, reply = emu.request(path, {page_param: page, limit_param: limit,
                                              **(extra or {})}, token)
        if status != 200 or not reply.get("success"):
            raise AssertionError(f"{path} page {page}: {status} {reply}")
        batch = reply["data"]["items"] if items else reply["data"]
        records += batch
        if len(batch) < limit:
            return records
        page += 1


def test_default_profile(emu):
    status, _, reply = emu.request("/api/v1/authenticate", {"email": USER, "password": "nope"})
    check("wrong password 401", status == 401 and reply == {
        "success": False, "error": {"message": "Invalid credentials"}}, reply)
    status, _, reply = emu.request("/api/v1/authentificate", {"email": USER,
                                                              "password": PASSWORD})
    check("authentificate spelling", status == 200 and reply["success"], reply)
    status, _, reply = emu.request("/api/v1/authenticate", {"email": USER, "password": PASSWORD})
    token = reply["data"]["token"]
    _, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    check("jwt claims", claims["exp"] - claims["iat"] == 3600 and claims["sub"] == USER, claims)

    status, _, reply = emu.request("/api/v1/products/get", {})
    check("no token 401", status == 401 and reply["success"] is False, reply)
    status, _, reply = emu.request("/api/v1/products/get", {}, token=token[:-2] + "xx")
    check("bad signature 401", status == 401, reply)
    status, _, reply = emu.request("/api/v1/products/get", {"limit": 501}, token)
    check("limit 501 -> 400", status == 400 and reply["success"] is False, reply)
    status, _, reply = emu.request("/api/v1/products/get", token=token, raw=b"")
    check("empty body ok, default limit", status == 200 and len(reply["data"]) == 50, status)
    status, _, reply = emu.request("/api/v1/products/get", token=token, raw=b"{nope")
    check("bad json 400", status == 400, reply)
    status, _, reply = emu.request("/api/v1/products/get", {}, token, method="GET")
    check("GET tolerated", status == 200, status)

    _, truth = emu.control("truth", method="GET")
    for stream, action in STREAM_ACTIONS.items():
        got = page_all(emu, "/api/v1" + action, token, "page", 1, "limit", 7)
        check(f"default pages {stream}", got == truth[stream],
              f"{len(got)} vs {len(truth[stream])}")

    since = "2026-06-01 00:00:00"
    for stream in ("products", "orders", "returns"):
        got = page_all(emu, "/api/v1" + STREAM_ACTIONS[stream], token, "page", 1, "limit", 9,
                       {"date_upd_from": since})
        want = [r for r in truth[stream] if r["date_upd"] >= since]
        check(f"date filter {stream}", got == want and 0 < len(want) < len(truth[stream]),
              f"{len(got)} vs {len(want)}")
    status, _, _ = emu.request("/api/v1/orders/get", {"date_upd_from": "2026-06-01T00:00:00"},
                               token)
    check("default rejects T date", status == 400)
    status, _, reply = emu.request("/api/v1/sizes/get", {"date_upd_from": "garbage"}, token)
    check("reference stream ignores filter", status == 200 and len(reply["data"]) == 13)

    status, resp, reply = emu.request("/api/v1/orders/get", {"limit": 3}, token,
                                      headers={"Accept-Encoding": "gzip"})
    check("gzip", resp.getheader("Content-Encoding") == "gzip" and reply["data"] ==
          truth["orders"][:3])
    dst = [p for p in truth["products"] if p["date_upd"].startswith(("2025-10-26 02",
                                                                     "2025-03-30 02"))]
    check("DST-change records present", len(dst) >= 1, len(dst))
    emails = [o["customer"]["email"] for o in truth["orders"]]
    check("personal data recognizable", all(e.endswith("@mail-perso.example") for e in emails))
    check("unknown endpoint 404", emu.request("/api/v1/nothing/get", {}, token)[0] == 404)
    return token


def test_alt_profile():
    emu = Emulator("--profile", "alt", "--products", "30", "--orders", "40", "--returns", "10")
    try:
        status, _, reply = emu.request("/rest/v2/auth/login", {"login": USER, "passwd": PASSWORD})
        token = reply["data"]["jwt"]
        check("alt login", status == 200 and token.count(".") == 2, reply)
        check("alt has no default paths",
              emu.request("/api/v1/products/get", {}, token)[0] == 404)
        _, truth = emu.control("truth", method="GET")
        for stream, path in ALT_PATHS.items():
            got = page_all(emu, "/rest/v2" + path, token, "p", 0, "per_page", 6, items=True)
            check(f"alt pages {stream}", [r["uid"] for r in got] ==
                  [r["id"] for r in truth[stream]], f"{len(got)} vs {len(truth[stream])}")
        _, _, reply = emu.request("/rest/v2/catalog/products/list", {"per_page": 1}, token)
        item = reply["data"]["items"][0]
        lang = next(iter(item["i18n"]))
        check("alt product renames",
              {"uid", "updated", "created", "i18n", "variants"} <= set(item) and
              "uid" in item["variants"][0] and "title" in item["i18n"][lang] and
              "name" not in item["i18n"][lang] and reply["data"]["total"] == 30, item)
        _, _, reply = emu.request("/rest/v2/sales/orders/list", {"per_page": 1}, token)
        order = reply["data"]["items"][0]
        check("alt order renames", "items" in order and "variant_id" in order["items"][0] and
              "uid" in order["customer"] and "lines" not in order, order)
        got = page_all(emu, "/rest/v2/sales/returns/list", token, "p", 0, "per_page", 4,
                       {"updated_since": "2026-01-01T00:00:00"}, items=True)
        want = [r["id"] for r in truth["returns"] if r["date_upd"] >= "2026-01-01 00:00:00"]
        check("alt updated_since", [r["uid"] for r in got] == want)
        status, _, _ = emu.request("/rest/v2/sales/orders/list",
                                   {"updated_since": "2026-01-01 00:00:00"}, token)
        check("alt rejects space date", status == 400)
        emu.control("revoke", {"endpoint": "/returns/get"})
        status, _, reply = emu.request("/rest/v2/sales/returns/list", {}, token)
        check("alt revoke by default action name", status == 403, reply)
        _, stats = emu.control("stats", method="GET")
        check("alt stats by default action", stats["requests"].get("/authenticate") == 1 and
              stats["requests"].get("/returns/get", 0) >= 2, stats)
    finally:
        check("alt SIGTERM exit 0", emu.stop() == 0)


def test_faults(emu, token):
    def set_rules(*rules):
        status, reply = emu.control("faults", {"rules": list(rules)})
        assert status == 200, reply

    url = "/api/v1/orders/get"
    set_rules({"endpoint": "/orders/get", "kind": "429", "retry_after": 2})
    status, resp, _ = emu.request(url, {}, token)
    check("429 retry-after", status == 429 and resp.getheader("Retry-After") == "2")
    check("fault fires once", emu.request(url, {}, token)[0] == 200)

    set_rules({"endpoint": "*", "kind": "429", "retry_after": 3, "retry_after_date": True})
    status, resp, _ = emu.request(url, {}, token)
    when = parsedate_to_datetime(resp.getheader("Retry-After") or "").timestamp()
    check("429 http-date", status == 429 and 1 <= when - time.time() <= 4.5)

    for kind in ("500", "502", "503"):
        set_rules({"endpoint": "/orders/get", "kind": kind})
        status, _, _ = emu.request(url, {}, token)
        check(f"{kind}", status == int(kind))

    set_rules({"endpoint": "/orders/get", "kind": "stall", "seconds": 0.4})
    t0 = time.monotonic()
    status, _, _ = emu.request(url, {}, token)
    check("stall", status == 200 and time.monotonic() - t0 >= 0.35)

    set_rules({"endpoint": "/orders/get", "kind": "reset"})
    try:
        emu.request(url, {}, token)
        check("reset", False, "got a reply")
    except (ConnectionResetError, http.client.RemoteDisconnected) as exc:
        check("reset", isinstance(exc, ConnectionResetError), repr(exc))

    set_rules({"endpoint": "/orders/get", "kind": "truncated"})
    try:
        emu.request(url, {}, token)
        check("truncated", False, "got a full reply")
    except http.client.IncompleteRead:
        check("truncated", True)

    set_rules({"endpoint": "/orders/get", "kind": "invalid_json"})
    status, _, reply = emu.request(url, {}, token)
    check("invalid_json", status == 200 and isinstance(reply, bytes))

    set_rules({"endpoint": "/orders/get", "kind": "success_false"})
    status, _, reply = emu.request(url, {}, token)
    check("success_false", status == 200 and reply == {
        "success": False, "error": {"message": "Internal error"}})

    set_rules({"endpoint": "/orders/get", "kind": "401"})
    check("401 with valid token", emu.request(url, {}, token)[0] == 401)
    check("401 then fine", emu.request(url, {}, token)[0] == 200)

    set_rules({"endpoint": "*", "kind": "expire_token"})
    check("expire_token -> 401", emu.request(url, {}, token)[0] == 401)
    check("old token stays dead", emu.request("/api/v1/sizes/get", {}, token)[0] == 401)
    _, _, reply = emu.request("/api/v1/authenticate", {"email": USER, "password": PASSWORD})
    token = reply["data"]["token"]
    check("re-authenticated", emu.request(url, {}, token)[0] == 200)

    set_rules({"endpoint": "/orders/get", "kind": "503", "after": 2, "count": 2})
    got = [emu.request(url, {}, token)[0] for _ in range(5)]
    check("after/count", got == [200, 200, 503, 503, 200], got)
    _, reply = emu.control("faults", method="GET")
    check("faults snapshot", reply["rules"][0]["fired"] == 2, reply)
    set_rules()
    return token


def test_control(emu, token):
    emu.control("stats/reset")
    url = "/api/v1/products/get"
    status, reply = emu.control("records", {"op": "add", "stream": "products"})
    new = reply["record"]
    check("add generated product", status == 200 and new["id"] == 1051 and
          reply["ids"] == [1051] and len(new["sizes"]) >= 2, reply)
    _, _, listing = emu.request(url, {"page": 2, "limit": 50}, token)
    check("added visible", listing["data"] == [new])

    old = emu.control("truth?stream=products", method="GET")[1]["products"][0]
    status, reply = emu.control("records", {"op": "update", "stream": "products", "id": old["id"]})
    upd = reply["record"]
    check("update bumps date_upd", status == 200 and upd["date_upd"] > old["date_upd"] and
          upd != old, reply)
    _, _, listing = emu.request(url, {"date_upd_from": upd["date_upd"]}, token)
    check("updated visible by filter", upd in listing["data"])

    status, reply = emu.control("records", {"op": "update", "stream": "orders", "id": 99001,
                                            "record": {"status": "cancelled",
                                                       "date_upd": "2026-10-25 02:30:00"}})
    check("update with patch", reply["record"]["status"] == "cancelled" and
          reply["record"]["date_upd"] == "2026-10-25 02:30:00", reply)

    _, _, before = emu.request(url, {"page": 1, "limit": 10}, token)
    emu.control("records", {"op": "delete", "stream": "products", "id": 1003})
    _, _, after = emu.request(url, {"page": 1, "limit": 10}, token)
    check("delete shifts pages", [p["id"] for p in after["data"]] ==
          [p["id"] for p in before["data"] if p["id"] != 1003] + [1011])
    status, reply = emu.control("records", {"op": "delete", "stream": "products", "id": 1003})
    check("delete unknown 404", status == 404 and reply["ok"] is False)
    status, reply = emu.control("records", {"op": "add", "stream": "sizes",
                                            "record": {"id": 2, "label": "S"}})
    check("add duplicate 409", status == 409)

    status, reply = emu.control("records", {"op": "bulk", "stream": "returns", "add": 3,
                                            "update": 2, "delete": 1})
    check("bulk", status == 200 and len(reply["ids"]) == 6 and len(reply["added"]) == 3, reply)
    for stream in ("sizes", "departments", "attributes", "return_reasons", "orders"):
        status, reply = emu.control("records", {"op": "bulk", "stream": stream, "add": 1,
                                                "update": 1})
        check(f"bulk {stream}", status == 200 and len(reply["ids"]) == 2, reply)

    emu.control("revoke", {"endpoint": "/returns/get"})
    status, _, reply = emu.request("/api/v1/returns/get", {}, token)
    check("revoke 403", status == 403 and reply["error"]["message"] ==
          "Access denied to /returns/get", reply)
    emu.control("unrevoke", {"endpoint": "/returns/get"})
    check("unrevoke", emu.request("/api/v1/returns/get", {}, token)[0] == 200)

    _, stats = emu.control("stats", method="GET")
    check("stats", stats["requests"].get("/products/get") == 4 and
          stats["requests"].get("/returns/get") == 2 and stats["total_requests"] == 6 and
          stats["records_served"]["products"] > 0, stats)

    _, truth = emu.control("truth", method="GET")
    status, rows = emu.control("canonical?languages=fr,%20en&product_id_field=reference",
                               method="GET")
    offline = canonical(truth, "fr,en", "reference", "parent_reference")
    check("canonical endpoint = module", status == 200 and rows == offline)
    check("canonical counts", len(rows["products"]) == len(truth["products"]) and
          len(rows["variants"]) == sum(len(p["sizes"]) for p in truth["products"]))
    ref = {p["id"]: p["reference"] for p in truth["products"]}
    line = next(l for l in rows["order_lines"] if l["product_id"] in ref.values())
    check("lines mapped through product_id_field", line["product_id"] in ref.values())
    check("utc dst", local_to_utc("2025-10-26 02:30:00") == "2025-10-26T00:30:00Z" and
          local_to_utc("2025-03-30 02:30:00") == "2025-03-30T01:30:00Z" and
          local_to_utc("2026-01-15 10:00:00") == "2026-01-15T09:00:00Z")
    outlet = next(d for d in rows["departments"] if d["department_id"] == "90")
    check("label fallback", outlet["label"] == "Outlet" and outlet["parent_id"] is None)
    check("empty comment is null", all(r["comment"] != "" for r in rows["return_lines"]))
    check("no customer data in canonical", "mail-perso" not in json.dumps(rows))

    status, reply = emu.control("reset")
    _, truth = emu.control("truth", method="GET")
    check("reset regenerates", status == 200 and len(truth["products"]) == 50 and
          truth["products"][2]["id"] == 1003)


def test_keepalive(emu, token):
    # One connection, many requests: the server must not close a keep-alive connection.
    sock_before = emu.conn.sock
    for _ in range(3):
        emu.request("/api/v1/sizes/get", {}, token)
    check("keep-alive reuses the connection", emu.conn.sock is sock_before)
    with socket.create_connection(("127.0.0.1", emu.port)) as s:
        body = b'{"email":"demo@example.com","password":"demo-password"}'
        s.sendall(b"POST /api/v1/authenticate HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                  f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    check("chunked request body", b" 200 " in data.split(b"\r\n")[0] and b'"token"' in data)


def main():
    t0 = time.monotonic()
    emu = Emulator()
    try:
        token = test_default_profile(emu)
        test_keepalive(emu, token)
        token = test_faults(emu, token)
        test_control(emu, token)
    finally:
        check("SIGTERM exit 0", emu.stop() == 0)
    test_alt_profile()
    print(f"{passed} passed, {failed} failed ({time.monotonic() - t0:.1f}s)")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
