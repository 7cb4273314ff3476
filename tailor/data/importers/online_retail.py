"""UCI "Online Retail" export -> raw data set in contract column names.

Mapping (every input row becomes exactly one transaction; nothing is dropped here):

- ``order_id`` = InvoiceNo as text; ``customer_id`` = CustomerID as an integer string, missing for
  guest checkouts (CustomerID 0 or empty) so the validator quarantines them (missing_customer);
- ``product_id`` = StockCode stripped and upper-cased (``85123a`` and ``85123A`` are one product);
- ``quantity``, ``unit_price`` as numbers; ``timestamp`` parsed from InvoiceDate;
- ``country`` and ``description`` kept as extra columns. ``description`` has its whitespace
  collapsed and the export's placeholder ``Missing_Description`` turned into a missing value.

Treatments the validator cannot express (decided here, counted by :func:`count_quirks`, documented
in docs/data.md):

- Non-product codes (postage, carriage, manual adjustments, fees, vouchers, samples, ...) are
  recognised by rule (:func:`non_product_mask`): the code is not a stock-code pattern, or the
  code's usual description is a service. Their lines stay in ``transactions`` but the codes are
  left out of ``products``, so the validator quarantines them as unknown_product.
- Products get the most frequent description among their priced lines (zero-price lines carry
  warehouse notes such as "check" or "found"), the median positive unit price, and a
  ``category`` from a keyword taxonomy over the description (:data:`TAXONOMY`, :func:`categorise`).
- Customers get their most frequent country (ties: alphabetical).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW, Dataset
from tailor.data.importers.common import ImporterError, on_unique, require_columns
from tailor.data.io import read_table

log = logging.getLogger(__name__)

SOURCE_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                  "UnitPrice", "CustomerID", "Country")
INVOICE_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
MISSING_DESCRIPTION = "Missing_Description"

# A stock code names a product when it is five digits plus an optional variant suffix
# (85123A, 15056BL) or a "DCGS" dotcom-gift-shop product code (DCGSSGIRL, DCGS0003).
PRODUCT_CODE = re.compile(r"\d{5}[A-Z]{0,3}|DCGS[A-Z0-9]+")
# A product-shaped code is still a service when its usual description is one of these
# (23444 "Next Day Carriage", 23574 "PACKING CHARGE", 22016 "... Gift Voucher £100.00").
SERVICE_DESCRIPTION = re.compile(
    r"(NEXT DAY |DOTCOM )?(CARRIAGE|POSTAGE)|PACKING CHARGE|BANK CHARGES?|MANUAL|SAMPLES?"
    r"|DISCOUNT|.*\bGIFT VOUCHER\b.*|.*\bFEE|CRUK COMMISSION|ADJUST BAD DEBT|HIGH RESOLUTION IMAGE"
)

OTHER = "other"
# Keyword taxonomy for product descriptions, tuned on the real file (docs/data.md: 99.1% of
# products, 99.7% of lines get a real category). Keywords match whole words of the upper-cased
# description with punctuation turned into spaces, an optional plural "S" allowed. The first hit
# wins over three passes (see _CATEGORY_PATTERNS): seasonal categories, then phrases, then single
# words in this order, home decor last as the catch-all for decorative objects.
TAXONOMY: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("christmas", (
        "CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "SNOWMAN", "NATIVITY",
        "BAUBLE", "TINSEL", "YULETIDE", "NOEL", "ELF", "MISTLETOE", "CHRISTMAS TREE",
    )),
    ("easter", (
        "EASTER", "CHICK", "EGG HUNT", "HEN HOUSE",
    )),
    ("candles & lights", (
        "CANDLE", "T LIGHT", "TLIGHT", "TEA LIGHT", "TEALIGHT", "LANTERN", "LIGHT", "LIGHTS",
        "LAMP", "LAMPSHADE", "NIGHTLIGHT", "INCENSE", "OIL BURNER", "CANDLEHOLDER", "CANDLEPOT",
        "CHANDELIER", "LED", "TORCH", "FAIRY LIGHT", "MATCHES", "VOTIVE", "LIGHTBULB",
        "CANDLESTICK", "CANDLE STICK", "CHOCOLATECANDLE",
    )),
    ("cards & wrap", (
        "CARD", "WRAP", "WRAPPING", "GIFT BAG", "GIFT TAG", "TAG", "TISSUE PAPER", "ENVELOPE",
        "RIBBON", "REEL", "GIFT BOX", "PAPER BOX", "CELLOPHANE", "GIFTWRAP", "INVITES", "TISSUE",
    )),
    ("party", (
        "PARTY", "BIRTHDAY", "BALLOON", "CONFETTI", "CRACKER", "COCKTAIL PARASOL", "BUNTING",
        "COCKTAIL SWORD", "PARTY BAG", "WEDDING", "PINATA", "GARLAND FLAG", "ROSETTE", "PENNANT",
    )),
    ("jewellery & accessories", (
        "NECKLACE", "NECKLAC", "BRACELET", "BRACLET", "EARRING", "COLLAR", "BANGLE", "BROOCH",
        "PENDANT", "CHARM", "DIAMANTE", "HAIR", "HAIRCLIP", "HAIR CLIP", "BEAD", "BEADS", "JEWEL",
        "JEWELLED", "JEWELLERY", "RING", "UMBRELLA", "WALLET", "SCARF", "GLOVES", "HAT", "SLIPPER",
        "KEYRING", "KEY RING", "KEY FOB", "KEY CHAIN", "CARD WALLET", "COMPACT MIRROR", "BLING",
        "PARASOL", "PASSPORT COVER", "CARD HOLDER", "SUNGLASSES", "TIARA", "MAKE UP", "LIP GLOSS",
        "HAND WARMER", "FAN", "RAIN PONCHO", "RAIN MAC", "PONCHO", "EAR MUFF", "SOCK", "SOCKS",
        "BADGE", "LUGGAGE TAG", "LARIAT", "HEADPHONES", "BIB", "SHOE", "SHOES", "GRASS SKIRT",
        "SOMBRERO", "SHIRT", "DRESS", "BELT", "CUFFS", "WATCH",
    )),
    ("bags", (
        "BAG", "HANDBAG", "PURSE", "SHOPPER", "TOTE", "BACKPACK", "RUCKSACK", "WASHBAG", "SATCHEL",
        "LUNCH BAG",
    )),
    ("toys & games", (
        "TOY", "JIGSAW", "PUZZLE", "GAME", "DOLL", "DOLLS", "SKITTLE", "DOMINO", "DOMINOES",
        "PLAYING CARDS", "SPINNING TOP", "TEDDY", "RATTLE", "HARMONICA", "BUBBLES", "MARBLES",
        "KALEIDOSCOPE", "NINJA", "SOLDIER", "KNITTING NANCY", "COLOURING", "PAINT SET", "CRAYONS",
        "PLAYHOUSE", "FELTCRAFT", "MAGIC", "SNAP CARDS", "TRAIN", "SOFT TOY", "DRAWING KIT",
        "SKIPPING ROPE", "MODELLING CLAY", "BINGO", "LUDO", "NAUGHTS", "CROSSES", "ROCKING HORSE",
        "HELICOPTER", "FLYING DISC", "PUPPET", "INFLATABLE", "SNAKE", "CREEPY CRAWLIES",
        "WHEELBARROW FOR CHILDREN", "FARM ANIMAL", "HEADS AND TAILS", "SPACE CADET", "SPACE OWL",
        "SPACE FROG", "KNITTED HEN", "COOKING SET", "TEA SET", "BALL", "CHESS", "DICE", "KITE",
        "YOYO", "SPINNING", "RADIO", "GLOW IN DARK", "SAND", "BUCKET AND SPADE", "CATERPILLAR",
        "TATTOOS", "MASK", "WATER PISTOL", "CLOWN", "PAINTING SET", "STENCIL", "BABY GIFT SET",
        "CREEPY CRAWLIE", "EIGHT PIECE",
    )),
    ("stationery", (
        "NOTEBOOK", "PENCIL", "PEN", "STICKER", "ERASER", "RUBBER", "SKETCHBOOK", "CALENDAR",
        "JOURNAL", "DIARY", "NOTEPAD", "NOTE PAD", "MEMO", "TAPE", "STAMP", "CHALK", "RULER",
        "SHARPENER", "PAPER CHAIN", "PHOTO ALBUM", "ADDRESS BOOK", "ORGANISER", "ORIGAMI",
        "BOOKMARK", "SCRAP BOOK", "BOOK", "LETTER", "POSTCARD", "MAGNET", "PAD", "CHALKBOARD",
        "BLACKBOARD", "BLACK BOARD", "MAGNETIC", "STATIONERY", "PAPERWEIGHT", "SCISSOR",
        "CLIPBOARD", "WRITING SET", "PAPER CLIPS", "FOLDER", "FILE", "MEMOBOARD", "NOTELETS",
        "HOLE PUNCH", "PENCIL CASE",
    )),
    ("garden", (
        "GARDEN", "PLANT", "PLANTER", "POT", "WATERING CAN", "BIRD FEEDER", "FEEDER", "BIRDHOUSE",
        "BIRD HOUSE", "BIRD TABLE", "DOVECOTE", "SEED", "TROWEL", "SPADE", "HOSE", "GNOME",
        "THERMOMETER", "FLOWER POT", "WINDMILL", "WIND CHIME", "BIRD BATH", "GREENHOUSE", "HERB",
        "HAMMOCK", "POTTING", "CHIME", "FAIRY POLE", "FLYING DUCKS", "KNEELING PAD", "GROW",
    )),
    ("bath & beauty", (
        "SOAP", "BATH", "BATHROOM", "COSMETIC", "SPONGE", "NAIL", "BALM", "TOOTHBRUSH",
        "HOT WATER BOTTLE", "SHOWER", "TOILET", "TOWEL", "PERFUME", "SCENTED", "LAVENDER",
        "HAND CREAM", "FLANNEL", "TISSUES", "TOILETRIES", "MIRROR COMPACT", "LIP BALM",
    )),
    ("kitchen & dining", (
        "MUG", "CUP", "SAUCER", "PLATE", "BOWL", "JAR", "TEA", "COFFEE", "CAKE STAND", "CUTLERY",
        "NAPKIN", "NAPKIN RING", "BAKING", "CAKE CASE", "TEA TOWEL", "JUG", "BEAKER", "TRAY",
        "LUNCH", "BOTTLE", "DISH", "PAN", "MOULD", "CUTTER", "SPOON", "FORK", "TEAPOT", "EGG CUP",
        "KITCHEN", "RECIPE", "CHOPSTICK", "PANTRY", "SNACK", "MILK", "JAM", "BREAD", "BISCUIT",
        "WINE", "COASTER", "PLACEMAT", "PICNIC", "STRAW", "OVEN GLOVE", "SCALES", "FOOD COVER",
        "TUMBLER", "GLASSES", "DOILY", "DOILIES", "DOILEY", "CAKESTAND", "CAKE TIN", "LUNCHBOX",
        "TEATIME", "BREAKFAST", "DINNER", "ICE LOLLY", "CAKE", "SUGAR", "CHOCOLATE", "POPCORN",
        "SWEETS", "GLASS", "CAKES", "TEACUP", "CANISTER", "CONTAINER", "JELLY", "BUTTER", "TOAST",
        "CHEESE", "SALT", "PEPPER", "TRIVET", "FLASK", "COOKIE", "MEASURING", "GRINDER",
        "CHOPPING BOARD", "EGG", "LOLLY", "ICE CUBE", "PUDDING", "CUPCAKE", "OVEN MITT", "COLANDER",
        "TABLECLOTH", "TOASTRACK", "PETIT FOUR", "PLATTER", "SQUEEZER", "CAFETIERE", "CAKE SLICE",
        "BOTTLE OPENER", "CORKSCREW", "DRINKS", "TEA COSY", "SIEVE", "WHISK", "RECIPE BOX", "APRON",
        "FRUITBOWL", "FRUIT BOWL", "TEASPOON",
    )),
    ("household & tools", (
        "REPAIR KIT", "SCREWDRIVER", "SPIRIT LEVEL", "FLY SWAT", "FIRST AID", "TWINE", "IRONING",
        "LAUNDRY", "PEG", "CLOTHES PEG", "BUCKET", "DUSTPAN", "BRUSH", "BROOM", "BICYCLE CLIPS",
        "SEWING", "SEWING KIT", "PINCUSHION", "TAPE MEASURE", "NEEDLE", "TOOL", "TOOLS", "TORCH",
        "HAMMER", "SHOPPING LIST", "MOUSE TRAP", "STRING", "PIGGY BANK", "MONEY BOX",
        "DRAUGHT EXCLUDER", "CLIPS", "CORD", "BIN", "WASHING UP GLOVES", "PLASTERS", "PATCHES",
    )),
    ("home decor", (
        "FRAME", "MIRROR", "CLOCK", "SIGN", "CUSHION", "DOORMAT", "HOOK", "HANGER", "VASE",
        "DOORSTOP", "WALL", "ART", "DECORATION", "GARLAND", "WREATH", "ORNAMENT", "HEART", "DRAWER",
        "KNOB", "DRAWERKNOB", "CABINET", "SHELF", "CURTAIN", "THROW", "BLANKET", "QUILT", "PHOTO",
        "TILE", "PLAQUE", "BASKET", "BOX", "BOXES", "TIN", "STORAGE", "TRINKET", "CHEST", "CRATE",
        "HOLDER", "MOBILE", "BELL", "DOOR", "FLOWER", "CHAIR", "STOOL", "TABLE", "RACK", "LETTERS",
        "ALPHABET", "NUMBER", "HANGING", "FEATHER", "BUTTERFLY", "BIRD", "STAR", "BLOCK WORD",
        "CANVAS", "PICTURE", "PAINTING", "SCREEN", "SHELVES", "LADDER", "FLAG", "ROSE", "WICKER",
        "DOORSIGN", "COAT", "ORBIT", "GEISHA", "MAT", "FILLER PAD", "MIRROR BALL", "TRINKET POT",
        "DRESSING TABLE", "LANDMARK FRAME", "POUFFE", "BUDDHA", "MUSHROOM", "TOADSTOOL",
        "WATER BASIN", "FIRE BUCKET", "GLOBE", "DOORHANGER", "HOUSE", "CLOCHE", "PAINTED", "COVER",
        "RABBIT", "DAISY", "SHELL", "WOODEN", "METAL", "CERAMIC", "ZINC", "ENAMEL", "WIRE",
        "CHANDELIER", "STAND", "CAT", "DOG", "OWL", "HORSE",
    )),
)


def _clean_code(codes: pd.Series) -> pd.Series:
    return codes.astype(str).str.strip().str.upper()


def _clean_description(text: pd.Series) -> pd.Series:
    clean = text.astype(str).str.strip().str.replace(r"\s+", " ", regex=True)
    return clean.where(~clean.isin(["", MISSING_DESCRIPTION]), None)


def _clean_text(text: pd.Series) -> pd.Series:
    clean = text.astype(str).str.strip()
    return clean.where(clean != "", None)


def normalise_stock_code(codes: pd.Series) -> pd.Series:
    """Strip and upper-case: the export spells some variants in lower case (``47566b``)."""
    return on_unique(codes, _clean_code)


def normalise_description(text: pd.Series) -> pd.Series:
    """Collapse whitespace runs and trim; the export's placeholder becomes a missing value."""
    return on_unique(text, _clean_description)


def _keyword_pattern(keywords: list[str]) -> re.Pattern[str] | None:
    if not keywords:
        return None
    words = sorted(keywords, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")S?\b")


# Seasonal categories win outright (a "CHRISTMAS PAPER CHAIN KIT" is christmas); then every
# other category's multi-word phrases ("NAPKIN RING", "GIFT BAG", "PLAYING CARDS"), then single
# words, each pass in taxonomy order.
SEASONAL = ("christmas", "easter")
_CATEGORY_PATTERNS = tuple(
    (cat, pattern)
    for stage in ("seasonal", "phrases", "words")
    for cat, words in TAXONOMY
    if (stage == "seasonal") == (cat in SEASONAL)
    and (pattern := _keyword_pattern([
        w for w in words if stage == "seasonal" or (" " in w) == (stage == "phrases")
    ])) is not None
)


def categorise(descriptions: pd.Series) -> pd.Series:
    """Map product descriptions to a :data:`TAXONOMY` category; no match (or none) is 'other'."""
    text = (descriptions.fillna("").astype(str).str.upper()
            .str.replace(r"[^A-Z0-9]+", " ", regex=True))
    category = pd.Series(OTHER, index=descriptions.index, dtype=object)
    undecided = pd.Series(True, index=descriptions.index)
    for name, pattern in _CATEGORY_PATTERNS:
        hit = undecided & text.str.contains(pattern)
        category[hit] = name
        undecided &= ~hit
    return category


def _usual_description(lines: pd.DataFrame) -> pd.Series:
    """Most frequent description per product among lines sold at a positive price (ties: A-Z).

    Zero-price lines carry warehouse notes ("check", "found", "adjustment"), not product names.
    """
    priced = lines[(lines["unit_price"] > 0) & lines["description"].notna()]
    counts = priced.groupby(["product_id", "description"]).size().rename("n").reset_index()
    counts = counts.sort_values(["product_id", "n", "description"],
                                ascending=[True, False, True])
    return counts.drop_duplicates("product_id").set_index("product_id")["description"]


def non_product_mask(product_ids: pd.Series, usual_description: pd.Series) -> pd.Series:
    """True where a code is not a product: not a stock-code pattern, or its usual description
    (see :func:`_usual_description`) is a service (postage, carriage, fee, voucher, ...)."""
    codes = product_ids.fillna("").astype(str)
    not_code = ~codes.str.fullmatch(PRODUCT_CODE)
    described = codes.map(usual_description).fillna("").astype(str).str.upper().str.strip()
    service = described.str.fullmatch(SERVICE_DESCRIPTION)
    return pd.Series(not_code.to_numpy() | service.to_numpy(), index=product_ids.index)


def _customer_id_text(values: pd.Series) -> pd.Series:
    """One distinct CustomerID -> '17850' (whole numbers lose their '.0'); 0 or blank -> None."""
    number = pd.to_numeric(values, errors="coerce")
    text = values.astype(str).str.strip()
    whole = number.notna() & np.isfinite(number) & (number == np.floor(number))
    text[whole] = number[whole].astype("int64").astype(str)
    guest = (number == 0) | (text == "")
    return text.where(~guest, None)


def _customer_ids(raw: pd.Series) -> pd.Series:
    """CustomerID (float in the export) -> '17850'; 0 and empty are guests -> missing."""
    return on_unique(raw, _customer_id_text)


def _parse_dates(text: pd.Series) -> pd.Series:
    text = text.astype(str).str.strip()
    parsed = pd.to_datetime(text, format=INVOICE_DATE_FORMAT, errors="coerce")
    retry = parsed.isna()
    if retry.any():
        parsed[retry] = pd.to_datetime(text[retry], format="mixed", errors="coerce")
    return parsed.astype("datetime64[ns]")


def _timestamps(raw: pd.Series) -> pd.Series:
    """Parse InvoiceDate (``YYYY-MM-DD HH:MM:SS``; other layouts get pandas' own parser);
    text neither reads becomes NaT, which the validator quarantines."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        return raw.astype("datetime64[ns]")
    return on_unique(raw, _parse_dates).astype("datetime64[ns]")


def _quantities(raw: pd.Series) -> pd.Series:
    number = pd.to_numeric(raw, errors="coerce")
    whole = number.notna() & (number == np.floor(number))
    if bool(whole.all()):
        return number.astype("int64")
    return number.where(whole).astype("Int64")  # the validator quarantines the missing ones


def _read_export(path: Path) -> pd.DataFrame:
    if path.suffix not in (".parquet", ".csv"):
        raise ImporterError(f"{path}: expected the export as .parquet or .csv")
    if not path.is_file():
        raise ImporterError(f"{path}: file not found")
    raw = read_table(path)
    require_columns(raw, SOURCE_COLUMNS, path)
    return raw


def _transactions(raw: pd.DataFrame) -> pd.DataFrame:
    order = raw["InvoiceNo"]
    if pd.api.types.is_float_dtype(order):  # a numeric column with gaps comes back as float
        order = order.astype("Int64")
    return pd.DataFrame({
        "order_id": on_unique(order, _clean_text).astype(object),
        "customer_id": _customer_ids(raw["CustomerID"]).astype(object),
        "product_id": normalise_stock_code(raw["StockCode"]).astype(object),
        "quantity": _quantities(raw["Quantity"]),
        "unit_price": pd.to_numeric(raw["UnitPrice"], errors="coerce").astype("float64"),
        "timestamp": _timestamps(raw["InvoiceDate"]),
        "country": on_unique(raw["Country"], _clean_text).astype(object),
        "description": normalise_description(raw["Description"]).astype(object),
        SOURCE_FILE: raw[SOURCE_FILE],
        SOURCE_ROW: raw[SOURCE_ROW],
    })


def _products(lines: pd.DataFrame) -> pd.DataFrame:
    usual = _usual_description(lines)
    codes = pd.Series(lines["product_id"].dropna().unique(), dtype=object)
    codes = codes[~non_product_mask(codes, usual).to_numpy()].sort_values(ignore_index=True)
    price = lines[lines["unit_price"] > 0].groupby("product_id")["unit_price"].median()
    products = pd.DataFrame({
        "product_id": codes,
        "description": codes.map(usual).astype(object),
        "price": codes.map(price).astype("float64"),
    })
    products["category"] = categorise(products["description"])
    return products[["product_id", "category", "description", "price"]]


def _customers(lines: pd.DataFrame) -> pd.DataFrame:
    known = lines[lines["customer_id"].notna()]
    counts = known.groupby(["customer_id", "country"], dropna=False).size()
    counts = counts.rename("n").reset_index()
    counts = counts.sort_values(["customer_id", "n", "country"], ascending=[True, False, True])
    customers = counts.drop_duplicates("customer_id")[["customer_id", "country"]]
    return customers.reset_index(drop=True)


def import_online_retail(path: Path) -> Dataset:
    """Translate the Online Retail export at ``path`` (.parquet or .csv) into a raw data set.

    One transaction per input row, in input order, with ``_source_file``/``_source_row``;
    ``customers`` (id, country) and ``products`` (id, category, description, price).
    """
    path = Path(path)
    raw = _read_export(path)
    transactions = _transactions(raw)
    products = _products(transactions)
    customers = _customers(transactions)
    log.info("imported %s: %s", path, count_quirks(raw, transactions, products))
    return Dataset(transactions=transactions, customers=customers, products=products,
                   sources=dict.fromkeys(("transactions", "customers", "products"), str(path)))


def count_quirks(raw: pd.DataFrame, transactions: pd.DataFrame,
                 products: pd.DataFrame) -> dict[str, int]:
    """Count every quirk the importer meets: docs/data.md reports these on the real file."""
    tx = transactions
    non_product = ~tx["product_id"].isin(products["product_id"])
    code = raw["StockCode"]
    lower = on_unique(code, lambda c: c.astype(str).str.strip() != _clean_code(c))
    described = raw["Description"]
    untidy = on_unique(described, lambda d: d.astype(str).str.strip()
                       .str.replace(r"\s+", " ", regex=True) != d.astype(str))
    line_category = tx["product_id"].map(products.set_index("product_id")["category"])
    key = [c for c in tx.columns if c not in (SOURCE_FILE, SOURCE_ROW)]
    return {
        "rows": len(tx),
        "guest_rows": int(tx["customer_id"].isna().sum()),
        "non_positive_price_rows": int((tx["unit_price"] <= 0).sum()),
        "unparsable_price_rows": int(tx["unit_price"].isna().sum()),
        "unparsable_quantity_rows": int(tx["quantity"].isna().sum()),
        "unparsable_timestamp_rows": int(tx["timestamp"].isna().sum()),
        "return_rows": int((tx["quantity"] < 0).sum()),
        "absurd_quantity_rows": int((tx["quantity"].abs() > 10_000).sum()),
        "duplicate_rows": int(tx.duplicated(key).sum()),
        "lower_case_code_rows": int(lower.fillna(False).astype(bool).sum()),
        "raw_codes": int(code.nunique()),
        "normalised_codes": int(tx["product_id"].nunique()),
        "placeholder_description_rows": int((described == MISSING_DESCRIPTION).sum()),
        "untidy_whitespace_description_rows": int(untidy.fillna(False).astype(bool).sum()),
        "non_product_codes": int(tx.loc[non_product, "product_id"].nunique()),
        "non_product_rows": int(non_product.sum()),
        "products": len(products),
        "products_categorised": int((products["category"] != OTHER).sum()),
        "product_rows": int(line_category.notna().sum()),
        "product_rows_categorised": int((line_category.notna() & (line_category != OTHER)).sum()),
        "customers": int(tx["customer_id"].nunique()),
        "customers_in_several_countries": int(
            (tx.groupby("customer_id")["country"].nunique() > 1).sum()),
    }
