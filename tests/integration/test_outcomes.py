#!/usr/bin/python3
"""test_outcomes.py - size_outcomes and order_line_outcomes from a real sync (issue 14).

Two mirrors of the same shop: one synced from the WSHOP emulator's API, one built from
CSV files dropped on a real sshd (the SFTP gap-fill), each checked row by row against
the counts the emulator's oracle makes on its own (wshop_canonical.size_outcomes): units
sold per product and size, units returned, returned too small and too large, return
rate; units of cancelled orders (any case) sold nothing.  On the way: unit prices in
minor units with their currency, return lines tied to their order lines, reasons
classified by their labels (a merchant code R07 labelled "Trop petit"), by the
merchant's [fit] section, or left unclassified and listed by `kleepctl check`.

Environment: BUILD (default build).  Needs root for sshd (the SFTP half is skipped
otherwise, and says so).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemontest as dt  # noqa: E402
import kleeptest as kt  # noqa: E402
import wshop_canonical as wc  # noqa: E402

C = kt.Checks()
OUTCOME_COLUMNS = ("product_id", "parent_reference", "size_label", "units_sold", "units_returned",
                   "returned_too_small", "returned_too_large", "return_rate")
SIZE_KEYS = ("product_id", "size_label")

# What the reasons this test adds mean (the oracle knows the emulator's own ones).
wc.REASON_FITS.update({"R07": "too_small", "R10": "not_fit"})


def size_outcomes(path):
    db = kt.connect(path)
    try:
        return [dict(zip(OUTCOME_COLUMNS, r)) for r in
                db.execute(f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM size_outcomes"
                           " ORDER BY product_id, size_label")]
    finally:
        db.close()


def compare_outcomes(name, path, want):
    kt.SORT_KEYS.setdefault("size_outcomes", SIZE_KEYS)
    got = size_outcomes(path)
    C.no_diffs(f"{name}: size_outcomes row by row ({len(want)} rows)",
               kt.compare_rows("size_outcomes", got, want))
    sold = sum(r["units_sold"] for r in want)
    back = sum(r["units_returned"] for r in want)
    small = sum(r["returned_too_small"] for r in want)
    large = sum(r["returned_too_large"] for r in want)
    C.check(f"{name}: the counts are not trivial ({sold} sold, {back} back, {small} too small,"
            f" {large} too large)", sold > 500 and back > 50 and small > 10 and large > 10)
    lines = kt.query(path, "SELECT product_id, size_label, sum(quantity), sum(returned_quantity),"
                           " sum(returned_too_small), sum(returned_too_large)"
                           " FROM order_line_outcomes WHERE NOT cancelled GROUP BY 1, 2 ORDER BY 1, 2")
    C.equal(f"{name}: order_line_outcomes adds up to size_outcomes", lines,
            [tuple(r[k] for k in OUTCOME_COLUMNS if k not in ("parent_reference", "return_rate"))
             for r in got])


def add_shop_cases(emu):
    """Reasons and orders the generated shop lacks; returns the ids of the odd ones."""
    truth = emu.truth()
    emu.add("return_reasons", {"id": 8, "code": "R07",
                               "translations": {"fr": "Trop petit", "en": "Too small"}})
    emu.add("return_reasons", {"id": 9, "code": "R09",
                               "translations": {"fr": "Motif 9", "en": "Reason 9"}})
    emu.add("return_reasons", {"id": 10, "code": "R10", "translations": {"fr": "Autre"}})
    orders = [o for o in truth["orders"] if o["status"] != "cancelled" and o["lines"]]
    picked = orders[:12]
    for i, order in enumerate(picked):
        line = order["lines"][0]
        reason = (8, 9, 10)[i % 3]
        emu.add("returns", {"id": 8001 + i, "order_id": order["id"], "lines": [
            {"id": 1, "product_id": line["product_id"], "product_size_id": line["product_size_id"],
             "quantity": 1, "reason_id": reason}],
            "date_add": "2026-10-30 10:00:00", "date_upd": "2026-10-30 10:00:00"})
    # An order spelled "Canceled", with a return: neither counts.
    order = orders[20]
    emu.update("orders", order["id"], {"status": "Canceled"})
    line = order["lines"][0]
    emu.add("returns", {"id": 8100, "order_id": order["id"], "lines": [
        {"id": 1, "product_id": line["product_id"], "product_size_id": line["product_size_id"],
         "quantity": 1, "reason_id": 2}],
        "date_add": "2026-10-30 11:00:00", "date_upd": "2026-10-30 11:00:00"})
    # A return line whose variant and sku are not in its order: not tied.
    emu.add("returns", {"id": 8101, "order_id": orders[30]["id"], "lines": [
        {"id": 1, "product_id": 1, "product_size_id": 1, "sku": "NOWHERE", "quantity": 1,
         "reason_id": 1}], "date_add": "2026-10-30 12:00:00", "date_upd": "2026-10-30 12:00:00"})


def api_half(tmp):
    C.say("# API: the emulator synced by kleepd --once")
    with kt.Emulator(products=60, orders=700, returns=160, seed=14) as emu:
        add_shop_cases(emu)
        truth = emu.truth()
        m = kt.Merchant("shop", emu, languages="fr, en")
        conf, sock = dt.write_daemon_config(tmp, [m], workers=2)
        with open(os.path.join(tmp, "merchants.d", "shop.conf"), "a") as f:
            f.write("\n[fit]\nnot_fit = R10\n")
        run = kt.run_kleepd(conf)
        C.check("kleepd --once: every stream succeeded", run.rc == 0 and run.all_success("shop"),
                run.summary())
        db = kt.db_path(conf, "shop")
        want = kt.canonical_from_truth(truth, m)
        C.no_diffs("canonical tables exact, with unit prices, order_line_no and fit classes",
                   kt.compare(db, want))
        C.equal("prices: every line carries its order's currency",
                kt.query(db, "SELECT count(*) FROM order_lines l JOIN orders o USING (order_id)"
                             " WHERE l.currency IS NOT o.currency"), [(0,)])
        C.check("prices: EUR 19.90 is 1990",
                kt.query(db, "SELECT count(*) FROM order_lines WHERE unit_price_minor = 1990"
                             " AND currency = 'EUR'")[0][0] > 0)
        C.equal("reasons: R07 by its labels, R10 by [fit], R09 unclassified",
                kt.query(db, "SELECT reason_id, fit, fit_source FROM return_reasons"
                             " WHERE reason_id IN ('8', '9', '10') ORDER BY 1"),
                [("10", "not_fit", "config"), ("8", "too_small", "default"), ("9", None, None)])
        compare_outcomes("API", db, wc.size_outcomes(want))
        check_kleepctl(conf, sock)
        return truth, want


def check_kleepctl(conf, sock):
    with dt.Daemon(conf, sock) as d:
        r = d.ctl("check", "shop", json_out=True)
        data = r.json() if r.out else {}
        found = {x.get("check"): x for x in data.get("readiness", [])}
        unclassified = found.get("return_reasons_unclassified", {})
        C.check("kleepctl check lists the unclassified reason (9 R09 \"Motif 9\")",
                unclassified.get("count") == 1 and
                unclassified.get("examples") == ['9 R09 "Motif 9"'], unclassified)
        unlinked = found.get("return_lines_unlinked", {})
        C.check("kleepctl check counts the return line without its order line",
                unlinked.get("count") == 1 and unlinked.get("examples") == ["8101 line 1"], unlinked)
        h = d.ctl("check", "shop")
        C.check("kleepctl check (for people) says how to classify it",
                "[fit] section" in h.out and "Motif 9" in h.out, h.out[-1500:])


def csv_text(rows, columns):
    def cell(v):
        s = "" if v is None else str(v)
        return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s
    return ",".join(columns) + "\n" + "".join(
        ",".join(cell(r.get(c)) for c in columns) + "\n" for r in rows)


def sftp_files(truth, want):
    """The shop as gap-fill CSV files (DOMAIN.md §3), from the oracle's rows and the truth."""
    iso = lambda t: t.replace("Z", "+00:00") if t else t  # noqa: E731
    products = {p["product_id"]: p for p in want["products"]}
    variants = [dict(v, parent_reference=products[v["product_id"]]["parent_reference"],
                     title=products[v["product_id"]]["title"]) for v in want["variants"]]
    orders = {o["order_id"]: o for o in want["orders"]}
    price = {(str(o["id"]), line["id"]): line.get("price")
             for o in truth["orders"] for line in o.get("lines") or []}
    order_rows = [dict(l, ordered_at=iso(orders[l["order_id"]]["ordered_at"]),
                       status=orders[l["order_id"]]["status"],
                       price=price.get((l["order_id"], l["line_no"])))
                  for l in want["order_lines"]]
    returns = {r["return_id"]: r for r in want["returns"]}
    return_rows = [dict(l, returned_at=iso(returns[l["return_id"]]["returned_at"]))
                   for l in want["return_lines"]]
    reason_rows = [{"reason_id": str(r["id"]), "code": r.get("code"), "label": label, "lang": lang}
                   for r in truth["return_reasons"]
                   for lang, label in sorted((r.get("translations") or {}).items())]
    stamp = "2026-11-01T02-00-00"
    return {
        f"return_reasons/return_reasons_{stamp}.csv":
            csv_text(reason_rows, ("reason_id", "code", "label", "lang")),
        f"products/products_{stamp}.csv":
            csv_text(variants, ("product_id", "variant_id", "sku", "size_label",
                                "parent_reference", "title")),
        f"orders/orders_{stamp}.csv":
            csv_text(order_rows, ("order_id", "ordered_at", "product_id", "variant_id", "sku",
                                  "size_label", "quantity", "line_no", "price", "currency",
                                  "status")),
        f"returns/returns_{stamp}.csv":
            csv_text(return_rows, ("return_id", "order_id", "returned_at", "product_id",
                                   "variant_id", "sku", "size_label", "quantity", "line_no",
                                   "reason_id", "comment")),
    }


def sftp_half(truth, want):
    C.say("# SFTP: the same shop as CSV files, ingested through sshd")
    if os.geteuid() != 0:
        C.say("# skipped: sshd needs root")
        return
    import test_sftp  # noqa: E402  (its sshd harness)
    env = test_sftp.Env()
    try:
        if not env.start_sshd():
            C.check("sshd starts", False, open(os.path.join(env.tmp, "sshd.log")).read())
            return
        with open(os.path.join(env.etc, "merchants.d", "m.conf"), "a") as f:
            f.write("\n[fit]\nnot_fit = R10\n")
        for rel, text in sftp_files(truth, want).items():
            env.put(rel, text)
        rc, out = env.scan()
        C.check("kleepd --once --stream sftp: applied every file", rc == 0 and
                all(o == "applied" for o in test_sftp.outcomes(env).values()), out[-2000:])
        C.equal("CSV prices in minor units, as from the API",
                kt.query(env.db, "SELECT order_id, line_no, unit_price_minor, currency"
                                 " FROM order_lines ORDER BY 1, 2"),
                [(l["order_id"], l["line_no"], l["unit_price_minor"], l["currency"])
                 for l in want["order_lines"]])
        C.equal("CSV return lines tied to the same order lines",
                kt.query(env.db, "SELECT return_id, line_no, order_line_no FROM return_lines"
                                 " ORDER BY 1, 2"),
                [(l["return_id"], l["line_no"], l["order_line_no"]) for l in want["return_lines"]])
        compare_outcomes("SFTP", env.db, wc.size_outcomes(want))
    finally:
        env.cleanup()


def main():
    with kt.TempDir(prefix="kleep-outcomes-") as tmp:
        truth, want = api_half(tmp)
        sftp_half(truth, want)


if __name__ == "__main__":
    try:
        main()
    except Exception:  # a broken test says so, with its traceback, and counts as failed
        import traceback
        C.check("the test ran to its end", False, traceback.format_exc())
    finally:
        C.finish()
