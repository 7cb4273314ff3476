"""The row rules of each table, in priority order, and the split of a raw table into accepted,
contract-typed rows and quarantined raw rows labelled with the rules they fail."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tailor.configs.schema import DataSettings
from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW
from tailor.data.validate_coercion import (
    STRING,
    clean_ids,
    clean_numbers,
    clean_texts,
    clean_timestamps,
)

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


def _kept(values: pd.Series | np.ndarray, keep: np.ndarray, good: np.ndarray
          ) -> pd.Series | np.ndarray:
    """The accepted rows of one column (``keep``: their positions, ``good``: the same as a
    mask), on a fresh positional index; arrow strings by arrow's filter, several times faster
    than a take by positions."""
    if not isinstance(values, pd.Series):
        return values[keep]
    if values.dtype == STRING:
        text = pa.array(values.array).filter(pa.array(good))
        return pd.Series(pd.arrays.ArrowStringArray(text), name=values.name)
    return values.iloc[keep].reset_index(drop=True)


def _split(raw: pd.DataFrame, typed: dict[str, pd.Series | np.ndarray],
           masks: dict[str, np.ndarray], rules: tuple[str, ...]) -> _Checked:
    """Accepted rows (typed contract columns + raw extras) and quarantined raw rows with rules."""
    n = len(raw)
    names = [r for r in rules if r in masks]
    matrix = (np.column_stack([masks[r] for r in names]) if names
              else np.zeros((n, 0), dtype=bool))
    bad = matrix.any(axis=1)
    keep = np.flatnonzero(~bad)
    columns = {col: _kept(typed.get(col, raw[col]), keep, ~bad)
               for col in raw.columns if col not in SOURCE_COLUMNS}
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


def _isin(ids: pd.Series, values: pd.Series) -> np.ndarray:
    """``ids.isin(values).to_numpy()``. For arrow strings pandas first boxes every one of
    ``values`` (a million bought ids) as a Python object; arrow's hash set of the distinct
    values gives the same answer (NA is in ``values`` when one of them is NA) without that."""
    if ids.dtype != STRING or values.dtype != STRING:
        return ids.isin(values).to_numpy()
    text = pa.array(ids.array)
    wanted = pc.unique(pa.array(values.array)).cast(text.type)
    return pc.is_in(text, value_set=wanted, skip_nulls=False).to_numpy(zero_copy_only=False)


_MIX = np.uint64(0x9E3779B97F4A7C15)
_TABLE_BITS = 22
_FEW_CANDIDATES = 50_000


def _hash_codes(values: pd.Series | np.ndarray) -> np.ndarray:
    """One uint64 per value; values pandas counts as equal (NaN and NaN, 0.0 and -0.0, equal
    strings, NA and NA) always get the same number, unequal ones almost never do."""
    if isinstance(values, pd.Series) and values.dtype.kind in "fMmiub":
        values = values.to_numpy()
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        canonical = np.where(values == 0, 0.0, values).astype(np.float64)
        canonical[np.isnan(canonical)] = np.nan
        return canonical.view(np.uint64)
    if isinstance(values, np.ndarray) and values.dtype.kind in "Mm":
        return values.view(np.int64).astype(np.uint64)
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        return values.astype(np.int64).astype(np.uint64)
    return pd.factorize(pd.Series(values))[0].astype(np.uint64)


def _mix(h: np.ndarray, codes: np.ndarray) -> np.ndarray:
    h = (h ^ codes) * _MIX
    return h ^ (h >> np.uint64(29))


def _shared(h: np.ndarray) -> np.ndarray:
    """Which hashes occur more than once. A sort of the values (no argsort: 10x faster) finds
    the repeated ones; a bit table of their low bits and a binary search find their rows."""
    ordered = np.sort(h)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    out = np.zeros(len(h), dtype=bool)
    if not len(repeated):
        return out
    low = np.uint64((1 << _TABLE_BITS) - 1)
    table = np.zeros(1 << _TABLE_BITS, dtype=bool)
    table[(repeated & low).astype(np.intp)] = True
    maybe = np.flatnonzero(table[(h & low).astype(np.intp)])
    at = np.minimum(np.searchsorted(repeated, h[maybe]), len(repeated) - 1)
    out[maybe[repeated[at] == h[maybe]]] = True
    return out


def _duplicate_lines(key: pd.DataFrame) -> np.ndarray:
    """``key.duplicated(keep="first").to_numpy()``, but pandas only looks at the rows whose
    hash is shared: equal rows hash alike, so every repeat and its first stay among them, in
    their order, and pandas decides on those rows exactly as on all of them. Numbers and times
    are hashed first (cheap); a text column is added, on the remaining rows only, while more
    than a few candidates are left."""
    out = np.zeros(len(key), dtype=bool)
    if len(key) < 2:
        return out
    numeric = [c for c in key.columns if key[c].dtype.kind in "fMmiub"]
    others = [c for c in key.columns if c not in numeric]
    if not numeric:
        numeric, others = others[:1], others[1:]
    h = np.zeros(len(key), dtype=np.uint64)
    for col in numeric:
        h = _mix(h, _hash_codes(key[col]))
    shared = _shared(h)
    rows, h = np.flatnonzero(shared), h[shared]
    for col in others:
        if len(rows) <= _FEW_CANDIDATES:
            break
        h = _mix(h, _hash_codes(key[col].iloc[rows]))
        shared = _shared(h)
        rows, h = rows[shared], h[shared]
    out[rows] = key.iloc[rows].duplicated(keep="first").to_numpy()
    return out


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
        unused = self.ids.notna().to_numpy(dtype=bool) & ~_isin(self.ids, bought)
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
            masks[rule] = ids.notna().to_numpy(dtype=bool) & ~_isin(ids, ids_known)
    key = pd.DataFrame({"o": order, "c": customer, "p": product, "q": quantity, "u": price,
                        "t": timestamp})
    masks["duplicate_line"] = _duplicate_lines(key)
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
