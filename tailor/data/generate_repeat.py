"""Single-product repeat buying with known truth: who is still a customer, and how they buy.

The kind of data BG/NBD and Pareto/NBD are fitted to (CDNOW-like: one cohort acquired over the
first weeks, then repeat purchases of one product line), drawn from a process that is none of
those models, so none of them is the right answer by construction:

* each customer's first purchase falls in the first ``acquisition_days`` days;
* while alive, purchases follow a renewal process with gamma-distributed gaps: a personal mean
  gap (lognormal) and a personal regularity (gamma shape 1: memoryless like a Poisson process;
  2 or 4: more like clockwork, as refills are), slowed down by a quiet summer and sped up
  before Christmas;
* each customer drops out either after a purchase with a personal probability (BG/NBD's story)
  or at an exponential time (Pareto/NBD's story), half of them each way;
* each purchase is one order line of product ``P0001``: 1 + Poisson(0.4) units at a personal
  price level.

``truth['customers']``: customer_id, first_purchase, churn_time (NaT: alive at the end),
mean_gap_days, regularity, dropout ("after_purchase" or "in_time") and purchases.
No messy rows: the retailer generator covers the data contract's rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailor.configs.schema import GenerateSettings
from tailor.data.dataset import Dataset

PRODUCT_ID = "P0001"
SECONDS_PER_DAY = 86_400
REGULARITIES = np.array([1.0, 2.0, 4.0])
REGULARITY_SHARES = np.array([0.5, 0.3, 0.2])


def _season(day_of_year: np.ndarray) -> np.ndarray:
    """Rate multiplier by day of year: a quiet summer, a pre-Christmas rush."""
    summer = 0.25 * np.exp(-0.5 * ((day_of_year - 200) / 25) ** 2)
    christmas = 0.8 * np.exp(-0.5 * ((day_of_year - 345) / 12) ** 2)
    return 1.0 - summer + christmas


def generate_repeat_buying(settings: GenerateSettings) -> tuple[Dataset, pd.DataFrame]:
    """The data set (one product) and the truth per customer (see the module docstring)."""
    rng = np.random.Generator(np.random.PCG64(settings.seed))
    n = settings.customers
    end = float(settings.days)
    first = rng.uniform(0.0, min(settings.acquisition_days, end / 2), n)
    mean_gap = np.exp(rng.normal(np.log(50.0), 0.7, n))
    shape = rng.choice(REGULARITIES, size=n, p=REGULARITY_SHARES)
    after_purchase = rng.random(n) < 0.5
    drop_p = rng.beta(1.2, 6.0, n)  # chance of leaving after each purchase
    life = rng.exponential(np.exp(rng.normal(np.log(300.0), 0.8, n)))
    price = np.exp(rng.normal(np.log(14.0), 0.35, n))
    start_doy = pd.Timestamp(settings.start).dayofyear

    customer, day = [], []
    churn = np.full(n, np.inf)
    purchases = np.zeros(n, dtype=np.int64)
    for i in range(n):
        t = first[i]
        deadline = first[i] + life[i] if not after_purchase[i] else np.inf
        while t < end:
            if t >= deadline:
                churn[i] = deadline
                break
            customer.append(i)
            day.append(t)
            purchases[i] += 1
            if after_purchase[i] and rng.random() < drop_p[i]:
                churn[i] = t
                break
            season = _season((start_doy + t) % 365.25)
            t += rng.gamma(shape[i], mean_gap[i] / shape[i]) / season
        if deadline < end and not np.isfinite(churn[i]):
            churn[i] = deadline  # left before the gap that would have crossed the deadline

    customer = np.asarray(customer, dtype=np.int64)
    seconds = np.floor(np.asarray(day) * SECONDS_PER_DAY).astype(np.int64)
    order = np.lexsort((customer, seconds))
    customer, seconds = customer[order], seconds[order]
    ids = np.array([f"C{k:06d}" for k in range(1, n + 1)], dtype=object)
    origin = np.datetime64(settings.start, "ns")
    stamps = origin + seconds.astype("timedelta64[s]").astype("timedelta64[ns]")
    transactions = pd.DataFrame({
        "order_id": np.array([f"O{k:07d}" for k in range(1, len(customer) + 1)], dtype=object),
        "customer_id": ids[customer],
        "product_id": PRODUCT_ID,
        "quantity": (1 + rng.poisson(0.4, len(customer))).astype(np.int64),
        "unit_price": np.round(price[customer], 2),
        "timestamp": stamps,
    })
    churned = churn < end
    truth = pd.DataFrame({
        "customer_id": ids,
        "first_purchase": origin + (first * SECONDS_PER_DAY).astype("timedelta64[s]"),
        "churn_time": np.where(churned,
                               origin + (np.where(churned, churn, 0) * SECONDS_PER_DAY)
                               .astype("timedelta64[s]").astype("timedelta64[ns]"),
                               np.datetime64("NaT", "ns")),
        "mean_gap_days": mean_gap,
        "regularity": shape,
        "dropout": np.where(after_purchase, "after_purchase", "in_time").astype(object),
        "purchases": purchases,
    })
    products = pd.DataFrame({"product_id": [PRODUCT_ID], "description": ["the product"],
                             "category": ["all"], "price": [float(np.median(price))]})
    return Dataset(transactions=transactions, customers=None, products=products), truth


__all__ = ["PRODUCT_ID", "generate_repeat_buying"]
