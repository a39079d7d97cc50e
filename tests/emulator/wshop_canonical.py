"""Expected canonical mirror rows computed from WSHOP source records (DOMAIN.md §1 mapping).

This is the test oracle: the rows kleepd's canonical layer must hold after a complete sync
of the given source records. It is importable offline (no emulator needed):

    from wshop_canonical import canonical
    rows = canonical(truth, "fr,en", "id", "parent_reference")

`truth` is the emulator's /_emulator/truth document (default-profile record shapes).

Rules beyond DOMAIN.md that this oracle fixes, so that every implementation agrees:
- every text column maps "" to None (NULL), not only comment and parent reference;
- ids and foreign ids are text ("1042"); line_no, quantity, stock and deactivated are ints;
- text picked "in the first configured language" falls back per field: the first
  configured language whose value for that field is a non-empty string, then the served
  languages in sorted code order;
- sizes.label and variants.size_label are the size record's own `label` (translations
  only when `label` is empty); the size translations go to `labels`;
- labels rows of entity `product` use the mapped product_id (product_id_field) as entity_id;
- product_id_field naming a field that is absent/empty on a product falls back to its `id`;
- `active` absent means not deactivated; `images` absent is None, a list is compact JSON.

Schema 8 (sql/008_size_outcomes.sql) adds, and this oracle computes:
- order_lines.unit_price_minor: the line's `price` (text or number) in the minor unit of the
  order's currency (CURRENCY_EXPONENTS), rounded half away from zero, None when the price is
  absent, does not parse, or the currency is unknown; order_lines.currency is the order's;
- return_lines.order_line_no: the smallest line_no of the return's order with the same
  variant_id, else the same sku, else None;
- return_reasons.fit: what the shop means by its reason codes (REASON_FITS), None otherwise;
- size_outcomes(rows): the size_outcomes view, counted here from the rows above.
"""

import json
import re
from decimal import ROUND_HALF_UP, Decimal
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

SHOP_TZ = ZoneInfo("Europe/Paris")

PRODUCT_LABEL_FIELDS = ("name", "description", "url")

# Minor-unit exponents of the currencies the tests use (ISO 4217).
CURRENCY_EXPONENTS = {"EUR": 2, "CHF": 2, "GBP": 2, "USD": 2, "SEK": 2, "DKK": 2, "PLN": 2,
                      "BRL": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3}

# What the emulated shop means by its return reason codes (wshop_data.RETURN_REASONS).
REASON_FITS = {"too_big": "too_large", "too_small": "too_small", "damaged": "not_fit",
               "not_as_described": "not_fit", "changed_mind": "not_fit",
               "wrong_item": "not_fit", "late_delivery": "not_fit"}

# The default profile's order_status.cancelled.
CANCELLED_STATUSES = ("cancelled", "canceled")


def local_to_utc(value, tz=SHOP_TZ):
    """Shop-local 'YYYY-MM-DD HH:MM:SS' to UTC 'YYYY-MM-DDTHH:MM:SSZ'.

    fold=0 gives exactly the DOMAIN.md rules: a repeated (autumn) time is its first
    occurrence, and a nonexistent (spring) time keeps the pre-gap offset, which moves it
    forward by the gap (02:30 -> 03:30 CEST = 01:30Z).
    """
    if value is None or value == "":
        return None
    text = str(value)
    if len(text) != 19:   # fromisoformat alone would also take dates and offsets
        raise ValueError(f"not a shop-local timestamp: {text!r}")
    naive = datetime.fromisoformat(text)
    aware = naive.replace(tzinfo=tz, fold=0)
    return aware.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value):
    """Optional text column: None and "" are NULL; numbers are stringified."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _int(value):
    if value is None or value == "":
        return None
    return int(value)


def _lang_order(languages, served):
    """Configured languages first, then every other served language in code order."""
    order = [lang for lang in languages if lang in served]
    order += sorted(lang for lang in served if lang not in languages)
    return order


def _scalar_text(value):
    """Text of a translation value; dicts and lists are not text."""
    return None if isinstance(value, (dict, list)) else _text(value)


def _pick(translations, languages, field=None):
    """First non-empty text in language fallback order; field=None for lang->string maps."""
    if not isinstance(translations, dict):
        return None
    for lang in _lang_order(languages, translations):
        entry = translations[lang]
        if field is not None:
            entry = entry.get(field) if isinstance(entry, dict) else None
        value = _scalar_text(entry)
        if value is not None:
            return value
    return None


def _label_rows(entity, entity_id, translations, fields=None):
    """One labels row per served language and field, skipping null/empty values."""
    rows = []
    if not isinstance(translations, dict):
        return rows
    for lang in sorted(translations):
        entry = translations[lang]
        if fields is None:
            pairs = [("label", entry)]
        elif isinstance(entry, dict):
            pairs = [(field, entry.get(field)) for field in fields]
        else:
            pairs = []
        for field, value in pairs:
            value = _scalar_text(value)
            if value is not None:
                rows.append({"entity": entity, "entity_id": entity_id, "lang": lang,
                             "field": field, "value": value})
    return rows


def unit_price_minor(price, currency):
    """A price ("19.90", "19,90", 19.9, "1500") in currency's minor unit, or None."""
    exponent = CURRENCY_EXPONENTS.get(currency)
    if price is None or isinstance(price, bool) or exponent is None:
        return None
    text = repr(price) if isinstance(price, float) else str(price)
    m = re.fullmatch(r" *([+-]?)([0-9]+)(?:[.,]([0-9]+))? *", text)
    if not m or len(m.group(2)) + exponent > 18:
        return None
    value = Decimal(f"{m.group(2)}.{m.group(3) or '0'}").scaleb(exponent)
    minor = int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return -minor if m.group(1) == "-" else minor


def order_line_numbers(order_lines, return_lines):
    """Each return line's order_line_no: same order, same variant, else same sku."""
    by_order = {}
    for line in order_lines:
        by_order.setdefault(line["order_id"], []).append(line)
    for ret in return_lines:
        lines = by_order.get(ret["order_id"], [])
        found = [l["line_no"] for l in lines
                 if ret["variant_id"] is not None and l["variant_id"] == ret["variant_id"]]
        if not found:
            found = [l["line_no"] for l in lines
                     if ret["sku"] is not None and l["sku"] == ret["sku"]]
        ret["order_line_no"] = min(found) if found else None


def size_outcomes(rows, cancelled=CANCELLED_STATUSES):
    """Expected size_outcomes rows, counted from canonical rows (canonical()'s output).

    Units of an order whose status is in `cancelled` (any case) are not sold, nor are
    returns of them counted; a return line counts against the order line it returns.
    Sorted by (product_id, size_label).
    """
    cancelled = {s.lower() for s in cancelled}
    status = {o["order_id"]: o["status"] for o in rows["orders"]}
    fit = {r["reason_id"]: r.get("fit") for r in rows["return_reasons"]}
    parent = {p["product_id"]: p["parent_reference"] for p in rows["products"]}
    key_of, acc = {}, {}
    for line in rows["order_lines"]:
        if (status.get(line["order_id"]) or "").lower() in cancelled:
            continue
        key = (line["product_id"], line["size_label"])
        key_of[(line["order_id"], line["line_no"])] = key
        acc.setdefault(key, [0, 0, 0, 0])[0] += line["quantity"] or 0
    for ret in rows["return_lines"]:
        key = key_of.get((ret["order_id"], ret["order_line_no"]))
        if key is None:
            continue
        qty = ret["quantity"] or 0
        a = acc[key]
        a[1] += qty
        a[2] += qty if fit.get(ret["reason_id"]) == "too_small" else 0
        a[3] += qty if fit.get(ret["reason_id"]) == "too_large" else 0
    out = [{"product_id": k[0], "parent_reference": parent.get(k[0]), "size_label": k[1],
            "units_sold": a[0], "units_returned": a[1], "returned_too_small": a[2],
            "returned_too_large": a[3], "return_rate": a[1] / a[0] if a[0] else None}
           for k, a in acc.items()]
    out.sort(key=lambda row: (_sortable(row["product_id"]), _sortable(row["size_label"])))
    return out


def parse_languages(languages):
    """'fr, en' or ['fr','en'] -> ['fr','en']."""
    if isinstance(languages, str):
        languages = languages.split(",")
    return [lang.strip() for lang in languages if lang and lang.strip()]


def canonical(truth, languages, product_id_field="id", parent_reference_field="parent_reference"):
    """Expected canonical rows per table, each list sorted by its key columns."""
    languages = parse_languages(languages)
    products = truth.get("products", [])
    sizes = {s["id"]: s for s in truth.get("sizes", [])}
    departments = truth.get("departments", [])
    dept_by_id = {d["id"]: d for d in departments}

    def size_label(size_id):
        size = sizes.get(size_id)
        if size is None:
            return None
        return _text(size.get("label")) or _pick(size.get("translations"), languages)

    def product_key(product):
        value = _text(product.get(product_id_field))
        return value if value is not None else _text(product["id"])

    product_key_by_id = {p["id"]: product_key(p) for p in products}
    variant_by_id = {}
    for product in products:
        for variant in product.get("sizes") or []:
            variant_by_id[variant.get("id")] = variant

    out = {name: [] for name in ("products", "variants", "departments", "attributes", "sizes",
                                 "labels", "orders", "order_lines", "returns", "return_lines",
                                 "return_reasons")}

    for product in products:
        pid = product_key_by_id[product["id"]]
        tr = product.get("translations")
        dept = dept_by_id.get(product.get("department_id"))
        images = product.get("images")
        out["products"].append({
            "product_id": pid,
            "parent_reference": _text(product.get(parent_reference_field)),
            "title": _pick(tr, languages, "name"),
            "description": _pick(tr, languages, "description"),
            "url": _pick(tr, languages, "url"),
            "images": None if images is None else json.dumps(images, separators=(",", ":"),
                                                             ensure_ascii=False),
            "category": _pick(dept.get("translations"), languages) if dept else None,
            "department_id": _text(product.get("department_id")),
            "updated_at": local_to_utc(product.get("date_upd")),
            "deactivated": 0 if product.get("active", True) else 1,
        })
        for variant in product.get("sizes") or []:
            out["variants"].append({
                "variant_id": _text(variant.get("id")),
                "product_id": pid,
                "sku": _text(variant.get("sku")),
                "ean": _text(variant.get("ean")),
                "size_id": _text(variant.get("size_id")),
                "size_label": size_label(variant.get("size_id")),
                "stock": _int(variant.get("stock")),
            })
        out["labels"] += _label_rows("product", pid, tr, PRODUCT_LABEL_FIELDS)

    for dept in departments:
        out["departments"].append({
            "department_id": _text(dept["id"]),
            "parent_id": _text(dept.get("parent_id")),
            "label": _pick(dept.get("translations"), languages),
        })
        out["labels"] += _label_rows("department", _text(dept["id"]), dept.get("translations"))

    for attr in truth.get("attributes", []):
        out["attributes"].append({
            "attribute_id": _text(attr["id"]),
            "code": _text(attr.get("code")),
            "label": _pick(attr.get("translations"), languages),
        })
        out["labels"] += _label_rows("attribute", _text(attr["id"]), attr.get("translations"))

    for size in sizes.values():
        out["sizes"].append({"size_id": _text(size["id"]), "label": size_label(size["id"])})
        out["labels"] += _label_rows("size", _text(size["id"]), size.get("translations"))

    for reason in truth.get("return_reasons", []):
        out["return_reasons"].append({
            "reason_id": _text(reason["id"]),
            "code": _text(reason.get("code")),
            "label": _pick(reason.get("translations"), languages),
            "fit": REASON_FITS.get(reason.get("code")),
        })
        out["labels"] += _label_rows("return_reason", _text(reason["id"]),
                                     reason.get("translations"))

    def line_refs(line):
        """product_id, variant_id, sku, size_label of an order or return line."""
        variant = variant_by_id.get(line.get("product_size_id"))
        raw_pid = line.get("product_id")
        sku = _text(line.get("sku"))
        if sku is None and variant is not None:
            sku = _text(variant.get("sku"))
        return (product_key_by_id.get(raw_pid, _text(raw_pid)),
                _text(line.get("product_size_id")),
                sku,
                size_label(variant.get("size_id")) if variant is not None else None)

    for order in truth.get("orders", []):
        oid = _text(order["id"])
        out["orders"].append({
            "order_id": oid,
            "reference": _text(order.get("reference")),
            "status": _text(order.get("status")),
            "ordered_at": local_to_utc(order.get("date_add")),
            "updated_at": local_to_utc(order.get("date_upd")),
            "currency": _text(order.get("currency")),
        })
        for line in order.get("lines") or []:
            pid, vid, sku, slabel = line_refs(line)
            out["order_lines"].append({
                "order_id": oid, "line_no": _int(line.get("id")), "product_id": pid,
                "variant_id": vid, "sku": sku, "size_label": slabel,
                "quantity": _int(line.get("quantity")),
                "unit_price_minor": unit_price_minor(line.get("price"), _text(order.get("currency"))),
                "currency": _text(order.get("currency")),
            })

    for ret in truth.get("returns", []):
        rid = _text(ret["id"])
        order_id = _text(ret.get("order_id"))
        out["returns"].append({
            "return_id": rid,
            "order_id": order_id,
            "returned_at": local_to_utc(ret.get("date_add")),
            "updated_at": local_to_utc(ret.get("date_upd")),
        })
        for line in ret.get("lines") or []:
            pid, vid, sku, slabel = line_refs(line)
            out["return_lines"].append({
                "return_id": rid, "line_no": _int(line.get("id")), "order_id": order_id,
                "product_id": pid, "variant_id": vid, "sku": sku, "size_label": slabel,
                "quantity": _int(line.get("quantity")),
                "reason_id": _text(line.get("reason_id")),
                "comment": _text(line.get("comment")),
            })

    order_line_numbers(out["order_lines"], out["return_lines"])
    for table, key in SORT_KEYS.items():
        out[table].sort(key=lambda row: tuple(_sortable(row[k]) for k in key))
    return out


# Key columns of every canonical table (also the order of each list).
SORT_KEYS = {
    "products": ("product_id",),
    "variants": ("variant_id",),
    "departments": ("department_id",),
    "attributes": ("attribute_id",),
    "sizes": ("size_id",),
    "labels": ("entity", "entity_id", "lang", "field"),
    "orders": ("order_id",),
    "order_lines": ("order_id", "line_no"),
    "returns": ("return_id",),
    "return_lines": ("return_id", "line_no"),
    "return_reasons": ("reason_id",),
}


def _sortable(value):
    # None sorts first and never compares against a str or int.
    return (0, 0) if value is None else (1, value)
