#!/usr/bin/python3
"""test_full_read.py - incremental streams are re-read whole every `full_every`.

The date filter cannot show a deleted record, so without a periodic full read a
product deleted in the shop would stay active in the mirror forever.  With
full_every = 1s, the next run of the products stream reads everything and marks
the deleted product deactivated; with the default (1 day) the same run stays
incremental and does not see the deletion.
"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import kleeptest as kt  # noqa: E402


def deactivated(db, product_id):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        row = c.execute("SELECT deactivated FROM products WHERE product_id = ?", (product_id,)).fetchone()
    return row[0] if row else None


def set_full_every(conf, value):
    text = open(conf).read()
    text = text.replace("[defaults]\n", f"[defaults]\nfull_every = {value}\n", 1)
    open(conf, "w").write(text)


def main():
    checks = kt.Checks()
    with kt.Emulator(products=40, orders=10, returns=2) as emu:
        for full_every, expect_full in (("1d", False), ("1s", True)):
            with kt.TempDir() as tmp:
                emu.reset()
                m = kt.Merchant("shop", emu)
                conf = kt.write_config(tmp, [m])
                set_full_every(conf, full_every)
                r = kt.run_kleepd(conf, stream="products")
                checks.check(f"[{full_every}] first sync succeeds", r.rc == 0, r.summary())
                victim = str(emu.truth("products")[5]["id"])
                emu.delete("products", int(victim))
                db = kt.db_path(conf, "shop")
                checks.equal(f"[{full_every}] product {victim} active before", deactivated(db, victim), 0)
                time.sleep(1.1)
                emu.reset_stats()
                r = kt.run_kleepd(conf, stream="products")
                checks.check(f"[{full_every}] second sync succeeds", r.rc == 0, r.summary())
                served = emu.stats()["records_served"].get("products", 0)
                if expect_full:
                    checks.equal(f"[{full_every}] the second run read every product", served, 39)
                    checks.equal(f"[{full_every}] the deleted product is deactivated", deactivated(db, victim), 1)
                else:
                    checks.check(f"[{full_every}] the second run stayed incremental", served < 39, served)
                    checks.equal(f"[{full_every}] an incremental run cannot see the deletion",
                                 deactivated(db, victim), 0)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
