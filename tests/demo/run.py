#!/usr/bin/python3
"""run.py - `make run`: the embedded default, a demo merchant mirrored from the bundled emulator.

Starts the WSHOP emulator with demo data on a free loopback port, writes a
demo configuration under ./demo/, runs kleepd in the foreground, waits until
every stream of the demo merchant has synced once, prints `kleepctl status`
and where the mirror is, then keeps running until Ctrl-C.  With DEMO_ONCE=1 it
stops both and exits 0 right after printing.
"""
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
DEMO = os.path.join(ROOT, "demo")
PY = "/usr/bin/python3"
WAIT_SECONDS = 120


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def start_emulator():
    emu = subprocess.Popen([PY, os.path.join(ROOT, "tests/emulator/wshop_emulator.py"), "--port", "0",
                            "--products", "300", "--orders", "2000", "--returns", "400"],
                           stdout=subprocess.PIPE, stderr=open(os.path.join(DEMO, "emulator.log"), "w"),
                           text=True)
    line = emu.stdout.readline()
    if not line.startswith("PORT "):
        emu.kill()
        sys.exit("make run: the WSHOP emulator did not start (see demo/emulator.log)")
    return emu, int(line.split()[1])


def write_config(port):
    os.makedirs(os.path.join(DEMO, "merchants.d"), exist_ok=True)
    write(os.path.join(DEMO, "kleepd.conf"), f"""# Written by `make run`: the demo configuration.
[daemon]
state_dir = {DEMO}/state
runtime_dir = {DEMO}/run
profile_dir = {ROOT}/lib/profiles
workers = 4
log_level = info

[defaults]
lookback = 10m
""")
    write(os.path.join(DEMO, "demo.password"), "demo-password\n", 0o600)
    write(os.path.join(DEMO, "merchants.d", "demo-shop.conf"), f"""# The demo merchant, served by the bundled WSHOP emulator.
[merchant]
id = demo-shop
environment = preprod
languages = fr, en, de

[wshop]
api_url = http://127.0.0.1:{port}
username = demo@example.com
password_file = demo.password
rate_limit = 50
poll_orders = 1m
poll_returns = 1m
""")


def kleepctl(*args):
    return subprocess.run([os.path.join(BUILD, "kleepctl"), "--socket", os.path.join(DEMO, "run/kleepd.sock"),
                           *args], capture_output=True, text=True)


def all_synced():
    r = kleepctl("--json", "status", "demo-shop")
    if r.returncode != 0:
        return False
    try:
        m = json.loads(r.stdout)["merchants"][0]
    except (ValueError, KeyError, IndexError):
        return False
    return all(s["last_success"] for s in m["streams"])


def main():
    # A fresh mirror each time: the demo shows a first sync, not a leftover.
    subprocess.run(["rm", "-rf", os.path.join(DEMO, "state"), os.path.join(DEMO, "run")])
    os.makedirs(DEMO, exist_ok=True)
    emu, port = start_emulator()
    kleepd = None

    def stop(*_):
        for p in (kleepd, emu):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in (kleepd, emu):
            if p:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()

    try:
        write_config(port)
        log = open(os.path.join(DEMO, "kleepd.log"), "w")
        kleepd = subprocess.Popen([os.path.join(BUILD, "kleepd"), "-f", "-c", os.path.join(DEMO, "kleepd.conf")],
                                  stdout=log, stderr=log)
        print(f"make run: WSHOP emulator on 127.0.0.1:{port}, kleepd started (log: demo/kleepd.log)")
        deadline = time.monotonic() + WAIT_SECONDS
        while not all_synced():
            if kleepd.poll() is not None:
                sys.exit(f"make run: kleepd exited with {kleepd.returncode}; see demo/kleepd.log")
            if time.monotonic() > deadline:
                print(kleepctl("status").stdout)
                sys.exit("make run: the demo merchant did not sync every stream in time; see demo/kleepd.log")
            time.sleep(0.2)
        print()
        print(kleepctl("status").stdout)
        db = os.path.join(DEMO, "state", "demo-shop.db")
        print(f"The mirror: {os.path.relpath(db, os.getcwd())}")
        print(f"Look inside: sqlite3 {os.path.relpath(db, os.getcwd())} "
              "'SELECT product_id, title, category FROM products LIMIT 5'")
        print(f"Ask kleepd:  {os.path.relpath(BUILD, os.getcwd())}/kleepctl --socket "
              f"{os.path.relpath(DEMO, os.getcwd())}/run/kleepd.sock status")
        if os.environ.get("DEMO_ONCE"):
            return 0
        print("\nkleepd keeps syncing; Ctrl-C stops it and the emulator.")
        signal.signal(signal.SIGINT, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.pause()
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
