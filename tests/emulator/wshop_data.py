"""The emulated shop's records: deterministic generation from a seed, storage, test mutations.

Records have the default-profile shapes of DOMAIN.md §1. They are treated as immutable once
stored (an update stores a modified deep copy), so a page can be serialized outside the
lock while another thread changes the shop.
"""

import bisect
import copy
import random
import threading
from datetime import datetime, timedelta

from wshop_canonical import SHOP_TZ

LANGS = ("fr", "en", "de", "it", "ja", "es", "br")
STREAMS = ("products", "sizes", "departments", "attributes", "orders", "returns",
           "return_reasons")
DATED_STREAMS = ("products", "orders", "returns")
LOCAL_FMT = "%Y-%m-%d %H:%M:%S"

# First ids per stream; the DOMAIN.md examples use the same ranges.
PRODUCT_ID0, VARIANT_ID0, ORDER_ID0, RETURN_ID0, CUSTOMER_ID0 = 1001, 50001, 99001, 7001, 501
LEGACY_PRODUCT_ID0, LEGACY_VARIANT_ID0 = 900001, 990001

# Shop-local times inside daylight-saving changes: nonexistent (spring gap) and repeated
# (autumn) wall times, plus their edges. Some records get these on purpose.
DST_TIMES = (
    "2025-10-26 02:30:00", "2025-03-30 02:30:00", "2025-10-26 02:00:00",
    "2025-03-30 02:00:00", "2025-10-26 02:59:59", "2025-03-30 03:00:00",
    "2025-10-26 03:00:00", "2026-03-29 02:15:00", "2026-10-25 02:45:00",
    "2026-10-25 01:59:59",
)

# --- reference data -------------------------------------------------------------------

LETTER_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
NUMERIC_SIZES = ("36", "38", "40", "42", "44", "46")
ONE_SIZE = {"fr": "Taille unique", "en": "One size", "de": "Einheitsgröße",
            "it": "Taglia unica", "ja": "フリーサイズ", "es": "Talla única", "br": "Tamanho único"}

ROOT_DEPARTMENTS = (  # id, translations
    (1, {"fr": "Femme", "en": "Women", "de": "Damen", "it": "Donna", "ja": "レディース",
         "es": "Mujer", "br": "Feminino"}),
    (2, {"fr": "Homme", "en": "Men", "de": "Herren", "it": "Uomo", "ja": "メンズ",
         "es": "Hombre", "br": "Masculino"}),
    (3, {"fr": "Enfant", "en": "Kids", "de": "Kinder", "it": "Bambini", "ja": "キッズ",
         "es": "Niños", "br": "Infantil"}),
)
# Roots whose labels lack the usual languages, so language fallback gets exercised.
ODD_DEPARTMENTS = (
    (90, None, {"en": "Outlet", "de": "Outlet"}),
    (91, 90, {"it": "Fine serie", "ja": "在庫処分"}),
)

# Product types: code, size scale, translations of the type noun.
TYPES = (
    ("TSH", "letter", {"fr": "T-shirt", "en": "T-shirt", "de": "T-Shirt", "it": "Maglietta",
                       "ja": "Tシャツ", "es": "Camiseta", "br": "Camiseta"}),
    ("ROB", "numeric", {"fr": "Robe", "en": "Dress", "de": "Kleid", "it": "Abito",
                        "ja": "ワンピース", "es": "Vestido", "br": "Vestido"}),
    ("JEA", "numeric", {"fr": "Jean", "en": "Jeans", "de": "Jeans", "it": "Jeans",
                        "ja": "ジーンズ", "es": "Vaqueros", "br": "Calça jeans"}),
    ("PUL", "letter", {"fr": "Pull", "en": "Sweater", "de": "Pullover", "it": "Maglione",
                       "ja": "セーター", "es": "Jersey", "br": "Suéter"}),
    ("CHE", "letter", {"fr": "Chemise", "en": "Shirt", "de": "Hemd", "it": "Camicia",
                       "ja": "シャツ", "es": "Camisa", "br": "Camisa"}),
    ("VES", "letter", {"fr": "Veste", "en": "Jacket", "de": "Jacke", "it": "Giacca",
                       "ja": "ジャケット", "es": "Chaqueta", "br": "Jaqueta"}),
    ("PAN", "numeric", {"fr": "Pantalon", "en": "Trousers", "de": "Hose", "it": "Pantaloni",
                        "ja": "パンツ", "es": "Pantalón", "br": "Calça"}),
    ("JUP", "numeric", {"fr": "Jupe", "en": "Skirt", "de": "Rock", "it": "Gonna",
                        "ja": "スカート", "es": "Falda", "br": "Saia"}),
)
# Department label of each type (plural), children of every root department.
TYPE_DEPARTMENTS = {
    "TSH": {"fr": "T-shirts", "en": "T-shirts", "de": "T-Shirts", "it": "Magliette",
            "ja": "Tシャツ・カットソー", "es": "Camisetas", "br": "Camisetas"},
    "ROB": {"fr": "Robes", "en": "Dresses", "de": "Kleider", "it": "Abiti", "ja": "ワンピース",
            "es": "Vestidos", "br": "Vestidos"},
    "JEA": {"fr": "Jeans", "en": "Jeans", "de": "Jeans", "it": "Jeans", "ja": "デニム",
            "es": "Vaqueros", "br": "Jeans"},
    "PUL": {"fr": "Pulls & gilets", "en": "Knitwear", "de": "Strick", "it": "Maglieria",
            "ja": "ニット", "es": "Punto", "br": "Tricô"},
    "CHE": {"fr": "Chemises", "en": "Shirts", "de": "Hemden", "it": "Camicie", "ja": "シャツ",
            "es": "Camisas", "br": "Camisas"},
    "VES": {"fr": "Vestes", "en": "Jackets", "de": "Jacken", "it": "Giacche",
            "ja": "ジャケット", "es": "Chaquetas", "br": "Jaquetas"},
    "PAN": {"fr": "Pantalons", "en": "Trousers", "de": "Hosen", "it": "Pantaloni",
            "ja": "パンツ", "es": "Pantalones", "br": "Calças"},
    "JUP": {"fr": "Jupes", "en": "Skirts", "de": "Röcke", "it": "Gonne", "ja": "スカート",
            "es": "Faldas", "br": "Saias"},
}

STYLES = (
    {"fr": "Été manches courtes", "en": "summer short-sleeve", "de": "Sommer Kurzarm",
     "it": "estiva a maniche corte", "ja": "半袖", "es": "de verano manga corta",
     "br": "de verão manga curta"},
    {"fr": "coupe droite", "en": "straight-cut", "de": "gerader Schnitt", "it": "taglio dritto",
     "ja": "ストレート", "es": "corte recto", "br": "corte reto"},
    {"fr": "en lin léger", "en": "light linen", "de": "aus leichtem Leinen",
     "it": "in lino leggero", "ja": "リネン", "es": "de lino ligero", "br": "de linho leve"},
    {"fr": "oversize côtelé", "en": "ribbed oversize", "de": "gerippt, Oversize",
     "it": "a coste oversize", "ja": "リブ・オーバーサイズ", "es": "acanalado oversize",
     "br": "canelado oversize"},
    {"fr": "éco-responsable", "en": "eco-friendly", "de": "nachhaltig", "it": "ecosostenibile",
     "ja": "エコ素材", "es": "ecológico", "br": "sustentável"},
)

COLOURS = (  # reference suffix, attribute value, translations
    ("BLU", "blue", {"fr": "bleu", "en": "blue", "de": "blau", "it": "blu", "ja": "ブルー",
                     "es": "azul", "br": "azul"}),
    ("RED", "red", {"fr": "rouge", "en": "red", "de": "rot", "it": "rosso", "ja": "レッド",
                    "es": "rojo", "br": "vermelho"}),
    ("BLK", "black", {"fr": "noir", "en": "black", "de": "schwarz", "it": "nero", "ja": "ブラック",
                      "es": "negro", "br": "preto"}),
    ("WHT", "white", {"fr": "blanc", "en": "white", "de": "weiß", "it": "bianco", "ja": "ホワイト",
                      "es": "blanco", "br": "branco"}),
    ("GRN", "green", {"fr": "vert sauge", "en": "sage green", "de": "salbeigrün",
                      "it": "verde salvia", "ja": "セージグリーン", "es": "verde salvia",
                      "br": "verde sálvia"}),
    ("BEI", "beige", {"fr": "beige", "en": "beige", "de": "beige", "it": "beige", "ja": "ベージュ",
                      "es": "beis", "br": "bege"}),
)

MATERIALS = (
    ("cotton", {"fr": "coton biologique", "en": "organic cotton", "de": "Bio-Baumwolle",
                "it": "cotone biologico", "ja": "オーガニックコットン", "es": "algodón orgánico",
                "br": "algodão orgânico"}),
    ("linen", {"fr": "lin", "en": "linen", "de": "Leinen", "it": "lino", "ja": "リネン",
               "es": "lino", "br": "linho"}),
    ("wool", {"fr": "laine mérinos", "en": "merino wool", "de": "Merinowolle",
              "it": "lana merino", "ja": "メリノウール", "es": "lana merino", "br": "lã merino"}),
    ("polyester", {"fr": "polyester recyclé", "en": "recycled polyester",
                   "de": "recyceltes Polyester", "it": "poliestere riciclato",
                   "ja": "リサイクルポリエステル", "es": "poliéster reciclado",
                   "br": "poliéster reciclado"}),
)

DESCRIPTIONS = {
    "fr": "Matière : {m}. Pièce {s} pensée pour durer ; lavage à 30 °C.",
    "en": "Material: {m}. A {s} piece made to last; machine wash at 30 °C.",
    "de": "Material: {m}. Langlebiges Teil, {s}; Wäsche bei 30 °C.",
    "it": "Materiale: {m}. Capo {s} pensato per durare; lavaggio a 30 °C.",
    "ja": "素材：{m}。{s}。30°Cで洗濯できます。",
    "es": "Material: {m}. Prenda {s} pensada para durar; lavado a 30 °C.",
    "br": "Material: {m}. Peça {s} feita para durar; lavagem a 30 °C.",
}

# How often a product carries each language (fr/en nearly always, ja rarely).
LANG_SHARE = {"fr": 0.92, "en": 0.90, "de": 0.5, "it": 0.4, "ja": 0.25, "es": 0.45, "br": 0.2}

ATTRIBUTES = (
    (1, "material", {"fr": "Matière", "en": "Material", "de": "Material", "it": "Materiale",
                     "ja": "素材", "es": "Material", "br": "Material"}),
    (2, "colour", {"fr": "Couleur", "en": "Colour", "de": "Farbe", "it": "Colore", "ja": "カラー",
                   "es": "Color", "br": "Cor"}),
    (3, "fit", {"fr": "Coupe", "en": "Fit", "de": "Passform", "it": "Vestibilità",
                "ja": "フィット", "es": "Corte", "br": "Caimento"}),
    (4, "season", {"fr": "Saison", "en": "Season", "de": "Saison", "it": "Stagione",
                   "ja": "シーズン", "es": "Temporada", "br": "Estação"}),
    (5, "sleeve_length", {"fr": "Longueur de manche", "en": "Sleeve length",
                          "de": "Ärmellänge", "it": "Lunghezza manica", "ja": "袖丈",
                          "es": "Largo de manga", "br": "Comprimento da manga"}),
    (6, "neckline", {"fr": "Encolure", "en": "Neckline", "de": "Ausschnitt", "it": "Scollo",
                     "ja": "ネックライン", "es": "Escote", "br": "Decote"}),
    (7, "care", {"fr": "Entretien", "de": "Pflege"}),
)
FITS = ("regular", "slim", "oversize", "straight")
SEASONS = ("spring-summer", "autumn-winter", "all-season")

RETURN_REASONS = (
    (1, "too_big", {"fr": "Trop grand", "en": "Too big", "de": "Zu groß", "it": "Troppo grande",
                    "ja": "大きすぎる", "es": "Demasiado grande", "br": "Muito grande"}),
    (2, "too_small", {"fr": "Trop petit", "en": "Too small", "de": "Zu klein",
                      "it": "Troppo piccolo", "ja": "小さすぎる", "es": "Demasiado pequeño",
                      "br": "Muito pequeno"}),
    (3, "damaged", {"fr": "Article endommagé", "en": "Damaged item", "de": "Beschädigt",
                    "it": "Articolo danneggiato", "ja": "破損", "es": "Artículo dañado",
                    "br": "Produto danificado"}),
    (4, "not_as_described", {"fr": "Non conforme à la description", "en": "Not as described",
                             "de": "Nicht wie beschrieben", "it": "Non conforme",
                             "ja": "説明と異なる", "es": "No coincide con la descripción",
                             "br": "Diferente do anunciado"}),
    (5, "changed_mind", {"fr": "Changement d'avis", "en": "Changed my mind",
                         "de": "Meinung geändert", "it": "Ho cambiato idea",
                         "ja": "気が変わった", "es": "Cambié de opinión",
                         "br": "Mudei de ideia"}),
    (6, "wrong_item", {"fr": "Mauvais article reçu", "en": "Wrong item received",
                       "de": "Falscher Artikel", "it": "Articolo errato", "ja": "商品違い",
                       "es": "Artículo equivocado", "br": "Produto errado"}),
    (7, "late_delivery", {"fr": "Livraison trop tardive", "en": "Arrived too late"}),
)
# too_small / too_big dominate, as in real fashion returns (cumulative weights).
REASON_CUM_WEIGHTS = (30, 65, 73, 83, 93, 98, 100)

REASON_IDS = tuple(r[0] for r in RETURN_REASONS)

RETURN_COMMENTS = (
    "Taille trop petite, je fais d'habitude du M.", "Un peu grand aux épaules.",
    "Couleur différente de la photo, déçue.", "Reçu abîmé : couture défaite.",
    "Too tight around the chest.", "Zu groß, leider.", "サイズが小さすぎました。",
    "La talla es más pequeña de lo normal.", "Ficou apertado.", "Trop long pour moi (1,60 m).",
)

FIRSTNAMES = ("Camille", "Léa", "Chloé", "Manon", "Inès", "Hugo", "Lucas", "Théo", "Noémie",
              "Zoé", "Jérôme", "Élodie", "François", "Aurélie", "Maël", "Björn")
LASTNAMES = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
             "Lefèvre", "Moreau", "Laurent", "Girard", "Roux", "Fournier", "Müller", "Nguyen")
CITIES = (("75011", "Paris", "FR"), ("69003", "Lyon", "FR"), ("13006", "Marseille", "FR"),
          ("33000", "Bordeaux", "FR"), ("59000", "Lille", "FR"), ("1000", "Bruxelles", "BE"),
          ("1204", "Genève", "CH"), ("44000", "Nantes", "FR"))
STREETS = ("rue des Lilas", "avenue de la République", "boulevard Voltaire", "rue de l'Église",
           "chemin des Écoliers", "place du Marché")

PRICES = ("19.90", "24.90", "29.90", "39.90", "49.00", "59.95", "79.00", "99.00", "129.95")
CURRENCIES = (("EUR", 90), ("CHF", 5), ("GBP", 5))
STATUS_FLOW = ("pending", "paid", "shipped", "delivered")


def now_local():
    """Shop-local wall time now, second precision (what WSHOP writes into date_upd)."""
    return datetime.now(SHOP_TZ).strftime(LOCAL_FMT)


def ean13(body12):
    """EAN-13 with its check digit, from a 12-digit string."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def price_for(product_id):
    """A product's price; derived from its id so orders made later agree with earlier ones."""
    return PRICES[product_id % len(PRICES)]


def customer_for(customer_id):
    """Personal data, deliberately easy to grep for (mail-perso.example, +33 6 ...)."""
    k = customer_id - CUSTOMER_ID0
    zip_code, city, country = CITIES[k % len(CITIES)]
    digits = f"{(customer_id * 7919) % 100000000:08d}"
    return {
        "id": customer_id,
        "email": f"client.{customer_id}@mail-perso.example",
        "firstname": FIRSTNAMES[k % len(FIRSTNAMES)],
        "lastname": LASTNAMES[(k * 7 + k // len(FIRSTNAMES)) % len(LASTNAMES)],
        "phone": "+33 6 " + " ".join(digits[i:i + 2] for i in range(0, 8, 2)),
        "address": {"street": f"{k % 120 + 1} {STREETS[k % len(STREETS)]}", "zip": zip_code,
                    "city": city, "country": country},
    }


class Stream:
    """One stream's records, ids kept sorted so a page is a slice."""

    def __init__(self, records):
        self.by_id = {r["id"]: r for r in records}
        self.ids = sorted(self.by_id)

    def put(self, record):
        rid = record["id"]
        if rid not in self.by_id:
            bisect.insort(self.ids, rid)
        self.by_id[rid] = record

    def remove(self, rid):
        del self.by_id[rid]
        del self.ids[bisect.bisect_left(self.ids, rid)]

    def max_id(self, floor):
        return self.ids[-1] if self.ids else floor

    def records(self):
        return [self.by_id[i] for i in self.ids]


class Generator:
    """Builds plausible records; used at start-up and for records added by tests."""

    def __init__(self, rng, anchor, n_variants=None):
        self.rng = rng
        self.n_variants = n_variants    # fixed variants per product (1-6), else 2-6 at random
        self.anchor = anchor            # newest generated wall time (naive, shop-local)
        self.start = anchor - timedelta(days=730)
        self.next_variant_id = VARIANT_ID0
        self.next_family = 1
        # Nightly imports stamp many products with the same date_upd: ties across pages.
        self.batch_times = [self.local_time() for _ in range(4)]

    # -- helpers --
    def local_time(self, lo=None, hi=None):
        lo = lo or self.start
        hi = hi or self.anchor
        span = max(0, int((hi - lo).total_seconds()))
        return lo + timedelta(seconds=self.rng.randint(0, span))

    @staticmethod
    def fmt(dt):
        return dt.strftime(LOCAL_FMT)

    def dates(self, index, add_lo=None):
        """(date_add, date_upd) strings; a few records sit in DST changes on purpose."""
        added = self.local_time(lo=add_lo)
        if index % 17 == 3:
            upd = DST_TIMES[(index // 17) % len(DST_TIMES)]
            add = min(self.fmt(added), upd)
            return add, upd
        updated = self.local_time(lo=added) if self.rng.random() < 0.6 else added
        return self.fmt(added), self.fmt(updated)

    # -- reference streams --
    def sizes(self):
        out = []
        for i, label in enumerate(LETTER_SIZES + NUMERIC_SIZES, start=1):
            out.append({"id": i, "label": label, "translations": {lang: label for lang in LANGS}})
        out.append({"id": 13, "label": "TU", "translations": dict(ONE_SIZE)})
        return out

    def departments(self):
        out = []
        for root_id, tr in ROOT_DEPARTMENTS:
            out.append({"id": root_id, "parent_id": None, "translations": dict(tr)})
            for k, (code, _, _) in enumerate(TYPES, start=1):
                out.append({"id": root_id * 10 + k, "parent_id": root_id,
                            "translations": dict(TYPE_DEPARTMENTS[code])})
        for dept_id, parent, tr in ODD_DEPARTMENTS:
            out.append({"id": dept_id, "parent_id": parent, "translations": dict(tr)})
        return sorted(out, key=lambda d: d["id"])

    def attributes(self):
        return [{"id": i, "code": code, "translations": dict(tr)} for i, code, tr in ATTRIBUTES]

    def return_reasons(self):
        return [{"id": i, "code": code, "translations": dict(tr)}
                for i, code, tr in RETURN_REASONS]

    # -- products --
    def family(self):
        """A group of colour siblings sharing a size chart, or a lone product."""
        rng = self.rng
        n = self.next_family
        self.next_family += 1
        type_index = rng.randrange(len(TYPES))
        code, scale, _ = TYPES[type_index]
        labels = LETTER_SIZES if scale == "letter" else NUMERIC_SIZES
        offset = 0 if scale == "letter" else len(LETTER_SIZES)
        count = rng.randint(2, 6)
        if self.n_variants:
            count = self.n_variants     # drawn anyway: the rest of the data stays the same
        first = rng.randint(0, len(labels) - count)
        size_ids = [offset + i + 1 for i in range(first, first + count)]
        colours = rng.sample(range(len(COLOURS)), rng.choice((1, 1, 2, 3, 4)))
        lone = len(colours) == 1 and rng.random() < 0.7
        base = f"{code}-{n:05d}"
        return {"type": type_index, "base": base, "lone": lone, "size_ids": size_ids,
                "colours": colours, "style": rng.randrange(len(STYLES)),
                "material": rng.randrange(len(MATERIALS)),
                "fit": rng.choice(FITS), "season": rng.choice(SEASONS),
                # A few families sit in the outlet departments, whose labels lack fr.
                "department": ((90, 91)[n // 11 % 2] if n % 11 == 4
                               else rng.choice((1, 1, 2, 2, 3)) * 10 + type_index + 1)}

    def product(self, pid, fam, colour, index):
        rng = self.rng
        code, _, type_tr = TYPES[fam["type"]]
        col_suffix, col_value, col_tr = COLOURS[colour]
        if fam["lone"]:
            reference = fam["base"]
            parent = None if rng.random() < 0.85 else ""
        else:
            reference = f"{fam['base']}-{col_suffix}"
            parent = fam["base"]
        style = STYLES[fam["style"]]
        material_code, material_tr = MATERIALS[fam["material"]]
        langs = [lang for lang in LANGS if rng.random() < LANG_SHARE[lang]] or ["en"]
        translations = {}
        for lang in langs:
            if lang == "ja":
                name = f"{style[lang]}{type_tr[lang]} {col_tr[lang]}"
            else:
                name = f"{type_tr[lang]} {style[lang]} {col_tr[lang]}"
            # Now and then a language lacks a description: per-field fallback.
            desc = "" if rng.random() < 0.05 else DESCRIPTIONS[lang].format(
                m=material_tr[lang], s=style[lang])
            translations[lang] = {"name": name, "description": desc,
                                  "url": f"https://shop.example/{lang}/p/"
                                         f"{reference.lower()}-{pid}.html"}
        variants = []
        for size_id in fam["size_ids"]:
            vid = self.next_variant_id
            self.next_variant_id += 1
            variants.append(self.variant(vid, reference, size_id))
        attributes = [{"attribute_id": 1, "value": material_code},
                      {"attribute_id": 2, "value": col_value},
                      {"attribute_id": 3, "value": fam["fit"]}]
        if rng.random() < 0.5:
            attributes.append({"attribute_id": 4, "value": fam["season"]})
        n_images = 0 if rng.random() < 0.03 else rng.randint(1, 4)
        date_add, date_upd = self.dates(index)
        if rng.random() < 0.08:
            date_upd = max(date_add, self.fmt(rng.choice(self.batch_times)))
        return {
            "id": pid, "reference": reference, "parent_reference": parent,
            "department_id": fam["department"],
            "active": rng.random() < 0.92,
            "attributes": attributes, "sizes": variants, "translations": translations,
            "images": [f"https://cdn.shop.example/img/{reference}/{k}.jpg"
                       for k in range(1, n_images + 1)],
            "date_add": date_add, "date_upd": date_upd,
        }

    def variant(self, vid, reference, size_id):
        label = (LETTER_SIZES + NUMERIC_SIZES)[size_id - 1] if size_id <= 12 else "TU"
        stock = 0 if self.rng.random() < 0.15 else self.rng.randint(1, 40)
        return {"id": vid, "size_id": size_id, "ean": ean13(f"370{vid:09d}"),
                "sku": f"{reference}-{label}", "stock": stock}

    def products(self, n):
        out = []
        pid = PRODUCT_ID0
        while len(out) < n:
            fam = self.family()
            for colour in fam["colours"]:
                if len(out) == n:
                    break
                out.append(self.product(pid, fam, colour, len(out)))
                pid += 1
        return out

    # -- orders and returns --
    def order_lines(self, products):
        rng = self.rng
        lines = []
        for line_no in range(1, rng.choice((1, 1, 1, 2, 2, 3, 4)) + 1):
            if rng.random() < 0.005 or not products:
                # A product long gone from the catalog: ids that match nothing.
                pid = LEGACY_PRODUCT_ID0 + rng.randrange(50)
                vid = LEGACY_VARIANT_ID0 + rng.randrange(300)
                line = {"id": line_no, "product_id": pid, "product_size_id": vid,
                        "sku": f"OLD-{pid}-{vid}", "quantity": 1, "price": "9.90"}
            else:
                product = rng.choice(products)
                variant = rng.choice(product["sizes"])
                line = {"id": line_no, "product_id": product["id"],
                        "product_size_id": variant["id"], "sku": variant["sku"],
                        "quantity": rng.choice((1, 1, 1, 1, 2, 3)),
                        "price": price_for(product["id"])}
                if rng.random() < 0.02:
                    del line["sku"]   # sku then follows from the variant
            lines.append(line)
        return lines

    def order(self, oid, products, n_customers, index, stamp=None):
        rng = self.rng
        if stamp:
            date_add = date_upd = stamp
        else:
            date_add, date_upd = self.dates(index)
        age_days = (self.anchor - datetime.fromisoformat(date_add)).days
        if rng.random() < 0.04:
            status = "cancelled"
        elif stamp or age_days < 3:
            status = rng.choice(STATUS_FLOW[:3])
        else:
            status = "delivered" if age_days > 10 else "shipped"
        currency = rng.choices([c for c, _ in CURRENCIES], [w for _, w in CURRENCIES])[0]
        return {
            "id": oid, "reference": f"WS-{oid}", "status": status, "currency": currency,
            "customer": customer_for(CUSTOMER_ID0 + rng.randrange(n_customers)),
            "lines": self.order_lines(products),
            "date_add": date_add, "date_upd": date_upd,
        }

    def orders(self, n, products):
        n_customers = max(10, n // 3)
        return [self.order(ORDER_ID0 + i, products, n_customers, i) for i in range(n)]

    def return_for(self, rid, order, index, stamp=None):
        rng = self.rng
        picked = rng.sample(order["lines"], rng.randint(1, len(order["lines"])))
        lines = []
        for line_no, oline in enumerate(sorted(picked, key=lambda l: l["id"]), start=1):
            roll = rng.random()
            comment = None if roll < 0.4 else "" if roll < 0.55 else rng.choice(RETURN_COMMENTS)
            lines.append({"id": line_no, "order_line_id": oline["id"],
                          "product_id": oline["product_id"],
                          "product_size_id": oline["product_size_id"],
                          "quantity": rng.randint(1, oline["quantity"]),
                          "reason_id": rng.choices(REASON_IDS,
                                                   cum_weights=REASON_CUM_WEIGHTS)[0],
                          "comment": comment})
        if stamp:
            date_add = date_upd = stamp
        else:
            ordered = datetime.fromisoformat(order["date_add"])
            lo = min(ordered + timedelta(days=3), self.anchor)
            date_add, date_upd = self.dates(index, add_lo=lo)
        return {"id": rid, "order_id": order["id"], "lines": lines,
                "date_add": date_add, "date_upd": date_upd}

    def returns(self, n, orders):
        if not orders:
            return []
        return [self.return_for(RETURN_ID0 + i, self.rng.choice(orders), i) for i in range(n)]


class Shop:
    """All streams of the emulated shop, behind one lock.

    `version` changes with every modification; filtered id lists are cached per
    (stream, date filter, version), so paging a filtered 40 000-record stream does not
    rescan it for every page, yet each page still reflects the data at request time.
    """

    FLOORS = {"products": PRODUCT_ID0 - 1, "orders": ORDER_ID0 - 1,
              "returns": RETURN_ID0 - 1}

    def __init__(self, seed=1, n_products=50, n_orders=200, n_returns=40,
                 anchor="2026-11-01 00:00:00", n_variants=None):
        if n_variants is not None and not 1 <= n_variants <= 6:
            raise ValueError("n_variants must be between 1 and 6 (a size chart has 6 sizes)")
        self.lock = threading.Lock()
        self.params = (seed, n_products, n_orders, n_returns, anchor, n_variants)
        self._build()

    def _build(self):
        seed, n_products, n_orders, n_returns, anchor, n_variants = self.params
        gen = Generator(random.Random(seed), datetime.fromisoformat(anchor), n_variants)
        products = gen.products(n_products)
        orders = gen.orders(n_orders, products)
        self.streams = {
            "products": Stream(products),
            "sizes": Stream(gen.sizes()),
            "departments": Stream(gen.departments()),
            "attributes": Stream(gen.attributes()),
            "orders": Stream(orders),
            "returns": Stream(gen.returns(n_returns, orders)),
            "return_reasons": Stream(gen.return_reasons()),
        }
        # Test mutations draw from their own generator so start-up data never depends on them.
        self.gen = gen
        gen.rng = random.Random(seed * 1000003 + 17)
        self.n_customers = max(10, n_orders // 3)
        self.version = 0
        self.filter_cache = {}
        self.edit_serial = 0

    def reset(self):
        with self.lock:
            self._build()

    # -- reading --
    def page(self, stream, start, limit, since=None):
        """(records, total) of the id-sorted, date-filtered list; slice [start, start+limit)."""
        with self.lock:
            st = self.streams[stream]
            if since is None:
                ids = st.ids
            else:
                key = (stream, since)
                cached = self.filter_cache.get(key)
                if cached is None or cached[0] != self.version:
                    ids = [i for i in st.ids if (st.by_id[i].get("date_upd") or "") >= since]
                    if len(self.filter_cache) > 64:
                        self.filter_cache.clear()
                    self.filter_cache[key] = (self.version, ids)
                else:
                    ids = cached[1]
            return [st.by_id[i] for i in ids[start:start + limit]], len(ids)

    def truth(self):
        with self.lock:
            return {name: st.records() for name, st in self.streams.items()}

    # -- test mutations (control API) --
    def _changed(self):
        self.version += 1

    def add(self, stream, record=None, rid=None):
        """Store `record` (or a generated one) under a new id; returns the stored record."""
        with self.lock:
            st = self.streams[stream]
            if record is None:
                rid = rid if rid is not None else st.max_id(self.FLOORS.get(stream, 0)) + 1
                record = self._generate(stream, rid)
            else:
                record = copy.deepcopy(record)
                if rid is not None:
                    record["id"] = rid
                if "id" not in record:
                    record["id"] = st.max_id(self.FLOORS.get(stream, 0)) + 1
                if stream in DATED_STREAMS:
                    record.setdefault("date_add", now_local())
                    record.setdefault("date_upd", record["date_add"])
            if not isinstance(record["id"], int) or isinstance(record["id"], bool):
                raise ValueError("record id must be an integer")
            if record["id"] in st.by_id:
                raise KeyError(f"{stream} {record['id']} already exists")
            st.put(record)
            self._changed()
            return record

    def update(self, stream, rid, patch=None):
        """Shallow-merge `patch` (or a generated change) into a copy; bumps date_upd."""
        with self.lock:
            st = self.streams[stream]
            if rid not in st.by_id:
                raise KeyError(f"{stream} {rid} not found")
            record = copy.deepcopy(st.by_id[rid])
            if patch is None:
                self._mutate(stream, record)
            else:
                record.update(copy.deepcopy(patch))
                record["id"] = rid
            if stream in DATED_STREAMS and (patch is None or "date_upd" not in patch):
                record["date_upd"] = now_local()
            st.put(record)
            self._changed()
            return record

    def delete(self, stream, rid):
        with self.lock:
            st = self.streams[stream]
            if rid not in st.by_id:
                raise KeyError(f"{stream} {rid} not found")
            st.remove(rid)
            self._changed()

    def pick_ids(self, stream, n):
        """n distinct existing ids, drawn with the mutation generator."""
        with self.lock:
            ids = self.streams[stream].ids
            return sorted(self.gen.rng.sample(ids, min(n, len(ids))))

    def _generate(self, stream, rid):
        gen = self.gen
        stamp = now_local()
        if stream == "products":
            fam = gen.family()
            record = gen.product(rid, fam, fam["colours"][0], 1)
            record["date_add"] = record["date_upd"] = stamp
            return record
        if stream == "orders":
            products = self.streams["products"].records()
            return gen.order(rid, products, self.n_customers, 1, stamp=stamp)
        if stream == "returns":
            orders = self.streams["orders"]
            if not orders.ids:
                raise KeyError("no order to return")
            order = orders.by_id[gen.rng.choice(orders.ids)]
            return gen.return_for(rid, order, 1, stamp=stamp)
        if stream == "sizes":
            label = f"T{rid}"
            return {"id": rid, "label": label, "translations": {"fr": label, "en": label}}
        if stream == "departments":
            return {"id": rid, "parent_id": gen.rng.choice((None, 1, 2, 3)),
                    "translations": {"fr": f"Rayon {rid} été", "en": f"Department {rid}"}}
        if stream == "attributes":
            return {"id": rid, "code": f"extra_{rid}",
                    "translations": {"fr": f"Caractéristique {rid}", "en": f"Feature {rid}"}}
        return {"id": rid, "code": f"reason_{rid}",
                "translations": {"fr": f"Motif {rid} (précisé)", "en": f"Reason {rid}"}}

    def _mutate(self, stream, record):
        """A plausible change; several kinds so child-row replacement gets exercised."""
        rng = self.gen.rng
        self.edit_serial += 1
        serial = self.edit_serial
        if stream == "products":
            variants = record["sizes"]
            if variants:
                rng.choice(variants)["stock"] = rng.randint(0, 40)
            roll = rng.random()
            if roll < 0.15 and len(variants) > 2:
                variants.pop()                       # a size no longer sold
            elif roll < 0.3 and variants:
                used = {v["size_id"] for v in variants}
                free = [s for s in (variants[-1]["size_id"] + 1, variants[0]["size_id"] - 1)
                        if 1 <= s <= 12 and s not in used
                        and (s <= 6) == (variants[0]["size_id"] <= 6)]
                if free:
                    vid = self.gen.next_variant_id
                    self.gen.next_variant_id += 1
                    variants.append(self.gen.variant(vid, record.get("reference", ""),
                                                     free[0]))
            elif roll < 0.45:
                record["active"] = not record.get("active", True)
            tr = record.get("translations") or {}
            if tr:
                lang = rng.choice(sorted(tr))
                name = tr[lang].get("name", "").split(" · ")[0]
                tr[lang]["name"] = f"{name} · édition {serial}"
        elif stream == "orders":
            status = record.get("status")
            if status in STATUS_FLOW[:-1]:
                record["status"] = STATUS_FLOW[STATUS_FLOW.index(status) + 1]
            elif status == "delivered":
                record["status"] = "refunded"
            lines = record.get("lines") or []
            if len(lines) > 1 and rng.random() < 0.3:
                lines.pop()                          # a line cancelled before shipping
            elif lines:
                rng.choice(lines)["quantity"] = rng.randint(1, 3)
        elif stream == "returns":
            lines = record.get("lines") or []
            if lines:
                line = rng.choice(lines)
                line["comment"] = f"{rng.choice(RETURN_COMMENTS)} (relance n°{serial})"
                if rng.random() < 0.3:
                    line["reason_id"] = rng.choice((1, 2))
        else:
            tr = record.setdefault("translations", {})
            lang = rng.choice(sorted(tr) or ["fr"])
            base = str(tr.get(lang) or record.get("label") or record.get("code") or "")
            tr[lang] = f"{base.split(' · ')[0]} · v{serial}"
