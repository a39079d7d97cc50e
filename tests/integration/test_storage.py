#!/usr/bin/python3
"""test_storage.py - kleepd when its own machine misbehaves (issue 10).

Sections:
- storage: a mirror that is not a database, one from a newer schema, one locked by
  another writer past the busy timeout, one kleepd may only read, a full disk (a real
  tmpfs; also when pii.key is created): each run fails with class `storage` and the
  words for it, and `kleepctl sync --wait`, `status` and the journal say the same
  (sync_runs, which `kleepctl runs` shows, is checked by test_vfs_faults.py).
- clock: a clock stepped back behind the last full read does not force a full read.
- fifo: a password file swapped for a FIFO fails the run with class `config`, no hang,
  and the daemon still stops at once.
- keep_runs: sync_runs keeps the newest [defaults] keep_runs rows per stream.
- wal: a reader holding a transaction through a full read; after it ends and one more
  job runs, the -wal is at most 4 MiB.
- core: a core of the running daemon, taken with gcore as kleepd's own user, is refused
  (and, with core_dumps = yes, would have held the password).

Runs as root (tmpfs mounts, a second user); what cannot run here is reported as a
failure, not skipped silently.  Environment: BUILD, KEEP=1 (see kleeptest.py), ONLY=wal.
"""
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kleeptest as kt  # noqa: E402
import daemontest as dt  # noqa: E402

C = kt.Checks()
FAST = {"retry.base_ms": 20, "retry.cap_ms": 200, "request_timeout_s": 5}
NOBODY = 65534


def section(title):
    C.say(f"# {title}")


def first_run(root, name, m, stream="sizes"):
    """A config in root/name and a first run of one stream; (conf, mirror path)."""
    conf = kt.write_config(os.path.join(root, name), [m])
    run = kt.run_kleepd(conf, stream=stream)
    C.check(f"{name}: a first run creates the mirror", run.rc == 0, run.summary())
    return conf, kt.db_path(conf, m.id)


def sql(db, statement):
    con = sqlite3.connect(db)
    con.execute(statement)
    con.commit()
    con.close()


@contextlib.contextmanager
def synced_daemon(root, name, emu):
    """A daemon of one merchant "shop" in root/name, its first sync done; (daemon, conf)."""
    m = kt.Merchant("shop", emu, overrides=FAST)
    conf, sock = dt.write_daemon_config(os.path.join(root, name), [m], workers=1,
                                        defaults={"poll_orders": "1h", "poll_products": "1h"})
    with dt.Daemon(conf, sock) as d:
        ok = dt.wait_until(lambda: dt.all_synced(d.status(), "shop"), 60)
        C.check(f"{name}: the daemon syncs the shop first", ok, d.log()[-2000:])
        yield d, conf


def failed_line(run, merchant, stream):
    return run.results.get(f"{merchant}/{stream}", {})


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path],
                       capture_output=True, text=True)
    return p.returncode == 0, p.stderr.strip()


def umount(path):
    subprocess.run(["umount", "-l", path], capture_output=True)


def fill(path):
    """Fill the file system of folder path to the last byte."""
    try:
        with open(os.path.join(path, "filler"), "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    try:
        with open(os.path.join(path, "filler2"), "ab") as f:
            while True:
                f.write(b"\0")
                f.flush()
    except OSError:
        pass


# --------------------------------------------------------------------------- storage

def test_storage_once(root, emu):
    section("storage failures of kleepd --once: class storage and what happened")
    m = kt.Merchant("shop", emu, overrides=FAST)

    # Not a database.
    conf = kt.write_config(os.path.join(root, "notadb"), [m])
    db = kt.db_path(conf, "shop")
    os.makedirs(os.path.dirname(db), exist_ok=True)
    with open(db, "wb") as f:
        f.write(b"this is not an SQLite file, it is a text someone saved here\n" * 200)
    run = kt.run_kleepd(conf, stream="orders")
    C.check("a mirror that is not a database: class storage, 'not a database'",
            run.rc == 1 and "failed (storage)" in run.out and "not a database" in run.out,
            run.summary())

    # A schema newer than this kleepd.
    conf, db = first_run(root, "newer", m)
    sql(db, "PRAGMA user_version = 999")
    run = kt.run_kleepd(conf, stream="orders")
    C.check("a mirror from a newer schema: class storage, 'schema newer than this kleepd'",
            run.rc == 1 and "failed (storage)" in run.out
            and "schema newer than this kleepd" in run.out, run.summary())

    # Locked by another writer for longer than the busy timeout.
    conf, db = first_run(root, "locked", m)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    run = kt.run_kleepd(conf, stream="orders", timeout=120)
    con.execute("ROLLBACK")
    con.close()
    r = failed_line(run, "shop", "orders")
    C.check("a mirror locked by another writer: class storage, 'locked by another writer'",
            run.rc == 1 and r.get("error_class") == "storage"
            and "locked by another writer for longer than the busy timeout" in r.get("message", ""),
            run.summary())

    # Read-only: the mirror belongs to root, kleepd runs as nobody.
    folder = os.path.join(root, "readonly")
    conf, db = first_run(root, "readonly", m)
    for dirpath, dirs, files in os.walk(folder):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    pw = os.path.join(folder, "shop.password")
    os.chown(pw, NOBODY, NOBODY)
    os.chmod(pw, 0o600)
    os.chmod(root, 0o755)
    args = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] + \
        kt.kleepd_args(conf, stream="orders")
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    C.check("a mirror kleepd may only read: class storage, 'read-only'",
            p.returncode == 1 and "(storage)" in p.stdout and "read-only" in p.stdout,
            f"rc={p.returncode} out={p.stdout[-1500:]} err={p.stderr[-1500:]}")
    os.chmod(root, 0o700)


def test_disk_full(root, emu):
    section("a full disk (a small tmpfs): class storage, 'disk full', ENOSPC kept")
    mnt = os.path.join(root, "full")
    ok, err = mount_tmpfs(mnt, "1m")
    C.check("a 1 MiB tmpfs can be mounted for the disk-full test", ok, err)
    if not ok:
        return
    try:
        m = kt.Merchant("shop", emu, overrides=FAST)
        conf = kt.write_config(os.path.join(root, "fullconf"), [m],
                               state_dir=os.path.join(mnt, "state"))
        run = kt.run_kleepd(conf, stream="products")
        r = failed_line(run, "shop", "products")
        C.check("a sync that fills the disk: class storage, 'disk full'",
                run.rc == 1 and r.get("error_class") == "storage"
                and "disk full" in r.get("message", ""), run.summary())
        db = kt.db_path(conf, "shop")
        C.equal("the mirror on the full disk is intact", kt.query(db, "PRAGMA integrity_check"),
                [("ok",)])
        # pii.key cannot be created: ENOSPC, not EIO.
        shutil.rmtree(os.path.join(mnt, "state"))
        os.makedirs(os.path.join(mnt, "state2"))
        fill(mnt)
        conf = kt.write_config(os.path.join(root, "fullconf2"), [m],
                               state_dir=os.path.join(mnt, "state2"))
        run = kt.run_kleepd(conf, stream="orders")
        C.check("pii.key on a full disk: 'No space left on device', class storage",
                run.rc == 1 and "pii.key" in run.out and "No space left on device" in run.out
                and "(storage)" in run.out, run.summary())
    finally:
        umount(mnt)


def test_storage_daemon(root, emu):
    section("the daemon: sync --wait, status and the journal say the same words")
    with synced_daemon(root, "daemon", emu) as (d, conf):
        db = kt.db_path(conf, "shop")
        # Hold the write lock until kleepd logs the run's failure (every write before it
        # waits out its busy timeout), then release it while kleepd records that failure.
        con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        con.execute("BEGIN IMMEDIATE")

        def release_when_failed():
            deadline = time.monotonic() + 100
            while "run failed (storage)" not in d.log() and time.monotonic() < deadline:
                time.sleep(0.05)
            con.execute("ROLLBACK")
        t = threading.Thread(target=release_when_failed)
        t.start()
        r = d.ctl("sync", "shop", "orders", "--wait", timeout=120)
        t.join()
        con.close()
        words = "locked by another writer for longer than the busy timeout"
        C.check("sync --wait: exit 1 with the words", r.rc == 1 and words in (r.out + r.err), r)
        st = dt.streams_of(d.status(), "shop")["orders"]
        C.check("status: the stream's error_class is storage with the same words",
                st.get("error_class") == "storage" and words in (st.get("last_error") or ""), st)
        C.check("the journal (log) has an err line with the class and the words",
                "run failed (storage): " in d.log() and words in d.log(), d.log()[-2000:])


# --------------------------------------------------------------------------- clock

def test_clock_behind(root, emu):
    section("a clock stepped back behind last_full: not due, no full read")
    m = kt.Merchant("shop", emu, overrides=FAST)
    conf, db = first_run(root, "clock", m, "orders")
    sql(db, "UPDATE sync_state SET last_full = '2099-01-01T00:00:00Z' WHERE stream = 'orders'")
    emu.reset_stats()
    run = kt.run_kleepd(conf, stream="orders")
    served = emu.stats()["records_served"].get("orders", 0)
    total = len(emu.truth("orders"))
    C.check("the next run succeeds without a periodic full read",
            run.rc == 0 and "periodic full read" not in run.err and served < total,
            f"served {served} of {total}\n{run.summary()}")


# --------------------------------------------------------------------------- fifo

def test_fifo_password(root, emu):
    section("a password file swapped for a FIFO: a config failure, no hang")
    pw = os.path.join(root, "fifo", "shop.password")
    with synced_daemon(root, "fifo", emu) as (d, conf):
        os.unlink(pw)
        os.mkfifo(pw, 0o600)
        # The merchant's jobs share a live token: expire it, so this run authenticates.
        emu.faults([{"kind": "expire_token"}])
        r = d.ctl("sync", "shop", "orders", "--wait", timeout=30)
        emu.clear_faults()
        C.check("sync --wait returns at once: exit 1, 'not a regular file'",
                r.rc == 1 and "not a regular file" in (r.out + r.err), r)
        st = dt.streams_of(d.status(), "shop")["orders"]
        C.check("status: class config with the same words", st.get("error_class") == "config"
                and "not a regular file" in (st.get("last_error") or ""), st)
        t0 = time.monotonic()
        rc = d.stop(timeout=20)
        C.check("the daemon stops at once after it (SIGTERM, exit 0)",
                rc == 0 and time.monotonic() - t0 < 15, f"rc={rc}")


# --------------------------------------------------------------------------- keep_runs

def test_keep_runs(root, emu):
    section("[defaults] keep_runs: the newest runs per stream are kept")
    m = kt.Merchant("shop", emu, overrides=FAST)
    conf = kt.write_config(os.path.join(root, "keep"), [m])
    with open(conf, "a") as f:
        f.write("keep_runs = 3\n")
    db = kt.db_path(conf, "shop")
    for _ in range(5):
        run = kt.run_kleepd(conf, stream="sizes")
    ids = [r[0] for r in kt.query(db, "SELECT run_id FROM sync_runs WHERE stream = 'sizes' "
                                      "ORDER BY run_id")]
    C.check(f"5 runs of sizes with keep_runs = 3 leave the newest 3 ({ids})",
            run.rc == 0 and len(ids) == 3 and ids[-1] - ids[0] == 2 and ids[-1] >= 5)


# --------------------------------------------------------------------------- wal

def test_wal_long_reader(root):
    section("the -wal behind a long reader: bounded again after the reader ends")
    with kt.Emulator(products=300, orders=6000, returns=100) as emu:
        m = kt.Merchant("wal", emu, overrides=dict(FAST, **{"paging.limit": 100}))
        conf = kt.write_config(os.path.join(root, "wal"), [m])
        db = kt.db_path(conf, "wal")
        run = kt.run_kleepd(conf, stream="sizes")
        # An analyst of group kleep reads the mirror read-only (it cannot checkpoint).
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM records").fetchone()  # holds a snapshot
        run = kt.run_kleepd(conf, full=True)
        size_during = os.path.getsize(db + "-wal")
        C.check("a full read behind the reader succeeds", run.rc == 0, run.summary())
        C.check("kleepd warns that checkpoints stop at a reader, naming the mirror",
                "checkpoints stop at a reader" in run.err and db in run.err, run.err[-2000:])
        reader.execute("COMMIT")
        reader.close()
        run = kt.run_kleepd(conf, stream="sizes")
        size_after = os.path.getsize(db + "-wal")
        C.say(f"# -wal: {size_during / 1048576:.1f} MiB behind the reader, "
              f"{size_after / 1048576:.2f} MiB after one more job")
        C.check("the -wal grew past 4 MiB behind the reader (the test means something)",
                size_during > 4 * 1048576, size_during)
        C.check("after the reader ends and one more job runs, the -wal is at most 4 MiB",
                run.rc == 0 and size_after <= 4 * 1048576, size_after)


# --------------------------------------------------------------------------- core

def gcore_as(uid, pid, out):
    p = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                        "gcore", "-o", out, str(pid)], capture_output=True, text=True, timeout=300)
    return p


def test_core(root):
    section("a core of the running daemon holds no password or token")
    if shutil.which("gcore") is None:
        C.check("gcore is installed (gdb)", False)
        return
    password = "Core-Test-Secret-4d1f9b"
    asan = "asan" in os.environ.get("BUILD", "")
    with kt.Emulator(products=20, orders=50, returns=5, extra=("--password", password)) as emu:
        for dumps in (["no"] if asan else ["no", "yes"]):
            m = kt.Merchant("core", emu, overrides=FAST, password=password)
            folder = os.path.join(root, f"core-{dumps}")
            conf, sock = dt.write_daemon_config(folder, [m], workers=1,
                                                defaults={"poll_orders": "1h"})
            if dumps == "yes":
                with open(conf) as f:
                    text = f.read().replace("[daemon]\n", "[daemon]\ncore_dumps = yes\n", 1)
                with open(conf, "w") as f:
                    f.write(text)
            os.chmod(root, 0o755)
            for dirpath, dirs, files in os.walk(folder):
                os.chown(dirpath, NOBODY, NOBODY)
                for f in files:
                    os.chown(os.path.join(dirpath, f), NOBODY, NOBODY)
            argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                    dt.KLEEPD, "-f", "-c", conf]
            errf = open(os.path.join(root, f"core-{dumps}.log"), "w+")
            # The harness's Daemon stops it; it is started here under another user.
            d = dt.Daemon(conf, sock)
            d.proc = proc = subprocess.Popen(argv, stdout=errf, stderr=errf,
                                             stdin=subprocess.DEVNULL)
            try:
                ok = dt.wait_until(lambda: os.path.exists(kt.db_path(conf, "core")) and
                                   dt.all_synced(dt.request(sock, {"v": 1, "cmd": "status"})
                                                 .get("data", {}), "core")
                                   if os.path.exists(sock) else False, 60)
                C.check(f"core_dumps = {dumps}: the daemon ran as nobody and synced", ok)
                # gcore writes where kleepd's user may write.
                cores = os.path.join(root, f"cores-{dumps}")
                os.makedirs(cores)
                os.chown(cores, NOBODY, NOBODY)
                p = gcore_as(NOBODY, proc.pid, os.path.join(cores, "core"))
                files = os.listdir(cores)
                data = b""
                for f in files:
                    with open(os.path.join(cores, f), "rb") as fh:
                        data += fh.read()
                    os.unlink(os.path.join(cores, f))
                if dumps == "no":
                    C.check("default: gcore as kleepd's own user is refused, no core written",
                            not files, f"gcore rc={p.returncode}: {p.stdout[-500:]} {p.stderr[-500:]}")
                    C.check("default: and nothing of a core holds the password or a token",
                            password.encode() not in data and b"Bearer ey" not in data)
                else:
                    C.check("core_dumps = yes: gcore writes a core (the switch works)", files,
                            f"gcore rc={p.returncode}: {p.stderr[-500:]}")
                    C.say("# core_dumps = yes: the core holds the password: "
                          f"{password.encode() in data}, a bearer token: "
                          f"{b'Bearer ey' in data} (why cores are off by default)")
            finally:
                d.stop()
                errf.close()
            os.chmod(root, 0o700)


def main():
    if os.geteuid() != 0:
        C.check("test_storage.py runs as root (tmpfs, a second user)", False)
        C.finish()
    with kt.TempDir(prefix="kleep-st-") as root:
        small = [test_storage_once, test_disk_full, test_storage_daemon, test_clock_behind,
                 test_fifo_password, test_keep_runs]
        alone = [test_wal_long_reader, test_core]
        only = os.environ.get("ONLY")
        with kt.Emulator(products=150, orders=300, returns=40) as emu:
            for t in small:
                if only and only not in t.__name__:
                    continue
                try:
                    t(root, emu)
                except Exception as e:
                    import traceback
                    C.check(f"{t.__name__} ran to its end", False,
                            f"{type(e).__name__}: {e}\n{traceback.format_exc()[-3000:]}")
        for t in alone:
            if only and only not in t.__name__:
                continue
            try:
                t(root)
            except Exception as e:
                import traceback
                C.check(f"{t.__name__} ran to its end", False,
                        f"{type(e).__name__}: {e}\n{traceback.format_exc()[-3000:]}")
    C.finish()


if __name__ == "__main__":
    main()
