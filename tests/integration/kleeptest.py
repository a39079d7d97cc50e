"""kleeptest.py - shared harness of kleepd's integration tests (standard library only).

    from kleeptest import Checks, Emulator, Merchant, write_config, run_kleepd, compare

- Emulator: the WSHOP emulator on a free port, as a context manager (always killed), with
  helpers for its control API (records, faults, revoke, stats, truth, canonical).
- Merchant + write_config(): a kleepd.conf and merchants.d/ for N merchants in a folder.
- run_kleepd() / spawn_kleepd(): `kleepd --once`, output captured, with a timeout.
  Every output of every run is also kept in KLEEPD_OUTPUT (for personal-data greps).
- mirror_rows() / compare(): a mirror's canonical tables against the emulator's expected
  rows, table by table, as readable differences (an empty list means equal).
- Checks: prints `ok NAME` / `FAIL NAME DETAIL`, then `N passed, M failed`.

Environment: BUILD (default "build"), KLEEPD (default $BUILD/kleepd), PY (the Python
that runs the emulator, default /usr/bin/python3), KEEP=1 keeps temporary folders.
Paths are taken relative to the project root, whatever the current folder.
"""

import json
import os
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EMULATOR_DIR = os.path.join(ROOT, "tests", "emulator")
sys.path.insert(0, EMULATOR_DIR)
import wshop_canonical  # noqa: E402  (the oracle: also importable offline)

BUILD = os.environ.get("BUILD", "build")
PY = os.environ.get("PY", "/usr/bin/python3")
PROFILE_DIR = os.path.join(ROOT, "lib", "profiles")


def _abs(path):
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


KLEEPD = _abs(os.environ.get("KLEEPD") or os.path.join(BUILD, "kleepd"))

STREAMS = ("sizes", "departments", "attributes", "return_reasons", "products", "orders",
           "returns")
DATED_STREAMS = ("products", "orders", "returns")
ENDPOINTS = {"products": "/products/get", "sizes": "/sizes/get",
             "departments": "/departments/get", "attributes": "/attributes/get",
             "orders": "/orders/get", "returns": "/returns/get",
             "return_reasons": "/returns/getreasons"}
SORT_KEYS = wshop_canonical.SORT_KEYS
# The columns the oracle fixes, per canonical table (source, source_id and
# customer_hash are kleepd's own and checked elsewhere).
COLUMNS = {
    "products": ("product_id", "parent_reference", "title", "description", "url", "images",
                 "category", "department_id", "updated_at", "deactivated"),
    "variants": ("variant_id", "product_id", "sku", "ean", "size_id", "size_label", "stock"),
    "departments": ("department_id", "parent_id", "label"),
    "attributes": ("attribute_id", "code", "label"),
    "sizes": ("size_id", "label"),
    "labels": ("entity", "entity_id", "lang", "field", "value"),
    "orders": ("order_id", "reference", "status", "ordered_at", "updated_at", "currency"),
    "order_lines": ("order_id", "line_no", "product_id", "variant_id", "sku", "size_label",
                    "quantity", "unit_price_minor", "currency"),
    "returns": ("return_id", "order_id", "returned_at", "updated_at"),
    "return_lines": ("return_id", "line_no", "order_id", "product_id", "variant_id", "sku",
                     "size_label", "quantity", "reason_id", "comment", "order_line_no"),
    "return_reasons": ("reason_id", "code", "label", "fit"),
}
TABLES = tuple(COLUMNS)

# Every output kleepd produced in this process, for the personal-data greps.
KLEEPD_OUTPUT = []


# --------------------------------------------------------------------------- checks

class Checks:
    """`ok NAME` / `FAIL NAME DETAIL` lines, then `N passed, M failed` from finish().

    Everything printed through it is also kept in self.output, so a test can grep its
    own output (e.g. for personal data) before finishing.
    """

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.output = []

    def say(self, text):
        self.output.append(text)
        print(text, flush=True)

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            self.say(f"ok {name}")
        else:
            self.failed += 1
            detail = str(detail)
            if len(detail) > 4000:
                detail = detail[:4000] + " ..."
            self.say(f"FAIL {name} {detail}".rstrip())
        return bool(ok)

    def equal(self, name, got, want):
        return self.check(name, got == want, f"got {got!r}, want {want!r}")

    def no_diffs(self, name, diffs):
        """diffs: a list of strings from compare(); passes when it is empty."""
        return self.check(name, not diffs, "\n    " + "\n    ".join(diffs[:40]))

    def finish(self):
        self.say(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed or not self.passed else 0)

    def run_all(self, tests):
        """Each test(self) in turn, an exception counted as a failed check, then finish()."""
        for t in tests:
            t0 = time.monotonic()
            try:
                t(self)
            except Exception:  # noqa: BLE001
                self.check(f"{t.__name__} ran without an exception", False, traceback.format_exc())
            self.say(f"# {t.__name__}: {time.monotonic() - t0:.1f} s")
        self.finish()


# --------------------------------------------------------------------------- emulator

class EmulatorError(Exception):
    pass


class Emulator:
    """The WSHOP emulator in a child process on a free port; `with Emulator(...) as emu:`.

    Keyword options map to the emulator's flags (orders=20000 -> --orders 20000).
    """

    def __init__(self, products=None, orders=None, returns=None, profile=None, seed=None,
                 token_lifetime=None, variants=None, start_timeout=120, extra=()):
        self.args = [PY, os.path.join(EMULATOR_DIR, "wshop_emulator.py"), "--port", "0"]
        for flag, value in (("--products", products), ("--orders", orders),
                            ("--returns", returns), ("--profile", profile), ("--seed", seed),
                            ("--token-lifetime", token_lifetime), ("--variants", variants)):
            if value is not None:
                self.args += [flag, str(value)]
        self.args += list(extra)
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self._stderr = None

    # -- life cycle --
    def start(self):
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 64)
                if not chunk:
                    break
                line += chunk
            elif self.proc.poll() is not None:
                break
        m = re.match(rb"PORT (\d+)\n", line)
        if not m:
            err = self.stderr_text()
            self.stop()
            raise EmulatorError(f"the emulator did not start: {line!r} {err[-2000:]}")
        self.port = int(m.group(1))
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def stderr_text(self):
        if not self._stderr:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self._stderr:
            self._stderr.close()
        return False

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    # -- control API --
    def call(self, path, body=None, timeout=120):
        """POST (or GET without body) /_emulator/<path>; the decoded JSON reply."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data,
                                     method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise EmulatorError(f"/_emulator/{path}: HTTP {e.code}: {e.read()[:500]!r}") from None

    def stats(self):
        return self.call("stats")

    def reset_stats(self):
        return self.call("stats/reset", {})

    def truth(self, stream=None):
        t = self.call("truth" + (f"?stream={stream}" if stream else ""))
        return t[stream] if stream else t

    def canonical(self, languages="fr,en", product_id_field="id",
                  parent_reference_field="parent_reference"):
        return self.call("canonical", {"languages": languages,
                                       "product_id_field": product_id_field,
                                       "parent_reference_field": parent_reference_field})

    def faults(self, rules=None):
        """Replace the fault rules (None: just read them); returns the rules with counters."""
        if rules is None:
            return self.call("faults")["rules"]
        return self.call("faults", {"rules": rules})["rules"]

    def clear_faults(self):
        return self.faults([])

    def revoke(self, endpoint):
        return self.call("revoke", {"endpoint": endpoint})

    def unrevoke(self, endpoint=None):
        return self.call("unrevoke", {} if endpoint is None else {"endpoint": endpoint})

    def add(self, stream, record=None, rid=None):
        body = {"op": "add", "stream": stream}
        if record is not None:
            body["record"] = record
        if rid is not None:
            body["id"] = rid
        return self.call("records", body)

    def update(self, stream, rid, record=None):
        body = {"op": "update", "stream": stream, "id": rid}
        if record is not None:
            body["record"] = record
        return self.call("records", body)

    def delete(self, stream, rid):
        return self.call("records", {"op": "delete", "stream": stream, "id": rid})

    def bulk(self, stream, add=0, update=0, delete=0):
        return self.call("records", {"op": "bulk", "stream": stream, "add": add,
                                     "update": update, "delete": delete})

    def reset(self):
        return self.call("reset", {})


# --------------------------------------------------------------------------- config

class Merchant:
    """One merchants.d/<id>.conf.  overrides: {"retry.base_ms": 20, ...} -> profile.KEY = V."""

    def __init__(self, mid, emulator=None, api_url=None, languages="fr, en", profile="default",
                 product_id_field=None, parent_reference_field=None, timezone=None,
                 rate_limit=1000, overrides=None, password="demo-password",
                 username="demo@example.com"):
        self.id = mid
        self.api_url = api_url or (emulator.url if emulator else None)
        self.languages = languages
        self.profile = profile
        self.product_id_field = product_id_field
        self.parent_reference_field = parent_reference_field
        self.timezone = timezone
        self.rate_limit = rate_limit
        self.overrides = dict(overrides or {})
        self.password = password
        self.username = username

    def canonical_args(self):
        """(languages, product_id_field, parent_reference_field) for the oracle."""
        return (self.languages, self.product_id_field or "id",
                self.parent_reference_field or "parent_reference")


def write_config(folder, merchants, lookback="10m", log_level="info", state_dir=None):
    """Write folder/kleepd.conf and folder/merchants.d/*.conf; returns the kleepd.conf path."""
    os.makedirs(os.path.join(folder, "merchants.d"), exist_ok=True)
    state_dir = state_dir or os.path.join(folder, "state")
    conf = os.path.join(folder, "kleepd.conf")
    with open(conf, "w") as f:
        f.write(f"[daemon]\nstate_dir = {state_dir}\nprofile_dir = {PROFILE_DIR}\n"
                f"log_level = {log_level}\n\n[defaults]\nlookback = {lookback}\n")
    for m in merchants:
        pw = os.path.join(folder, f"{m.id}.password")
        with open(pw, "w") as f:
            f.write(m.password + "\n")
        os.chmod(pw, 0o600)
        lines = ["[merchant]", f"id = {m.id}", f"languages = {m.languages}"]
        for key in ("product_id_field", "parent_reference_field", "timezone"):
            if getattr(m, key):
                lines.append(f"{key} = {getattr(m, key)}")
        lines += ["", "[wshop]", f"api_url = {m.api_url}", f"username = {m.username}",
                  f"password_file = {pw}", f"rate_limit = {m.rate_limit}",
                  f"profile = {m.profile}"]
        lines += [f"profile.{k} = {json.dumps(v) if isinstance(v, str) else v}"
                  for k, v in m.overrides.items()]
        with open(os.path.join(folder, "merchants.d", f"{m.id}.conf"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return conf


def state_dir_of(conf):
    """The state_dir a kleepd.conf written by write_config() names."""
    with open(conf) as f:
        for line in f:
            k, _, v = line.partition("=")
            if k.strip() == "state_dir":
                return v.strip()
    raise ValueError(f"{conf}: no state_dir")


def db_path(conf, merchant_id):
    return os.path.join(state_dir_of(conf), f"{merchant_id}.db")


class TempDir:
    """A temporary folder, removed on exit unless KEEP=1 (or keep=True)."""

    def __init__(self, prefix="kleeptest-", keep=False):
        self.path = tempfile.mkdtemp(prefix=prefix)
        self.keep = keep or os.environ.get("KEEP") == "1"

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)
        return False


# --------------------------------------------------------------------------- kleepd

LINE_RE = re.compile(r"^([^/\s]+)/(\w+): (.*)$")
SUCCESS_RE = re.compile(r"^success, (\d+) pages, (\d+) records, (\d+) changed, (\d+) requests")
FAILED_RE = re.compile(r"^(failed|interrupted)(?: \((\w+)\))?: (.*)$")


class Run:
    """A finished `kleepd --once`: rc, out, err, elapsed, and per-stream results.

    results["demo/orders"] = {"outcome": "success", "pages": 3, "records": 200,
                              "changed": 200, "requests": 4, "line": "..."}
    or {"outcome": "failed", "class": "unauthorized", "message": "...", "line": "..."}.
    """

    def __init__(self, args, rc, out, err, elapsed):
        self.args, self.rc, self.out, self.err, self.elapsed = args, rc, out, err, elapsed
        self.results = {}
        for line in out.splitlines():
            m = LINE_RE.match(line)
            if not m:
                continue
            key, rest = f"{m.group(1)}/{m.group(2)}", m.group(3)
            res = {"line": line, "outcome": rest.split(",")[0].split(" ")[0].rstrip(":")}
            s = SUCCESS_RE.match(rest)
            f = FAILED_RE.match(rest)
            if s:
                res.update(outcome="success", pages=int(s.group(1)), records=int(s.group(2)),
                           changed=int(s.group(3)), requests=int(s.group(4)))
            elif f:
                res.update(outcome=f.group(1), error_class=f.group(2), message=f.group(3))
            self.results[key] = res

    def outcome(self, merchant, stream):
        return self.results.get(f"{merchant}/{stream}", {}).get("outcome")

    def all_success(self, merchant, streams=STREAMS):
        return all(self.outcome(merchant, s) == "success" for s in streams)

    def crashed(self):
        """A signal, a sanitizer report or an assertion: never acceptable."""
        return (self.rc is None or self.rc < 0 or self.rc > 2
                or re.search(r"Sanitizer|runtime error:|Segmentation|Assertion", self.err))

    def summary(self):
        return f"rc={self.rc}\nstdout:\n{self.out}\nstderr (tail):\n{self.err[-3000:]}"


def kleepd_args(conf, merchant=None, stream=None, full=False):
    args = [KLEEPD, "--once", "-c", conf]
    if merchant:
        args += ["--merchant", merchant]
    if stream:
        args += ["--stream", stream]
    if full:
        args.append("--full")
    return args


def run_kleepd(conf, merchant=None, stream=None, full=False, timeout=300, env=None):
    """Run `kleepd --once` to its end; a Run.  A timeout kills it and counts as rc None."""
    args = kleepd_args(conf, merchant, stream, full)
    t0 = time.monotonic()
    try:
        p = subprocess.run(args, capture_output=True, timeout=timeout, env=env,
                           stdin=subprocess.DEVNULL)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, e.stdout or b"", (e.stderr or b"") + b"\n[killed: timeout]"
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    KLEEPD_OUTPUT.append(out)
    KLEEPD_OUTPUT.append(err)
    return Run(args, rc, out, err, time.monotonic() - t0)


class Spawned:
    """A `kleepd --once` running in the background (for kill -9 tests)."""

    def __init__(self, conf, merchant=None, stream=None, full=False, env=None):
        self.args = kleepd_args(conf, merchant, stream, full)
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, env=env)

    def kill9(self):
        """SIGKILL (if still running) and reap; returns a Run."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.wait()

    def wait(self, timeout=300):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        elapsed = time.monotonic() - self.t0
        outs = []
        for f in (self._out, self._err):
            f.seek(0)
            outs.append(f.read().decode("utf-8", "replace"))
            f.close()
        KLEEPD_OUTPUT.extend(outs)
        return Run(self.args, rc, outs[0], outs[1], elapsed)


def spawn_kleepd(conf, merchant=None, stream=None, full=False, env=None):
    return Spawned(conf, merchant, stream, full, env)


# --------------------------------------------------------------------------- mirror

def connect(path):
    """A read-only connection to a mirror (WAL content included)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    return db


def query(path, sql, params=()):
    db = connect(path)
    try:
        return [tuple(r) for r in db.execute(sql, params)]
    finally:
        db.close()


def mirror_rows(path, tables=TABLES):
    """{table: [row dict, ...]} of the canonical columns, sorted like the oracle."""
    db = connect(path)
    try:
        out = {}
        for t in tables:
            cols = COLUMNS[t]
            order = ", ".join(SORT_KEYS[t])
            out[t] = [dict(zip(cols, r)) for r in
                      db.execute(f"SELECT {', '.join(cols)} FROM {t} ORDER BY {order}")]
        return out
    finally:
        db.close()


def sync_state(path, stream):
    """The sync_state row of a stream as a dict (None when absent)."""
    db = connect(path)
    try:
        r = db.execute("SELECT * FROM sync_state WHERE stream = ?", (stream,)).fetchone()
        return dict(r) if r else None
    finally:
        db.close()


def _key(table, row):
    return tuple(row[k] for k in SORT_KEYS[table])


def _show(row, limit=300):
    text = json.dumps(row, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "..."


def compare_rows(table, got, want, limit=5):
    """Readable differences between two row lists of one table ([] when equal)."""
    diffs = []
    g = {}
    dup = []
    for row in got:
        k = _key(table, row)
        if k in g:
            dup.append(k)
        g[k] = row
    w = {_key(table, row): row for row in want}
    if dup:
        diffs.append(f"{table}: {len(dup)} duplicate keys, e.g. {dup[:limit]}")
    if len(got) != len(want):
        diffs.append(f"{table}: {len(got)} rows, want {len(want)}")
    missing = [k for k in w if k not in g]
    extra = [k for k in g if k not in w]
    changed = [k for k in w if k in g and g[k] != w[k]]
    if missing:
        diffs.append(f"{table}: {len(missing)} missing, e.g. "
                     + "; ".join(_show(w[k]) for k in missing[:limit]))
    if extra:
        diffs.append(f"{table}: {len(extra)} extra, e.g. "
                     + "; ".join(_show(g[k]) for k in extra[:limit]))
    if changed:
        parts = []
        for k in changed[:limit]:
            cols = [c for c in w[k] if g[k].get(c) != w[k][c]]
            parts.append(f"{k}: " + ", ".join(f"{c} got {g[k].get(c)!r} want {w[k][c]!r}"
                                              for c in cols))
        diffs.append(f"{table}: {len(changed)} differ, e.g. " + "; ".join(parts))
    return diffs


def compare(path, expected, tables=None):
    """Differences between the mirror at path and expected {table: rows} ([] when equal)."""
    tables = tables or [t for t in TABLES if t in expected]
    got = mirror_rows(path, tables)
    diffs = []
    for t in tables:
        diffs += compare_rows(t, got[t], expected[t])
    return diffs


def canonical_from_truth(truth, merchant):
    """The oracle's rows for a truth document and a Merchant, computed offline."""
    return wshop_canonical.canonical(truth, *merchant.canonical_args())


def compare_records(path, truth, streams=STREAMS):
    """The raw layer: per stream, the live (not deleted) API records are exactly truth's ids."""
    db = connect(path)
    try:
        diffs = []
        for s in streams:
            got = [r[0] for r in db.execute(
                "SELECT id FROM records WHERE stream = ? AND deleted = 0 AND source = 'api'",
                (s,))]
            want = {str(r["id"]) for r in truth[s]}
            gs = set(got)
            if len(got) != len(gs):
                diffs.append(f"records/{s}: duplicate ids")
            if gs != want:
                diffs.append(f"records/{s}: {len(gs - want)} extra (e.g. {sorted(gs - want)[:5]}),"
                             f" {len(want - gs)} missing (e.g. {sorted(want - gs)[:5]})")
        return diffs
    finally:
        db.close()


# --------------------------------------------------------------------------- personal data

def personal_needles(truths, innocent_texts=()):
    """Byte strings whose presence anywhere means customer data leaked.

    Every customer e-mail contains the shop's customer mail domain, every phone the
    "+33 6" prefix and every street one of a few street names: searching those fragments
    finds each full value (and its variants) at a fraction of the cost of one search per
    value.  First and last names are searched as they are.  A fragment that also occurs
    in innocent_texts (the shop's non-personal data) cannot tell a leak and is left out;
    the second value returned counts those.
    """
    emails, phones, streets, names = set(), set(), set(), set()
    for truth in truths:
        for order in truth.get("orders", []):
            c = order.get("customer") or {}
            if c.get("email"):
                emails.add(c["email"])
            if c.get("phone"):
                phones.add(c["phone"])
            street = (c.get("address") or {}).get("street")
            if street:
                streets.add(street)
            for k in ("firstname", "lastname"):
                if c.get(k):
                    names.add(c[k])
    frags = set()
    frags |= {"@" + e.split("@", 1)[1] for e in emails}
    frags |= {p[:5] for p in phones}                                # "+33 6"
    frags |= {s.split(" ", 1)[1] if s.split(" ", 1)[0].isdigit() else s for s in streets}
    frags |= names
    innocent = "\n".join(innocent_texts)
    kept = sorted(f for f in frags if f not in innocent)
    skipped = len(frags) - len(kept)
    needles = set()
    for f in kept:
        needles.add(f.encode())
        esc = json.dumps(f)[1:-1]                  # JSON with \uXXXX escapes
        needles.add(esc.encode())
        needles.add(f.encode("latin-1", "ignore"))  # a mangled encoding
    needles.discard(b"")
    return sorted(needles), skipped, {"emails": len(emails), "phones": len(phones),
                                      "streets": len(streets), "names": len(names)}


def find_needles(data, needles):
    """The needles found in bytes data (as a count, never the needle: it is personal)."""
    return sum(1 for n in needles if n in data)


def innocent_texts(truth):
    """The shop's data without its customers, as text (for personal_needles)."""
    clean = {k: v for k, v in truth.items() if k != "orders"}
    clean["orders"] = [{k: v for k, v in o.items() if k != "customer"}
                       for o in truth.get("orders", [])]
    return [json.dumps(clean, ensure_ascii=False), json.dumps(clean)]
