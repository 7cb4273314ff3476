"""Messy rows: broken copies of clean order lines, each breaking exactly one rule of the data
contract, inserted shortly after their original, with the truth of where each one is."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailor.configs.schema import GenerateSettings
from tailor.data.generate_shoppers import _Lines

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


__all__ = [
    "ABSURD_QUANTITY",
    "ABSURD_QUANTITY_RANGE",
    "DUPLICATE_LINE",
    "MESSY_RULES",
    "MISSING_CUSTOMER",
    "NON_POSITIVE_PRICE",
    "UNKNOWN_PRODUCT",
    "UNPARSABLE_TIMESTAMP",
]
