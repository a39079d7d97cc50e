#!/usr/bin/python3
"""WSHOP REST API emulator for kleepd's tests: two API profiles, injectable faults, control API.

Run: /usr/bin/python3 wshop_emulator.py --port 0   (prints "PORT <n>" once listening)
See README.md in this folder for the options, the endpoints and the control API.
"""

import argparse
import base64
import gzip
import hashlib
import hmac
import json
import math
import os
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from datetime import datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wshop_canonical import canonical  # noqa: E402
from wshop_data import DATED_STREAMS, LOCAL_FMT, STREAMS, Shop  # noqa: E402

MAX_BODY_BYTES = 1 << 20     # request bodies are a few parameters; cap them anyway
MAX_LIMIT = 500              # records per page, DOMAIN.md §1
DEFAULT_LIMIT = 100
IDLE_TIMEOUT_S = 60          # idle keep-alive connections are dropped, like nginx does

# Default-profile action path -> stream. Stats, faults and revokes name endpoints this way
# whatever the profile, so one test can run against both.
ACTION_STREAM = {
    "/products/get": "products", "/sizes/get": "sizes", "/departments/get": "departments",
    "/attributes/get": "attributes", "/orders/get": "orders", "/returns/get": "returns",
    "/returns/getreasons": "return_reasons",
}
AUTH_ACTIONS = ("/authenticate", "/authentificate")

PROFILES = {
    "default": {
        "base": "/api/v1",
        "paths": {**{a: a for a in ACTION_STREAM}, **{a: a for a in AUTH_ACTIONS}},
        "user_param": "email", "password_param": "password", "token_field": "token",
        "page_param": "page", "first_page": 1, "limit_param": "limit",
        "since_param": "date_upd_from", "since_format": "%Y-%m-%d %H:%M:%S",
    },
    "alt": {
        "base": "/rest/v2",
        "paths": {
            "/auth/login": "/authenticate",
            "/catalog/products/list": "/products/get", "/catalog/sizes/list": "/sizes/get",
            "/catalog/departments/list": "/departments/get",
            "/catalog/attributes/list": "/attributes/get",
            "/sales/orders/list": "/orders/get", "/sales/returns/list": "/returns/get",
            "/sales/returns/reasons": "/returns/getreasons",
        },
        "user_param": "login", "password_param": "passwd", "token_field": "jwt",
        "page_param": "p", "first_page": 0, "limit_param": "per_page",
        "since_param": "updated_since", "since_format": "%Y-%m-%dT%H:%M:%S",
    },
}

# Alt profile field renames: everywhere in a record, then per stream at the top level.
ALT_RENAMES = {"id": "uid", "date_upd": "updated", "date_add": "created",
               "translations": "i18n", "product_size_id": "variant_id"}
ALT_TOP_RENAMES = {"products": {"sizes": "variants"}, "orders": {"lines": "items"},
                   "returns": {"lines": "items"}}

FAULT_KINDS = ("429", "500", "502", "503", "stall", "reset", "truncated", "invalid_json",
               "success_false", "expire_token", "401")
# A "*" rule of these kinds skips the authenticate call: they are about data calls.
DATA_ONLY_KINDS = ("expire_token", "401")

BAD_GATEWAY_HTML = (b"<html><head><title>502 Bad Gateway</title></head><body>"
                    b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>"
                    b"</body></html>\n")
GARBAGE_BODY = b"<!DOCTYPE html><html><body>Maintenance en cours\xe2\x80\xa6</body></html>\n"


class RequestError(Exception):
    """A request the emulator refuses: HTTP status plus message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def error_envelope(message):
    return {"success": False, "error": {"message": message}}


def parse_json_object(raw):
    """Request body as a dict; an empty body is {} (most WSHOP parameters are optional)."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RequestError(400, "Request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise RequestError(400, "Request body must be a JSON object")
    return value


def int_param(params, name, default):
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise RequestError(400, f"Parameter {name} must be an integer")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def alt_rename(value):
    if isinstance(value, dict):
        return {ALT_RENAMES.get(k, k): alt_rename(v) for k, v in value.items()}
    if isinstance(value, list):
        return [alt_rename(v) for v in value]
    return value


def alt_record(stream, record):
    """A default-profile record in the alt profile's names (README.md lists them)."""
    out = alt_rename(record)
    top = ALT_TOP_RENAMES.get(stream)
    if top:
        out = {top.get(k, k): v for k, v in out.items()}
    if stream == "products" and isinstance(out.get("i18n"), dict):
        out["i18n"] = {lang: ({("title" if k == "name" else k): v for k, v in tr.items()}
                              if isinstance(tr, dict) else tr)
                       for lang, tr in out["i18n"].items()}
    return out


class Tokens:
    """HS256 JWTs signed with a per-process key; a serial in `jti` lets us expire all at once."""

    def __init__(self, lifetime_s):
        self.key = secrets.token_bytes(32)
        self.lifetime_s = lifetime_s
        self.lock = threading.Lock()
        self.serial = 0
        self.valid_from = 1

    def _sign(self, signing_input):
        return b64url(hmac.new(self.key, signing_input.encode(), hashlib.sha256).digest())

    def issue(self, subject):
        with self.lock:
            self.serial += 1
            serial = self.serial
        now = int(time.time())
        header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        payload = b64url(json.dumps({"sub": subject, "iat": now, "exp": now + self.lifetime_s,
                                     "jti": str(serial)}, separators=(",", ":")).encode())
        return f"{header}.{payload}.{self._sign(header + '.' + payload)}"

    def check(self, authorization):
        """None when the Authorization header carries a valid token, else the reason."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return "Missing bearer token"
        parts = token.split(".")
        if len(parts) != 3 or not hmac.compare_digest(self._sign(parts[0] + "." + parts[1]),
                                                      parts[2]):
            return "Invalid token"
        try:
            claims = json.loads(b64url_decode(parts[1]))
            exp, serial = claims["exp"], int(claims["jti"])
        except (ValueError, KeyError, TypeError):
            return "Invalid token"
        with self.lock:
            revoked = serial < self.valid_from
        if revoked or exp <= time.time():
            return "Token expired"
        return None

    def invalidate_all(self):
        with self.lock:
            self.valid_from = self.serial + 1


class Faults:
    """Fault rules set by tests; each fires `count` times after skipping `after` matches."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    @staticmethod
    def _validate(rule):
        if not isinstance(rule, dict):
            raise RequestError(400, "a rule must be an object")
        kind = str(rule.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise RequestError(400, f"unknown fault kind {kind!r}; one of {list(FAULT_KINDS)}")
        endpoint = str(rule.get("endpoint", "*"))
        if endpoint != "*" and not endpoint.startswith("/"):
            endpoint = "/" + endpoint
        out = {"endpoint": endpoint, "kind": kind}
        for key, default in (("count", 1), ("after", 0)):
            value = rule.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise RequestError(400, f"{key} must be an integer >= 0")
            out[key] = value
        seconds = rule.get("seconds", 30)
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise RequestError(400, "seconds must be a number >= 0")
        out["seconds"] = seconds
        if "retry_after" in rule:
            value = rule["retry_after"]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise RequestError(400, "retry_after must be an integer >= 0")
            out["retry_after"] = rule["retry_after"]
        out["retry_after_date"] = bool(rule.get("retry_after_date", False))
        out["seen"] = out["fired"] = 0
        return out

    def set(self, rules):
        if not isinstance(rules, list):
            raise RequestError(400, "rules must be a list")
        checked = [self._validate(rule) for rule in rules]
        with self.lock:
            self.rules = checked

    def snapshot(self):
        with self.lock:
            return [dict(rule) for rule in self.rules]

    @staticmethod
    def _matches(rule, action):
        if rule["endpoint"] == "*":
            return not (action in AUTH_ACTIONS and rule["kind"] in DATA_ONLY_KINDS)
        return rule["endpoint"] == action or (rule["endpoint"] == "/authenticate"
                                              and action in AUTH_ACTIONS)

    def fire(self, action):
        """The rule that fires for this request, if any.

        Every matching rule counts the request towards its `after`; only the first eligible
        rule (in list order) fires, so rules never combine on one request.
        """
        fired = None
        with self.lock:
            for rule in self.rules:
                if not self._matches(rule, action):
                    continue
                rule["seen"] += 1
                if fired is None and rule["seen"] > rule["after"] and rule["fired"] < rule["count"]:
                    rule["fired"] += 1
                    fired = dict(rule)
        return fired


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.requests = {}
            self.times = []  # (wall time, action) of each request, for rate tests
            self.responses = {}
            self.records_served = {stream: 0 for stream in STREAMS}
            self.total = 0

    def request(self, action):
        with self.lock:
            self.requests[action] = self.requests.get(action, 0) + 1
            self.total += 1
            if len(self.times) < 100000:
                self.times.append((time.time(), action))

    def response(self, status):
        with self.lock:
            self.responses[status] = self.responses.get(status, 0) + 1

    def served(self, stream, n):
        with self.lock:
            self.records_served[stream] += n

    def snapshot(self):
        with self.lock:
            return {"requests": dict(self.requests), "records_served": dict(self.records_served),
                    "times": list(self.times),
                    "total_requests": self.total, "responses": dict(self.responses)}


class App:
    """Everything the request handlers share."""

    def __init__(self, args, shop):
        self.shop = shop
        self.profile_name = args.profile
        self.profile = PROFILES[args.profile]
        self.base = self.profile["base"]
        self.routes = {self.base + path: action for path, action in self.profile["paths"].items()}
        self.user, self.password = args.user, args.password
        self.tokens = Tokens(args.token_lifetime)
        self.faults = Faults()
        self.stats = Stats()
        self.revoked = set()
        self.revoked_lock = threading.Lock()
        self.verbose = args.verbose
        self.stop = threading.Event()   # set on SIGTERM; also cuts stalls short

    def is_revoked(self, action):
        with self.revoked_lock:
            return action in self.revoked or (action in AUTH_ACTIONS
                                              and "/authenticate" in self.revoked)

    def paging(self, stream, params):
        """(start index, limit, date filter as a LOCAL_FMT string or None) of a list call."""
        p = self.profile
        page = int_param(params, p["page_param"], p["first_page"])
        limit = int_param(params, p["limit_param"], DEFAULT_LIMIT)
        if not 1 <= limit <= MAX_LIMIT:
            raise RequestError(400, f"Parameter {p['limit_param']} must be between 1 and "
                                    f"{MAX_LIMIT}")
        if page < p["first_page"]:
            raise RequestError(400, f"Parameter {p['page_param']} must be >= {p['first_page']}")
        since = None
        raw = params.get(p["since_param"])
        if stream in DATED_STREAMS and raw not in (None, ""):
            try:
                # Normalized wall time: records compare as naive shop-local datetimes, the
                # way a DATETIME column does (no time zone, DST ignored).
                since = datetime.strptime(raw, p["since_format"]).strftime(LOCAL_FMT)
            except (TypeError, ValueError):
                example = datetime(2025, 1, 31, 8, 5).strftime(p["since_format"])
                raise RequestError(400, f"Parameter {p['since_param']} must look like "
                                        f"{example}") from None
        return (page - p["first_page"]) * limit, limit, since

    def envelope(self, stream, records, total):
        if self.profile_name == "alt":
            return {"success": True, "data": {"items": [alt_record(stream, r) for r in records],
                                              "total": total}}
        return {"success": True, "data": records}

    # -- control API --
    def control(self, method, path, query, body):
        """(status, reply) of a /_emulator/ call."""
        if path == "/_emulator/health":
            return 200, {"ok": True, "profile": self.profile_name, "base": self.base}
        if path == "/_emulator/stats":
            return 200, self.stats.snapshot()
        if path == "/_emulator/stats/reset":
            self.stats.reset()
            return 200, {"ok": True}
        if path == "/_emulator/truth":
            truth = self.shop.truth()
            stream = (query.get("stream") or [None])[-1]
            return 200, ({stream: truth[stream]} if stream in truth else truth)
        if path == "/_emulator/canonical":
            opts = {k: v[-1] for k, v in query.items()}
            opts.update(body)
            return 200, canonical(self.shop.truth(), opts.get("languages", "fr,en"),
                                  opts.get("product_id_field", "id"),
                                  opts.get("parent_reference_field", "parent_reference"))
        if path == "/_emulator/records":
            return self._records(body)
        if path in ("/_emulator/revoke", "/_emulator/unrevoke"):
            return self._revoke(path.endswith("/revoke"), body)
        if path == "/_emulator/faults":
            if method == "POST" and "rules" in body:
                self.faults.set(body["rules"])
            return 200, {"ok": True, "rules": self.faults.snapshot()}
        if path == "/_emulator/reset":
            self.shop.reset()
            self.faults.set([])
            self.stats.reset()
            with self.revoked_lock:
                self.revoked.clear()
            return 200, {"ok": True}
        raise RequestError(404, f"unknown control path {path}")

    def _revoke(self, revoke, body):
        endpoint = body.get("endpoint")
        known = set(ACTION_STREAM) | set(AUTH_ACTIONS)
        with self.revoked_lock:
            if not revoke and (endpoint is None or body.get("all")):
                self.revoked.clear()
            elif endpoint not in known:
                raise RequestError(400, f"endpoint must be one of {sorted(known)}")
            elif revoke:
                self.revoked.add(endpoint)
            else:
                self.revoked.discard(endpoint)
            return 200, {"ok": True, "revoked": sorted(self.revoked)}

    def _records(self, body):
        op, stream = body.get("op"), body.get("stream")
        if stream not in STREAMS:
            raise RequestError(400, f"stream must be one of {list(STREAMS)}")
        record = body.get("record")
        if record is not None and not isinstance(record, dict):
            raise RequestError(400, "record must be an object")
        rid = body.get("id")
        if rid is not None and (not isinstance(rid, int) or isinstance(rid, bool)):
            raise RequestError(400, "id must be an integer")
        shop = self.shop
        try:
            if op == "add":
                stored = shop.add(stream, record, rid)
                return 200, {"ok": True, "ids": [stored["id"]], "record": stored}
            if op in ("update", "delete") and rid is None:
                raise RequestError(400, f"{op} needs an id")
            if op == "update":
                return 200, {"ok": True, "ids": [rid], "record": shop.update(stream, rid, record)}
            if op == "delete":
                shop.delete(stream, rid)
                return 200, {"ok": True, "ids": [rid]}
            if op == "bulk":
                counts = [body.get(k, 0) for k in ("add", "update", "delete")]
                if any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in counts):
                    raise RequestError(400, "add, update, delete must be integers >= 0")
                n_add, n_update, n_delete = counts
                picked = shop.pick_ids(stream, n_update + n_delete)
                updated, deleted = picked[:n_update], picked[n_update:]
                for i in updated:
                    shop.update(stream, i)
                for i in deleted:
                    shop.delete(stream, i)
                added = [shop.add(stream)["id"] for _ in range(n_add)]
                return 200, {"ok": True, "ids": added + updated + deleted, "added": added,
                             "updated": updated, "deleted": deleted}
        except KeyError as exc:
            status = 409 if op == "add" else 404
            raise RequestError(status, exc.args[0]) from None
        except ValueError as exc:
            raise RequestError(400, str(exc)) from None
        raise RequestError(400, "op must be add, update, delete or bulk")


def accepts_gzip(header):
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # keep-alive; every reply carries Content-Length
    disable_nagle_algorithm = True
    server_version = "WSHOP-emulator/1.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    # Per-request flags, reset at the start of every request.
    _truncate = False    # a "truncated" fault is pending for this reply
    _api_call = False    # count the reply's status in the stats
    _gzip = False        # the client accepts a gzipped body

    def do_POST(self):
        app = self.server.app
        self._truncate = False
        self._api_call = False
        self._gzip = accepts_gzip(self.headers.get("Accept-Encoding", ""))
        url = urlsplit(self.path)
        try:
            raw = self._read_body()
        except RequestError as exc:
            self.close_connection = True   # the unread rest of the body would desync us
            return self._send_json(exc.status, error_envelope(exc.message))
        if url.path.startswith("/_emulator/"):
            try:
                params = parse_json_object(raw)
                status, reply = app.control(self.command, url.path, parse_qs(url.query), params)
            except RequestError as exc:
                status, reply = exc.status, {"ok": False, "error": exc.message}
            return self._send_json(status, reply)
        self._api_call = True
        try:
            self._api(app, url.path, raw)
        except RequestError as exc:
            self._send_json(exc.status, error_envelope(exc.message))

    do_GET = do_POST   # the action in the path selects the operation, not the verb

    def _api(self, app, path, raw):
        action = app.routes.get(path)
        app.stats.request(action or path)
        if action is None:
            raise RequestError(404, f"Unknown endpoint {path}")
        rule = app.faults.fire(action)
        if rule is not None and self._apply_fault(app, rule):
            return
        params = parse_json_object(raw)
        endpoint = path[len(app.base):]
        if action in AUTH_ACTIONS:
            if app.is_revoked(action):
                raise RequestError(403, f"Access denied to {endpoint}")
            user = params.get(app.profile["user_param"])
            password = params.get(app.profile["password_param"])
            if not (isinstance(user, str) and isinstance(password, str)
                    and hmac.compare_digest(user.encode(), app.user.encode())
                    and hmac.compare_digest(password.encode(), app.password.encode())):
                raise RequestError(401, "Invalid credentials")
            token = app.tokens.issue(user)
            return self._send_json(200, {"success": True,
                                         "data": {app.profile["token_field"]: token}})
        problem = app.tokens.check(self.headers.get("Authorization"))
        if problem:
            raise RequestError(401, problem)
        if app.is_revoked(action):
            raise RequestError(403, f"Access denied to {endpoint}")
        stream = ACTION_STREAM[action]
        start, limit, since = app.paging(stream, params)
        records, total = app.shop.page(stream, start, limit, since)
        if not self._truncate:
            app.stats.served(stream, len(records))
        self._send_json(200, app.envelope(stream, records, total))

    def _apply_fault(self, app, rule):
        """Act out a fault; True when it fully answered (or dropped) the request."""
        kind = rule["kind"]
        if kind == "stall":
            app.stop.wait(rule["seconds"])
            return False
        if kind == "expire_token":
            app.tokens.invalidate_all()   # this very request then fails with 401
            return False
        if kind == "truncated":
            self._truncate = True         # the normal reply, cut in half
            return False
        if kind == "reset":
            self._reset_connection(app)
            return True
        headers = []
        if kind == "429" or "retry_after" in rule or rule["retry_after_date"]:
            delay = rule.get("retry_after", 1)
            headers.append(("Retry-After", formatdate(math.ceil(time.time()) + delay, usegmt=True)
                            if rule["retry_after_date"] else str(delay)))
        if kind == "502":
            self._send(502, BAD_GATEWAY_HTML, "text/html", headers)
        elif kind == "invalid_json":
            self._send(200, GARBAGE_BODY, "application/json")
        elif kind == "success_false":
            self._send_json(200, error_envelope("Internal error"))
        else:
            messages = {"429": "Too many requests", "500": "Internal server error",
                        "503": "Service unavailable", "401": "Unauthorized"}
            self._send_json(int(kind), error_envelope(messages[kind]), headers)
        return True

    def _reset_connection(self, app):
        # SO_LINGER 0 makes close() send RST instead of FIN: the client sees a reset.
        # rfile holds a reference to the socket, so it must go first for close() to bite.
        app.stats.response("reset")
        self.close_connection = True
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        sock.close()

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise RequestError(400, "Bad Content-Length") from None
        if n < 0 or n > MAX_BODY_BYTES:
            raise RequestError(413, "Request body too large")
        return self.rfile.read(n)

    def _read_chunked(self):
        body = b""
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise RequestError(400, "Bad chunk size") from None
            if size == 0:
                while self.rfile.readline(1024).strip():   # trailers
                    pass
                return body
            if len(body) + size > MAX_BODY_BYTES:
                raise RequestError(413, "Request body too large")
            body += self.rfile.read(size)
            self.rfile.readline(16)

    def _send_json(self, status, obj, headers=()):
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _send(self, status, body, content_type, headers=()):
        if self._api_call:
            self.server.app.stats.response(str(status))
        gzipped = self._gzip and bool(body)
        if gzipped:
            body = gzip.compress(body, compresslevel=5, mtime=0)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Vary", "Accept-Encoding")
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self._truncate:
            # Full Content-Length announced, half sent, then the connection closes.
            self.wfile.write(body[:len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        if self.server.app.verbose:
            super().log_message(fmt, *args)


class Server(ThreadingHTTPServer):
    daemon_threads = True          # stalled or idle connections never delay exit
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, app):
        self.app = app
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        # Clients that hang up (and our own reset fault) are expected, not errors.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="also write the port number to this file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--products", type=int, default=50)
    ap.add_argument("--orders", type=int, default=200)
    ap.add_argument("--returns", type=int, default=40)
    ap.add_argument("--variants", type=int, choices=range(1, 7), metavar="1-6",
                    help="variants per product (default: 2 to 6 at random)")
    ap.add_argument("--token-lifetime", type=int, default=3600, metavar="SECONDS")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="default")
    ap.add_argument("--user", default="demo@example.com", metavar="EMAIL")
    ap.add_argument("--password", default="demo-password", metavar="PW")
    ap.add_argument("--anchor", default="2026-11-01 00:00:00",
                    help="shop-local time of the newest generated record (data spans the "
                         "730 days before it)")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # Generate before listening: "PORT n" means ready to serve.
    shop = Shop(args.seed, args.products, args.orders, args.returns, args.anchor,
                args.variants)
    app = App(args, shop)
    server = Server(("127.0.0.1", args.port), app)
    port = server.server_address[1]
    if args.port_file:
        tmp = f"{args.port_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)   # readers never see a half-written file
    print(f"PORT {port}", flush=True)

    # Handlers only set a flag; the main thread then stops the server from outside
    # serve_forever (shutdown() called from its own thread would deadlock).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: app.stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                     daemon=True).start()
    while not app.stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
