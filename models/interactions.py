"""Point-in-time user x item matrices and feature matrices for LightFM.

Built with :class:`lightfm.data.Dataset`'s id and feature-name mappings, from purchase lines
strictly before ``as_of``; the COO/CSR matrices are assembled from arrays exactly as its
``build_*`` methods assemble them (:func:`~tailor.models.interaction_features._feature_matrix`),
without their Python call per entry. Feature names are readable strings:

- users: ``user:<id>`` (identity), ``attr:<column>=<value>`` (customers table; numeric columns with
  many values as ``attr:<column>=q<k>`` quantile bins), ``rfm:recency|frequency|monetary=q<k>``
  (from :func:`tailor.models.features.customer_features`; q1 = lowest value, so most recent / fewest
  orders / least spend), ``segment=<label>``.
- items: ``item:<id>`` (identity), ``category=<c>``, ``price=q<k>`` (quantile bands over product
  prices; the products table's ``price``, else the item's median unit_price before ``as_of``),
  ``word=<token>`` (description tokens), ``attr:<column>=<value>`` (other product columns).

Attribute columns are categorical (``name=value``) unless numeric with more than
:data:`MAX_NUMERIC_LEVELS` values (quantile bins, ``settings.quantile_bins``) or id-like / free text
(more than :data:`MAX_LEVELS` levels, or text mostly distinct per row): those are skipped.
Bins and vocabularies come from the static customers / products tables or from history before
``as_of``, never from later rows.

Feature rows are L1-normalised (each row sums to 1), as ``Dataset.build_*_features`` does by
default: a user with many attributes does not get a larger representation than one with few.

Value typing, quantile bins, description tokens and item prices come from
:mod:`tailor.models.interaction_features`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm.data import Dataset

from tailor.configs.schema import FeatureSettings
from tailor.inference import encode_attributes, feature_names
from tailor.models.features import (
    PROVENANCE_COLUMNS,
    _buyer_codes,
    _check_transactions,
    _factorized,
    _sorted_unique,
)
from tailor.models.interaction_features import (
    _concat,
    _feature_matrix,
    _interaction_matrices,
    _item_price,
    _names,
    _numeric,
    _quantile_edges,
    _tokens,
)

USER_IDENTITY = "user:"
ITEM_IDENTITY = "item:"
#: rfm feature name -> customer_features column
RFM_COLUMNS: dict[str, str] = {
    "recency": "recency_days",
    "frequency": "frequency",
    "monetary": "monetary",
}
SEGMENT_COLUMN = "segment"
#: attribute columns with more distinct values than this are ids or free text: skipped
MAX_LEVELS = 100
#: numeric attribute columns with at most this many distinct values stay categorical
MAX_NUMERIC_LEVELS = 10
#: a text column with more levels than this, mostly distinct per row, is an id or free text
ID_LIKE_MIN_LEVELS = 20


@dataclass(frozen=True)
class ColumnEncoding:
    """How one attribute column becomes feature names (kept so cold users are encoded alike)."""

    column: str
    prefix: str
    #: quantile cut points for a binned numeric column; None = categorical (``prefix=value``)
    edges: tuple[float, ...] | None = None

    def names(self, values: pd.Series) -> pd.Series:
        """Feature name per value (NaN where the value is missing)."""
        return feature_names(values, self.prefix, self.edges)

    def all_names(self, values: pd.Series) -> list[str]:
        """Every feature this column can produce (all bins, or the values seen)."""
        if self.edges is not None:
            return [f"{self.prefix}=q{k}" for k in range(1, len(self.edges) + 2)]
        return sorted(set(self.names(values).dropna()))


@dataclass(frozen=True, eq=False)
class InteractionData:
    """Everything LightFM needs, with index <-> id mappings and the recipes for cold users."""

    interactions: sp.coo_matrix  # users x items, 1 where the user bought the item (int32)
    weights: sp.coo_matrix  # same sparsity, weight per ``settings.interaction_weight`` (float32)
    user_features: sp.csr_matrix  # users x user features, rows L1-normalised (float32)
    item_features: sp.csr_matrix  # items x item features, rows L1-normalised (float32)
    user_ids: np.ndarray  # row index -> customer_id
    item_ids: np.ndarray  # column index -> product_id
    user_feature_names: np.ndarray
    item_feature_names: np.ndarray
    user_encodings: tuple[ColumnEncoding, ...] = field(default=())  # attr, rfm and segment

    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.user_ids)}

    def item_index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.item_ids)}

    def user_feature_index(self) -> dict[str, int]:
        return {f: i for i, f in enumerate(self.user_feature_names)}

    def item_feature_index(self) -> dict[str, int]:
        return {f: i for i, f in enumerate(self.item_feature_names)}


def _encode_column(name: str, values: pd.Series, prefix: str, bins: int) -> ColumnEncoding | None:
    """Categorical for few levels, quantile bins for many-valued numbers; None for ids/free text."""
    levels = values.nunique(dropna=True)
    if levels == 0:
        return None
    numbers = _numeric(values)
    if numbers is not None and levels > MAX_NUMERIC_LEVELS:
        return ColumnEncoding(name, prefix, _quantile_edges(numbers.to_numpy(), bins))
    if levels > MAX_LEVELS or (numbers is None and levels > ID_LIKE_MIN_LEVELS
                                   and levels > values.count() / 2):
        return None
    return ColumnEncoding(name, prefix)


def _attribute_encodings(table: pd.DataFrame, skip: Iterable[str], bins: int
                         ) -> list[ColumnEncoding]:
    skipped = set(skip) | set(PROVENANCE_COLUMNS)
    encodings = []
    for col in table.columns:
        if col in skipped:
            continue
        enc = _encode_column(col, table[col], f"attr:{col}", bins)
        if enc is not None:
            encodings.append(enc)
    return encodings


def _long_features(ids: pd.Index, table: pd.DataFrame, encodings: Iterable[ColumnEncoding]
                   ) -> tuple[pd.DataFrame, list[str]]:
    """(entity position, feature name) pairs for ``ids`` from ``table`` (indexed by id), and the
    vocabulary: every name the whole table can produce, so that rows absent from ``ids`` (cold
    users) still find their values."""
    rows = table.reindex(ids)
    parts, vocabulary = [], []
    for enc in encodings:
        if enc.column not in table.columns:
            continue
        names = enc.names(rows[enc.column])
        vocabulary.extend(enc.all_names(table[enc.column]))
        present = names.notna().to_numpy()
        parts.append(pd.DataFrame({"pos": np.flatnonzero(present),
                                   "feature": names.to_numpy()[present]}))
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"pos": np.array([], dtype=np.int64), "feature": np.array([], dtype=object)})
    return long, vocabulary


def _pair_weights(u: np.ndarray, i: np.ndarray, quantity: np.ndarray, ts: np.ndarray,
                  n_items: int, as_of: pd.Timestamp, settings: FeatureSettings
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aggregate purchase lines (user position, item position, quantity, time) to
    (user position, item position, weight), pairs sorted by user then item."""
    key = u.astype(np.int64) * n_items + i
    scheme = settings.interaction_weight
    if scheme == "quantity":
        line = quantity.astype(np.float64)
    elif scheme == "decay":
        age = (as_of.to_datetime64() - ts) / np.timedelta64(1, "D")
        line = np.exp(-np.log(2.0) * age / settings.decay_half_life_days)
    else:  # count; binary is 1 per pair below
        line = np.ones(len(key))
    pairs, inverse = _sorted_unique(key, True)
    weight = np.bincount(inverse, weights=line, minlength=len(pairs))
    if scheme == "binary":
        weight = np.ones(len(pairs))
    return pairs // n_items, pairs % n_items, weight


def _users_and_items(transactions: pd.DataFrame, past: np.ndarray, bought: np.ndarray,
                     products: pd.DataFrame | None
                     ) -> tuple[pd.Index, np.ndarray, pd.Index, np.ndarray]:
    """Sorted buyers and items (catalogue + every product with a line before as_of), and the
    user and item position of each purchase line: strings are looked up once per distinct id."""
    user_of_line, buyers, _ = _buyer_codes(transactions["customer_id"], bought,
                                           np.zeros(len(bought), dtype=bool))
    users = pd.Index(np.asarray(buyers, dtype=object), name="customer_id")
    product_codes, seen = _factorized(transactions["product_id"], past)
    catalogue = (products["product_id"].to_numpy(dtype=object) if products is not None
                 else np.array([], dtype=object))
    seen_items = np.asarray(seen, dtype=object)
    items = pd.Index(np.unique(np.concatenate([catalogue, seen_items])), name="product_id")
    item_of_line = items.get_indexer(seen_items)[product_codes[bought[past]]]
    return users, user_of_line, items, item_of_line


def build_interactions(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    settings: FeatureSettings,
    customer_features: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    segments: pd.Series | None = None,
) -> InteractionData:
    """Interaction, weight and feature matrices from purchase lines strictly before ``as_of``.

    Users: customers with a purchase before ``as_of`` (sorted; the index of
    :func:`tailor.models.features.customer_features`). Items: every product in ``products`` plus any
    product with a line before ``as_of`` (sorted). Positives are purchase lines only; returns are
    never interactions (a bought-then-returned item still shows interest). Weights per
    ``settings.interaction_weight``: binary 1; count = purchase lines; quantity = units; decay =
    sum over lines of ``exp(-ln2 * age_days / decay_half_life_days)``. Raises ``ValueError`` when
    there is no purchase before ``as_of``.
    """
    as_of = pd.Timestamp(as_of)
    _check_transactions(transactions)
    past = (transactions["timestamp"] < as_of).to_numpy(dtype=bool)
    quantity = transactions["quantity"].to_numpy()
    bought = past & (quantity > 0)
    if not bought.any():
        raise ValueError(f"transactions: no purchase before as_of={as_of}; there are no users "
                         f"to build interactions for (is as_of before the data starts?)")
    users, user_of_line, items, item_of_line = _users_and_items(transactions, past, bought,
                                                                products)
    bins = settings.quantile_bins

    # user features
    user_long, user_vocab, encodings = [], [], []
    if customers is not None:
        table = customers.set_index("customer_id")
        enc = _attribute_encodings(table, (), bins)
        long, vocab = _long_features(users, table, enc)
        user_long.append(long)
        user_vocab += vocab
        encodings += enc
    if customer_features is not None:
        missing = [c for c in RFM_COLUMNS.values() if c not in customer_features.columns]
        if missing:
            raise ValueError(f"customer_features: missing column(s) {missing} for rfm features")
        enc = [ColumnEncoding(col, f"rfm:{name}",
                              _quantile_edges(customer_features[col].to_numpy(np.float64), bins))
               for name, col in RFM_COLUMNS.items()]
        long, vocab = _long_features(users, customer_features, enc)
        user_long.append(long)
        user_vocab += vocab
        encodings += enc
    if segments is not None:
        enc = [ColumnEncoding(SEGMENT_COLUMN, SEGMENT_COLUMN)]
        table = segments.rename(SEGMENT_COLUMN).to_frame()
        long, vocab = _long_features(users, table, enc)
        user_long.append(long)
        user_vocab += vocab
        encodings += enc

    # item features
    item_long, item_vocab = [], []
    if products is not None:
        table = products.set_index("product_id")
        enc = []
        if "category" in table.columns:
            enc.append(ColumnEncoding("category", "category"))
        enc += _attribute_encodings(table, ("category", "description", "price"), bins)
        long, vocab = _long_features(items, table, enc)
        item_long.append(long)
        item_vocab += vocab
        tokens = _tokens(products, settings)
        item_long.append(pd.DataFrame({"pos": items.get_indexer(tokens["product_id"]),
                                       "feature": "word=" + tokens["token"]}))
        item_vocab += sorted("word=" + tokens["token"].unique())
    price = _item_price(items, products, item_of_line,
                        transactions["unit_price"].to_numpy()[bought])
    price_enc = ColumnEncoding("price", "price",
                               _quantile_edges(price.to_numpy(np.float64), settings.price_bands))
    long, vocab = _long_features(items, price.rename("price").to_frame(), [price_enc])
    item_long.append(long)
    item_vocab += vocab

    dataset = Dataset(user_identity_features=False, item_identity_features=False)
    user_ids = users.to_numpy(dtype=object)
    item_ids = items.to_numpy(dtype=object)
    dataset.fit(
        users=user_ids,
        items=item_ids,
        user_features=[USER_IDENTITY + u for u in user_ids] + list(dict.fromkeys(user_vocab)),
        item_features=[ITEM_IDENTITY + i for i in item_ids] + list(dict.fromkeys(item_vocab)),
    )
    u, i, w = _pair_weights(user_of_line, item_of_line, quantity[bought],
                            transactions["timestamp"].to_numpy()[bought], len(items), as_of,
                            settings)
    interactions, weights = _interaction_matrices(dataset.interactions_shape(), u, i, w)
    _, user_map, _, item_map = dataset.mapping()
    user_features = _feature_matrix(user_ids, USER_IDENTITY, _concat(user_long), user_map)
    item_features = _feature_matrix(item_ids, ITEM_IDENTITY, _concat(item_long), item_map)
    return InteractionData(
        interactions=interactions,
        weights=weights,
        user_features=user_features,
        item_features=item_features,
        user_ids=user_ids,
        item_ids=item_ids,
        user_feature_names=_names(user_map),
        item_feature_names=_names(item_map),
        user_encodings=tuple(encodings),
    )


def cold_user_features(data: InteractionData, attributes: pd.DataFrame) -> sp.csr_matrix:
    """Feature rows (no identity feature) for customers the model has not seen.

    ``attributes``: one row per customer (index or ``customer_id`` column), with any of the
    customers-table attribute columns, the rfm columns of ``customer_features`` and a
    ``segment`` column. They are encoded exactly as in training (same bins and names); values
    never seen in training are ignored. Rows are L1-normalised; a customer with no usable value
    gets an all-zero row (LightFM then scores items by their own representation and bias only).
    """
    table = attributes.set_index("customer_id") if "customer_id" in attributes.columns \
        else attributes
    encodings = [(e.column, e.prefix, e.edges) for e in data.user_encodings]
    return encode_attributes(table, encodings, data.user_feature_names)


__all__ = [
    "ITEM_IDENTITY",
    "RFM_COLUMNS",
    "USER_IDENTITY",
    "ColumnEncoding",
    "InteractionData",
    "build_interactions",
    "cold_user_features",
]
