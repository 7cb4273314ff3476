"""The synthetic retailer's customers and what they do: sign up, buy to their taste and order
rate, slow down before they churn, and return some of what they bought."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailor.configs.schema import GenerateSettings
from tailor.data.generate_catalog import _Catalog
from tailor.data.generate_sampling import _Calendar, _draw, _draw_by_group, _row_cdf
from tailor.data.generate_segments import (
    AGE_BANDS,
    CHANNELS,
    REGIONS,
    SEGMENT_PROFILES,
    TASTE_CONCENTRATION,
    _category_means,
    _segment_array,
)

SECONDS_PER_DAY = 86_400
DAYS_PER_MONTH = 30.4375

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
RETURN_DELAY_DAYS = 8.0
MAX_LINES_PER_ORDER = 50
MAX_QUANTITY = 500


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


__all__ = [
    "AGE_LIFETIME",
    "CHANNEL_LIFETIME",
    "DAYS_PER_MONTH",
    "FADE_DAYS",
    "FADE_KEEP",
    "MAX_LINES_PER_ORDER",
    "MAX_QUANTITY",
    "PRE_START_DAYS",
    "PRE_START_SHARE",
    "RATE_SIGMA",
    "RETURN_DELAY_DAYS",
    "SECONDS_PER_DAY",
]
