"""The row rules of each table, in priority order, and the split of a raw table into accepted,
contract-typed rows and quarantined raw rows labelled with the rules they fail."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailor.configs.schema import DataSettings
from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW
from tailor.data.validate_coercion import clean_ids, clean_numbers, clean_texts, clean_timestamps

RULE = "_rule"
RULES = "_rules"
SOURCE_COLUMNS = (SOURCE_FILE, SOURCE_ROW)

TRANSACTION_RULES = (
    "missing_order_id",
    "missing_customer",
    "missing_product",
    "unparsable_quantity",
    "zero_quantity",
    "absurd_quantity",
    "unparsable_price",
    "non_positive_price",
    "absurd_price",
    "unparsable_timestamp",
    "future_timestamp",
    "unknown_product",
    "unknown_customer",
    "duplicate_line",
)
CUSTOMER_RULES = ("missing_customer_id", "duplicate_customer_id", "no_transactions")
PRODUCT_RULES = ("missing_product_id", "unparsable_price", "negative_price", "duplicate_product_id",
                 "no_transactions")
SHARE_EXEMPT = frozenset({"no_transactions"})
"""Rules whose rows do not count toward ``data.max_rejected_share`` (sound rows, just unused)."""
ROW_RULES: dict[str, tuple[str, ...]] = {
    "transactions": TRANSACTION_RULES,
    "customers": CUSTOMER_RULES,
    "products": PRODUCT_RULES,
}
RULE_COLUMNS: dict[str, dict[str, str]] = {  # table -> rule -> the column it looks at
    "transactions": {
        "missing_order_id": "order_id", "missing_customer": "customer_id",
        "missing_product": "product_id",
        **dict.fromkeys(("unparsable_quantity", "zero_quantity", "absurd_quantity"), "quantity"),
        **dict.fromkeys(("unparsable_price", "non_positive_price", "absurd_price"),
                        "unit_price"),
        "unparsable_timestamp": "timestamp", "future_timestamp": "timestamp",
        "unknown_product": "product_id",
        "unknown_customer": "customer_id",  # duplicate_line looks at all contract columns
    },
    "customers": dict.fromkeys(CUSTOMER_RULES, "customer_id"),
    "products": {"missing_product_id": "product_id", "duplicate_product_id": "product_id",
                 "unparsable_price": "price", "negative_price": "price",
                 "no_transactions": "product_id"},
}


@dataclass(frozen=True)
class _Checked:
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict[str, int]
    clean_rows: np.ndarray  # _source_row of each clean row, to point back at the file


def _split(raw: pd.DataFrame, typed: dict[str, pd.Series | np.ndarray],
           masks: dict[str, np.ndarray], rules: tuple[str, ...]) -> _Checked:
    """Accepted rows (typed contract columns + raw extras) and quarantined raw rows with rules."""
    n = len(raw)
    names = [r for r in rules if r in masks]
    matrix = (np.column_stack([masks[r] for r in names]) if names
              else np.zeros((n, 0), dtype=bool))
    bad = matrix.any(axis=1)
    keep = np.flatnonzero(~bad)
    columns = {}
    for col in raw.columns:
        if col in SOURCE_COLUMNS:
            continue
        values = typed.get(col, raw[col])
        columns[col] = (values.iloc[keep].reset_index(drop=True)
                        if isinstance(values, pd.Series) else values[keep])
    clean = pd.DataFrame(columns, index=pd.RangeIndex(len(keep)))

    drop = np.flatnonzero(bad)
    ordered = [c for c in raw.columns if c not in SOURCE_COLUMNS] + list(SOURCE_COLUMNS)
    quarantine = raw.iloc[drop][ordered].reset_index(drop=True)
    hits = matrix[drop]
    label = np.array(names, dtype=object)
    quarantine[RULE] = label[hits.argmax(axis=1)] if len(drop) else np.array([], dtype=object)
    joined = np.full(len(drop), "", dtype=object)
    for i, rule in enumerate(names):
        joined[hits[:, i]] = joined[hits[:, i]] + ";" + rule
    quarantine[RULES] = np.array([s[1:] for s in joined], dtype=object)
    counts = quarantine[RULE].value_counts()
    return _Checked(clean, quarantine, {str(k): int(v) for k, v in counts.items()},
                    raw[SOURCE_ROW].to_numpy()[keep])


def _duplicate_ids(ids: pd.Series) -> np.ndarray:
    return (ids.notna() & ids.duplicated(keep="first")).to_numpy()


@dataclass(frozen=True)
class _Marked:
    """A side table's typed columns and rule masks before the split: ``no_transactions`` can
    only be added once the transactions are checked against the ids that pass the rest."""

    raw: pd.DataFrame
    ids: pd.Series  # the clean id column, also in ``typed``
    typed: dict[str, pd.Series | np.ndarray]
    masks: dict[str, np.ndarray]

    def passing_ids(self) -> pd.Series:
        """Ids of the rows no rule has flagged so far (what transactions may refer to)."""
        flagged = np.zeros(len(self.raw), dtype=bool)
        for mask in self.masks.values():
            flagged |= mask
        return self.ids[~flagged]

    def split(self, bought: pd.Series, rules: tuple[str, ...]) -> _Checked:
        """Flag ids absent from the accepted transactions (``bought``), then split."""
        unused = (self.ids.notna() & ~self.ids.isin(bought)).to_numpy(dtype=bool)
        return _split(self.raw, self.typed, {**self.masks, "no_transactions": unused}, rules)


def _mark_customers(raw: pd.DataFrame, settings: DataSettings) -> _Marked:
    ids = clean_ids(raw["customer_id"])
    masks = {
        "missing_customer_id": ids.isna().to_numpy(),
        "duplicate_customer_id": _duplicate_ids(ids),
    }
    return _Marked(raw, ids, {"customer_id": ids}, masks)


def _mark_products(raw: pd.DataFrame, settings: DataSettings) -> _Marked:
    ids = clean_ids(raw["product_id"])
    typed: dict[str, pd.Series | np.ndarray] = {"product_id": ids}
    masks = {"missing_product_id": ids.isna().to_numpy()}
    if "price" in raw.columns:
        price = clean_numbers(raw["price"])
        given = clean_texts(raw["price"]).str.strip().str.len() > 0
        masks["unparsable_price"] = given.to_numpy(dtype=bool, na_value=False) & ~np.isfinite(price)
        masks["negative_price"] = price < 0
        typed["price"] = price
    for col in ("category", "description"):
        if col in raw.columns:
            typed[col] = clean_texts(raw[col])
    masks["duplicate_product_id"] = _duplicate_ids(ids)
    return _Marked(raw, ids, typed, masks)


def _check_transactions(raw: pd.DataFrame, settings: DataSettings,
                        known: dict[str, pd.Series | None], latest: pd.Timestamp) -> _Checked:
    """Row rules of the order lines; ``latest`` is the last plausible time (run + tolerance)."""
    order, customer, product = (clean_ids(raw[c])
                                for c in ("order_id", "customer_id", "product_id"))
    quantity = clean_numbers(raw["quantity"])
    price = clean_numbers(raw["unit_price"])
    timestamp = clean_timestamps(raw["timestamp"], dayfirst=settings.timestamp_dayfirst)
    with np.errstate(invalid="ignore"):
        q_ok = np.isfinite(quantity) & (np.floor(quantity) == quantity)
        p_ok = np.isfinite(price)
        masks = {
            "missing_order_id": order.isna().to_numpy(),
            "missing_customer": customer.isna().to_numpy(),
            "missing_product": product.isna().to_numpy(),
            "unparsable_quantity": ~q_ok,
            "zero_quantity": q_ok & (quantity == 0),
            "absurd_quantity": q_ok & (np.abs(quantity) > settings.max_abs_quantity),
            "unparsable_price": ~p_ok,
            "non_positive_price": p_ok & (price <= 0),
            "absurd_price": p_ok & (price > settings.max_unit_price),
            "unparsable_timestamp": timestamp.isna().to_numpy(),
            "future_timestamp": (timestamp > latest).to_numpy(dtype=bool),
        }
    for rule, ids, table, required in (
        ("unknown_product", product, "products", settings.require_known_products),
        ("unknown_customer", customer, "customers", settings.require_known_customers),
    ):
        ids_known = known.get(table)
        if required and ids_known is not None:
            masks[rule] = (ids.notna() & ~ids.isin(ids_known)).to_numpy()
    key = pd.DataFrame({"o": order, "c": customer, "p": product, "q": quantity, "u": price,
                        "t": timestamp})
    masks["duplicate_line"] = key.duplicated(keep="first").to_numpy()
    # rejected rows may hold NaN; accepted ones are whole numbers within bounds
    whole = np.where(q_ok & (np.abs(quantity) <= settings.max_abs_quantity), quantity, 0)
    typed = {"order_id": order, "customer_id": customer, "product_id": product,
             "quantity": whole.astype(np.int64), "unit_price": price, "timestamp": timestamp}
    return _split(raw, typed, masks, TRANSACTION_RULES)


__all__ = [
    "CUSTOMER_RULES",
    "PRODUCT_RULES",
    "ROW_RULES",
    "RULE",
    "RULES",
    "RULE_COLUMNS",
    "SHARE_EXEMPT",
    "SOURCE_COLUMNS",
    "TRANSACTION_RULES",
]
