#!/usr/bin/python3
"""test_quiet_rerun.py - an incremental run over a shop that did not change writes nothing.

Most pages of an incremental run repeat what the mirror holds (the lookback window, the
reference streams read whole).  After an initial sync, a second `kleepd --once` with
nothing changed at the shop must:
  - make at most one request per stream after authentication (page size 500);
  - rewrite no row outside bookkeeping: triggers the test installs on every raw and
    canonical table count each INSERT, DELETE, and UPDATE of a record's content (a
    full read may still mark a record seen: records.last_seen / last_run, which the
    deletion sweep needs), and kleepd's own count of sqlite3_total_changes for its
    pages, printed as "N rows written" on each stream's "run finished" line, is 0.
Then one order changes at the shop: the next run writes it (the triggers fire, the orders
stream reports rows written) and the mirror equals the emulator's oracle, so skipping
unchanged records never skips a changed one.  A product whose stock changed in one size
writes that variant only, no other variant and no label; one that loses a size and
changes labels writes those alone.  Orders that lose their first line, their
last line, or gain one (lines are written over the stored ones, and only those left
over are deleted) end equal to the oracle too.  After every run, each stream's
rows_total in status is its count of live records (kleepd counts again only after a
window that wrote), including after a full read that marks records deleted.
"""
import copy
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(__file__))
import kleeptest as kt  # noqa: E402

WATCHED = tuple(dict.fromkeys(kt.TABLES + ("labels", "records")))


def install_triggers(db_path):
    """Count content writes to WATCHED tables in a table of the test's own, _writes."""
    db = sqlite3.connect(db_path, timeout=30)
    try:
        db.execute("CREATE TABLE _writes (tbl TEXT NOT NULL, op TEXT NOT NULL)")
        for t in WATCHED:
            update = ("UPDATE OF json, source, source_updated_at, deleted, first_seen"
                      if t == "records" else "UPDATE")
            for op, event in (("insert", "INSERT"), ("delete", "DELETE"), ("update", update)):
                db.execute(f"CREATE TRIGGER _w_{t}_{op} AFTER {event} ON {t} "
                           f"BEGIN INSERT INTO _writes VALUES ('{t}', '{op}'); END")
        db.commit()
    finally:
        db.close()


def writes(db_path):
    return kt.query(db_path, "SELECT tbl, op, count(*) FROM _writes GROUP BY tbl, op ORDER BY 1, 2")


def clear_writes(db_path):
    db = sqlite3.connect(db_path, timeout=30)
    try:
        db.execute("DELETE FROM _writes")
        db.commit()
    finally:
        db.close()


def totals_wrong(db_path):
    """Streams whose sync_state.rows_total is not their count of live records."""
    return kt.query(db_path, "SELECT s.stream, s.rows_total, (SELECT count(*) FROM records r"
                    " WHERE r.stream = s.stream AND r.deleted = 0) AS live FROM sync_state s"
                    " WHERE s.rows_total IS NOT live AND s.stream IN (%s)"
                    % ",".join("'%s'" % s for s in kt.STREAMS))


def rows_written(run):
    """{stream: rows written} from the run's "run finished" lines."""
    out = {}
    for line in (run.out + run.err).splitlines():
        if "run finished" not in line:
            continue
        n = re.search(r"(\d+) rows written", line)
        s = re.search(r"STREAM=(\w+)|\b(" + "|".join(kt.STREAMS) + r")\b", line)
        if n and s:
            out[s.group(1) or s.group(2)] = int(n.group(1))
    return out


def main():
    c = kt.Checks()
    with kt.Emulator(products=120, orders=700, returns=90) as emu, kt.TempDir() as tmp:
        m = kt.Merchant("shop", emu)
        conf = kt.write_config(tmp, [m])
        db = kt.db_path(conf, "shop")
        r = kt.run_kleepd(conf)
        c.check("initial sync succeeds", r.rc == 0 and r.all_success("shop"), r.summary())
        c.no_diffs("initial sync: the mirror equals the oracle",
                   kt.compare(db, emu.canonical(*m.canonical_args())))
        c.equal("initial sync: rows_total is each stream's live records", totals_wrong(db), [])
        install_triggers(db)

        emu.reset_stats()
        r = kt.run_kleepd(conf)
        c.check("nothing changed: the run succeeds", r.rc == 0 and r.all_success("shop"),
                r.summary())
        req = emu.stats()["requests"]
        per_stream = {s: req.get(p, 0) for s, p in kt.ENDPOINTS.items()}
        c.check("nothing changed: at most one request per stream",
                all(n <= 1 for n in per_stream.values()), per_stream)
        other = {p: n for p, n in req.items()
                 if p not in kt.ENDPOINTS.values() and "authent" not in p}
        c.equal("nothing changed: no other request than authentication", other, {})
        c.equal("nothing changed: no raw or canonical row written (triggers)", writes(db), [])
        written = rows_written(r)
        c.equal("nothing changed: every stream reports its rows written",
                sorted(written), sorted(kt.STREAMS))
        c.check("nothing changed: 0 rows written by every stream (sqlite3_total_changes)",
                written and all(n == 0 for n in written.values()), written)
        c.equal("nothing changed: rows_total is each stream's live records", totals_wrong(db), [])

        order = emu.truth("orders")[3]["id"]
        emu.update("orders", order)
        r = kt.run_kleepd(conf)
        c.check("one order changed: the run succeeds", r.rc == 0 and r.all_success("shop"),
                r.summary())
        changed = dict((t, n) for t, _, n in writes(db))
        c.check("one order changed: its rows are written", changed.get("orders", 0) >= 1 and
                changed.get("records", 0) >= 1, changed)
        written = rows_written(r)
        c.check("one order changed: the orders stream reports rows written",
                written.get("orders", 0) > 0, written)
        c.check("one order changed: the other streams write nothing",
                all(n == 0 for s, n in written.items() if s != "orders"), written)
        c.no_diffs("one order changed: the mirror equals the oracle",
                   kt.compare(db, emu.canonical(*m.canonical_args())))
        c.equal("one order changed: rows_total is each stream's live records", totals_wrong(db), [])

        # A product whose stock changed in one size: that variant is written, its other
        # variants and its labels are not (each is written over the stored one).
        prods = [p for p in emu.truth("products") if len(p.get("sizes") or []) >= 3 and
                 len(p.get("translations") or {}) >= 2][:2]
        c.check("the shop has products of three sizes and two languages (the test means "
                "something)", len(prods) == 2, len(prods))
        if len(prods) == 2:
            sizes = copy.deepcopy(prods[0]["sizes"])
            sizes[1]["stock"] = int(sizes[1].get("stock") or 0) + 7
            clear_writes(db)
            emu.update("products", prods[0]["id"], {"sizes": sizes})
            r = kt.run_kleepd(conf)
            c.check("one size's stock changed: the run succeeds",
                    r.rc == 0 and r.all_success("shop"), r.summary())
            got = {(t, op): n for t, op, n in writes(db) if t in ("variants", "labels")}
            c.equal("one size's stock changed: one variant updated, no other variant or "
                    "label written", got, {("variants", "update"): 1})
            c.no_diffs("one size's stock changed: the mirror equals the oracle",
                       kt.compare(db, emu.canonical(*m.canonical_args())))
            # A size gone, a name changed in one language, a description gone in another.
            tr = copy.deepcopy(prods[1]["translations"])
            first, second = sorted(tr)[:2]
            tr[first]["name"] = f"{tr[first].get('name') or ''} (nouveau)"
            had_description = bool(tr[second].pop("description", None))
            clear_writes(db)
            emu.update("products", prods[1]["id"],
                       {"sizes": prods[1]["sizes"][:-1], "translations": tr})
            r = kt.run_kleepd(conf)
            c.check("a size gone, labels changed: the run succeeds",
                    r.rc == 0 and r.all_success("shop"), r.summary())
            got = {(t, op): n for t, op, n in writes(db) if t in ("variants", "labels")}
            want = {("variants", "delete"): 1, ("labels", "update"): 1}
            if had_description:
                want[("labels", "delete")] = 1
            c.equal("a size gone, labels changed: only that variant and those labels written",
                    got, want)
            c.no_diffs("a size gone, labels changed: the mirror equals the oracle",
                       kt.compare(db, emu.canonical(*m.canonical_args())))

        many = [o for o in emu.truth("orders") if len(o.get("lines") or []) >= 3][:3]
        c.check("the shop has orders of three lines or more (the test means something)",
                len(many) == 3, len(many))
        if len(many) == 3:
            emu.update("orders", many[0]["id"], {"lines": many[0]["lines"][1:]})
            emu.update("orders", many[1]["id"], {"lines": many[1]["lines"][:-1]})
            emu.update("orders", many[2]["id"], {"lines": many[2]["lines"] + [
                dict(many[2]["lines"][0], id=max(int(x["id"]) for x in many[2]["lines"]) + 1)]})
        r = kt.run_kleepd(conf)
        c.check("lines lost and gained: the run succeeds", r.rc == 0 and r.all_success("shop"),
                r.summary())
        c.no_diffs("a first line lost, a last line lost, a line gained: the mirror equals the oracle",
                   kt.compare(db, emu.canonical(*m.canonical_args())))

        gone = [o["id"] for o in emu.truth("orders")[10:12]]
        for oid in gone:
            emu.delete("orders", oid)
        emu.add("orders")
        r = kt.run_kleepd(conf, full=True)
        c.check("two orders gone, one new, full read: the run succeeds",
                r.rc == 0 and r.all_success("shop"), r.summary())
        c.equal("full read: rows_total is each stream's live records", totals_wrong(db), [])
        c.equal("full read: orders' rows_total is the shop's orders",
                kt.query(db, "SELECT rows_total FROM sync_state WHERE stream = 'orders'"),
                [(len(emu.truth("orders")),)])
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
