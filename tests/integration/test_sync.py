#!/usr/bin/python3
"""test_sync.py - kleepd's WSHOP API sync against the emulator (issue 3, "What it must show").

Sections: every stream mirrored exactly (two merchants, product_id_field and
parent_reference_field honoured); incremental runs (request and record counts from the
emulator's stats); deletions after a --full run; each injected fault; token renewal; kill -9
at 20 random moments of a 20,000-order sync; pagination drift (records added and updated
while paging); an unauthorized endpoint; the alt profile; and no personal data in the
mirrors, the logs or this test's own output.  About 30 s (40 s under ASan).

Environment: BUILD (default build), KLEEPD (default $BUILD/kleepd), KEEP=1 keeps the
temporary folder, SEED (the crash test's random moments; printed), ONLY=crash (say) runs
the sections whose name holds it.
"""
import os
import random
import shutil
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kleeptest import (DATED_STREAMS, ENDPOINTS, KLEEPD, KLEEPD_OUTPUT, STREAMS, Checks,  # noqa: E402
                       Emulator, Merchant, TempDir, canonical_from_truth, compare,
                       compare_records, compare_rows, db_path, find_needles, innocent_texts,
                       mirror_rows, personal_needles, query, run_kleepd, spawn_kleepd,
                       sync_state, write_config)
from wshop_canonical import local_to_utc  # noqa: E402

C = Checks()
SHOP_TZ = ZoneInfo("Europe/Paris")
LOOKBACK_S = 600
# Fast retries so that fault tests take seconds; a 2 s request timeout for the stall.
FAST = {"retry.base_ms": 20, "retry.cap_ms": 200, "request_timeout_s": 2}
TRUTHS = []          # every emulator's ground truth, for the personal-data greps


def section(title):
    C.say(f"# {title}")


def fast(limit, **more):
    o = dict(FAST)
    o["paging.limit"] = limit
    o.update(more)
    return o


def window_from_local(cursor_utc, lookback_s=LOOKBACK_S):
    """The date filter kleepd sends after a cursor (DESIGN.md §5), as shop-local text."""
    t = datetime.strptime(cursor_utc, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    t -= timedelta(seconds=lookback_s)
    # Near an autumn change the filter starts before the repeated hour.
    drop = t.astimezone(SHOP_TZ).utcoffset() - (t + timedelta(hours=3)).astimezone(SHOP_TZ).utcoffset()
    if drop > timedelta(0):
        t -= drop
    return t.astimezone(SHOP_TZ).strftime("%Y-%m-%d %H:%M:%S")


def window_from_utc(cursor_utc, lookback_s=LOOKBACK_S):
    """The cursor minus the lookback, as UTC text like the cursor."""
    t = datetime.strptime(cursor_utc, "%Y-%m-%dT%H:%M:%SZ") - timedelta(seconds=lookback_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def max_cursor(records):
    return max(local_to_utc(r["date_upd"]) for r in records)


def check_mirror(label, db, truth, merchant, tables=None):
    """One check per canonical table, plus the raw records layer."""
    want = canonical_from_truth(truth, merchant)
    got = mirror_rows(db, tables or list(want))
    for t in tables or list(want):
        C.no_diffs(f"{label}: {t} mirrored exactly ({len(want[t])} rows)",
                   compare_rows(t, got[t], want[t]))
    if tables is None:
        C.no_diffs(f"{label}: raw records are exactly the source's ids", compare_records(db, truth))
    return want


def check_ran(label, run, merchants, streams=STREAMS):
    C.check(f"{label}: kleepd exits 0", run.rc == 0, run.summary())
    for m in merchants:
        bad = [run.results.get(f"{m}/{s}", {}).get("line", f"{m}/{s}: no line") for s in streams
               if run.outcome(m, s) != "success"]
        C.check(f"{label}: every stream of {m} succeeded", not bad, "\n".join(bad))


def customer_hash_checks(label, db, truth):
    by_order = {str(o["id"]): o["customer"]["id"] for o in truth["orders"] if o.get("customer")}
    rows = query(db, "SELECT order_id, customer_hash FROM orders")
    nulls = [oid for oid, h in rows if not h]
    C.check(f"{label}: orders.customer_hash is never NULL ({len(rows)} orders)", not nulls,
            f"{len(nulls)} NULL, e.g. {nulls[:5]}")
    hash_of, clash = {}, []
    for oid, h in rows:
        cid = by_order.get(oid)
        if cid is None or not h:
            continue
        if hash_of.setdefault(cid, h) != h:
            clash.append(oid)
    C.check(f"{label}: the same customer has the same customer_hash ({len(hash_of)} customers)",
            not clash and len(hash_of) > 1, f"orders {clash[:5]} disagree")
    C.check(f"{label}: different customers have different hashes",
            len(set(hash_of.values())) == len(hash_of))
    C.check(f"{label}: a customer_hash is not the customer id",
            all(h != str(cid) and not h.isdigit() for cid, h in hash_of.items()))
    return hash_of


# --------------------------------------------------------------------------- sections

def test_full_and_incremental(root):
    section("every stream mirrored exactly; incremental runs; deletions")
    folder = os.path.join(root, "full")
    with Emulator(products=120, orders=600, returns=150) as emu:
        demo = Merchant("demo", emu, languages="fr, en", overrides=fast(50))
        refs = Merchant("refs", emu, languages="en, de", product_id_field="reference",
                        parent_reference_field="reference", overrides=fast(50))
        conf = write_config(folder, [demo, refs])
        truth = emu.truth()
        TRUTHS.append(truth)

        run = run_kleepd(conf)
        check_ran("first run", run, ["demo", "refs"])
        C.check("first run: no crash", not run.crashed(), run.summary())
        for s in STREAMS:
            res = run.results.get(f"demo/{s}", {})
            C.check(f"first run: demo/{s} line counts {len(truth[s])} records, all changed",
                    res.get("records") == len(truth[s]) and res.get("changed") == len(truth[s]),
                    res.get("line"))
        stats = emu.stats()
        C.equal("first run: each record served once per merchant",
                stats["records_served"], {s: 2 * len(truth[s]) for s in STREAMS})
        ddb, rdb = db_path(conf, "demo"), db_path(conf, "refs")
        want = check_mirror("demo", ddb, truth, demo)
        check_mirror("refs (product_id_field=reference, parent_reference_field=reference)",
                     rdb, truth, refs)
        # The oracle's choice of key really differs between the two merchants.
        refs_ids = {r[0] for r in query(rdb, "SELECT product_id FROM products")}
        C.check("refs: products are keyed by their reference",
                refs_ids == {p["reference"] for p in truth["products"]}
                and refs_ids != {str(p["id"]) for p in truth["products"]})
        C.check("refs: order lines point to products by reference",
                query(rdb, "SELECT count(*) FROM order_lines l JOIN products p"
                           " ON p.product_id = l.product_id")[0][0] > 0
                and query(rdb, "SELECT count(*) FROM order_lines WHERE product_id GLOB '1[0-9][0-9][0-9]'")[0][0] == 0)
        served = {lang for p in truth["products"] for lang in (p.get("translations") or {})}
        mirrored = {r[0] for r in query(ddb, "SELECT DISTINCT lang FROM labels WHERE entity = 'product'")}
        C.check(f"labels in every language served ({', '.join(sorted(served))})",
                mirrored == served and len(served) > 2, f"mirrored {sorted(mirrored)}")
        C.check("labels of every entity kind",
                {r[0] for r in query(ddb, "SELECT DISTINCT entity FROM labels")}
                == {"product", "department", "attribute", "size", "return_reason"})
        hashes = customer_hash_checks("demo", ddb, truth)
        other = dict(query(rdb, "SELECT order_id, customer_hash FROM orders"))
        by_order = {str(o["id"]): o["customer"]["id"] for o in truth["orders"]}
        C.check("one key per installation: both merchants hash a customer alike",
                all(other.get(oid) == hashes.get(cid) for oid, cid in by_order.items()))
        for s in DATED_STREAMS:
            st = sync_state(ddb, s)
            C.equal(f"{s}: cursor is the newest record's time", st["cursor_time"],
                    max_cursor(truth[s]))
            C.check(f"{s}: no window left open", st["window_to"] is None, st)

        # -- incremental: only what changed (and the lookback overlap) is asked for.
        cursors = {s: sync_state(ddb, s)["cursor_time"] for s in DATED_STREAMS}
        changed = {}
        for s, add, upd in (("products", 4, 7), ("orders", 12, 30), ("returns", 3, 9)):
            r = emu.bulk(s, add=add, update=upd)
            changed[s] = set(r["added"]) | set(r["updated"])
        size3 = next(x for x in truth["sizes"] if x["id"] == 3)
        emu.update("sizes", 3, {"label": size3["label"] + "/38"})         # variants follow
        emu.delete("sizes", 12)                          # and lose the label of a size gone
        dept = truth["products"][0]["department_id"]
        emu.update("departments", dept, {"translations": {"fr": "Rayon renommé été",
                                                          "en": "Renamed department"}})
        emu.delete("attributes", 7)                      # reference streams are read whole
        truth2 = emu.truth()
        TRUTHS.append(truth2)
        emu.reset_stats()
        run = run_kleepd(conf, merchant="demo")
        check_ran("incremental run", run, ["demo"])
        stats = emu.stats()
        limit = 50
        for s in DATED_STREAMS:
            since = window_from_local(cursors[s])
            expect = sum(1 for r in truth2[s] if r["date_upd"] >= since)
            res = run.results.get(f"demo/{s}", {})
            C.check(f"incremental {s}: only changed records and the lookback overlap are served"
                    f" ({expect} of {len(truth2[s])})",
                    stats["records_served"].get(s) == expect and expect < len(truth2[s]) / 2,
                    f"served {stats['records_served'].get(s)}, want {expect}")
            C.equal(f"incremental {s}: requests", stats["requests"].get(ENDPOINTS[s]),
                    expect // limit + 1)
            C.check(f"incremental {s}: 'changed' counts the {len(changed[s])} changed records",
                    res.get("changed") == len(changed[s]) and res.get("records") == expect,
                    res.get("line"))
        for s in ("sizes", "departments", "attributes", "return_reasons"):
            C.equal(f"incremental {s}: read whole", stats["records_served"].get(s), len(truth2[s]))
        # The merchant's token is shared by its streams until it is due for renewal.
        C.equal("incremental: one authentication for the whole pass",
                stats["requests"].get("/authenticate"), 1)
        check_mirror("after the incremental run", ddb, truth2, demo)
        C.equal("the deleted attribute is marked deleted in records",
                query(ddb, "SELECT deleted FROM records WHERE stream = 'attributes' AND id = '7'"),
                [(1,)])
        run = run_kleepd(conf, merchant="refs")
        check_ran("incremental run (refs)", run, ["refs"])
        check_mirror("refs after the incremental run", rdb, truth2, refs)

        # -- deletions: a --full run of the stream, then exact (products are deactivated).
        gone = {"orders": [r["id"] for r in truth2["orders"][5:7]],
                "returns": [truth2["returns"][3]["id"]],
                "products": [truth2["products"][2]["id"]]}
        for s, ids in gone.items():
            for i in ids:
                emu.delete(s, i)
        truth3 = emu.truth()
        run = run_kleepd(conf)
        check_ran("run after deletions", run, ["demo", "refs"])
        for s in ("orders", "returns", "products"):
            emu.reset_stats()
            run = run_kleepd(conf, stream=s, full=True)
            C.check(f"--full --stream {s}: exit 0", run.rc == 0 and run.all_success("demo", [s])
                    and run.all_success("refs", [s]), run.summary())
            C.equal(f"--full --stream {s}: the whole stream is read again",
                    emu.stats()["records_served"].get(s), 2 * len(truth3[s]))
        # A product gone from the catalog stays, deactivated, for the orders that name it.
        expected_truth = dict(truth3)
        kept = [dict(p, active=False) for p in truth2["products"] if p["id"] in gone["products"]]
        expected_truth["products"] = sorted(truth3["products"] + kept, key=lambda p: p["id"])
        check_mirror("after deletions and --full", ddb, expected_truth, demo,
                     tables=["products", "variants", "labels", "orders", "order_lines",
                             "returns", "return_lines"])
        C.no_diffs("after deletions: raw records are exactly the source's ids",
                   compare_records(ddb, truth3))
        check_mirror("refs after deletions and --full", rdb, expected_truth, refs,
                     tables=["products", "variants", "orders", "order_lines", "returns",
                             "return_lines"])


FAULT_CASES = [
    # name, rule, minimum seconds the run must take
    ("429 with Retry-After: 1", {"kind": "429", "retry_after": 1}, 1.0),
    ("429 with an HTTP-date Retry-After", {"kind": "429", "retry_after": 2,
                                           "retry_after_date": True}, 1.0),
    ("500", {"kind": "500"}, 0),
    ("502 (nginx HTML page)", {"kind": "502"}, 0),
    ("503 with Retry-After: 1", {"kind": "503", "retry_after": 1}, 1.0),
    ("stall past request_timeout_s", {"kind": "stall", "seconds": 5}, 2.0),
    ("connection reset", {"kind": "reset"}, 0),
    ("truncated body", {"kind": "truncated"}, 0),
    ("invalid JSON", {"kind": "invalid_json"}, 0),
    ("success false", {"kind": "success_false"}, 0),
    ("token expired mid-run", {"kind": "expire_token"}, 0),
    ("one 401", {"kind": "401"}, 0),
    ("503 on authenticate", {"kind": "503", "endpoint": "/authenticate"}, 0),
]
PERSISTENT_CASES = [
    # name, rule, error class, words the message must hold
    ("persistent 500", {"kind": "500"}, "transient", ["/orders/get", "HTTP 500", "8 attempts"]),
    ("persistent reset", {"kind": "reset"}, "transient", ["/orders/get"]),
    ("persistent invalid JSON", {"kind": "invalid_json"}, "bad_reply", ["/orders/get", "JSON"]),
    ("persistent success false", {"kind": "success_false"}, "bad_reply",
     ["/orders/get", "false", "Internal error"]),
    ("429 asking for 10 minutes", {"kind": "429", "retry_after": 600}, "transient",
     ["/orders/get", "600"]),
    ("401 again after a fresh token", {"kind": "401", "count": 2}, "unauthorized",
     ["/orders/get"]),
]


def test_faults(root):
    section("faults: each converges, or fails cleanly and converges once cleared")
    limit, n_orders = 50, 200
    pages = n_orders // limit + 1
    with Emulator(products=60, orders=n_orders, returns=40) as emu:
        truth = emu.truth()
        TRUTHS.append(truth)
        m = Merchant("shop", emu, overrides=fast(limit))
        want = canonical_from_truth(truth, m)
        for i, (name, rule, min_s) in enumerate(FAULT_CASES):
            conf = write_config(os.path.join(root, f"fault{i}"), [m])
            db = db_path(conf, "shop")
            r = dict(rule)
            r.setdefault("endpoint", "/orders/get")
            if r["endpoint"] == "/orders/get":
                r.setdefault("after", 2)              # the third page
            emu.faults([r])
            emu.reset_stats()
            run = run_kleepd(conf)
            rules = emu.faults()
            emu.clear_faults()
            stats = emu.stats()
            ok = run.rc == 0 and run.all_success("shop") and not run.crashed()
            C.check(f"{name}: the run converges (exit 0)", ok, run.summary())
            C.check(f"{name}: the fault fired once", rules and rules[0].get("fired") == 1, rules)
            if min_s:
                C.check(f"{name}: waited at least {min_s} s", run.elapsed >= min_s,
                        f"took {run.elapsed:.2f} s")
            if rule["kind"] == "stall":
                C.check(f"{name}: gave up on the stalled request before it answered",
                        run.elapsed < rule["seconds"] - 0.5, f"took {run.elapsed:.2f} s")
            if r["endpoint"] == "/orders/get":
                C.equal(f"{name}: one extra request for the failed page",
                        stats["requests"].get("/orders/get"), pages + 1)
            if rule["kind"] in ("expire_token", "401"):
                C.equal(f"{name}: authenticated again once", stats["requests"].get("/authenticate"), 2)
            C.no_diffs(f"{name}: mirror exact", compare(db, want))
            st = sync_state(db, "orders")
            C.check(f"{name}: no error left in sync_state",
                    st["error_class"] is None and st["last_error"] is None and not st["unauthorized"], st)

        for i, (name, rule, cls, words) in enumerate(PERSISTENT_CASES):
            conf = write_config(os.path.join(root, f"persistent{i}"), [m])
            db = db_path(conf, "shop")
            r = dict(rule, endpoint="/orders/get", after=2)
            r.setdefault("count", 1000)
            emu.faults([r])
            run = run_kleepd(conf)
            emu.clear_faults()
            res = run.results.get("shop/orders", {})
            C.check(f"{name}: not a crash, exit 1", run.rc == 1 and not run.crashed(), run.summary())
            C.check(f"{name}: orders line says failed ({cls})",
                    res.get("outcome") == "failed" and res.get("error_class") == cls, res.get("line"))
            C.check(f"{name}: the message names " + ", ".join(words),
                    all(w in res.get("message", "") for w in words), res.get("line"))
            others = [s for s in STREAMS if s != "orders"]
            C.check(f"{name}: every other stream succeeded", run.all_success("shop", others),
                    run.out)
            st = sync_state(db, "orders")
            C.check(f"{name}: sync_state.error_class = {cls}, with a message",
                    st["error_class"] == cls and st["last_error"]
                    and "/orders/get" in st["last_error"], st)
            C.check(f"{name}: unauthorized flag and endpoint",
                    st["unauthorized"] == (cls == "unauthorized")
                    and st["endpoint"] == ("/orders/get" if cls == "unauthorized" else None), st)
            C.check(f"{name}: cursor not ahead of committed data (none yet; 2 pages committed)",
                    st["cursor_time"] is None and st["window_page"] == 2, st)
            got = mirror_rows(db, ["orders", "order_lines"])
            first = {str(o["id"]) for o in sorted(truth["orders"], key=lambda o: o["id"])[:2 * limit]}
            part = {t: [row for row in want[t] if row["order_id"] in first]
                    for t in ("orders", "order_lines")}
            C.no_diffs(f"{name}: exactly the committed pages' orders, no duplicate",
                       compare_rows("orders", got["orders"], part["orders"])
                       + compare_rows("order_lines", got["order_lines"], part["order_lines"]))
            # A return line of an order not mirrored yet is not tied to its order line.
            rest = dict(want, return_lines=[
                dict(row, order_line_no=row["order_line_no"] if row["order_id"] in first else None)
                for row in want["return_lines"]])
            C.no_diffs(f"{name}: the other streams are mirrored exactly",
                       compare(db, rest, [t for t in want if t not in ("orders", "order_lines")]))
            emu.reset_stats()
            run = run_kleepd(conf)
            C.check(f"{name}, cleared: the rerun converges (exit 0)",
                    run.rc == 0 and run.all_success("shop"), run.summary())
            # The rest of the window from its third page, then one page of the window
            # up to this run's start (what changed since the window opened).
            C.equal(f"{name}, cleared: resumes at the third page, then catches up",
                    emu.stats()["requests"].get("/orders/get"), pages - 2 + 1)
            C.check(f"{name}, cleared: the log says it resumed at page 3",
                    "at page 3" in run.err, run.err[-1500:])
            C.no_diffs(f"{name}, cleared: mirror exact", compare(db, want))
            st = sync_state(db, "orders")
            C.check(f"{name}, cleared: error cleared",
                    st["error_class"] is None and not st["unauthorized"] and st["endpoint"] is None, st)


def test_crash(root, deadline_s=75):
    section("kill -9 at 20 random moments of a 20,000-order sync, the shop changing between kills")
    seed = int(os.environ.get("SEED") or random.SystemRandom().randrange(1 << 30))
    rng = random.Random(seed)
    C.say(f"# crash moments drawn with SEED={seed}")
    limit = 20
    with Emulator(products=150, orders=20000, returns=300) as emu:
        truth = emu.truth()
        TRUTHS.append(truth)
        m = Merchant("big", emu, overrides=fast(limit))
        conf = write_config(os.path.join(root, "crash"), [m])
        db = db_path(conf, "big")
        want = canonical_from_truth(truth, m)
        for s in ("sizes", "departments", "attributes", "return_reasons", "products"):
            run = run_kleepd(conf, stream=s)
            C.check(f"catalog stream {s} synced first", run.rc == 0, run.summary())
        order_ids = [str(o["id"]) for o in sorted(truth["orders"], key=lambda o: o["id"])]
        want_orders = {r["order_id"]: r for r in want["orders"]}
        want_lines = {}
        for r in want["order_lines"]:
            want_lines.setdefault(r["order_id"], []).append(r)
        emu.reset_stats()
        t_start = time.monotonic()
        problems, mid_window, last_page, resume_expected = [], 0, 0, None
        resumed_ok = resumed_seen = 0
        wal_copied = False
        kills = 0
        mutated = set()      # orders changed at the shop after kleepd had committed them
        for k in range(20):
            sp = spawn_kleepd(conf, stream="orders")
            time.sleep(rng.uniform(0.02, 0.3))
            run = sp.kill9()
            kills += 1
            if run.crashed() and run.rc != -9:
                problems.append(f"kill {k}: {run.summary()}")
            if resume_expected and "run started" in run.err:
                resumed_seen += 1
                if f"resuming the window from the beginning at page {resume_expected}" in run.err:
                    resumed_ok += 1
                else:
                    problems.append(f"kill {k}: did not resume at page {resume_expected}: "
                                    f"{run.err[-600:]}")
            if not wal_copied and os.path.exists(db + "-wal") and os.path.getsize(db + "-wal") > 65536:
                shutil.copyfile(db + "-wal", os.path.join(root, "crash-wal-after-kill.bin"))
                wal_copied = True
            st = sync_state(db, "orders") or {}
            got = sorted((r[0] for r in query(db, "SELECT order_id FROM orders")), key=int)
            page = st.get("window_page") or 0
            if st.get("window_to"):
                if page > 0:
                    mid_window += 1
                if got != order_ids[:page * limit]:
                    problems.append(f"kill {k}: {len(got)} orders mirrored, want the first "
                                    f"{page * limit} (page {page})")
                if page < last_page:
                    problems.append(f"kill {k}: committed pages went back from {last_page} to {page}")
                last_page = page
                resume_expected = page + 1 if page else None
            elif st.get("cursor_time"):
                resume_expected = None
                if len(got) != len(order_ids):
                    problems.append(f"kill {k}: window closed with {len(got)} orders")
            else:
                resume_expected = None
                if got:
                    problems.append(f"kill {k}: {len(got)} orders without a committed window")
            if st.get("cursor_time") and not mutated & set(got) and st["cursor_time"] > max_cursor(
                    [o for o in truth["orders"] if str(o["id"]) in set(got)] or [{"date_upd": "1970-01-01 01:00:00"}]):
                problems.append(f"kill {k}: cursor {st['cursor_time']} ahead of committed data")
            # Every committed order is whole: its row and all its lines, exactly.
            rows = mirror_rows(db, ["orders", "order_lines"])
            # (Orders changed at the shop may hold either version until the end.)
            bad = [r["order_id"] for r in rows["orders"] if want_orders.get(r["order_id"]) != r
                   and r["order_id"] not in mutated]
            lines = {}
            for r in rows["order_lines"]:
                lines.setdefault(r["order_id"], []).append(r)
            bad += [oid for oid in lines if lines[oid] != want_lines.get(oid) and oid not in mutated]
            bad += [r["order_id"] for r in rows["orders"] if r["order_id"] in want_lines
                    and r["order_id"] not in lines]
            if bad:
                problems.append(f"kill {k}: {len(bad)} orders not whole, e.g. {bad[:3]}")
            # The shop changes records on pages this window has already read.
            for oid in rng.sample(got, min(2, len(got))):
                emu.update("orders", int(oid))
                mutated.add(oid)
            if time.monotonic() - t_start > deadline_s:
                C.say(f"# the crash loop stops after {kills} kills: over {deadline_s} s")
                break
        C.check(f"after each of {kills} kills: committed pages are a whole prefix, cursor never "
                f"ahead, no duplicate, no partial order", not problems, "\n".join(problems[:10]))
        C.check(f"kills landed inside the window ({mid_window} of {kills})", mid_window >= kills // 2)
        C.check(f"each next run resumed at the page after the last committed one "
                f"({resumed_ok} of {resumed_seen} checked)",
                resumed_ok == resumed_seen and resumed_seen >= kills // 3)
        C.equal("database integrity after the kills",
                query(db, "PRAGMA integrity_check"), [("ok",)])
        open_window = bool((sync_state(db, "orders") or {}).get("window_to"))
        run = run_kleepd(conf, stream="orders")
        C.check("final run completes", run.rc == 0 and run.all_success("big", ["orders"]),
                run.summary())
        C.check(f"the final run resumed the interrupted window ({len(mutated)} orders changed "
                f"at the shop on pages it had read)",
                open_window and "resuming the window" in run.err and mutated, run.err[-1500:])
        # Besides 20,000 orders, a lost page per kill, and the window up to the final run's
        # start: the changed orders and those inside the lookback, in whole pages.
        newest = max_cursor(truth["orders"])
        recent = sum(1 for o in truth["orders"]
                     if local_to_utc(o["date_upd"]) >= window_from_utc(newest))
        truth = emu.truth()
        TRUTHS.append(truth)
        # A run ends caught up with the shop as of its own start.
        check_mirror("right after that one run", db, truth, m, ["orders", "order_lines"])
        served = emu.stats()["records_served"].get("orders", 0)
        bound = 20000 + (kills + 1) * limit + recent + len(mutated) + limit
        C.check(f"no run started over: {served} orders served for 20,000 "
                f"(at most one lost page per kill, and the changed ones)", served <= bound,
                f"served {served}, bound {bound}")
        run = run_kleepd(conf)
        check_ran("a complete run after the crashes", run, ["big"])
        check_mirror("after the crashes", db, truth, m)
        customer_hash_checks("after the crashes", db, truth)
        C.say(f"# crash test took {time.monotonic() - t_start:.1f} s")


def _mutate_during_stall(emu, sp, actions, out):
    """Wait for the stall fault to fire, then apply actions while kleepd waits."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rules = emu.faults()
        if rules and rules[0].get("fired"):
            break
        time.sleep(0.01)
    else:
        out["error"] = "the stall never fired"
        return
    out["while_running_before"] = sp.proc.poll() is None
    out["ids"] = [a(emu) for a in actions]
    out["while_running_after"] = sp.proc.poll() is None


def test_drift(root):
    section("pagination drift: records added and updated while paging")
    limit = 50
    with Emulator(products=80, orders=600, returns=60) as emu:
        m = Merchant("drift", emu, overrides=fast(limit, request_timeout_s=30))
        conf = write_config(os.path.join(root, "drift"), [m])
        db = db_path(conf, "drift")
        for phase, prepare, after in (
                ("initial full read", None, 3),
                ("incremental window", lambda: emu.bulk("orders", update=220), 1)):
            if prepare:
                prepare()
            first = 99001
            actions = [lambda e: e.update("orders", first + 10)["ids"],      # already paged
                       lambda e: e.update("orders", first + 130)["ids"],
                       lambda e: e.update("orders", first + 420)["ids"],     # not yet paged
                       lambda e: e.bulk("orders", add=5, update=12)["ids"],
                       lambda e: e.bulk("returns", add=2, update=3)["ids"],
                       lambda e: e.bulk("products", update=3)["ids"]]
            emu.faults([{"endpoint": "/orders/get", "kind": "stall", "seconds": 0.5,
                         "after": after}])
            sp = spawn_kleepd(conf)
            out = {}
            th = threading.Thread(target=_mutate_during_stall, args=(emu, sp, actions, out))
            th.start()
            run = sp.wait(timeout=120)
            th.join()
            emu.clear_faults()
            C.check(f"{phase}: the run with changes while paging succeeds",
                    run.rc == 0 and run.all_success("drift"), run.summary())
            C.check(f"{phase}: the changes were made while kleepd was paging",
                    out.get("while_running_before") and out.get("while_running_after"), out)
            stale = compare(db, canonical_from_truth(emu.truth(), m), ["orders"])
            C.say(f"# {phase}: right after that run: {'; '.join(stale) or 'nothing stale'}")
            run = run_kleepd(conf)
            check_ran(f"{phase}: the next run", run, ["drift"])
            truth = emu.truth()
            TRUTHS.append(truth)
            check_mirror(f"{phase}: nothing lost after the next run", db, truth, m)


def test_token_renewal(root):
    section("a short-lived token is renewed before it expires")
    with Emulator(products=40, orders=2000, returns=20, token_lifetime=2) as emu:
        truth = emu.truth()
        TRUTHS.append(truth)
        # 101 order pages at 40 requests/s: the orders run outlives its first token.
        m = Merchant("renew", emu, rate_limit=40, overrides=fast(20))
        conf = write_config(os.path.join(root, "renew"), [m])
        run = run_kleepd(conf)
        check_ran("2 s tokens", run, ["renew"])
        stats = emu.stats()
        C.check(f"2 s tokens: renewed during the run ({stats['requests'].get('/authenticate')} "
                f"authentications for 7 streams sharing the token, in {run.elapsed:.1f} s)",
                stats["requests"].get("/authenticate", 0) > 1 and run.elapsed > 2.0)
        C.check("2 s tokens: renewed before expiry, never refused",
                stats["responses"].get("401", 0) == 0, stats["responses"])
        C.no_diffs("2 s tokens: mirror exact", compare(db_path(conf, "renew"),
                                                       canonical_from_truth(truth, m)))


def test_unauthorized(root):
    section("unauthorized: /returns/get revoked")
    with Emulator(products=60, orders=150, returns=50) as emu:
        truth = emu.truth()
        TRUTHS.append(truth)
        m = Merchant("acl", emu, overrides=fast(100))
        conf = write_config(os.path.join(root, "acl"), [m])
        db = db_path(conf, "acl")
        want = canonical_from_truth(truth, m)
        emu.revoke("/returns/get")
        run = run_kleepd(conf)
        res = run.results.get("acl/returns", {})
        C.check("revoked: exit non-zero, no crash", run.rc not in (0, None) and not run.crashed(),
                run.summary())
        C.check("revoked: the returns line says unauthorized and names /returns/get",
                res.get("outcome") == "failed" and res.get("error_class") == "unauthorized"
                and "/returns/get" in res.get("message", ""), res.get("line"))
        C.check("revoked: every other stream succeeded",
                run.all_success("acl", [s for s in STREAMS if s != "returns"]), run.out)
        C.equal("revoked: asked once, not retried in a loop",
                emu.stats()["requests"].get("/returns/get"), 1)
        st = sync_state(db, "returns")
        C.check("revoked: sync_state unauthorized=1, error_class=unauthorized, endpoint named",
                st["unauthorized"] == 1 and st["error_class"] == "unauthorized"
                and st["endpoint"] == "/returns/get" and "/returns/get" in (st["last_error"] or ""), st)
        C.no_diffs("revoked: every other stream mirrored exactly",
                   compare(db, want, [t for t in want if t not in ("returns", "return_lines")]))
        C.equal("revoked: no returns mirrored",
                query(db, "SELECT (SELECT count(*) FROM returns) + (SELECT count(*) FROM return_lines)"),
                [(0,)])
        emu.unrevoke("/returns/get")
        run = run_kleepd(conf)
        check_ran("authorized again", run, ["acl"])
        C.no_diffs("authorized again: mirror exact", compare(db, want))
        st = sync_state(db, "returns")
        C.check("authorized again: the flag and error are cleared",
                st["unauthorized"] == 0 and st["error_class"] is None and st["endpoint"] is None, st)


def test_alt_profile(root):
    section("the alt profile yields the same canonical tables")
    with Emulator(products=90, orders=300, returns=70, profile="alt") as emu:
        truth = emu.truth()
        TRUTHS.append(truth)
        m = Merchant("alt", emu, profile="alt", overrides=fast(40))
        conf = write_config(os.path.join(root, "alt"), [m])
        db = db_path(conf, "alt")
        run = run_kleepd(conf)
        check_ran("alt profile", run, ["alt"])
        check_mirror("alt profile", db, truth, m)
        cursors = {s: sync_state(db, s)["cursor_time"] for s in DATED_STREAMS}
        for s in DATED_STREAMS:
            emu.bulk(s, add=2, update=5)
        truth2 = emu.truth()
        TRUTHS.append(truth2)
        emu.reset_stats()
        run = run_kleepd(conf)
        check_ran("alt profile, incremental", run, ["alt"])
        stats = emu.stats()
        for s in DATED_STREAMS:
            since = window_from_local(cursors[s])
            expect = sum(1 for r in truth2[s] if r["date_upd"] >= since)
            C.check(f"alt profile, incremental {s}: the date filter (updated_since) is honoured",
                    stats["records_served"].get(s) == expect and expect < len(truth2[s]) / 2,
                    f"served {stats['records_served'].get(s)}, want {expect}")
        check_mirror("alt profile, incremental", db, truth2, m)


def test_personal_data(root):
    section("no personal data in the mirrors, kleepd's output or this test's output")
    texts = []
    for t in TRUTHS:
        texts += innocent_texts(t)
    needles, skipped, counts = personal_needles(TRUTHS, texts)
    C.check(f"personal data to look for: {counts['emails']} e-mails, {counts['phones']} phones, "
            f"{counts['streets']} streets, {counts['names']} names ({len(needles)} needles, "
            f"{skipped} left out as they also occur in the shop's own data)",
            counts["emails"] > 1000 and counts["names"] > 10 and len(needles) > 20)
    control = find_needles("\n".join(__import__("json").dumps(t, ensure_ascii=False)
                                     for t in TRUTHS[:1]).encode(), needles)
    C.check("the needles find the customers in the emulator's own data (control)", control > 10)
    files = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            if n.endswith((".db", ".db-wal", ".db-shm", ".bin")):
                files.append(os.path.join(dirpath, n))
    hits = []
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        total += len(data)
        n = find_needles(data, needles)
        if n:
            hits.append(f"{os.path.relpath(f, root)}: {n} needles")
    C.check(f"no personal data in {len(files)} database files ({total >> 20} MiB, with -wal "
            f"and a WAL kept after a kill -9)",
            not hits and len(files) >= 10 and any(f.endswith(".bin") for f in files),
            "; ".join(hits))
    logs = "\n".join(KLEEPD_OUTPUT).encode()
    C.check(f"no personal data in kleepd's stdout and stderr ({len(logs) >> 10} KiB)",
            find_needles(logs, needles) == 0 and len(logs) > 1000,
            f"{find_needles(logs, needles)} needles found")
    mine = "\n".join(C.output).encode()
    C.check("no personal data in this test's output", find_needles(mine, needles) == 0,
            "found (not shown)")


def main():
    if not os.access(KLEEPD, os.X_OK):
        C.check(f"{KLEEPD} is built", False)
        C.finish()
    t0 = time.monotonic()
    with TempDir(prefix="kleep-sync-") as root:
        for test in (test_full_and_incremental, test_faults, test_token_renewal, test_unauthorized,
                     test_alt_profile, test_drift, test_crash, test_personal_data):
            if os.environ.get("ONLY") and os.environ["ONLY"] not in test.__name__:
                continue
            t = time.monotonic()
            try:
                test(root)
            except Exception as e:  # a harness error fails the section, not the whole suite
                import traceback
                C.check(f"{test.__name__} ran to its end", False,
                        f"{type(e).__name__}: {e}\n{traceback.format_exc()[-3000:]}")
            C.say(f"# {test.__name__}: {time.monotonic() - t:.1f} s")
    C.say(f"# total {time.monotonic() - t0:.1f} s")
    C.finish()


if __name__ == "__main__":
    main()
