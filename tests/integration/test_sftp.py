#!/usr/bin/python3
"""test_sftp.py - the SFTP gap-fill end to end, against a real sshd on 127.0.0.1.

Generates ed25519 host and client keys, starts OpenSSH's sshd on a free port
with its own config (internal-sftp jailed to a temporary folder by ForceCommand),
writes a kleepd config with one SFTP-only merchant, drops CSV files and runs
`kleepd --once --stream sftp`, then reads the mirror with sqlite3.

Usage: test_sftp.py [BUILD]   (or BUILD in the environment; default "build"),
from the project root.  Prints one line per check and "N passed, M failed".
"""
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BUILD", "build")
KLEEPD = os.path.join(ROOT, BUILD, "kleepd") if not os.path.isabs(BUILD) else \
    os.path.join(BUILD, "kleepd")
SSHD = "/usr/sbin/sshd"
OLD = time.time() - 3600  # an mtime long settled

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}: {detail}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path],
                   check=True)
    os.chmod(path, 0o600)
    with open(path + ".pub") as f:
        return " ".join(f.read().split()[:2])


class Env:
    """The temporary world: keys, sshd, the drop folder, kleepd's config and state."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="kleep-sftp-")
        self.port = free_port()
        self.sshd = None
        self.drop = os.path.join(self.tmp, "drop")      # the SFTP login folder
        self.shop = os.path.join(self.drop, "shop")     # the merchant's root
        self.state = os.path.join(self.tmp, "state")
        self.etc = os.path.join(self.tmp, "etc")
        self.db = os.path.join(self.state, "m.db")
        for d in (self.state, os.path.join(self.etc, "merchants.d")):
            os.makedirs(d)
        for d in ("products", "orders", "returns", "return_reasons", "misc"):
            os.makedirs(os.path.join(self.shop, d))
        self.host_pub = keygen(os.path.join(self.tmp, "host_key"))
        self.other_pub = keygen(os.path.join(self.tmp, "other_host_key"))
        client_pub = keygen(os.path.join(self.tmp, "client_key"))
        with open(os.path.join(self.tmp, "authorized_keys"), "w") as f:
            f.write(client_pub + "\n")
        self.known_hosts = os.path.join(self.tmp, "known_hosts")
        self.pin(self.host_pub)
        self.sshd_config = os.path.join(self.tmp, "sshd_config")
        with open(self.sshd_config, "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.tmp}/host_key
PidFile {self.tmp}/sshd.pid
AuthorizedKeysFile {self.tmp}/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers root
Subsystem sftp internal-sftp
ForceCommand internal-sftp -d {self.drop}
LogLevel ERROR
""")
        with open(os.path.join(self.etc, "kleepd.conf"), "w") as f:
            f.write(f"[daemon]\nstate_dir = {self.state}\n")
        with open(os.path.join(self.etc, "merchants.d", "m.conf"), "w") as f:
            f.write(f"""[merchant]
id = m
languages = fr, en

[sftp]
host = 127.0.0.1
port = {self.port}
user = root
key_file = {self.tmp}/client_key
known_hosts = {self.known_hosts}
root = shop
settle = 1s
""")

    def pin(self, pub):
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {pub}\n")

    def start_sshd(self):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.sshd_log = open(os.path.join(self.tmp, "sshd.log"), "w")
        self.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", self.sshd_config],
                                     stdout=self.sshd_log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                if self.sshd.poll() is not None:
                    break
                time.sleep(0.05)
        return False

    def stop_sshd(self):
        if self.sshd and self.sshd.poll() is None:
            for pid in descendants(self.sshd.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.sshd.terminate()
            try:
                self.sshd.wait(5)
            except subprocess.TimeoutExpired:
                self.sshd.kill()
                self.sshd.wait()
        if self.sshd:
            self.sshd_log.close()

    def cleanup(self):
        self.stop_sshd()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def kleepd_args(self):
        return [KLEEPD, "--once", "-c", os.path.join(self.etc, "kleepd.conf"),
                "--merchant", "m", "--stream", "sftp"]

    def scan(self):
        r = subprocess.run(self.kleepd_args(), capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr

    def put(self, rel, content, mtime=OLD):
        path = os.path.join(self.shop, rel)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.utime(path, (mtime, mtime))
        return path

    def q(self, sql, *args):
        con = sqlite3.connect(self.db)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def q1(self, sql, *args):
        rows = self.q(sql, *args)
        return rows[0][0] if rows else None


def descendants(pid):
    """Every process below pid, children first."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def outcomes(env):
    return dict(env.q("SELECT path, outcome FROM sftp_files"))


# ---- the files of the first drop ----

REASONS = ("reason_id,code,label,lang\n"
           "1,too_small,Trop petit,fr\n1,,Too small,en\n"
           "2,too_big,Trop grand,fr\n2,,Too big,en\n")
PRODUCTS = ("product_id,variant_id,sku,ean,title,url,images,category,size_label,updated_at\n"
            "P1,V1,P1-S,370001,Tee,https://s/p1,a.jpg|b.jpg,T-shirts,S,2025-01-13 10:00:00\n"
            "P1,V2,P1-M,370002,Tee,https://s/p1,a.jpg|b.jpg,T-shirts,M,2025-01-13 10:00:00\n"
            "P2,V3,P2-U,370003,Cap,https://s/p2,,Hats,U,2025-01-13 10:00:00\n")
ORDERS = ("order_id,ordered_at,product_id,variant_id,quantity,price,currency,status\n"
          "O1,2025-01-12T09:00:00,P1,V1,1,19.90,EUR,shipped\n"
          "O1,2025-01-12T09:00:00,P1,V2,2,19.90,EUR,shipped\n"
          "O2,2025-01-12T11:00:00,P2,V3,1,9.00,EUR,shipped\n")
RETURNS_1 = ("return_id,order_id,returned_at,product_id,variant_id,quantity,reason_id,comment\n"
             "R1,O1,2025-01-13,P1,V1,1,1,first version\n")
RETURNS_2 = ("return_id,order_id,returned_at,product_id,variant_id,quantity,reason_id,comment\n"
             "R1,O1,2025-01-13,P1,V1,1,2,second version\n"
             "R2,O2,2025-01-14,P2,V3,1,2,\n")
DIMENSIONS = ("variant_id,product_id,measurement,value,unit\n"
              "V1,P1,chest,50,cm\nV2,P1,chest,53,cm\n,P2,circumference,57.5,cm\n")
RET_HEADER = "return_id,order_id,returned_at,product_id,variant_id,quantity,reason_id,comment\n"


def scenario_first_drop(env):
    env.put("return_reasons/return_reasons_2025-01-14T02-00-00.csv", REASONS)
    env.put("products/products_2025-01-14T02-00-00.csv", PRODUCTS)
    env.put("orders/orders_2025-01-14T02-00-00.csv", ORDERS)
    env.put("returns/returns_2025-01-14T02-00-00.csv", RETURNS_1)
    env.put("returns/returns_2025-01-15T02-00-00.csv", RETURNS_2)
    env.put("misc/dimensions_2025-01-14T02-00-00.csv", DIMENSIONS)
    env.put("returns/notes.txt", "not a csv\n")
    env.put("returns/orders_2025-01-14T02-00-00.csv", ORDERS)
    env.put("misc/sizes_2025-01-14T02-00-00.csv", "x\n")
    env.put("readme.txt", "hello\n")
    os.makedirs(os.path.join(env.shop, "archive"))

    rc, out = env.scan()
    check("first scan succeeds", rc == 0, out)
    o = outcomes(env)
    applied = [p for p, v in o.items() if v == "applied"]
    check("files in every folder applied", sorted(applied) == sorted([
        "return_reasons/return_reasons_2025-01-14T02-00-00.csv",
        "products/products_2025-01-14T02-00-00.csv",
        "orders/orders_2025-01-14T02-00-00.csv",
        "returns/returns_2025-01-14T02-00-00.csv",
        "returns/returns_2025-01-15T02-00-00.csv",
        "misc/dimensions_2025-01-14T02-00-00.csv"]), o)
    reasons = dict(env.q("SELECT path, reason FROM sftp_files WHERE outcome = 'ignored'"))
    check("other files ignored with a reason",
          set(reasons) == {"returns/notes.txt", "returns/orders_2025-01-14T02-00-00.csv",
                           "misc/sizes_2025-01-14T02-00-00.csv", "readme.txt", "archive"}
          and "an orders file in the returns/ folder" in
          reasons.get("returns/orders_2025-01-14T02-00-00.csv", "")
          and "layout" in reasons.get("archive", ""), reasons)

    check("products and variants", env.q("SELECT product_id, title, category, images FROM products"
                                         " ORDER BY 1") ==
          [("P1", "Tee", "T-shirts", '["a.jpg","b.jpg"]'), ("P2", "Cap", "Hats", None)],
          env.q("SELECT * FROM products"))
    check("variants content", env.q("SELECT variant_id, product_id, sku, ean, size_label"
                                     " FROM variants ORDER BY 1") ==
          [("V1", "P1", "P1-S", "370001", "S"), ("V2", "P1", "P1-M", "370002", "M"),
           ("V3", "P2", "P2-U", "370003", "U")], env.q("SELECT * FROM variants"))
    check("orders and lines", env.q("SELECT order_id, ordered_at, currency FROM orders ORDER BY 1")
          == [("O1", "2025-01-12T08:00:00Z", "EUR"), ("O2", "2025-01-12T10:00:00Z", "EUR")]
          and env.q("SELECT order_id, line_no, variant_id, quantity, unit_price_minor, currency"
                    " FROM order_lines ORDER BY 1, 2") ==
          [("O1", 1, "V1", 1, 1990, "EUR"), ("O1", 2, "V2", 2, 1990, "EUR"),
           ("O2", 1, "V3", 1, 900, "EUR")],
          env.q("SELECT * FROM order_lines"))
    # latest wins: the 15th's version of R1, applied after the 14th's
    check("returns after latest wins",
          env.q("SELECT return_id, line_no, variant_id, reason_id, comment FROM return_lines"
                " ORDER BY 1") == [("R1", 1, "V1", "2", "second version"),
                                    ("R2", 1, "V3", "2", None)],
          env.q("SELECT * FROM return_lines"))
    check("return reasons in the first language, every label kept",
          env.q("SELECT reason_id, code, label FROM return_reasons ORDER BY 1") ==
          [("1", "too_small", "Trop petit"), ("2", "too_big", "Trop grand")]
          and env.q1("SELECT count(*) FROM labels WHERE entity = 'return_reason'") == 4,
          env.q("SELECT * FROM return_reasons"))
    check("dimensions", env.q("SELECT key_kind, key_id, measurement, value FROM dimensions"
                              " ORDER BY 2") ==
          [("product", "P2", "circumference", 57.5), ("variant", "V1", "chest", 50.0),
           ("variant", "V2", "chest", 53.0)], env.q("SELECT * FROM dimensions"))
    check("raw records from sftp", env.q1("SELECT count(*) FROM records WHERE source = 'sftp'")
          == 4 + 3 + 3 + 2 + 3, env.q("SELECT stream, id FROM records"))
    st = env.q("SELECT last_success IS NOT NULL, error_class, rows_total FROM sync_state"
               " WHERE stream = 'sftp'")
    # rows_total is what the SFTP files hold now: their raw records, as for an API stream
    check("sync_state records the success",
          st == [(1, None, env.q1("SELECT count(*) FROM records WHERE source = 'sftp'"))] and
          st[0][2] == 4 + 3 + 3 + 2 + 3, st)
    runs = env.q("SELECT outcome, pages FROM sync_runs WHERE stream = 'sftp'")
    check("sync_runs records the scan", runs == [("success", 6)], runs)


def scenario_idempotent(env):
    before = env.q("SELECT stream, id, last_run FROM records ORDER BY 1, 2")
    rc, out = env.scan()
    after = env.q("SELECT stream, id, last_run FROM records ORDER BY 1, 2")
    check("second scan succeeds", rc == 0, out)
    check("same files not applied twice", before == after and
          env.q1("SELECT pages FROM sync_runs ORDER BY run_id DESC LIMIT 1") == 0, out)

    # a new mtime on the same bytes: downloaded, hashed, not applied again
    path = os.path.join(env.shop, "returns/returns_2025-01-15T02-00-00.csv")
    os.utime(path, (OLD + 60, OLD + 60))
    rc, out = env.scan()
    after = env.q("SELECT stream, id, last_run FROM records ORDER BY 1, 2")
    row = env.q("SELECT outcome, reason FROM sftp_files WHERE path = ?",
                "returns/returns_2025-01-15T02-00-00.csv")
    check("touched file with the same content not applied again",
          rc == 0 and before == after and row and row[0][0] == "applied"
          and "same content" in (row[0][1] or ""), (out, row))

    # new content under the same name: applied again
    env.put("returns/returns_2025-01-15T02-00-00.csv",
            RETURNS_2.replace("R2,O2,2025-01-14,P2,V3,1,2,", "R2,O2,2025-01-14,P2,V3,3,1,rewritten"),
            OLD + 120)
    rc, out = env.scan()
    check("rewritten file applied again", rc == 0 and env.q(
        "SELECT quantity, reason_id, comment FROM return_lines WHERE return_id = 'R2'") ==
        [(3, "1", "rewritten")], (out, env.q("SELECT * FROM return_lines")))
    check("no duplicate rows after re-application",
          env.q1("SELECT count(*) FROM return_lines") == 2 and
          env.q1("SELECT count(*) FROM records WHERE stream = 'returns'") == 2,
          env.q("SELECT * FROM records WHERE stream = 'returns'"))


def scenario_growing(env):
    name = "returns/returns_2025-01-16T02-00-00.csv"
    future = time.time() + 600  # never "older than settle": only an unchanged size and mtime count
    env.put(name, RET_HEADER + "R3,O1,2025-01-15,P1,V2,1,1,\n", future)
    rc, out = env.scan()
    check("growing file waits (first sight)", rc == 0 and
          env.q1("SELECT outcome FROM sftp_files WHERE path = ?", name) == "pending" and
          env.q1("SELECT count(*) FROM returns WHERE return_id = 'R3'") == 0, out)
    env.put(name, RET_HEADER + "R3,O1,2025-01-15,P1,V2,1,1,\nR4,O1,2025-01-15,P1,V1,1,1,\n",
            future + 5)
    rc, out = env.scan()
    check("growing file waits (it grew)", rc == 0 and
          env.q1("SELECT outcome FROM sftp_files WHERE path = ?", name) == "pending" and
          env.q1("SELECT count(*) FROM returns WHERE return_id IN ('R3', 'R4')") == 0, out)
    rc, out = env.scan()
    check("settled file applied", rc == 0 and
          env.q1("SELECT outcome FROM sftp_files WHERE path = ?", name) == "applied" and
          env.q1("SELECT count(*) FROM returns WHERE return_id IN ('R3', 'R4')") == 2, out)


def scenario_wrong_host_key(env):
    name = "returns/returns_2025-01-18T02-00-00.csv"
    env.put(name, RET_HEADER + "R9,O1,2025-01-15,P1,V2,1,1,\n")
    env.pin(env.other_pub)
    ledger = env.q("SELECT * FROM sftp_files ORDER BY path")
    try:
        rc, out = env.scan()
    finally:
        env.pin(env.host_pub)
    st = env.q("SELECT error_class, last_error FROM sync_state WHERE stream = 'sftp'")
    err = st[0][1] if st and st[0][1] else ""
    check("wrong host key refused with a non-zero exit", rc != 0, out)
    check("clear error in status", st and st[0][0] == "config" and "does not match" in err
          and "127.0.0.1" in err and str(env.port) in err and "SHA256:" in err, st)
    check("nothing downloaded with a wrong host key",
          env.q("SELECT * FROM sftp_files ORDER BY path") == ledger and
          env.q1("SELECT count(*) FROM returns WHERE return_id = 'R9'") == 0 and
          not [f for f in os.listdir(env.state) if ".sftp-" in f], ledger)
    os.unlink(os.path.join(env.shop, name))


def returns_rows(n, bad, prefix):
    """n returns rows, bad of them with an impossible date, spread evenly."""
    lines = []
    for i in range(n):
        date = "31/02/2025" if i % (n // bad) == 1 else "15/01/2025"
        lines.append(f"{prefix}{i},O1,{date},P1,V1,1,1,\n")
    return "".join(lines)


def scenario_corpus(env):
    files = {
        "bom": ("\ufeff" + RET_HEADER + "C1,O1,2025-01-19,P1,V1,1,1,bom\n", "applied"),
        "semicolon": (RET_HEADER.replace(",", ";") +
                      "C2;O1;19/01/2025;P1;V1;1;1;semi, colon\n", "applied"),
        "crlf": (RET_HEADER.replace("\n", "\r\n") + "C3,O1,2025-01-19,P1,V1,1,1,crlf\r\n",
                 "applied"),
        "quoted": (RET_HEADER + 'C4,O1,2025-01-19,P1,V1,1,1,"line one\nline ""two"""\n'
                   + "C5,O1,2025-01-19,P1,V1,1,1,ok\n", "applied"),
        "missing": ("return_id,order_id,product_id,quantity\nC6,O1,P1,1\n", "rejected"),
        "extra": ("colour," + RET_HEADER.rstrip("\n") + ",size\n" +
                  "red,C7,O1,2025-01-19,P1,V1,1,1,,M\n", "applied"),
        "empty": ("", "rejected"),
        "header": (RET_HEADER, "applied"),
        "utf8": (RET_HEADER + returns_rows(19, 19, "U").replace("31/02/2025", "15/01/2025") +
                 "U19,O1,2025-01-19,P1,V1,1,1,caf\xe9\n", "applied_with_rejects"),
        "five": (RET_HEADER + returns_rows(100, 5, "F"), "applied_with_rejects"),
        "fifty": (RET_HEADER + returns_rows(100, 50, "H"), "rejected"),
    }
    names = {}
    for i, (key, (content, _)) in enumerate(files.items()):
        # distinct names, same day: the 11 files are applied in name order
        name = f"returns/returns_2025-01-20T02-{i:02d}-00.csv"
        names[key] = name
        data = content.encode("utf-8") if key != "utf8" else content.encode("latin-1")
        env.put(name, data)
    rc, out = env.scan()
    check("bad-CSV corpus scan succeeds (the daemon keeps going)", rc == 0, out)
    o = outcomes(env)
    for key, (_, want) in files.items():
        check(f"corpus {key}: {want}", o.get(names[key]) == want, (o.get(names[key]),
              env.q("SELECT reason FROM sftp_files WHERE path = ?", names[key])))
    got = dict(env.q("SELECT return_id, comment FROM return_lines WHERE return_id IN"
                     " ('C1', 'C2', 'C3', 'C4', 'C7')"))
    check("corpus content", got == {"C1": "bom", "C2": "semi, colon", "C3": "crlf",
                                    "C4": 'line one\nline "two"', "C7": None}, got)
    check("corpus rejected files applied nothing",
          env.q1("SELECT count(*) FROM returns WHERE return_id = 'C6' OR return_id LIKE 'H%'")
          == 0, "")
    check("5% bad rows: the others applied",
          env.q1("SELECT count(*) FROM returns WHERE return_id LIKE 'F%'") == 95 and
          env.q1("SELECT count(*) FROM csv_rejects WHERE path = ?", names["five"]) == 5, "")
    check("50% bad rows: rejects still recorded",
          env.q1("SELECT count(*) FROM csv_rejects WHERE path = ?", names["fifty"]) == 50, "")
    check("invalid UTF-8 row rejected with its line",
          env.q("SELECT line FROM csv_rejects WHERE path = ?", names["utf8"]) == [(21,)],
          env.q("SELECT * FROM csv_rejects WHERE path = ?", names["utf8"]))
    check("rejected files explain themselves", "missing required column returned_at" in
          (env.q1("SELECT reason FROM sftp_files WHERE path = ?", names["missing"]) or "") and
          "empty" in (env.q1("SELECT reason FROM sftp_files WHERE path = ?", names["empty"]) or ""),
          env.q("SELECT path, reason FROM sftp_files WHERE outcome = 'rejected'"))


def scenario_cut(env):
    """Kill the sshd session serving a big download: nothing applied, the next scan is clean."""
    name = "returns/returns_2025-01-21T02-00-00.csv"
    pad = b" " * (256 * 1024 * 1024)  # a blank line: ignored by the CSV reader, slow to download
    head = (RET_HEADER + "B1,O1,2025-01-19,P1,V1,1,1,\n").encode()
    tail = b"\nB2,O1,2025-01-19,P1,V1,1,1,\n"
    env.put(name, head + pad + tail)
    del pad
    proc = subprocess.Popen(env.kleepd_args(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    killed = False
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        parts = [f for f in os.listdir(env.state) if f.startswith(".m.sftp-")]
        sizes = []
        for f in parts:
            try:
                sizes.append(os.path.getsize(os.path.join(env.state, f)))
            except OSError:
                pass
        if any(s > 4 * 1024 * 1024 for s in sizes):
            for pid in descendants(env.sshd.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed = True
            break
        time.sleep(0.005)
    out = proc.communicate(timeout=60)[0]
    check("session killed mid-download", killed, out)
    check("cut scan fails", proc.returncode != 0, out)
    check("nothing of the cut file applied",
          env.q1("SELECT count(*) FROM returns WHERE return_id IN ('B1', 'B2')") == 0 and
          env.q1("SELECT outcome FROM sftp_files WHERE path = ?", name) == "failed" and
          env.q1("SELECT error_class FROM sync_state WHERE stream = 'sftp'") == "transient",
          (out, env.q("SELECT outcome, reason FROM sftp_files WHERE path = ?", name)))
    check("no temporary file left behind",
          not [f for f in os.listdir(env.state) if ".sftp-" in f], os.listdir(env.state))
    count_before = env.q1("SELECT count(*) FROM return_lines")
    rc, out = env.scan()
    check("next scan succeeds", rc == 0, out)
    check("cut file applied once, no duplicates",
          env.q1("SELECT outcome FROM sftp_files WHERE path = ?", name) == "applied" and
          env.q1("SELECT count(*) FROM return_lines") == count_before + 2 and
          env.q1("SELECT count(*) FROM returns WHERE return_id IN ('B1', 'B2')") == 2,
          env.q("SELECT outcome, reason FROM sftp_files WHERE path = ?", name))
    os.unlink(os.path.join(env.shop, name))


def main():
    if not os.access(KLEEPD, os.X_OK):
        check("kleepd is built", False, KLEEPD)
        return
    if os.geteuid() != 0:
        check("runs as root (sshd needs it)", False, "skipped")
        return
    env = Env()
    try:
        if not env.start_sshd():
            with open(os.path.join(env.tmp, "sshd.log")) as f:
                check("sshd starts", False, f.read())
            return
        scenario_first_drop(env)
        scenario_idempotent(env)
        scenario_growing(env)
        scenario_wrong_host_key(env)
        scenario_corpus(env)
        scenario_cut(env)
    finally:
        env.cleanup()


if __name__ == "__main__":
    try:
        main()
    finally:
        print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)
