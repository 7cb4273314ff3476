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

The parts of that process live in their own modules: :mod:`tailor.data.generate_segments`
(segments and attributes), :mod:`tailor.data.generate_catalog` (products),
:mod:`tailor.data.generate_shoppers` (customers, orders, returns) and
:mod:`tailor.data.generate_messy` (broken rows), drawing with
:mod:`tailor.data.generate_sampling`. This module puts the tables and the truth together and
writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tailor.configs.schema import GenerateSettings
from tailor.data.dataset import Dataset
from tailor.data.generate_catalog import _Catalog, _make_catalog
from tailor.data.generate_messy import _BAD_TIMESTAMPS, MESSY_RULES, _inject_messy
from tailor.data.generate_sampling import _calendar
from tailor.data.generate_segments import (
    SEGMENT_PROFILES,
    SegmentProfile,
    _category_means,
    _segment_array,
)
from tailor.data.generate_shoppers import (
    DAYS_PER_MONTH,
    SECONDS_PER_DAY,
    _add_returns,
    _make_customers,
    _make_lines,
    _make_orders,
    _People,
)
from tailor.data.io import write_frame_atomic


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
