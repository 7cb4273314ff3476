"""Synthetic retailer with known ground truth, so every model can be scored against the truth.

The data comes from a real generative process, not uniform noise:

* customers sign up over the period (a share before it), each in one latent segment
  (``SEGMENT_PROFILES``: vip, regular, bargain_hunter, gift_shopper, occasional) whose
  parameters differ strongly: Poisson order rate while alive, exponential lifetime (churn
  hazard), negative-binomial basket size, quantity, price tier (a tilt on lognormal prices),
  discount habit and a Dirichlet category mix with 2-3 "home" categories per segment;
* each customer has a personal taste (Dirichlet around the segment mix), a personal order-rate
  multiplier and a few favourite products re-bought with high probability;
* products have Zipf-like popularity within their category, lognormal prices and descriptions
  built from a per-category vocabulary plus shared and price-tier adjectives;
* order times follow seasonality (Black Friday / Christmas peak, weekday and hour-of-day
  profiles; gift shoppers buy mostly before Christmas) and churners slow down before they go;
* ``return_share`` of purchase lines get a later negative-quantity line (same order, product
  and price) when that return still falls before the customer's churn and the period end;
* ``messy_share`` of extra rows are deliberately broken copies of clean rows, each breaking
  exactly one rule of the data contract; ``truth['messy']`` lists their 1-based row number
  (``_source_row`` as :func:`tailor.data.io.read_dataset` numbers it) and the rule.

Timestamps: ``timestamp`` is a typed datetime column by default, and then the
``unparsable_timestamp`` kind is not injected (parquet cannot hold a broken datetime). With
``timestamp_as_text`` the column is text ``'YYYY-MM-DD HH:MM:SS'`` (as a CSV export would give)
and unparsable timestamps ("2023-02-30 10:00:00", "unknown", ...) are injected as well.

Everything is vectorised numpy driven by one ``Generator(PCG64(seed))``: the same settings give
byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tailor.configs.schema import GenerateSettings
from tailor.data.dataset import Dataset
from tailor.data.io import write_frame_atomic

SECONDS_PER_DAY = 86_400
DAYS_PER_MONTH = 30.4375

MISSING_CUSTOMER = "missing_customer"
NON_POSITIVE_PRICE = "non_positive_price"
UNKNOWN_PRODUCT = "unknown_product"
UNPARSABLE_TIMESTAMP = "unparsable_timestamp"
DUPLICATE_LINE = "duplicate_line"
ABSURD_QUANTITY = "absurd_quantity"
MESSY_RULES = (MISSING_CUSTOMER, NON_POSITIVE_PRICE, UNKNOWN_PRODUCT, DUPLICATE_LINE,
               ABSURD_QUANTITY, UNPARSABLE_TIMESTAMP)

#: Absurd quantities are drawn from this range: far above the contract default (10 000).
ABSURD_QUANTITY_RANGE = (20_000, 100_000)
_BAD_TIMESTAMPS = ("2023-02-30 10:00:00", "2023-13-01 09:15:00", "unknown", "31/31/2023 25:61",
                   "n/a")

REGIONS = ("north", "south", "east", "west", "central")
CHANNELS = ("web", "app", "store")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")


@dataclass(frozen=True)
class SegmentProfile:
    """Parameters of one latent segment (the truth that segmentation should recover)."""

    name: str
    share: float
    orders_per_month: float  # Poisson rate while alive (mean over the season profile)
    lifetime_days: float  # mean of the exponential time from signup to churn
    extra_lines: float  # mean of the negative-binomial lines per order beyond the first
    quantity_mean: float  # geometric quantity per line (>= 1)
    price_tilt: float  # weight ~ (price / category median) ** tilt when picking products
    repeat_prob: float  # chance that a line is one of the customer's favourites
    favourites: int
    discount_prob: float
    home_price_factor: float  # price level of the segment's home categories
    seasonal: bool  # gift shoppers follow the gift calendar instead of the general one
    region: tuple[float, ...]
    channel: tuple[float, ...]
    age_band: tuple[float, ...]


SEGMENT_PROFILES: tuple[SegmentProfile, ...] = (
    SegmentProfile("vip", 0.10, 4.0, 1500, 4.0, 1.3, 1.5, 0.45, 6, 0.05, 2.0, False,
                   (.15, .20, .15, .15, .35), (.30, .50, .20), (.03, .15, .27, .30, .17, .08)),
    SegmentProfile("regular", 0.30, 1.6, 1000, 2.5, 1.5, 0.0, 0.55, 5, 0.15, 1.0, False,
                   (.20, .20, .20, .20, .20), (.35, .35, .30), (.08, .22, .25, .20, .15, .10)),
    SegmentProfile("bargain_hunter", 0.22, 2.4, 700, 2.0, 2.4, -1.8, 0.30, 4, 0.45, 0.6, False,
                   (.25, .25, .20, .20, .10), (.60, .30, .10), (.25, .35, .20, .10, .06, .04)),
    SegmentProfile("gift_shopper", 0.13, 0.8, 1200, 3.5, 1.4, 0.8, 0.15, 3, 0.10, 1.5, True,
                   (.20, .20, .25, .20, .15), (.40, .15, .45), (.05, .20, .30, .25, .12, .08)),
    SegmentProfile("occasional", 0.25, 0.45, 300, 1.0, 1.2, 0.0, 0.25, 3, 0.15, 1.0, False,
                   (.22, .18, .20, .25, .15), (.35, .10, .55), (.15, .20, .20, .18, .15, .12)),
)

#: Share of the category mix on a segment's home categories, and the spread of personal taste.
HOME_MASS = 0.85
TASTE_CONCENTRATION = 40.0
PRE_START_SHARE = 0.35  # customers who signed up before the period
PRE_START_DAYS = 730
RATE_SIGMA = 0.4  # lognormal spread of the personal order rate
FADE_DAYS = 120  # churners slow down in the last FADE_DAYS before churn ...
FADE_KEEP = 0.3  # ... keeping this share of their orders
#: Lifetime multipliers by attribute (app users stay longer, young customers leave sooner), so
#: customer attributes carry churn signal beyond the purchase history.
CHANNEL_LIFETIME = {"web": 1.0, "app": 1.5, "store": 0.65}
AGE_LIFETIME = {"18-24": 0.65, "25-34": 0.85, "35-44": 1.0, "45-54": 1.1, "55-64": 1.25,
                "65+": 1.25}
ZIPF_EXPONENT = 1.1
PRICE_SIGMA = 0.55
RETURN_DELAY_DAYS = 8.0
MAX_LINES_PER_ORDER = 50
MAX_QUANTITY = 500

_WEEKDAY = np.array([0.92, 0.95, 0.97, 1.0, 1.08, 1.22, 0.86])  # Monday .. Sunday

#: (name, nouns, category-specific modifiers); category j is a home category of segment j % 5.
_CATEGORY_VOCAB: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("electronics", ("headphones", "speaker", "charger", "tablet", "camera", "smartwatch",
                     "keyboard", "monitor"), ("wireless", "bluetooth", "digital")),
    ("groceries", ("coffee", "tea", "pasta", "olive-oil", "cereal", "chocolate", "rice",
                   "biscuits"), ("organic", "fairtrade", "wholegrain")),
    ("cleaning", ("detergent", "sponge", "bleach", "mop", "cloths", "spray", "bin-bags",
                  "scrubber"), ("antibacterial", "refill", "multipurpose")),
    ("toys", ("puzzle", "doll", "robot", "blocks", "teddy", "racecar", "boardgame", "kite"),
     ("kids", "educational", "plush")),
    ("books", ("novel", "cookbook", "atlas", "biography", "notebook", "comic", "journal",
               "dictionary"), ("paperback", "hardcover", "illustrated")),
    ("jewellery", ("necklace", "bracelet", "earrings", "ring", "pendant", "brooch", "anklet",
                   "cufflinks"), ("silver", "gold", "gemstone")),
    ("kitchen", ("pan", "knife", "kettle", "mug", "teapot", "blender", "colander", "spatula"),
     ("ceramic", "nonstick", "stainless")),
    ("pet_supplies", ("leash", "kibble", "litter", "collar", "chew", "pet-bed", "aquarium",
                      "scratcher"), ("dog", "cat", "catnip")),
    ("party", ("balloons", "bunting", "candles", "napkins", "confetti", "banner", "streamers",
               "gift-wrap"), ("festive", "birthday", "christmas")),
    ("garden", ("planter", "trowel", "seeds", "hose", "birdfeeder", "gloves", "pruner",
                "compost"), ("outdoor", "weatherproof", "herb")),
    ("home_decor", ("vase", "cushion", "mirror", "frame", "lantern", "throw", "clock", "rug"),
     ("velvet", "rattan", "scandi")),
    ("beauty", ("lipstick", "serum", "shampoo", "perfume", "moisturiser", "mascara",
                "soap", "lotion"), ("vegan", "hydrating", "fragrance-free")),
    ("sports", ("dumbbell", "yoga-mat", "football", "racket", "bottle", "jersey", "skipping-rope",
                "helmet"), ("training", "pro", "breathable")),
    ("stationery", ("pen", "pencil-case", "planner", "stapler", "envelopes", "markers",
                    "sticky-notes", "folder"), ("office", "refillable", "a5")),
    ("outdoor", ("tent", "backpack", "torch", "sleeping-bag", "compass", "flask", "hammock",
                 "poles"), ("camping", "waterproof", "hiking")),
    ("fashion", ("scarf", "handbag", "belt", "wallet", "sunglasses", "hat", "jacket", "boots"),
     ("leather", "wool", "designer")),
    ("baby", ("bib", "rattle", "onesie", "blanket", "bottle-warmer", "pacifier", "stroller",
              "nappies"), ("newborn", "hypoallergenic", "soft")),
    ("automotive", ("wiper", "car-mat", "air-freshener", "jump-leads", "tyre-gauge",
                    "seat-cover", "dashcam", "polish"), ("car", "all-weather", "universal")),
    ("crafts", ("yarn", "paintbrush", "canvas", "glue-gun", "beads", "fabric", "sketchbook",
                "clay"), ("handmade", "diy", "acrylic")),
    ("music", ("guitar-strings", "vinyl", "ukulele", "drumsticks", "capo", "tuner",
               "songbook", "harmonica"), ("acoustic", "vintage-sound", "studio")),
)
_SHARED_ADJECTIVES = ("classic", "modern", "small", "large", "red", "blue", "green", "white",
                      "black", "grey", "striped", "floral", "compact", "set-of-2", "mini",
                      "everyday")
_PREMIUM_WORDS = ("premium", "deluxe", "luxury")
_VALUE_WORDS = ("value", "basic", "budget")


@dataclass(frozen=True)
class GeneratedData:
    """A synthetic data set and the truth it was drawn from.

    ``dataset`` holds the contract tables (transactions with the messy rows, customers,
    products; no ``_source_*`` columns). ``truth`` holds

    * ``customers``: customer_id, segment (int), segment_name, signup_time, churn_time (NaT:
      not churned within the period), orders_per_month, expected_lifetime_days and
      ``taste_<category>`` (personal category preference, sums to 1);
    * ``segments``: the parameters of each segment (``category_<name>``: its mean mix);
    * ``favourites``: customer_id, rank, product_id (the products re-bought most often);
    * ``messy``: ``_source_row`` (1-based row in the transactions file), ``rule`` and
      ``original_row`` (the clean row it is a broken copy of; for ``duplicate_line`` the first
      occurrence, so a validator should reject the later one).
    """

    dataset: Dataset
    truth: dict[str, pd.DataFrame]


# --------------------------------------------------------------------------- sampling helpers


def _row_cdf(probs: np.ndarray) -> np.ndarray:
    """Flattened, row-offset CDFs: row r spans (r, r+1], so one searchsorted samples any row."""
    totals = probs.sum(axis=1, keepdims=True)
    cdf = np.cumsum(probs / np.where(totals > 0, totals, 1.0), axis=1)
    cdf[:, -1] = 1.0
    np.minimum(cdf, 1.0, out=cdf)
    return (cdf + np.arange(len(probs))[:, None]).ravel()


def _draw(flat_cdf: np.ndarray, width: int, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Sample a column index for each ``rows[i]`` from its row of ``flat_cdf`` (u in [0, 1))."""
    rows = rows.astype(np.int64, copy=False)
    found = np.searchsorted(flat_cdf, rows + u, side="right")
    return np.minimum(found - rows * width, width - 1)


def _draw_by_group(rng: np.random.Generator, probs: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return _draw(_row_cdf(probs), probs.shape[1], groups, rng.random(len(groups)))


# --------------------------------------------------------------------------- calendar


@dataclass(frozen=True)
class _Calendar:
    """Cumulative order intensity on an hourly grid (in 'effective days'), one per curve."""

    edges: np.ndarray  # bin edges in days since start
    cum: np.ndarray  # shape (curves, bins + 1); curve 0 general, curve 1 gifts
    days: int

    def integral(self, curve: int, t_days: np.ndarray) -> np.ndarray:
        return np.interp(t_days, self.edges, self.cum[curve])

    def invert(self, curve: int, level: np.ndarray) -> np.ndarray:
        return np.interp(level, self.cum[curve], self.edges)


def _bump(doy: np.ndarray, center: float, width: float) -> np.ndarray:
    dist = np.abs(doy - center)
    dist = np.minimum(dist, 365.25 - dist)
    return np.exp(-0.5 * (dist / width) ** 2)


def _calendar(settings: GenerateSettings) -> _Calendar:
    dates = np.datetime64(settings.start, "D") + np.arange(settings.days)
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64).astype(float)
    weekday = _WEEKDAY[(dates.astype(np.int64) + 3) % 7]  # 1970-01-01 was a Thursday
    general = (1 + 1.0 * _bump(doy, 348, 14) + 0.6 * _bump(doy, 329, 3)
               - 0.15 * _bump(doy, 205, 25)) * weekday
    gifts = (0.12 + 5.0 * _bump(doy, 344, 16) + 1.2 * _bump(doy, 44, 4)
             + 0.6 * _bump(doy, 130, 5)) * weekday
    hours = np.arange(24) + 0.5
    hour = (0.04 + np.exp(-0.5 * ((hours - 12.5) / 2.0) ** 2)
            + 1.3 * np.exp(-0.5 * ((hours - 20.0) / 1.8) ** 2))
    hour = hour / hour.sum()
    cums = []
    for daily in (general, gifts):
        daily = daily / daily.mean()
        per_bin = (daily[:, None] * hour[None, :]).ravel()
        cums.append(np.concatenate([[0.0], np.cumsum(per_bin)]))
    edges = np.arange(settings.days * 24 + 1) / 24.0
    return _Calendar(edges=edges, cum=np.vstack(cums), days=settings.days)


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class _Catalog:
    category: np.ndarray  # per internal product index (sorted by category)
    price: np.ndarray
    choice_cdf: np.ndarray  # rows seg * C + category, columns products
    names: tuple[str, ...]
    product_ids: np.ndarray  # object array of ids per internal index
    frame: pd.DataFrame


def _category_vocab(count: int) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    vocab = list(_CATEGORY_VOCAB[:count])
    for j in range(len(vocab), count):
        stem = f"c{j + 1}"
        vocab.append((f"category_{j + 1:02d}",
                      tuple(f"{stem}{w}" for w in ("item", "pack", "set", "kit", "box", "unit")),
                      (f"{stem}style", f"{stem}line")))
    return vocab


def _home_segment(n_categories: int) -> np.ndarray:
    return np.arange(n_categories) % len(SEGMENT_PROFILES)


def _make_catalog(settings: GenerateSettings, rng: np.random.Generator) -> _Catalog:
    n_cat, n_prod, segs = settings.categories, settings.products, SEGMENT_PROFILES
    vocab = _category_vocab(n_cat)
    sizes = rng.uniform(0.5, 1.5, n_cat)
    extra = rng.choice(n_cat, n_prod - n_cat, p=sizes / sizes.sum())
    category = np.sort(np.concatenate([np.arange(n_cat), extra]))
    home = _home_segment(n_cat)
    factor = np.array([s.home_price_factor for s in segs])[home]
    median = np.exp(rng.uniform(np.log(6.0), np.log(20.0), n_cat)) * factor
    relative = np.exp(rng.normal(0.0, PRICE_SIGMA, n_prod))
    price = np.maximum(np.round(median[category] * relative, 2), 0.5)
    # Zipf popularity by a random rank within each category.
    order = np.lexsort((rng.random(n_prod), category))
    starts = np.searchsorted(category, np.arange(n_cat))
    rank = np.empty(n_prod, dtype=np.int64)
    rank[order] = np.arange(n_prod) - starts[category[order]]
    popularity = 1.0 / (rank + 1.0) ** ZIPF_EXPONENT
    ratio = price / median[category]
    probs = np.zeros((len(segs) * n_cat, n_prod))
    for s, seg in enumerate(segs):
        probs[s * n_cat + category, np.arange(n_prod)] = popularity * ratio ** seg.price_tilt
    width = max(5, len(str(n_prod)))
    numbers = rng.permutation(n_prod) + 1
    product_ids = np.array([f"P{n:0{width}d}" for n in numbers], dtype=object)
    descriptions = _descriptions(rng, vocab, category, ratio)
    frame = pd.DataFrame({
        "product_id": product_ids,
        "category": np.array([v[0] for v in vocab], dtype=object)[category],
        "description": descriptions,
        "price": price,
    }).sort_values("product_id", kind="stable").reset_index(drop=True)
    return _Catalog(category=category, price=price, choice_cdf=_row_cdf(probs),
                    names=tuple(v[0] for v in vocab), product_ids=product_ids, frame=frame)


def _descriptions(rng: np.random.Generator, vocab: list[tuple[str, tuple[str, ...],
                  tuple[str, ...]]], category: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Tier word (price signal) + shared adjective + category modifier + category noun."""
    n = len(category)
    noun_u, mod_u, adj_i, tier_i = rng.random(n), rng.random(n), rng.integers(0, 16, n), \
        rng.integers(0, 3, n)
    use_mod = rng.random(n) < 0.6
    out = []
    for i in range(n):
        _, nouns, mods = vocab[category[i]]
        words = []
        if ratio[i] > 1.6:
            words.append(_PREMIUM_WORDS[tier_i[i]])
        elif ratio[i] < 0.6:
            words.append(_VALUE_WORDS[tier_i[i]])
        words.append(_SHARED_ADJECTIVES[adj_i[i] % len(_SHARED_ADJECTIVES)])
        if use_mod[i]:
            words.append(mods[int(mod_u[i] * len(mods))])
        words.append(nouns[int(noun_u[i] * len(nouns))])
        out.append(" ".join(words))
    return np.array(out, dtype=object)


# --------------------------------------------------------------------------- customers


@dataclass(frozen=True)
class _People:
    segment: np.ndarray
    signup: np.ndarray  # seconds since start (negative: before the period)
    churn: np.ndarray  # seconds since start (may lie beyond the period)
    mean_life: np.ndarray  # days: the exponential lifetime's mean for this customer
    rate: np.ndarray  # orders per day while alive (before season profile)
    taste: np.ndarray  # (N, C)
    favourites: np.ndarray  # (N, max favourites) internal product index
    customer_ids: np.ndarray
    frame: pd.DataFrame


def _segment_array(field: str) -> np.ndarray:
    return np.array([getattr(s, field) for s in SEGMENT_PROFILES])


def _category_means(n_cat: int) -> np.ndarray:
    """Segment Dirichlet means: HOME_MASS on home categories, the rest spread evenly."""
    home = _home_segment(n_cat)
    means = np.full((len(SEGMENT_PROFILES), n_cat), 1.0 / n_cat)
    for s in range(len(SEGMENT_PROFILES)):
        mine = home == s
        if mine.any() and (~mine).any():
            means[s] = np.where(mine, HOME_MASS / mine.sum(), (1 - HOME_MASS) / (~mine).sum())
    return means


def _make_customers(settings: GenerateSettings, rng: np.random.Generator, cal: _Calendar,
                    catalog: _Catalog) -> _People:
    n, n_cat = settings.customers, settings.categories
    end = settings.days * SECONDS_PER_DAY
    segment = rng.choice(len(SEGMENT_PROFILES), n, p=_segment_array("share"))
    pre = rng.random(n) < PRE_START_SHARE
    before = -rng.integers(1, PRE_START_DAYS * SECONDS_PER_DAY, n)
    during = np.floor(cal.invert(0, rng.random(n) * cal.cum[0, -1]) * SECONDS_PER_DAY)
    signup = np.where(pre, before, np.minimum(during.astype(np.int64), end - 1))
    attrs = {
        name: _draw_by_group(rng, _segment_array(name), segment)
        for name in ("region", "channel", "age_band")
    }
    mean_life = (_segment_array("lifetime_days")[segment]
                 * np.array([CHANNEL_LIFETIME[c] for c in CHANNELS])[attrs["channel"]]
                 * np.array([AGE_LIFETIME[a] for a in AGE_BANDS])[attrs["age_band"]])
    lifetime = rng.exponential(mean_life) * SECONDS_PER_DAY
    churn = signup + np.maximum(np.ceil(lifetime).astype(np.int64), 1)
    rate = (_segment_array("orders_per_month")[segment] / DAYS_PER_MONTH
            * np.exp(rng.normal(0.0, RATE_SIGMA, n)))
    alpha = TASTE_CONCENTRATION * _category_means(n_cat)[segment]
    gam = rng.standard_gamma(alpha) + 1e-12
    taste = gam / gam.sum(axis=1, keepdims=True)
    n_fav = int(_segment_array("favourites").max())
    owner = np.repeat(np.arange(n), n_fav)
    fav_cat = _draw(_row_cdf(taste), n_cat, owner, rng.random(len(owner)))
    fav = _draw(catalog.choice_cdf, settings.products, segment[owner] * n_cat + fav_cat,
                rng.random(len(owner))).reshape(n, n_fav)
    # Ids follow signup order, as a shop's sequential customer numbers would.
    width = max(6, len(str(n)))
    number = np.empty(n, dtype=np.int64)
    number[np.lexsort((np.arange(n), signup))] = np.arange(1, n + 1)
    customer_ids = np.array([f"C{k:0{width}d}" for k in number], dtype=object)
    start_ns = np.datetime64(settings.start, "ns")
    signup_time = start_ns + signup.astype("timedelta64[s]")
    frame = pd.DataFrame({
        "customer_id": customer_ids,
        "region": np.array(REGIONS, dtype=object)[attrs["region"]],
        "channel": np.array(CHANNELS, dtype=object)[attrs["channel"]],
        "signup_date": signup_time.astype("datetime64[D]").astype("datetime64[ns]"),
        "age_band": np.array(AGE_BANDS, dtype=object)[attrs["age_band"]],
    })
    return _People(segment=segment, signup=signup, churn=churn, mean_life=mean_life,
                   rate=rate, taste=taste,
                   favourites=fav, customer_ids=customer_ids, frame=frame)


# --------------------------------------------------------------------------- orders and lines


def _make_orders(settings: GenerateSettings, rng: np.random.Generator, cal: _Calendar,
                 people: _People) -> tuple[np.ndarray, np.ndarray]:
    """(customer, second) of every order, sorted by time: signup order + Poisson orders."""
    end = settings.days * SECONDS_PER_DAY
    lo = np.maximum(people.signup, 0)
    hi = np.minimum(people.churn, end)
    alive = hi > lo
    curve = _segment_array("seasonal").astype(np.int64)[people.segment]
    c_lo, c_hi = np.zeros(len(lo)), np.zeros(len(lo))
    for k in (0, 1):
        mask = curve == k
        c_lo[mask] = cal.integral(k, lo[mask] / SECONDS_PER_DAY)
        c_hi[mask] = cal.integral(k, hi[mask] / SECONDS_PER_DAY)
    expected = np.where(alive, people.rate * (c_hi - c_lo), 0.0)
    count = rng.poisson(expected)
    owner = np.repeat(np.arange(len(lo)), count)
    level = c_lo[owner] + rng.random(len(owner)) * (c_hi - c_lo)[owner]
    t_days = np.empty(len(owner))
    for k in (0, 1):
        mask = curve[owner] == k
        t_days[mask] = cal.invert(k, level[mask])
    sec = np.clip(np.floor(t_days * SECONDS_PER_DAY).astype(np.int64), lo[owner],
                  hi[owner] - 1)
    fading = sec >= people.churn[owner] - FADE_DAYS * SECONDS_PER_DAY
    keep = ~fading | (rng.random(len(owner)) < FADE_KEEP)
    first = np.flatnonzero((people.signup >= 0) & (people.signup < end))
    cust = np.concatenate([first, owner[keep]])
    when = np.concatenate([people.signup[first], sec[keep]])
    order = np.lexsort((cust, when))
    return cust[order], when[order]


@dataclass(frozen=True)
class _Lines:
    order: np.ndarray
    customer: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    second: np.ndarray


def _make_lines(settings: GenerateSettings, rng: np.random.Generator, people: _People,
                catalog: _Catalog, order_cust: np.ndarray, order_sec: np.ndarray) -> _Lines:
    n_cat, n_prod = settings.categories, settings.products
    seg_o = people.segment[order_cust]
    extra = _segment_array("extra_lines")[seg_o]
    n_lines = 1 + np.minimum(rng.negative_binomial(2, 2.0 / (2.0 + extra)),
                             MAX_LINES_PER_ORDER - 1)
    line_order = np.repeat(np.arange(len(order_cust)), n_lines)
    cust = order_cust[line_order]
    seg = people.segment[cust]
    product = np.empty(len(line_order), dtype=np.int64)
    fav = rng.random(len(line_order)) < _segment_array("repeat_prob")[seg]
    # Favourite rank r is chosen with weight 1 / (r + 1) among the segment's favourites.
    n_fav = people.favourites.shape[1]
    counts = _segment_array("favourites")
    rank_w = np.where(np.arange(n_fav)[None, :] < counts[:, None],
                      1.0 / (np.arange(n_fav) + 1.0)[None, :], 0.0)
    rank = _draw(_row_cdf(rank_w), n_fav, seg[fav], rng.random(int(fav.sum())))
    product[fav] = people.favourites[cust[fav], rank]
    fresh = ~fav
    cat = _draw(_row_cdf(people.taste), n_cat, cust[fresh], rng.random(int(fresh.sum())))
    product[fresh] = _draw(catalog.choice_cdf, n_prod, seg[fresh] * n_cat + cat,
                           rng.random(len(cat)))
    quantity = np.minimum(rng.geometric(1.0 / _segment_array("quantity_mean")[seg]),
                          MAX_QUANTITY)
    # The same product twice in one order becomes one line with the summed quantity.
    key, inverse = np.unique(line_order * n_prod + product, return_inverse=True)
    quantity = np.bincount(inverse, weights=quantity).astype(np.int64)
    order, product = key // n_prod, key % n_prod
    cust = order_cust[order]
    seg = people.segment[cust]
    discounted = rng.random(len(order)) < _segment_array("discount_prob")[seg]
    cut = rng.choice(np.array([0.1, 0.2, 0.3]), len(order))
    price = np.maximum(np.round(catalog.price[product] * np.where(discounted, 1 - cut, 1.0), 2),
                       0.01)
    return _Lines(order=order, customer=cust, product=product, quantity=quantity, price=price,
                  second=order_sec[order])


def _add_returns(settings: GenerateSettings, rng: np.random.Generator, people: _People,
                 lines: _Lines) -> _Lines:
    """Append returns (later negative lines), then sort everything by time as a shop export."""
    n = len(lines.order)
    picked = rng.random(n) < settings.return_share
    delay = 3600 + np.floor(rng.exponential(RETURN_DELAY_DAYS * SECONDS_PER_DAY, n))
    back = lines.second + delay.astype(np.int64)
    limit = np.minimum(people.churn[lines.customer], settings.days * SECONDS_PER_DAY)
    ret = np.flatnonzero(picked & (back < limit))
    returned = rng.integers(1, lines.quantity[ret] + 1)
    cols = {
        "order": np.concatenate([lines.order, lines.order[ret]]),
        "customer": np.concatenate([lines.customer, lines.customer[ret]]),
        "product": np.concatenate([lines.product, lines.product[ret]]),
        "quantity": np.concatenate([lines.quantity, -returned]),
        "price": np.concatenate([lines.price, lines.price[ret]]),
        "second": np.concatenate([lines.second, back[ret]]),
    }
    is_return = np.concatenate([np.zeros(n, bool), np.ones(len(ret), bool)])
    order = np.lexsort((is_return, cols["product"], cols["order"], cols["second"]))
    return _Lines(**{k: v[order] for k, v in cols.items()})


# --------------------------------------------------------------------------- messy rows


def _inject_messy(settings: GenerateSettings, rng: np.random.Generator, lines: _Lines,
                  n_customers: int, n_products: int) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Insert broken copies of clean rows shortly after their original; return rows + truth.

    Codes: customer -1 = missing; product >= n_products = unknown; timestamp flag = unparsable.
    """
    n = len(lines.order)
    kinds = [r for r in MESSY_RULES
             if r != UNPARSABLE_TIMESTAMP or settings.timestamp_as_text]
    n_messy = min(round(settings.messy_share * n), n)
    source = np.sort(rng.choice(n, n_messy, replace=False)) if n_messy else np.zeros(0, int)
    kind = rng.integers(0, len(kinds), n_messy)
    gap = rng.integers(0, 20, n_messy)
    messy = {k: getattr(lines, k)[source].copy() for k in
             ("order", "customer", "product", "quantity", "price", "second")}
    bad_time = np.full(n_messy, -1, dtype=np.int64)
    names = np.array(kinds, dtype=object)[kind]
    sel = names == MISSING_CUSTOMER
    messy["customer"][sel] = -1
    sel = names == NON_POSITIVE_PRICE
    messy["price"][sel] = np.where(rng.random(int(sel.sum())) < 0.5, 0.0,
                                   -messy["price"][sel])
    sel = names == UNKNOWN_PRODUCT
    messy["product"][sel] = n_products + np.arange(int(sel.sum()))
    sel = names == ABSURD_QUANTITY
    messy["quantity"][sel] = np.sign(messy["quantity"][sel]) * rng.integers(
        *ABSURD_QUANTITY_RANGE, int(sel.sum()))
    sel = names == UNPARSABLE_TIMESTAMP
    bad_time[sel] = rng.integers(0, len(_BAD_TIMESTAMPS), int(sel.sum()))
    # Clean row i sits at key i; a broken copy of row s sits just after row min(s + gap, n-1).
    key = np.concatenate([np.arange(n, dtype=float),
                          np.minimum(source + gap, n - 1) + 0.5])
    tie = np.concatenate([np.zeros(n, np.int64), np.arange(1, n_messy + 1)])
    order = np.lexsort((tie, key))
    rows = {k: np.concatenate([getattr(lines, k), messy[k]])[order] for k in messy}
    rows["bad_time"] = np.concatenate([np.full(n, -1, np.int64), bad_time])[order]
    position = np.empty(n + n_messy, dtype=np.int64)
    position[order] = np.arange(1, n + n_messy + 1)  # 1-based row in the file
    truth = pd.DataFrame({
        "_source_row": position[n:],
        "rule": names,
        "original_row": position[source],
    }).sort_values("_source_row", kind="stable").reset_index(drop=True)
    return rows, truth


# --------------------------------------------------------------------------- assembly


def _id_strings(prefix: str, count: int, width: int) -> np.ndarray:
    width = max(width, len(str(count)))
    return np.array([f"{prefix}{k:0{width}d}" for k in range(1, count + 1)], dtype=object)


def _transactions_frame(settings: GenerateSettings, rows: dict[str, np.ndarray],
                        people: _People, catalog: _Catalog, n_orders: int) -> pd.DataFrame:
    order_ids = _id_strings("O", n_orders, 7)
    cust_ids = np.append(people.customer_ids, None)  # index -1 -> missing
    n_prod = len(catalog.product_ids)
    n_unknown = int((rows["product"] >= n_prod).sum())
    width = max(5, len(str(n_prod)))
    unknown = np.array([f"P{n_prod + k:0{width}d}" for k in range(1, n_unknown + 1)],
                       dtype=object)
    product_ids = np.concatenate([catalog.product_ids, unknown])
    stamp = (np.datetime64(settings.start, "ns")
             + rows["second"].astype("timedelta64[s]").astype("timedelta64[ns]"))
    timestamp: np.ndarray = stamp
    if settings.timestamp_as_text:
        text = np.datetime_as_string(stamp, unit="s")
        text = np.char.replace(text, "T", " ").astype(object)
        bad = rows["bad_time"] >= 0
        text[bad] = np.array(_BAD_TIMESTAMPS, dtype=object)[rows["bad_time"][bad]]
        timestamp = text
    return pd.DataFrame({
        "order_id": order_ids[rows["order"]],
        "customer_id": cust_ids[rows["customer"]],
        "product_id": product_ids[rows["product"]],
        "quantity": rows["quantity"].astype(np.int64),
        "unit_price": rows["price"].astype(np.float64),
        "timestamp": timestamp,
    })


def _truth_tables(settings: GenerateSettings, people: _People,
                  catalog: _Catalog) -> dict[str, pd.DataFrame]:
    names = np.array([s.name for s in SEGMENT_PROFILES], dtype=object)
    start_ns = np.datetime64(settings.start, "ns")
    churn = start_ns + people.churn.astype("timedelta64[s]")
    churned = people.churn < settings.days * SECONDS_PER_DAY
    customers = pd.DataFrame({
        "customer_id": people.customer_ids,
        "segment": people.segment.astype(np.int64),
        "segment_name": names[people.segment],
        "signup_time": start_ns + people.signup.astype("timedelta64[s]"),
        "churn_time": np.where(churned, churn, np.datetime64("NaT", "ns")),
        "orders_per_month": people.rate * DAYS_PER_MONTH,
        "expected_lifetime_days": people.mean_life,
    })
    for j, name in enumerate(catalog.names):
        customers[f"taste_{name}"] = people.taste[:, j]
    segments = pd.DataFrame([
        {"segment": s, "segment_name": p.name, "share": p.share,
         "orders_per_month": p.orders_per_month, "lifetime_days": p.lifetime_days,
         "mean_lines_per_order": 1 + p.extra_lines, "quantity_mean": p.quantity_mean,
         "price_tilt": p.price_tilt, "repeat_prob": p.repeat_prob, "favourites": p.favourites,
         "discount_prob": p.discount_prob, "seasonal": p.seasonal,
         "customers": int((people.segment == s).sum())}
        for s, p in enumerate(SEGMENT_PROFILES)
    ])
    means = _category_means(settings.categories)
    for j, name in enumerate(catalog.names):
        segments[f"category_{name}"] = means[:, j]
    counts = _segment_array("favourites")[people.segment]
    n_fav = people.favourites.shape[1]
    mask = np.arange(n_fav)[None, :] < counts[:, None]
    owner, rank = np.nonzero(mask)
    favourites = pd.DataFrame({
        "customer_id": people.customer_ids[owner],
        "rank": rank.astype(np.int64) + 1,
        "product_id": catalog.product_ids[people.favourites[owner, rank]],
    })
    return {
        "customers": customers.sort_values("customer_id", kind="stable").reset_index(drop=True),
        "segments": segments,
        "favourites": favourites.sort_values(["customer_id", "rank"], kind="stable")
        .reset_index(drop=True),
    }


def generate(settings: GenerateSettings) -> GeneratedData:
    """Draw a retailer's customers, products and order lines (plus messy rows) with truth,
    or (``kind: repeat_buying``) one product's repeat purchases, see
    :mod:`tailor.data.generate_repeat`."""
    if settings.kind == "repeat_buying":
        from tailor.data.generate_repeat import generate_repeat_buying

        dataset, customers = generate_repeat_buying(settings)
        return GeneratedData(dataset=dataset, truth={"customers": customers})
    if settings.products < settings.categories:
        raise ValueError(
            f"generate.products ({settings.products}) must be >= generate.categories "
            f"({settings.categories}): every category needs a product"
        )
    rng = np.random.Generator(np.random.PCG64(settings.seed))
    cal = _calendar(settings)
    catalog = _make_catalog(settings, rng)
    people = _make_customers(settings, rng, cal, catalog)
    order_cust, order_sec = _make_orders(settings, rng, cal, people)
    lines = _make_lines(settings, rng, people, catalog, order_cust, order_sec)
    lines = _add_returns(settings, rng, people, lines)
    rows, messy = _inject_messy(settings, rng, lines, settings.customers, settings.products)
    transactions = _transactions_frame(settings, rows, people, catalog, len(order_cust))
    customers = people.frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    truth = _truth_tables(settings, people, catalog)
    truth["messy"] = messy
    dataset = Dataset(transactions=transactions, customers=customers, products=catalog.frame)
    return GeneratedData(dataset=dataset, truth=truth)


def write_generated(data: GeneratedData, out_dir: str | Path) -> Path:
    """Write the three contract tables and ``truth/*.parquet``, each file atomically."""
    out_dir = Path(out_dir)
    for name in ("transactions", "customers", "products"):
        frame = data.dataset.table(name)
        if frame is not None:
            write_frame_atomic(frame, out_dir / f"{name}.parquet")
    for name in sorted(data.truth):
        write_frame_atomic(data.truth[name], out_dir / "truth" / f"{name}.parquet")
    return out_dir


def read_truth(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Read the truth tables written by :func:`write_generated` (``<dir>/truth/*.parquet``)."""
    folder = Path(directory) / "truth"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no truth tables (was this data set generated?)")
    return {path.stem: pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}


__all__ = [
    "MESSY_RULES",
    "SEGMENT_PROFILES",
    "GeneratedData",
    "SegmentProfile",
    "generate",
    "read_truth",
    "write_generated",
]
