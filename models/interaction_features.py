"""Building blocks of the LightFM feature matrices: number detection and quantile bins, product
description tokens, item prices, and the per-entity feature lists lightfm's ``Dataset`` takes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
import sklearn.preprocessing

from tailor.configs.schema import FeatureSettings

TOKEN_PATTERN = r"[a-z]{2,}"
_STOP_WORDS_TEXT = """
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just
me more most my myself no nor not now of off on once only or other our ours ourselves out over
own same she should so some such than that the their theirs them themselves then there these
they this those through to too under until up very was we were what when where which while who
whom why will with would you your yours yourself yourselves
"""
#: common English words carry no taste signal in product descriptions
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def _quantile_edges(values: np.ndarray, bins: int) -> tuple[float, ...]:
    """Distinct inner quantile cut points; value v falls in bin searchsorted(edges, v, 'left')."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return ()
    cuts = np.quantile(values, np.arange(1, bins) / bins)
    return tuple(float(x) for x in np.unique(cuts))


def _numeric(values: pd.Series) -> pd.Series | None:
    """The column as floats if every present value is a number (CSV cells arrive as str)."""
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return None
    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    if present.empty or numbers.isna().any():
        return None
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _feature_codes(names: pd.Series | np.ndarray, mapping: Mapping[str, int]) -> np.ndarray:
    """Column of each feature name in ``mapping``; a name it lacks raises, as lightfm does."""
    index = pd.Index(list(mapping.keys())).get_indexer(np.asarray(names, dtype=object))
    missing = index < 0
    if missing.any():
        name = np.asarray(names, dtype=object)[missing][0]
        raise ValueError(f"Feature {name} not in feature mapping. Call fit first.")
    return np.asarray(list(mapping.values()), dtype=np.int64)[index]


def _feature_matrix(ids: np.ndarray, identity: str, long: pd.DataFrame,
                    mapping: Mapping[str, int]) -> sp.csr_matrix:
    """What lightfm's ``Dataset.build_*_features`` builds from ``(id, [identity + id, the
    entity's features in ``long`` order...])`` per entity (entity k is row k, as ``Dataset.fit``
    numbers unique ids), from arrays instead of one Python call per feature: the same COO
    entries in the same order, then lightfm's CSR and L1 normalisation."""
    long = long.sort_values("pos", kind="stable")
    pos = long["pos"].to_numpy()
    inside = (pos >= 0) & (pos < len(ids))
    pos, names = pos[inside], long["feature"].to_numpy()[inside]
    per_entity = np.bincount(pos, minlength=len(ids)) + 1  # + the identity feature
    starts = np.concatenate([[0], np.cumsum(per_entity)[:-1]]).astype(np.int64)
    cols = np.empty(int(per_entity.sum()), dtype=np.int64)
    first = np.zeros(len(cols), dtype=bool)
    first[starts] = True
    cols[first] = _feature_codes(np.asarray([identity + e for e in ids], dtype=object), mapping)
    cols[~first] = _feature_codes(names, mapping)
    rows = np.repeat(np.arange(len(ids), dtype=np.int32), per_entity)
    data = np.ones(len(cols), dtype=np.float32)
    matrix = sp.coo_matrix((data, (rows, cols.astype(np.int32))),
                           shape=(len(ids), len(mapping))).tocsr()
    sklearn.preprocessing.normalize(matrix, norm="l1", copy=False)
    return matrix


def _interaction_matrices(shape: tuple[int, int], u: np.ndarray, i: np.ndarray,
                          w: np.ndarray) -> tuple[sp.coo_matrix, sp.coo_matrix]:
    """lightfm's ``Dataset.build_interactions`` for (row, column, weight) arrays: 1 (int32) per
    pair and its weight as float32, without one Python call per pair."""
    if len(u) and (u.max() >= shape[0] or i.max() >= shape[1]):
        raise ValueError("Index out of bounds")
    ones = np.ones(len(u), dtype=np.int32)
    interactions = sp.coo_matrix((ones, (u.astype(np.int32), i.astype(np.int32))), shape=shape)
    weights = sp.coo_matrix((np.asarray(w).astype(np.float32),
                             (u.astype(np.int32), i.astype(np.int32))), shape=shape)
    return interactions, weights


def _tokens(products: pd.DataFrame, settings: FeatureSettings) -> pd.DataFrame:
    """(product_id, token) pairs for the vocabulary: top tokens by product count, stop-words out."""
    if "description" not in products.columns or settings.description_tokens == 0:
        return pd.DataFrame({"product_id": [], "token": []}, dtype=object)
    words = products["description"].astype("string").str.lower().str.findall(TOKEN_PATTERN)
    pairs = pd.DataFrame({"product_id": products["product_id"].to_numpy(),
                          "token": words.to_numpy()}).explode("token").dropna()
    pairs = pairs[~pairs["token"].isin(STOP_WORDS)].drop_duplicates()
    counts = pairs["token"].value_counts()
    counts = counts[counts >= settings.min_token_count]
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:settings.description_tokens]
    vocabulary = {token for token, _ in ranked}
    return pairs[pairs["token"].isin(vocabulary)]


def _item_price(item_ids: pd.Index, products: pd.DataFrame | None, item_of_line: np.ndarray,
                unit_price: np.ndarray) -> pd.Series:
    """Catalogue price, else median unit_price paid before as_of (so still point-in-time).

    ``item_of_line``: position in ``item_ids`` of each purchase line, ``unit_price`` its price.
    """
    median = pd.Series(unit_price).groupby(item_of_line).median()
    paid = pd.Series(median.reindex(range(len(item_ids))).to_numpy(), index=item_ids,
                     name="unit_price")
    if products is None or "price" not in products.columns:
        return paid
    listed = pd.to_numeric(products.set_index("product_id")["price"], errors="coerce")
    return listed.reindex(item_ids).fillna(paid)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({"pos": np.array([], dtype=np.int64),
                             "feature": np.array([], dtype=object)})
    return pd.concat(parts, ignore_index=True)


def _names(mapping: Mapping[str, int]) -> np.ndarray:
    names = np.empty(len(mapping), dtype=object)
    for name, idx in mapping.items():
        names[idx] = name
    return names


__all__ = [
    "STOP_WORDS",
    "TOKEN_PATTERN",
]
