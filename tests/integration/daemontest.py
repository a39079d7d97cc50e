"""daemontest.py - helpers for the tests and benchmarks that drive the kleepd service.

Beside kleeptest.py (emulator, Checks, config for `kleepd --once`), this adds what a
long-running kleepd needs: a config with a runtime_dir, workers and poll intervals,
the daemon itself in the foreground (`kleepd -f -c CONF`) with its log captured,
kleepctl runs, raw control-socket requests, and a test's own NOTIFY_SOCKET.

Environment: BUILD (default "build"), relative to the project root.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import kleeptest as kt

ROOT = kt.ROOT
BUILD = os.environ.get("BUILD", "build")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux asm-generic value


def _abs(path):
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


KLEEPD = _abs(os.path.join(BUILD, "kleepd"))
KLEEPCTL = _abs(os.path.join(BUILD, "kleepctl"))


def wait_until(pred, timeout, step=0.05):
    """Poll pred() until it returns a true value (returned) or timeout seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)


# --------------------------------------------------------------------------- config

def write_daemon_config(folder, merchants, workers=4, log_level="info", defaults=None,
                        merchant_extra=None, lookback="10m"):
    """kleeptest.write_config() plus what the service needs.

    defaults: {"poll_orders": "2s", ...} added to [defaults];
    merchant_extra: {merchant id: {"poll_orders": "1s", ...}} added to that merchant's
    [wshop] section (the last section of the file write_config writes).
    Returns (conf path, socket path).
    """
    conf = kt.write_config(folder, merchants, lookback=lookback, log_level=log_level)
    run = os.path.join(folder, "run")
    with open(conf) as f:
        text = f.read()
    text = text.replace("[daemon]\n", f"[daemon]\nruntime_dir = {run}\nworkers = {workers}\n", 1)
    for k, v in (defaults or {}).items():
        text += f"{k} = {v}\n"
    with open(conf, "w") as f:
        f.write(text)
    for mid, extra in (merchant_extra or {}).items():
        with open(os.path.join(folder, "merchants.d", f"{mid}.conf"), "a") as f:
            for k, v in extra.items():
                f.write(f"{k} = {v}\n")
    return conf, os.path.join(run, "kleepd.sock")


def add_merchant_file(folder, merchant, extra=None):
    """Write one more merchants.d/<id>.conf into a folder made by write_daemon_config."""
    tmp = tempfile.mkdtemp(prefix="kleep-m-", dir=folder)
    kt.write_config(tmp, [merchant])
    pw_old = os.path.join(tmp, f"{merchant.id}.password")
    pw = os.path.join(folder, f"{merchant.id}.password")
    os.replace(pw_old, pw)
    with open(os.path.join(tmp, "merchants.d", f"{merchant.id}.conf")) as f:
        text = f.read().replace(pw_old, pw)
    for k, v in (extra or {}).items():
        text += f"{k} = {v}\n"
    path = os.path.join(folder, "merchants.d", f"{merchant.id}.conf")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    shutil.rmtree(tmp, ignore_errors=True)
    return path


# --------------------------------------------------------------------------- daemon

class Daemon:
    """`kleepd -f -c CONF` in the background; `with Daemon(conf, sock) as d:` (always stopped)."""

    def __init__(self, conf, sock, env=None, extra_env=None, prefix=()):
        """prefix: a command that runs kleepd, e.g. setpriv as another user."""
        self.conf, self.sock = conf, sock
        self.prefix = list(prefix)
        self.env = dict(os.environ if env is None else env)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"):
            if env is None:
                self.env.pop(k, None)
        self.env.update(extra_env or {})
        self.proc = None
        self._err = None
        self.rc = None

    def start(self, wait_socket=True, timeout=20):
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.prefix + [KLEEPD, "-f", "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self._err, stderr=self._err, env=self.env)
        self.t0 = time.monotonic()
        if wait_socket and not wait_until(lambda: self.reachable() or self.proc.poll() is not None,
                                          timeout):
            raise RuntimeError(f"kleepd did not listen on {self.sock}: {self.log()[-2000:]}")
        if wait_socket and self.proc.poll() is not None:
            raise RuntimeError(f"kleepd exited {self.proc.returncode}: {self.log()[-2000:]}")
        return self

    def reachable(self):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1)
            s.connect(self.sock)
            s.close()
            return True
        except OSError:
            return False

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """The exit status, or None if still running after timeout seconds."""
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.rc

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL past timeout; the exit status (negative when killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.rc = self.proc.returncode
        return self.rc

    def log(self):
        if not self._err:
            return ""
        self._err.seek(0)
        text = self._err.read().decode("utf-8", "replace")
        self._err.seek(0, 2)
        return text

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self._err:
            kt.KLEEPD_OUTPUT.append(self.log())
            self._err.close()
        return False

    # -- control --
    def request(self, obj, timeout=30):
        return request(self.sock, obj, timeout)

    def status(self, merchant=None):
        rq = {"v": 1, "cmd": "status"}
        if merchant:
            rq["merchant"] = merchant
        r = self.request(rq)
        if not r.get("ok"):
            raise RuntimeError(f"status: {r}")
        return r["data"]

    def ctl(self, *args, timeout=60, json_out=False):
        return kleepctl(self.sock, *args, timeout=timeout, json_out=json_out)


def request(sock_path, obj, timeout=30):
    """One request on a fresh connection; the decoded reply."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        line = obj if isinstance(obj, (bytes, bytearray)) else json.dumps(obj).encode() + b"\n"
        s.sendall(line)
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])
    finally:
        s.close()


class CtlResult:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"rc={self.rc} out={self.out[-1500:]!r} err={self.err[-1500:]!r}"


def kleepctl(sock, *args, timeout=60, json_out=False):
    argv = [KLEEPCTL]
    if sock is not None:
        argv += ["--socket", sock]
    if json_out:
        argv.append("--json")
    argv += [str(a) for a in args]
    env = dict(os.environ)
    env.pop("KLEEP_SOCKET", None)
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                           env=env)
        return CtlResult(p.returncode, p.stdout.decode("utf-8", "replace"),
                         p.stderr.decode("utf-8", "replace"))
    except subprocess.TimeoutExpired:
        return CtlResult(None, "", f"[timeout after {timeout}s]")


# --------------------------------------------------------------------------- status helpers

def streams_of(status, merchant):
    """{stream name: stream status} of one merchant in a status reply (None if absent)."""
    for m in status.get("merchants", []):
        if m["merchant"] == merchant:
            return {s["stream"]: s for s in m["streams"]}
    return None


def merchant_ids(status):
    return sorted(m["merchant"] for m in status.get("merchants", []))


def all_synced(status, merchant):
    """Every stream of the merchant has a last success."""
    st = streams_of(status, merchant)
    return bool(st) and all(s.get("last_success") for s in st.values())


def count_runs(db, stream=None, outcome=None):
    """Rows of sync_runs (0 when the mirror does not exist yet)."""
    if not os.path.exists(db):
        return 0
    sql, params = "SELECT count(*) FROM sync_runs WHERE 1", []
    if stream:
        sql += " AND stream = ?"
        params.append(stream)
    if outcome:
        sql += " AND outcome = ?"
        params.append(outcome)
    try:
        return kt.query(db, sql, params)[0][0]
    except Exception:  # noqa: BLE001  (a mirror being created)
        return 0


# --------------------------------------------------------------------------- sd_notify

class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET.

    A thread reads every datagram as it comes, as systemd does: a receiver that lags
    fills the socket's small queue (10 datagrams) and then blocks the sender, kleepd's
    loop.  Messages are kept in .messages as (time, {key: value}, raw text), the time
    stamped by the kernel on arrival (time.time() scale).
    """

    def __init__(self, folder):
        self.path = os.path.join(folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            pass
        self.messages = []
        self._lock = threading.Lock()
        self._seen = 0
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop:
            try:
                data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(16))
            except socket.timeout:
                continue
            except OSError:
                break
            when = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
                    sec, nsec = struct.unpack("qq", payload[:16])
                    when = sec + nsec / 1e9
            if when is None:
                when = time.time()
            text = data.decode("utf-8", "replace")
            fields = {}
            for line in text.split("\n"):
                if "=" in line:
                    k, _, v = line.partition("=")
                    fields[k] = v
            with self._lock:
                self.messages.append((when, fields, text))

    def poll(self, timeout=0.0):
        """Wait timeout seconds, then the messages that came since the last poll()."""
        if timeout:
            time.sleep(timeout)
        with self._lock:
            new = self.messages[self._seen:]
            self._seen = len(self.messages)
        return new

    def wait_for(self, key, value=None, timeout=10, since=0):
        """(index, message) of the first message from index since on with key (and value);
        None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                msgs = list(self.messages)
            for i in range(since, len(msgs)):
                f = msgs[i][1]
                if key in f and (value is None or f[key] == value):
                    return i, msgs[i]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)

    def close(self):
        self._stop = True
        self._thread.join()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def proc_cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


__all__ = ["Daemon", "NotifySocket", "write_daemon_config", "add_merchant_file", "request",
           "kleepctl", "wait_until", "streams_of", "merchant_ids", "all_synced", "count_runs",
           "proc_cpu_seconds", "proc_status_kib", "KLEEPD", "KLEEPCTL"]
