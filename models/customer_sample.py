"""A seeded sample of customers, so that work which only has to learn parameters (the
recommender's tuning study, its ranker's training windows) costs the same at 100k customers as
at 10k, while the served model still covers every customer.

The sample is drawn from the sorted distinct ids with the given seed: the same data and seed
give the same customers on every machine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sample_ids(ids: pd.Series | np.ndarray, at_most: int | None, seed: int) -> np.ndarray | None:
    """At most ``at_most`` of the distinct ``ids``, sorted (None: all of them, when there are
    no more than ``at_most`` or ``at_most`` is None)."""
    distinct = pd.unique(np.asarray(ids, dtype=object))
    if at_most is None or len(distinct) <= at_most:
        return None
    ordered = np.sort(distinct.astype(str)).astype(object)
    chosen = np.random.default_rng(seed).choice(len(ordered), at_most, replace=False)
    return ordered[np.sort(chosen)]


def customers_sample(transactions: pd.DataFrame, at_most: int | None, seed: int
                     ) -> pd.DataFrame:
    """The lines of at most ``at_most`` seeded customers (all lines when there are fewer)."""
    chosen = sample_ids(transactions["customer_id"], at_most, seed)
    if chosen is None:
        return transactions
    return transactions[transactions["customer_id"].isin(chosen)]


__all__ = ["customers_sample", "sample_ids"]
