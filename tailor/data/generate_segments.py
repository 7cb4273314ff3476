"""The latent segments of the synthetic retailer: the truth segmentation should recover, and the
customer attributes and category mixes drawn from it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def _home_segment(n_categories: int) -> np.ndarray:
    return np.arange(n_categories) % len(SEGMENT_PROFILES)


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


__all__ = [
    "AGE_BANDS",
    "CHANNELS",
    "HOME_MASS",
    "REGIONS",
    "SEGMENT_PROFILES",
    "TASTE_CONCENTRATION",
    "SegmentProfile",
]
