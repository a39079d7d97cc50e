#!/usr/bin/python3
"""test_merchant_config.py - merchant product configuration, languages and export (issue 7).

One WSHOP emulator, one real sshd on 127.0.0.1 (test_sftp.Env), one kleepd config with four
merchants sharing the emulator:

  A (id a)  [wshop] + [sftp] (root shopa), languages = fr, br   source of the round trip,
                                              product groups, dimensions, languages, export
  B (id b)  [sftp] only (root shopb), same languages/timezone   target of the round trip
  R (id r)  [wshop], languages = fr, br       product_id_field id -> reference
  K (id k)  [wshop], languages = fr, br, ko, pl   a configured language never served

Before the first sync the emulator gets a few hand-made records whose texts carry quotes,
commas, semicolons, CR/LF, leading/trailing blanks, accents, CJK and emoji, a product served
in both `br` and `pt` with different texts, an EAN with leading zeros, and a return reason
with such labels, so that every check below also covers them.

A kleepd daemon (export, dimensions-template, reload, reproject and check go through its
socket: kleepctl asks it where the mirror is) runs after a complete `kleepd --once`, with
every poll at 1h, so it calls nobody on its own; it is stopped before the `kleepd --once`
ingestions, which are then the only writers.

1. Round trip.  `kleepd --once` mirrors A from the emulator; with a kleepd daemon up,
   `kleepctl export A products|orders|returns|return_reasons` each go to
   shopb/<kind>/<kind>_YYYY-MM-DDTHH-MM-SS.csv; `kleepd --once --merchant B --stream sftp`
   ingests them.  B's canonical tables must then equal A's, `source` aside, in every column
   the CSV contract (DOMAIN.md §3) carries.  Excluded, and why:
     - products.source_id: the WSHOP id; the products file has no column for it.
     - products.department_id: no column (the department's label travels as `category`).
     - variants.size_id, variants.stock: no column (the size travels as `size_label`).
     - orders.reference, orders.customer_hash: no column (the hash is deliberately not
       exported: no personal data, even hashed, leaves the mirror that way).
     - the departments, attributes and sizes tables, and the labels of entities
       department, attribute and size: no SFTP kind feeds them (B must have none).
     - labels of entity product: the products file carries one text per field, the
       canonical title/description/url (the first configured language, with fallback), and
       csvin files it under the merchant's first language.  So B must hold exactly
       (product, id, fr, name|description|url) = A's title|description|url, which also
       contains every `fr` product label of A; A's other languages cannot travel (and a
       title that fell back to another language, e.g. br, lands under fr in B).
     - rows without children: a product without variants, an order or a return without
       lines has no CSV row (one row per variant or line; variant_id is required).  The
       emulator's data has none, so whole tables are compared.
   Compared: products, variants (sku, ean, size_label...), orders, order_lines, returns,
   return_lines, return_reasons and every return_reason label (the return_reasons file has
   one row per language, so all of them travel).  Also: every file applied without a
   rejected row, and product_groups of B equal A's (size ranges as sets: without size_id,
   B can only order them by label).
2. product_id_field.  R mirrored with product_id_field = id equals the emulator's canonical
   rows; its merchants.d file then says reference, `kleepctl reload`, `kleepctl reproject R`:
   every table equals /_emulator/canonical?product_id_field=reference (products, variants,
   order_lines, return_lines, labels entity_id...), product ids did change, the raw layer is
   untouched, and the emulator's request count did not move.
3. product_groups of A (and of R after the reproject) equal the colour siblings of the
   emulator's truth: products sharing a non-empty parent_reference form a group, the others
   stand alone; product lists and size ranges (in size order) follow the truth's variants.
4. Dimensions: `kleepctl dimensions-template A --measurements chest,waist` (one row per
   variant and measurement, value empty), values filled in, dropped as
   misc/dimensions_YYYY-MM-DDTHH-MM-SS.csv on A's folder, `kleepd --once --merchant A
   --stream sftp`: `dimensions` holds every (variant, measurement, value, unit).
5. Languages: A's labels hold every language the shop serves (br among them, its own texts,
   distinct from pt's); A's whole mirror equals the oracle for languages fr, br.
   `kleepctl check K` reports ko and pl as language_missing (a readiness warning: exit 0,
   go_live true, since nothing blocks) and nothing about fr or br; A's check reports none.
6. Export format: RFC 4180 (CRLF record ends, quotes doubled, quoted fields whole), strict
   UTF-8 without BOM; parsed with Python's csv module, every kind equals the mirror's rows,
   the hand-made texts intact; --since keeps exactly the rows updated at or after it.

Needs root (sshd).  Environment: BUILD (default "build").  Prints `ok`/`FAIL` lines, then
`N passed, M failed`.
"""

import csv
import io
import os
import re
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemontest as dt  # noqa: E402
import kleeptest as kt  # noqa: E402
import test_sftp as ts  # noqa: E402

LANGS = "fr, br"
K_LANGS = "fr, br, ko, pl"
SERVED = {"fr", "en", "de", "it", "ja", "es", "br", "pt"}  # pt: the hand-made product only
KINDS = ("products", "orders", "returns", "return_reasons")
LAYOUT = ("products", "orders", "returns", "return_reasons", "misc")
OLD = time.time() - 3600  # an mtime long settled
# Enough data for exports of several 64 KiB read blocks (csvin reads by block).
PRODUCTS, ORDERS, RETURNS = 200, 1000, 250

# DOMAIN.md §3 column names, in the order export writes them.
EXPORT_COLUMNS = {
    "products": ["product_id", "variant_id", "sku", "ean", "title", "description", "url",
                 "images", "category", "size_label", "parent_reference", "updated_at",
                 "deactivated"],
    "orders": ["order_id", "ordered_at", "product_id", "quantity", "line_no", "variant_id",
               "sku", "size_label", "price", "currency", "status", "updated_at"],
    "returns": ["return_id", "order_id", "returned_at", "product_id", "quantity", "line_no",
                "variant_id", "sku", "size_label", "reason_id", "comment", "updated_at"],
    "return_reasons": ["reason_id", "code", "label", "lang"],
}
# The same rows, read from the mirror independently of lib/export.c.
MIRROR_SQL = {
    "products": "SELECT p.product_id, v.variant_id, v.sku, v.ean, p.title, p.description,"
                " p.url, p.images, p.category, v.size_label, p.parent_reference, p.updated_at,"
                " p.deactivated FROM variants v JOIN products p ON p.product_id = v.product_id"
                " WHERE ?1 IS NULL OR p.updated_at >= ?1",
    "orders": "SELECT o.order_id, o.ordered_at, l.product_id, l.quantity, l.line_no,"
              " l.variant_id, l.sku, l.size_label,"
              " printf('%.*f', c.exponent, l.unit_price_minor / power(10.0, c.exponent)),"
              " coalesce(l.currency, o.currency), o.status, o.updated_at"
              " FROM order_lines l JOIN orders o ON o.order_id = l.order_id"
              " LEFT JOIN currencies c ON c.currency = l.currency"
              " WHERE ?1 IS NULL OR o.updated_at >= ?1",
    "returns": "SELECT r.return_id, r.order_id, r.returned_at, l.product_id, l.quantity,"
               " l.line_no, l.variant_id, l.sku, l.size_label, l.reason_id, l.comment,"
               " r.updated_at FROM return_lines l JOIN returns r ON r.return_id = l.return_id"
               " WHERE ?1 IS NULL OR r.updated_at >= ?1",
    # one row per language; a reason without labels still gets one, with its own label
    "return_reasons": "SELECT r.reason_id, r.code, coalesce(l.value, r.label), l.lang"
                      " FROM return_reasons r LEFT JOIN labels l ON l.entity = 'return_reason'"
                      " AND l.entity_id = r.reason_id AND l.field = 'label'"
                      " WHERE ?1 IS NULL OR 1",
}

# What B can hold, per table (see the docstring for the columns left out).
ROUND_TRIP = {
    "products": ("product_id", "parent_reference", "title", "description", "url", "images",
                 "category", "updated_at", "deactivated"),
    "variants": ("variant_id", "product_id", "sku", "ean", "size_label"),
    "orders": ("order_id", "status", "ordered_at", "updated_at", "currency"),
    "order_lines": kt.COLUMNS["order_lines"],
    "returns": kt.COLUMNS["returns"],
    "return_lines": kt.COLUMNS["return_lines"],
    "return_reasons": kt.COLUMNS["return_reasons"],
}

# ---------------------------------------------------------------- hand-made records

FR_TITLE = 'Robe "Été", rouge; coupe droite 😀'
FR_DESC = '  Ligne 1, "citée"\nLigne 2 ; suite\r\nLigne 3 — 東京 '
BR_NAME = "Vestido de verão (BR)"
PT_NAME = "Vestido de Verão (PT)"
BR_DESC = "  Algodão orgânico\t "  # blanks at both ends, nothing else to quote
COMMENT = ' Trop "grand", vraiment ;\r\nÀ refaire — 返品 '
REASON_LABELS = {"fr": "Autre ; « divers »", "br": 'Outro, "vários"',
                 "ja": "その他\n（詳細）", "en": " Other "}


def hand_made(emu):
    """Add the hand-made records to the emulator; returns their ids."""
    truth = emu.truth("products")
    dept = truth[0]["department_id"]
    p1 = {"id": 1901, "reference": "RB-ÉTÉ-01", "parent_reference": "RB-ÉTÉ",
          "department_id": dept, "active": True,
          "attributes": [{"attribute_id": 1, "value": "coton"}],
          "sizes": [{"id": 59001, "size_id": 2, "ean": "0012345678905",
                     "sku": "RB-ÉTÉ-01-S", "stock": 3},
                    {"id": 59002, "size_id": 3, "ean": "0012345678912",
                     "sku": "RB-ÉTÉ-01-M", "stock": 0}],
          "translations": {
              "fr": {"name": FR_TITLE, "description": FR_DESC,
                     "url": "https://shop.example/fr/p/robe-été,rouge.html"},
              "ja": {"name": "夏のドレス「赤」", "description": "綿100%、\n日本製",
                     "url": "https://shop.example/ja/p/夏.html"},
              "br": {"name": BR_NAME, "description": "Ação, coração",
                     "url": "https://shop.example/br/p/vestido.html"}},
          "images": ["https://cdn.shop.example/img/RB,1.jpg",
                     "https://cdn.shop.example/img/été 2.jpg"],
          "date_add": "2026-10-30 10:00:00", "date_upd": "2026-10-31 11:00:00"}
    # No fr: with languages fr, br the title is br's, never pt's.
    p2 = {"id": 1902, "reference": "RB-ÉTÉ-02", "parent_reference": "RB-ÉTÉ",
          "department_id": dept, "active": False, "attributes": [],
          "sizes": [{"id": 59003, "size_id": 3, "ean": "0012345678929", "sku": "RB-ÉTÉ-02-M",
                     "stock": 1},
                    {"id": 59004, "size_id": 4, "ean": "0012345678936", "sku": "RB-ÉTÉ-02-L",
                     "stock": 2}],
          "translations": {"pt": {"name": PT_NAME, "description": "Algodão", "url": ""},
                           "br": {"name": BR_NAME, "description": BR_DESC, "url": ""},
                           "en": {"name": "Summer dress", "description": "Cotton, 100%",
                                  "url": "https://shop.example/en/p/dress.html"}},
          "images": [], "date_add": "2026-10-30 10:00:00", "date_upd": "2026-10-31 11:00:01"}
    reason = {"id": 8, "code": 'other, "misc"', "translations": REASON_LABELS}
    order = {"id": 190001, "reference": "WS-190001", "status": "shipped", "currency": "EUR",
             "customer": {"id": 4242, "email": "zoé@mail-perso.example", "firstname": "Zoé",
                          "lastname": "Lefèvre", "phone": "+33 6 00 00 00 00",
                          "address": {"street": "1 rue des Tests", "zip": "75001",
                                      "city": "Paris", "country": "FR"}},
             "lines": [{"id": 1, "product_id": 1901, "product_size_id": 59001,
                        "sku": "RB-ÉTÉ-01-S", "quantity": 2, "price": "1234.50"},
                       {"id": 2, "product_id": 1902, "product_size_id": 59004,
                        "quantity": 1, "price": "0.99"}],
             "date_add": "2026-10-31 12:00:00", "date_upd": "2026-10-31 12:30:00"}
    ret = {"id": 79001, "order_id": 190001,
           "lines": [{"id": 1, "order_line_id": 1, "product_id": 1901, "product_size_id": 59001,
                      "quantity": 1, "reason_id": 8, "comment": COMMENT},
                     {"id": 2, "order_line_id": 2, "product_id": 1902, "product_size_id": 59004,
                      "quantity": 1, "reason_id": 2, "comment": "Line one\nline two"}],
           "date_add": "2026-10-31 13:00:00", "date_upd": "2026-10-31 13:00:00"}
    emu.add("products", p1)
    emu.add("products", p2)
    emu.add("return_reasons", reason)
    emu.add("orders", order)
    emu.add("returns", ret)


# ---------------------------------------------------------------- helpers

def dicts(path, table, cols, where="", params=()):
    db = kt.connect(path)
    try:
        return [dict(zip(cols, r)) for r in
                db.execute(f"SELECT {', '.join(cols)} FROM {table} {where}", params)]
    finally:
        db.close()


def ctl_bytes(sock, *args, timeout=60):
    """kleepctl's raw stdout (bytes: the CSV is checked byte for byte), stderr text, rc."""
    p = subprocess.run([dt.KLEEPCTL, "--socket", sock] + [str(a) for a in args],
                       capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def parse_csv(data):
    """RFC 4180 bytes -> list of records (strict UTF-8)."""
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


QUOTED = re.compile(rb'"(?:[^"]|"")*"')


def rfc4180_problems(data):
    probs = []
    if data.startswith(b"\xef\xbb\xbf"):
        probs.append("starts with a BOM")
    if not data.endswith(b"\r\n"):
        probs.append("the last record does not end with CRLF")
    outside = QUOTED.sub(b"Q", data)
    if re.search(rb"\r(?!\n)|(?<!\r)\n", outside):
        probs.append("a bare CR or LF outside quoted fields")
    if b'"' in outside:
        probs.append("a quote outside a quoted field")
    if re.search(rb"[^,\n]Q|Q[^,\r]", outside):
        probs.append("a quoted field that is not a whole field")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        probs.append(f"not UTF-8: {e}")
    return probs


def cell(v):
    return "" if v is None else str(v)


def as_cells(rows):
    return sorted(tuple(cell(v) for v in r) for r in rows)


def stamp(t=None):
    return time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(t))


def put(path, data, mtime=OLD):
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (mtime, mtime))


def expected_groups(truth, product_id_field="id"):
    """{group_id: (products, product_ids, size_range)} of the truth's colour siblings."""
    sizes = {s["id"]: s["label"] for s in truth["sizes"]}
    groups = {}
    for p in truth["products"]:
        pid = p.get(product_id_field) or p["id"]
        pid = str(pid)
        parent = p.get("parent_reference")
        gid = str(parent) if parent not in (None, "") else pid
        g = groups.setdefault(gid, {"ids": [], "sizes": {}})
        g["ids"].append(pid)
        for v in p.get("sizes") or []:
            label = sizes.get(v["size_id"])
            if label is not None:
                g["sizes"][label] = min(g["sizes"].get(label, 1 << 30), int(v["size_id"]))
    out = {}
    for gid, g in groups.items():
        in_order = sorted(g["sizes"].items(), key=lambda kv: (kv[1], kv[0]))
        out[gid] = (len(g["ids"]), ",".join(sorted(g["ids"])),
                    ",".join(label for label, _ in in_order) or None)
    return out


def mirror_groups(path):
    rows = kt.query(path, "SELECT group_id, products, product_ids, size_range"
                          " FROM product_groups")
    return {r[0]: tuple(r[1:]) for r in rows}


def group_diffs(got, want, limit=5):
    diffs = []
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(k for k in want if k in got and got[k] != want[k])
    if missing:
        diffs.append(f"{len(missing)} groups missing, e.g. "
                     f"{[(k, want[k]) for k in missing[:limit]]}")
    if extra:
        diffs.append(f"{len(extra)} extra groups, e.g. {[(k, got[k]) for k in extra[:limit]]}")
    if changed:
        diffs.append(f"{len(changed)} groups differ, e.g. "
                     f"{[(k, got[k], want[k]) for k in changed[:limit]]}")
    return diffs


# ---------------------------------------------------------------- the world

class World:
    def __init__(self, env, emu):
        self.env, self.emu = env, emu
        self.folder = os.path.join(env.tmp, "k")
        os.makedirs(self.folder)
        a = kt.Merchant("a", emu, languages=LANGS, timezone="Europe/Paris")
        r = kt.Merchant("r", emu, languages=LANGS, timezone="Europe/Paris")
        k = kt.Merchant("k", emu, languages=K_LANGS, timezone="Europe/Paris")
        self.merchants = {"a": a, "r": r, "k": k}
        self.conf, self.sock = dt.write_daemon_config(
            self.folder, [a, r, k], defaults={f"poll_{s}": "1h" for s in kt.STREAMS})
        self.mdir = os.path.join(self.folder, "merchants.d")
        with open(os.path.join(self.mdir, "a.conf"), "a") as f:
            f.write(self.sftp_section("shopa"))
        with open(os.path.join(self.mdir, "b.conf"), "w") as f:
            f.write(f"[merchant]\nid = b\nlanguages = {LANGS}\ntimezone = Europe/Paris\n"
                    + self.sftp_section("shopb"))
        for root in ("shopa", "shopb"):
            for d in LAYOUT:
                os.makedirs(os.path.join(env.drop, root, d))

    def sftp_section(self, root):
        e = self.env
        return (f"\n[sftp]\nhost = 127.0.0.1\nport = {e.port}\nuser = root\n"
                f"key_file = {e.tmp}/client_key\nknown_hosts = {e.known_hosts}\nroot = {root}\n"
                f"settle = 1s\npoll = 1h\n")

    def db(self, mid):
        return kt.db_path(self.conf, mid)

    def shop(self, mid):
        return os.path.join(self.env.drop, "shop" + mid)


# ---------------------------------------------------------------- 5. languages (A's mirror)

def test_languages(c, w):
    truth = w.emu.truth()
    want = w.emu.canonical(LANGS, "id", "parent_reference")
    c.no_diffs("A mirrored from the emulator equals the oracle for languages fr, br",
               kt.compare(w.db("a"), want))
    served = set()
    for stream in ("products", "sizes", "departments", "attributes", "return_reasons"):
        for rec in truth[stream]:
            served |= set((rec.get("translations") or {}).keys())
    langs = {r[0] for r in kt.query(w.db("a"), "SELECT DISTINCT lang FROM labels")}
    c.check("labels hold every language the shop serves (and only those)",
            langs == served and served >= SERVED,
            f"labels {sorted(langs)}, served {sorted(served)}")
    got = dict(((r[0], r[1]), r[2]) for r in kt.query(
        w.db("a"), "SELECT entity_id, field, value FROM labels WHERE entity = 'product'"
                   " AND lang = 'br'"))
    want_br = {}
    for p in truth["products"]:
        for field, value in ((p.get("translations") or {}).get("br") or {}).items():
            if value:
                want_br[(str(p["id"]), field)] = value
    c.check("br labels are the shop's br texts, every one of them",
            got == want_br and len(want_br) > 10, f"{len(got)} got, {len(want_br)} want")
    both = kt.query(w.db("a"), "SELECT lang, value FROM labels WHERE entity = 'product'"
                               " AND entity_id = '1902' AND field = 'name' ORDER BY lang")
    c.equal("br and pt stay distinct languages with their own texts", both,
            [("br", BR_NAME), ("en", "Summer dress"), ("pt", PT_NAME)])
    c.equal("without fr, the title falls back to br (configured), not pt",
            kt.query(w.db("a"), "SELECT title FROM products WHERE product_id = '1902'"),
            [(BR_NAME,)])


def test_check_languages(c, w, d):
    r = d.ctl("check", "k", json_out=True, timeout=120)
    data = None
    try:
        data = r.json()
    except ValueError:
        pass
    items = [i for i in (data or {}).get("readiness", []) if i.get("check") == "language_missing"]
    missing = sorted(e for i in items for e in i.get("examples", []))
    c.check("check K --json: language_missing names ko and pl, not fr or br",
            missing == ["ko", "pl"], (missing, r))
    c.check("check K --json: only a warning: go_live true, exit 0",
            data is not None and data.get("go_live") is True and r.rc == 0, r)
    h = d.ctl("check", "k", timeout=120)
    warn = [line for line in h.out.splitlines() if "configured language" in line]
    c.check("check K (human): exit 0, one warning line per missing language",
            h.rc == 0 and len(warn) == 2 and any("ko" in x for x in warn)
            and any("pl" in x for x in warn) and "Ready to go live" in h.out, h)
    r = d.ctl("check", "a", json_out=True, timeout=120)
    try:
        items = [i for i in r.json().get("readiness", []) if i.get("check") == "language_missing"]
    except ValueError:
        items = None
    c.check("check A (fr, br both served): no language_missing", items == [], (items, r))


# ---------------------------------------------------------------- 6. export format

def test_export_format(c, w, exports):
    for kind in KINDS:
        data = exports[kind]
        c.no_diffs(f"export {kind}: RFC 4180, UTF-8, CRLF", rfc4180_problems(data))
        try:
            recs = parse_csv(data)
        except (UnicodeDecodeError, csv.Error) as e:
            c.check(f"export {kind}: parses", False, e)
            continue
        c.equal(f"export {kind}: header in DOMAIN.md §3 names", recs[0] if recs else None,
                EXPORT_COLUMNS[kind])
        want = as_cells(kt.query(w.db("a"), MIRROR_SQL[kind], (None,)))
        got = sorted(tuple(r) for r in recs[1:])
        c.check(f"export {kind}: parsed with csv, equals the mirror ({len(want)} rows)",
                got == want and len(want) > 0,
                f"{len(got)} rows, want {len(want)}; first differing: "
                f"{next(((g, x) for g, x in zip(got, want) if g != x), None)}")
    prods = {r[1]: r for r in parse_csv(exports["products"])[1:] if r[0] == "1901"}
    p = prods.get("59001")
    c.check("export products: quotes, newlines, blanks, accents, CJK and emoji intact",
            p is not None and p[4] == FR_TITLE and p[5] == FR_DESC and p[3] == "0012345678905"
            and p[7] == '["https://cdn.shop.example/img/RB,1.jpg",'
                        '"https://cdn.shop.example/img/été 2.jpg"]', p)
    p2 = {r[1]: r for r in parse_csv(exports["products"])[1:] if r[0] == "1902"}.get("59003")
    c.check("export products: blanks at both ends of a field survive, the field quoted "
            "(csvin's reader trims unquoted blanks)",
            p2 is not None and p2[5] == BR_DESC
            and ('"' + BR_DESC + '"').encode() in exports["products"], p2)
    rets = {(r[0], r[5]): r for r in parse_csv(exports["returns"])[1:]}
    c.check("export returns: the comment with CRLF, quotes and blanks intact",
            rets.get(("79001", "1"), [None] * 11)[10] == COMMENT
            and rets.get(("79001", "2"), [None] * 11)[10] == "Line one\nline two",
            rets.get(("79001", "1")))
    reasons = {r[3]: r[2] for r in parse_csv(exports["return_reasons"])[1:] if r[0] == "8"}
    c.equal("export return_reasons: one row per language, labels intact", reasons, REASON_LABELS)


def test_export_since(c, w):
    times = sorted(r[0] for r in kt.query(w.db("a"), "SELECT updated_at FROM orders"))
    since = times[len(times) // 2]
    for kind, t in (("orders", since), ("products", "2026-06-01")):
        rc, out, err = ctl_bytes(w.sock, "export", "a", kind, "--since", t)
        want = as_cells(kt.query(w.db("a"), MIRROR_SQL[kind], (t,)))
        total = kt.query(w.db("a"), f"SELECT count(*) FROM ({MIRROR_SQL[kind]})", (None,))[0][0]
        got = sorted(tuple(r) for r in parse_csv(out)[1:]) if rc == 0 else None
        c.check(f"export {kind} --since {t}: exactly the rows updated since",
                got == want and 0 < len(want) < total and f"{len(want)} rows" in err,
                (rc, err, None if got is None else len(got), len(want), total))


# ---------------------------------------------------------------- 1. round trip

def test_round_trip(c, w, exports):
    ts_name = stamp()
    for kind in KINDS:
        put(os.path.join(w.shop("b"), kind, f"{kind}_{ts_name}.csv"), exports[kind])
    run = kt.run_kleepd(w.conf, merchant="b", stream="sftp", timeout=60)
    c.check("kleepd --once --merchant B --stream sftp: exit 0", run.rc == 0 and not run.crashed(),
            run.summary())
    files = kt.query(w.db("b"), "SELECT path, outcome, rows, rejects, reason FROM sftp_files"
                                " ORDER BY path")
    c.check("B: the four exports applied whole, no rejected row",
            len(files) == 4 and all(f[1] == "applied" and f[3] == 0 for f in files), files)
    a, b = w.db("a"), w.db("b")
    for table, cols in ROUND_TRIP.items():
        want, got = dicts(a, table, cols), dicts(b, table, cols)
        c.no_diffs(f"round trip: B's {table} equal A's ({len(want)} rows; {', '.join(cols)})",
                   kt.compare_rows(table, got, want) if want else [f"A has no {table}"])
    lcols = kt.COLUMNS["labels"]
    want = dicts(a, "labels", lcols, "WHERE entity = 'return_reason'")
    got = dicts(b, "labels", lcols, "WHERE entity = 'return_reason'")
    c.no_diffs(f"round trip: every return_reason label, every language ({len(want)})",
               kt.compare_rows("labels", got, want))
    want = []
    for p in dicts(a, "products", ("product_id", "title", "description", "url")):
        for field, col in (("name", "title"), ("description", "description"), ("url", "url")):
            if p[col] is not None:
                want.append({"entity": "product", "entity_id": p["product_id"], "lang": "fr",
                             "field": field, "value": p[col]})
    got = dicts(b, "labels", lcols, "WHERE entity = 'product'")
    c.no_diffs("round trip: B's product labels are A's texts under the first language",
               kt.compare_rows("labels", got, want))
    a_fr = dicts(a, "labels", lcols, "WHERE entity = 'product' AND lang = 'fr'")
    gk = {(r["entity_id"], r["field"]): r["value"] for r in got}
    c.check("round trip: every fr product label of A is in B",
            a_fr and all(gk.get((r["entity_id"], r["field"])) == r["value"] for r in a_fr),
            [r for r in a_fr if gk.get((r["entity_id"], r["field"])) != r["value"]][:5])
    other = kt.query(b, "SELECT entity, count(*) FROM labels WHERE entity NOT IN"
                        " ('product', 'return_reason') GROUP BY entity")
    other += kt.query(b, "SELECT 'departments', count(*) FROM departments UNION ALL"
                         " SELECT 'attributes', count(*) FROM attributes UNION ALL"
                         " SELECT 'sizes', count(*) FROM sizes")
    c.check("B: nothing in what CSV does not feed (departments, attributes, sizes)",
            all(n == 0 for _, n in other), other)
    not_sftp = {t: kt.query(b, f"SELECT count(*) FROM {t} WHERE source <> 'sftp'")[0][0]
                for t in list(ROUND_TRIP) + ["labels"]}
    c.check("B: every row is from sftp", not any(not_sftp.values()), not_sftp)
    ga = {k: (v[0], v[1], set((v[2] or "").split(","))) for k, v in mirror_groups(a).items()}
    gb = {k: (v[0], v[1], set((v[2] or "").split(","))) for k, v in mirror_groups(b).items()}
    c.no_diffs("round trip: B's product_groups equal A's (size ranges as sets)",
               group_diffs(gb, ga))


# ---------------------------------------------------------------- 3. product groups

def test_groups(c, w, mid, product_id_field):
    truth = w.emu.truth()
    want = expected_groups(truth, product_id_field)
    got = mirror_groups(w.db(mid))
    multi = sum(1 for v in want.values() if v[0] > 1)
    lone = sum(1 for v in want.values() if v[0] == 1)
    c.check(f"product_groups of {mid} ({product_id_field}): the truth's colour siblings "
            f"({multi} groups of 2+, {lone} alone)", multi > 3 and lone > 3
            and not group_diffs(got, want), group_diffs(got, want))
    # the size range also follows the mirror's own variants
    rows = kt.query(w.db(mid), "SELECT g.group_id, g.size_range, (SELECT group_concat(DISTINCT"
                               " v.size_label) FROM variants v JOIN products p USING (product_id)"
                               " WHERE coalesce(p.parent_reference, p.product_id) = g.group_id)"
                               " FROM product_groups g")
    bad = [r for r in rows if set((r[1] or "").split(",")) != set((r[2] or "").split(","))]
    c.check(f"product_groups of {mid}: each size range is its variants' sizes", rows and not bad,
            bad[:5])


# ---------------------------------------------------------------- 2. product_id_field

def test_reproject(c, w, d):
    db = w.db("r")
    c.no_diffs("R (product_id_field = id) equals the oracle",
               kt.compare(db, w.emu.canonical(LANGS, "id", "parent_reference")))
    before_ids = {r[0]: r[1] for r in kt.query(db, "SELECT source_id, product_id FROM products")}
    records = kt.query(db, "SELECT stream, id, json, deleted FROM records ORDER BY stream, id")
    path = os.path.join(w.mdir, "r.conf")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("[merchant]\n", "[merchant]\nproduct_id_field = reference\n", 1))
    stats0 = w.emu.stats()["total_requests"]
    h = d.ctl("reload")
    c.check("kleepctl reload: exit 0", h.rc == 0, h)
    h = d.ctl("reproject", "r", timeout=120)
    c.check("kleepctl reproject R: exit 0", h.rc == 0, h)
    stats1 = w.emu.stats()["total_requests"]
    c.equal("reproject made no API request (emulator total_requests)", stats1, stats0)
    want = w.emu.canonical(LANGS, "reference", "parent_reference")
    c.no_diffs("after the reproject R equals the oracle for product_id_field = reference "
               "(every table: products, variants, order_lines, return_lines, labels...)",
               kt.compare(db, want))
    after_ids = {r[0]: r[1] for r in kt.query(db, "SELECT source_id, product_id FROM products")}
    changed = sum(1 for k, v in before_ids.items() if after_ids.get(k) not in (None, v))
    c.check("product ids did change, one for one", set(after_ids) == set(before_ids)
            and changed == len(before_ids) and after_ids.get("1901") == "RB-ÉTÉ-01",
            (changed, len(before_ids), after_ids.get("1901")))
    orphans = kt.query(db, "SELECT 'variants', count(*) FROM variants WHERE product_id NOT IN"
                           " (SELECT product_id FROM products) UNION ALL"
                           " SELECT 'labels', count(*) FROM labels WHERE entity = 'product' AND"
                           " entity_id NOT IN (SELECT product_id FROM products) UNION ALL"
                           " SELECT 'lines', count(*) FROM order_lines WHERE product_id IN"
                           " (SELECT source_id FROM products) UNION ALL"
                           " SELECT 'return lines', count(*) FROM return_lines WHERE product_id IN"
                           " (SELECT source_id FROM products)")
    c.check("no row still names a product by its old id", all(n == 0 for _, n in orphans), orphans)
    c.check("the raw layer is untouched",
            kt.query(db, "SELECT stream, id, json, deleted FROM records ORDER BY stream, id")
            == records, "")
    test_groups(c, w, "r", "reference")


# ---------------------------------------------------------------- 4. dimensions

def fill_value(variant_id, measurement):
    base = {"chest": 40, "waist": 30}.get(measurement, 20)
    return f"{base + int(variant_id) % 37}.{int(variant_id) % 2 * 5}"


def test_dimensions_template(c, w, d):
    rc, out, err = ctl_bytes(w.sock, "dimensions-template", "a", "--measurements", "chest,waist")
    variants = kt.query(w.db("a"), "SELECT variant_id, product_id FROM variants")
    recs = parse_csv(out) if rc == 0 else [[]]
    want = sorted((p, v, m, "", "cm") for v, p in variants for m in ("chest", "waist"))
    c.check("dimensions-template A --measurements chest,waist: one row per variant and "
            "measurement, value empty, unit cm",
            rc == 0 and recs[0] == ["product_id", "variant_id", "measurement", "value", "unit"]
            and sorted(tuple(r) for r in recs[1:]) == want and not rfc4180_problems(out),
            (rc, err, recs[:3]))
    rc2, out2, _ = ctl_bytes(w.sock, "dimensions-template", "a", "--measurements", "hips",
                             "--unit", "in")
    r2 = parse_csv(out2)[1:] if rc2 == 0 else []
    c.check("dimensions-template --unit in: that unit, that measurement",
            len(r2) == len(variants) and all(r[2] == "hips" and r[4] == "in" for r in r2), r2[:3])
    return recs


def test_dimensions_ingest(c, w, recs):
    buf = io.StringIO(newline="")
    wr = csv.writer(buf, lineterminator="\r\n")
    wr.writerow(recs[0])
    want = set()
    for r in recs[1:]:
        r = list(r)
        r[3] = fill_value(r[1], r[2])
        wr.writerow(r)
        want.add(("variant", r[1], r[2], r[0], r[1], float(r[3]), r[4]))
    put(os.path.join(w.shop("a"), "misc", f"dimensions_{stamp()}.csv"),
        buf.getvalue().encode())
    run = kt.run_kleepd(w.conf, merchant="a", stream="sftp", timeout=60)
    c.check("kleepd --once --merchant A --stream sftp (A has [wshop] and [sftp]): exit 0",
            run.rc == 0 and not run.crashed(), run.summary())
    files = kt.query(w.db("a"), "SELECT path, outcome, rows, rejects FROM sftp_files"
                                " WHERE path LIKE 'misc/%'")
    c.check("the filled template applied whole",
            len(files) == 1 and files[0][1] == "applied" and files[0][2] == len(want)
            and files[0][3] == 0, files)
    got = set(kt.query(w.db("a"), "SELECT key_kind, key_id, measurement, product_id, variant_id,"
                                  " value, unit FROM dimensions"))
    c.check(f"dimensions holds every (variant, measurement, value, unit): {len(want)} rows",
            got == want and len(want) > 100,
            f"{len(got - want)} extra e.g. {sorted(got - want)[:3]}, "
            f"{len(want - got)} missing e.g. {sorted(want - got)[:3]}")


# ---------------------------------------------------------------- main

def main():
    c = kt.Checks()
    if not all(os.access(p, os.X_OK) for p in (dt.KLEEPD, dt.KLEEPCTL)):
        c.check("kleepd and kleepctl are built (make)", False, (dt.KLEEPD, dt.KLEEPCTL))
        c.finish()
    if os.geteuid() != 0:
        c.check("runs as root (sshd needs it)", False, "skipped")
        c.finish()
    env = None
    try:
        env = ts.Env()
        with kt.Emulator(products=PRODUCTS, orders=ORDERS, returns=RETURNS) as emu:
            if not c.check("sshd starts", env.start_sshd(), ""):
                raise RuntimeError("no sshd")
            w = World(env, emu)
            hand_made(emu)
            run = kt.run_kleepd(w.conf, timeout=120)
            c.check("kleepd --once: every merchant, every stream succeeds",
                    run.rc == 0 and not run.crashed()
                    and all(run.all_success(m) for m in ("a", "r", "k"))
                    and run.outcome("b", "sftp") == "success"
                    and run.outcome("a", "sftp") == "success", run.summary())
            for name, f in (("languages", lambda: test_languages(c, w)),
                            ("groups", lambda: test_groups(c, w, "a", "id"))):
                try:
                    f()
                except Exception:  # noqa: BLE001
                    c.check(f"{name} ran without an exception", False, traceback.format_exc())
            exports, recs = {}, None
            with dt.Daemon(w.conf, w.sock) as d:
                for kind in KINDS:
                    rc, out, err = ctl_bytes(w.sock, "export", "a", kind)
                    c.check(f"kleepctl export A {kind}: exit 0, rows counted on stderr",
                            rc == 0 and re.search(r"kleepctl: \d+ rows", err), (rc, err))
                    exports[kind] = out
                steps = (("export format", lambda: test_export_format(c, w, exports)),
                         ("export --since", lambda: test_export_since(c, w)),
                         ("reproject", lambda: test_reproject(c, w, d)),
                         ("check languages", lambda: test_check_languages(c, w, d)))
                for name, f in steps:
                    try:
                        f()
                    except Exception:  # noqa: BLE001
                        c.check(f"{name} ran without an exception", False, traceback.format_exc())
                try:
                    recs = test_dimensions_template(c, w, d)
                except Exception:  # noqa: BLE001
                    c.check("dimensions template ran without an exception", False,
                            traceback.format_exc())
                d.stop()
                c.check("kleepd daemon: no crash or sanitizer report in its log",
                        not re.search(r"Sanitizer|runtime error:|Segmentation|Assertion", d.log()),
                        d.log()[-2000:])
            # the daemon is gone: kleepd --once is the only writer from here on
            try:
                test_round_trip(c, w, exports)
            except Exception:  # noqa: BLE001
                c.check("round trip ran without an exception", False, traceback.format_exc())
            if recs and len(recs) > 1:
                try:
                    test_dimensions_ingest(c, w, recs)
                except Exception:  # noqa: BLE001
                    c.check("dimensions ingest ran without an exception", False,
                            traceback.format_exc())
    except Exception:  # noqa: BLE001
        c.check("test_merchant_config ran without an exception", False, traceback.format_exc())
    finally:
        if env:
            if os.environ.get("KEEP") == "1":
                env.stop_sshd()
                c.say(f"# kept {env.tmp}")
            else:
                env.cleanup()
    c.finish()


if __name__ == "__main__":
    main()
