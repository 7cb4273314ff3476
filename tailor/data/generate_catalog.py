"""The synthetic retailer's catalogue: categories, lognormal prices, Zipf-like popularity within
each category, and descriptions built from per-category and price-tier words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailor.configs.schema import GenerateSettings
from tailor.data.generate_sampling import _row_cdf
from tailor.data.generate_segments import SEGMENT_PROFILES, _home_segment

ZIPF_EXPONENT = 1.1
PRICE_SIGMA = 0.55

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


__all__ = [
    "PRICE_SIGMA",
    "ZIPF_EXPONENT",
]
