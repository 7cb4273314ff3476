"""Point-in-time customer features and churn labels.

Everything here looks only at transactions strictly before ``as_of`` (see :func:`history`), so a
model trained on features at ``as_of`` and labels from ``[as_of, as_of + H)`` never sees the
future. Inputs are validated contract tables (:mod:`tailor.contracts`): negative quantity is a
return, ``unit_price > 0``, ``timestamp`` is ``datetime64[ns]``.

Column names of :func:`customer_features` are an API (model signatures are built from them); the
order is :data:`BASE_COLUMNS`, then ``cat_share_*`` (see :func:`_category_shares`), then the
customers table's attribute columns prefixed ``attr_`` in table order. The base columns are
one DuckDB query over the frame (:mod:`tailor.models.customer_features_sql`); the category shares
and the integer fast paths other modules share are numpy.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from tailor.configs.schema import FeatureSettings
from tailor.contracts import CustomerFeatures, DataFrame
from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW
from tailor.models.customer_features_sql import base_features

DAY = pd.Timedelta(days=1)

#: Numeric columns every customer gets, in this order (all float64, never NaN):
#:
#: - ``recency_days``: days from the last purchase line to ``as_of``.
#: - ``frequency``: distinct purchase orders.
#: - ``monetary``: net spend, purchases minus returns (``quantity * unit_price``), clipped at 0
#:   because returns of goods bought before the data starts can outweigh the purchases seen.
#: - ``avg_order_value``: gross purchase spend / ``frequency`` (what a basket is worth when
#:   ordered; returns are measured by ``return_rate``).
#: - ``tenure_days``: days from the first purchase to ``as_of``.
#: - ``active_months``: distinct calendar months with a purchase.
#: - ``ipi_mean_days``, ``ipi_std_days``, ``ipi_median_days``: inter-purchase intervals in days
#:   between consecutive distinct purchase *days*. With a single purchase day there is no interval:
#:   mean and median are filled with ``tenure_days`` (the customer has not come back in that long,
#:   a lower bound of the interval) and std with 0. Std is the population std (ddof=0), so one
#:   interval gives 0.
#: - ``basket_units_mean``, ``basket_lines_mean``: purchased units and lines per purchase order.
#: - ``distinct_products``: distinct products purchased.
#: - ``return_rate``: returned units / purchased units, clipped to [0, 1].
#: - ``orders_recent``: purchase orders in ``[as_of - W, as_of)``, W = ``trend_window_days``;
#:   ``orders_previous``: in ``[as_of - 2W, as_of - W)``; an order's time is its first line's.
#: - ``trend``: ``(recent - previous) / (recent + previous + 1)``, in (-1, 1).
#: - ``purchase_days``: distinct calendar days with a purchase (buy-till-you-die models count
#:   repeat purchase days: ``purchase_days - 1``, see :mod:`tailor.models.btyd`).
BASE_COLUMNS: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "tenure_days",
    "active_months",
    "ipi_mean_days",
    "ipi_std_days",
    "ipi_median_days",
    "basket_units_mean",
    "basket_lines_mean",
    "distinct_products",
    "return_rate",
    "orders_recent",
    "orders_previous",
    "trend",
    "purchase_days",
)
CATEGORY_PREFIX = "cat_share_"
OTHER_CATEGORY = "other"
ATTRIBUTE_PREFIX = "attr_"
PROVENANCE_COLUMNS = (SOURCE_FILE, SOURCE_ROW)
TRANSACTION_COLUMNS = ("order_id", "customer_id", "product_id", "quantity", "unit_price",
                       "timestamp")


def _as_timestamp(as_of: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(as_of)
    if stamp is pd.NaT:
        raise ValueError("as_of is NaT; expected a point in time")
    return stamp


def _check_transactions(transactions: pd.DataFrame) -> None:
    missing = [c for c in TRANSACTION_COLUMNS if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions: missing column(s) {missing}; expected the contract "
                         f"columns {list(TRANSACTION_COLUMNS)} (validate the data first)")
    if not pd.api.types.is_datetime64_any_dtype(transactions["timestamp"]):
        raise TypeError(f"transactions: column 'timestamp' must be datetime64, got "
                        f"{transactions['timestamp'].dtype} (validate the data first)")


def history(transactions: pd.DataFrame, as_of: pd.Timestamp | str) -> pd.DataFrame:
    """Rows strictly before ``as_of``: the only rows a point-in-time feature may look at.

    When every row is, a shallow copy (its own columns, the same values) instead of a copy of
    every value: a served model is fit on all the history, and at 10M lines each copy is a
    gigabyte. Nothing here writes into a frame's values."""
    _check_transactions(transactions)
    before = (transactions["timestamp"] < _as_timestamp(as_of)).to_numpy(dtype=bool)
    return transactions.copy(deep=False) if before.all() else transactions.loc[before]


def default_as_of(transactions: pd.DataFrame) -> pd.Timestamp:
    """The day after the last transaction, at midnight: "now" for a data set exported today."""
    _check_transactions(transactions)
    if transactions.empty:
        raise ValueError("transactions is empty: no as_of can be derived")
    return transactions["timestamp"].max().normalize() + DAY


def _sorted_unique(keys: np.ndarray, inverse: bool
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """``np.unique(keys[, return_inverse=True])`` of integers without its argsort of every key
    (10M keys: seconds): a presence table and its running count when the keys span few
    values, else a hash factorisation whose few distinct keys are then ranked."""
    span = int(keys.max()) - int(keys.min()) + 1 if len(keys) else 0
    if not len(keys):
        return (np.unique(keys, return_inverse=True) if inverse else (np.unique(keys), None))
    if span > max(4 * len(keys), 1 << 16):
        if not inverse:
            return np.unique(keys), None  # a plain sort: fast
        codes, distinct = pd.factorize(keys)
        order = np.argsort(distinct)
        rank = np.empty(len(distinct), dtype=np.intp)
        rank[order] = np.arange(len(distinct))
        return distinct[order], rank[codes]
    low = keys.min()
    offset = keys - low
    seen = np.zeros(span, dtype=bool)
    seen[offset] = True
    uniques = (np.flatnonzero(seen) + low).astype(keys.dtype)
    if not inverse:
        return uniques, None
    return uniques, (np.cumsum(seen) - 1)[offset]


def _dictionary(col: pd.Series) -> tuple[np.ndarray, pa_arrow.Array] | None:
    """An arrow-string column without NA as (code per row, distinct values): one hash pass
    over the strings, after which rows are selected and grouped as integers. None otherwise."""
    if not (isinstance(col.dtype, pd.StringDtype) and col.dtype.storage == "pyarrow"):
        return None
    text = pa_arrow.array(col.array)
    if text.null_count:
        return None
    encoded = pc.dictionary_encode(text)
    if isinstance(encoded, pa_arrow.ChunkedArray):
        if encoded.num_chunks == 0:
            return np.zeros(0, dtype=np.intp), pa_arrow.array([], text.type)
        encoded = encoded.combine_chunks()  # the chunks share one dictionary
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    return codes, encoded.dictionary


def _string_index(values: pa_arrow.Array) -> pd.Index:
    return pd.Index(pd.arrays.ArrowStringArray(values.cast(pa_arrow.large_string())))


def _factorized(col: pd.Series, rows: np.ndarray) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(col[rows])`` (codes in order of first appearance, and the uniques)
    without copying the selected strings out of the column first."""
    encoded = _dictionary(col)
    if encoded is None:
        return pd.factorize(col[rows])
    codes, dictionary = encoded
    local, first_codes = pd.factorize(codes[rows])
    return local, _string_index(dictionary.take(pa_arrow.array(first_codes)))


def _buyer_codes(col: pd.Series, bought: np.ndarray, returned: np.ndarray
                 ) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """Customer code per bought line (``pd.factorize(col[bought], sort=True)``), the sorted
    buyer ids, and the code of each returned line's customer (-1 if they bought nothing)."""
    encoded = _dictionary(col)
    if encoded is None:
        codes, ids = pd.factorize(col[bought], sort=True)
        return codes, ids, ids.get_indexer(col[returned])
    all_codes, dictionary = encoded
    buyers = np.flatnonzero(np.bincount(all_codes[bought], minlength=len(dictionary)))
    ordered = buyers[pc.sort_indices(dictionary.take(pa_arrow.array(buyers))).to_numpy()]
    rank = np.full(len(dictionary), -1, dtype=np.intp)
    rank[ordered] = np.arange(len(ordered))
    ids = _string_index(dictionary.take(pa_arrow.array(ordered)))
    return rank[all_codes[bought]], ids, rank[all_codes[returned]]


def _slug(name: object) -> str:
    slug = re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")
    return slug or "blank"


def _unique_slugs(names: list[str], reserved: set[str]) -> list[str]:
    """Column-safe slugs, de-duplicated with ``_2``, ``_3``... (``"A B"`` and ``"a-b"`` differ)."""
    taken = set(reserved)
    out = []
    for name in names:
        slug, base, n = _slug(name), _slug(name), 1
        while slug in taken:
            n += 1
            slug = f"{base}_{n}"
        taken.add(slug)
        out.append(slug)
    return out


def _product_categories(products: pd.DataFrame | None) -> pd.Series | None:
    if products is None or "category" not in products.columns:
        return None
    return products.set_index("product_id")["category"]


def _category_shares(value: np.ndarray, product_codes: np.ndarray, product_ids: pd.Index,
                     codes: np.ndarray, n_customers: int, category_of: pd.Series,
                     top: int) -> pd.DataFrame:
    """Share of each customer's gross purchase spend per top category (by total spend), + other.

    Columns: ``cat_share_<slug>`` for the ``top`` categories, alphabetical by slug (lower-case,
    non-alphanumerics as ``_``, de-duplicated with ``_2``...), then ``cat_share_other``.

    Products without a category, or missing from the products table, count as ``other``.
    Top categories are chosen from the same history, so they are point-in-time too. Lines
    carry ``product_codes`` into ``product_ids``: categories are looked up once per product.
    """
    category = pd.Series(product_ids).map(category_of)  # one per product
    category_codes, names = pd.factorize(category)
    line_category = category_codes[product_codes]
    known = line_category >= 0  # unknown categories dropped
    spend = pd.Series(value[known]).groupby(line_category[known]).sum()
    ranked = sorted(((names[k], total) for k, total in spend.items()),
                    key=lambda kv: (-kv[1], str(kv[0])))[:top]
    chosen = [name for name, _ in ranked]
    slugs = _unique_slugs([str(c) for c in chosen], reserved={OTHER_CATEGORY})
    order = np.argsort(slugs, kind="stable")
    # column k < len(chosen): chosen[order[k]]; column len(chosen): other
    column_of = {chosen[j]: k for k, j in enumerate(order)}
    n_cols = len(chosen) + 1
    col = category.map(column_of).fillna(len(chosen)).to_numpy(dtype=np.int64)[product_codes]
    totals = np.bincount(codes * n_cols + col, weights=value, minlength=n_customers * n_cols)
    totals = totals.reshape(n_customers, n_cols)
    shares = totals / totals.sum(axis=1, keepdims=True)
    columns = [CATEGORY_PREFIX + slugs[j] for j in order] + [CATEGORY_PREFIX + OTHER_CATEGORY]
    return pd.DataFrame(shares, columns=columns)


def attribute_columns(customers: pd.DataFrame) -> list[str]:
    """Customer attribute columns used as features: all but the id and provenance columns."""
    return [c for c in customers.columns
            if c != "customer_id" and c not in PROVENANCE_COLUMNS]


def _empty_features(customers: pd.DataFrame | None) -> pd.DataFrame:
    index = pd.Index([], dtype=object, name="customer_id")
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in BASE_COLUMNS}, index=index)
    if customers is not None:
        for col in attribute_columns(customers):
            frame[ATTRIBUTE_PREFIX + col] = pd.Series(dtype=customers[col].dtype)
    return frame


@pa.check_types(inplace=True)
def customer_features(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    settings: FeatureSettings,
    customers: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
) -> DataFrame[CustomerFeatures]:
    """One row per customer with a purchase before ``as_of``; columns as in the module docstring.

    Index: ``customer_id`` (str), sorted. Numeric columns are float64 and never NaN; ``attr_*``
    columns keep the customers table's dtypes (NaN for customers missing from that table).
    Category shares appear only when ``products`` has a ``category`` column. The result is
    checked against :class:`~tailor.contracts.CustomerFeatures` (in place: no copy), so every
    consumer (training, scoring, the serving snapshot) can rely on its rules.
    """
    as_of = _as_timestamp(as_of)
    _check_transactions(transactions)
    features = base_features(transactions, as_of, settings.trend_window_days, BASE_COLUMNS)
    if features.empty:
        return _empty_features(customers)  # type: ignore[return-value]

    category_of = _product_categories(products)
    if category_of is not None:
        # masks over all rows instead of copied frames: strings are selected as integer codes
        past = (transactions["timestamp"] < as_of).to_numpy(dtype=bool)
        quantity = transactions["quantity"].to_numpy()
        bought = past & (quantity > 0)
        codes, ids, _ = _buyer_codes(transactions["customer_id"], bought,
                                     np.zeros(len(bought), dtype=bool))
        value = quantity[bought] * transactions["unit_price"].to_numpy(dtype=np.float64)[bought]
        product_codes, product_ids = _factorized(transactions["product_id"], bought)
        shares = _category_shares(value, product_codes, product_ids, codes, len(ids),
                                  category_of, settings.top_categories)
        shares.index = pd.Index(np.asarray(ids, dtype=object), name="customer_id")
        features = pd.concat([features, shares.reindex(features.index)], axis=1)

    if customers is not None:
        attrs = customers.set_index("customer_id")[attribute_columns(customers)]
        attrs = attrs.reindex(features.index).add_prefix(ATTRIBUTE_PREFIX)
        features = pd.concat([features, attrs], axis=1)
    return features  # type: ignore[return-value]


def churn_labels(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    horizon_days: int,
    customers_index: pd.Index | None = None,
    *,
    allow_partial: bool = False,
) -> pd.Series:
    """1 when a customer makes no purchase in ``[as_of, as_of + horizon_days)``, else 0.

    Customers: ``customers_index`` if given, else those with a purchase before ``as_of`` (the
    index of :func:`customer_features`). The window must be observable: the data is taken to
    cover through the day of its last transaction (see :func:`default_as_of`); a window ending
    later raises ``ValueError`` unless ``allow_partial`` (then labels over-count churn).
    """
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be > 0, got {horizon_days}")
    as_of = _as_timestamp(as_of)
    _check_transactions(transactions)
    end = as_of + pd.Timedelta(days=horizon_days)
    if not allow_partial:
        if transactions.empty:
            raise ValueError("churn window not observable: transactions is empty")
        covered = default_as_of(transactions)
        if covered < end:
            raise ValueError(
                f"churn window [{as_of}, {end}) is not observable: transactions end on "
                f"{transactions['timestamp'].max()} (covered until {covered}); choose an "
                f"as_of on or before {covered - pd.Timedelta(days=horizon_days)}, a shorter "
                f"horizon, or allow_partial=True")
    ts = transactions["timestamp"]
    bought = transactions["quantity"] > 0
    if customers_index is None:
        active = transactions.loc[bought & (ts < as_of), "customer_id"].unique()
        customers_index = pd.Index(np.sort(active.astype(object)), name="customer_id")
    in_window = transactions.loc[bought & (ts >= as_of) & (ts < end), "customer_id"].unique()
    churned = (~pd.Index(customers_index).isin(in_window)).astype(np.int64)
    return pd.Series(churned, index=pd.Index(customers_index, name="customer_id"),
                     name="churned")


__all__ = [
    "ATTRIBUTE_PREFIX",
    "BASE_COLUMNS",
    "CATEGORY_PREFIX",
    "attribute_columns",
    "churn_labels",
    "customer_features",
    "default_as_of",
    "history",
]
