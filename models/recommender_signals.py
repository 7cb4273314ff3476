"""Non-LightFM signals of the recommender and the out-of-time holdout it is judged on.

Retail baskets repeat: a customer's own purchase history predicts the next 90 days better than
any collaborative model (Online Retail: repeat 0.30-0.34 P@10 vs LightFM 0.24). So the final
score blends LightFM with a per-customer repeat score and recent popularity; this module builds
those two signals point-in-time (strictly before ``as_of``), and the holdout truth (strictly in
``[as_of, as_of + H)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailor.models.features import _check_transactions

DAY = np.timedelta64(1, "D")


def _positions(ids: pd.Series, index: pd.Index) -> np.ndarray:
    return index.get_indexer(ids.to_numpy(dtype=object))


def _bought_before(transactions: pd.DataFrame, as_of: pd.Timestamp,
                   columns: list[str]) -> pd.DataFrame:
    """``columns`` of the purchase lines strictly before ``as_of``: one copy of those columns,
    not one of the whole :func:`history` and then one of its purchases."""
    _check_transactions(transactions)
    keep = ((transactions["timestamp"] < as_of).to_numpy(dtype=bool)
            & (transactions["quantity"].to_numpy() > 0))
    return transactions.loc[keep, columns]


def purchase_orders(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per (customer, product, order) bought strictly before ``as_of``, with the order's
    last timestamp: the distinct orders the repeat signals count. Purchase lines only."""
    buy = _bought_before(transactions, as_of, ["customer_id", "product_id", "order_id",
                                               "timestamp"])
    return buy.groupby(["customer_id", "product_id", "order_id"], sort=False,
                       observed=True)["timestamp"].max().reset_index()


def repeat_matrix(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    half_life_days: float | None = None,
) -> sp.csr_matrix:
    """users x items: distinct orders of the item per customer, each order weighted
    ``0.5 ** (age_days / half_life_days)`` (no decay when None). Purchase lines only.

    Distinct orders, not lines or units: a wholesaler's 480 units in one order is one decision.
    Customers/products outside ``user_ids``/``item_ids`` are ignored (they cannot be scored).
    """
    as_of = pd.Timestamp(as_of)
    orders = purchase_orders(transactions, as_of)
    u = _positions(orders["customer_id"], pd.Index(user_ids))
    i = _positions(orders["product_id"], pd.Index(item_ids))
    keep = (u >= 0) & (i >= 0)
    if half_life_days is None:
        weight = np.ones(int(keep.sum()))
    else:
        age = (as_of.to_datetime64() - orders["timestamp"].to_numpy()[keep]) / DAY
        weight = np.power(0.5, age / half_life_days)
    matrix = sp.csr_matrix((weight, (u[keep], i[keep])), shape=(len(user_ids), len(item_ids)))
    matrix.sum_duplicates()
    return matrix


def row_max_normalise(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its maximum (rows in [0, 1]; empty rows stay empty)."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    counts = np.diff(matrix.indptr)
    if matrix.nnz:
        top = np.maximum.reduceat(matrix.data, matrix.indptr[:-1][counts > 0])
        matrix.data /= np.repeat(top, counts[counts > 0])
    return matrix


def popularity(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    item_ids: np.ndarray,
    window_days: int,
) -> np.ndarray:
    """Per item, in [0, 1]: distinct buyers in the ``window_days`` before ``as_of``; ties (and
    items unsold in the window) ordered by distinct buyers over all history."""
    as_of = pd.Timestamp(as_of)
    buy = _bought_before(transactions, as_of, ["customer_id", "product_id", "timestamp"])
    index = pd.Index(item_ids)

    def buyers(frame: pd.DataFrame) -> np.ndarray:
        pairs = frame.drop_duplicates(["customer_id", "product_id"])
        pos = _positions(pairs["product_id"], index)
        return np.bincount(pos[pos >= 0], minlength=len(index)).astype(np.float64)

    recent = buyers(buy.loc[buy["timestamp"] >= as_of - pd.Timedelta(days=window_days)])
    ever = buyers(buy)
    score = recent + ever / (ever.max() + 1.0)
    top = score.max()
    return (score / top).astype(np.float32) if top > 0 else score.astype(np.float32)


@dataclass(frozen=True, eq=False)
class Holdout:
    """What customers bought in ``[as_of, as_of + horizon_days)``.

    ``truth``: known users x known items (binary CSR, rows = the model's users);
    ``n_relevant``: distinct products per known user, including products the model cannot rank
    (first sold after ``as_of``), so recall is not flattered; ``cold_*``: the same for customers
    with no purchase before ``as_of`` (their first purchase falls in the window).
    """

    truth: sp.csr_matrix
    n_relevant: np.ndarray
    cold_ids: np.ndarray
    cold_truth: sp.csr_matrix
    cold_n_relevant: np.ndarray


def _binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def holdout(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    horizon_days: int,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
) -> Holdout:
    """Holdout truth for known and cold (first purchase in the window) customers."""
    as_of = pd.Timestamp(as_of)
    end = as_of + pd.Timedelta(days=horizon_days)
    stamp = transactions["timestamp"]
    window = transactions.loc[(stamp >= as_of) & (stamp < end)
                              & (transactions["quantity"] > 0), ["customer_id", "product_id"]]
    window = window.drop_duplicates()
    seen_before = transactions.loc[(stamp < as_of).to_numpy(), "customer_id"].unique()
    users = pd.Index(user_ids)
    items = pd.Index(item_ids)
    u = _positions(window["customer_id"], users)
    i = _positions(window["product_id"], items)
    known = (u >= 0) & (i >= 0)
    truth = _binary(u[known], i[known], (len(users), len(items)))
    n_relevant = np.bincount(u[u >= 0], minlength=len(users)).astype(np.float64)

    cold = window.loc[~window["customer_id"].isin(seen_before)]
    cold_ids = np.sort(cold["customer_id"].unique().astype(object))
    cu = _positions(cold["customer_id"], pd.Index(cold_ids))
    ci = _positions(cold["product_id"], items)
    cold_truth = _binary(cu[ci >= 0], ci[ci >= 0], (len(cold_ids), len(items)))
    cold_n = np.bincount(cu, minlength=len(cold_ids)).astype(np.float64)
    return Holdout(truth, n_relevant, cold_ids, cold_truth, cold_n)


__all__ = ["DAY", "Holdout", "holdout", "popularity", "purchase_orders", "repeat_matrix",
           "row_max_normalise"]
