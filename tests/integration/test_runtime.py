#!/usr/bin/python3
"""test_runtime.py - what the runtime promises operators (issues 10, 11, 12).

- One rate cap and one token per merchant: with rate_limit = 2, a sync of every stream
  and `kleepctl check` of the same merchant at once; the emulator's request times show
  no calendar second with more than 2 requests plus the stated burst of 1, and one
  authentication serves the whole sync pass.

Environment: BUILD (default build), PY, KEEP=1 (see kleeptest.py).
"""
import collections
import os
import sys
import threading
import time
import traceback

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


def main():
    c = kt.Checks()
    for t in (test_rate_limit,):
        t0 = time.monotonic()
        try:
            t(c)
        except Exception:  # noqa: BLE001
            c.check(f"{t.__name__} ran without an exception", False, traceback.format_exc())
        c.say(f"# {t.__name__}: {time.monotonic() - t0:.1f} s")
    c.finish()


if __name__ == "__main__":
    main()
