"""Recommendations as response items, from the recommender predictor's public methods only
(``recommend_one``, ``recommend``, ``recommend_cold``, ``known``, ``user_encodings``), so the
service answers what the model answers in batch scoring and cannot drift from its internals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tailor.deployments.api import schemas

if TYPE_CHECKING:  # the predictor's module imports LightFM; the app must not pay for it
    from tailor.models.recommender_model import RecommenderModel


def _items(frame: pd.DataFrame, start: int, stop: int) -> list[schemas.Recommendation]:
    ranks = frame["rank"].to_numpy()[start:stop]
    products = frame["product_id"].to_numpy()[start:stop]
    scores = frame["score"].to_numpy()[start:stop]
    return [schemas.Recommendation(rank=int(r), product_id=str(p), score=float(s))
            for r, p, s in zip(ranks, products, scores, strict=True)]


def used_columns(predictor: RecommenderModel) -> set[str]:
    """Attribute columns the model encodes (others given by a client are ignored)."""
    return {enc.column for enc in predictor.user_encodings}


def recommend_one(predictor: RecommenderModel, customer_id: str, k: int,
                  exclude: bool | None) -> list[schemas.Recommendation] | None:
    """Top-k for one known customer (None if unknown), without building a DataFrame."""
    ranked = predictor.recommend_one(customer_id, k=k, exclude_purchased=exclude)
    if ranked is None:
        return None
    return [schemas.Recommendation(rank=rank, product_id=str(p), score=float(v))
            for rank, (p, v) in enumerate(zip(ranked.product_ids, ranked.scores, strict=True),
                                          start=1)]


def recommend_known(predictor: RecommenderModel, ids: list[str], k: int,
                    exclude: bool | None) -> list[list[schemas.Recommendation]]:
    """Top-k for customers the recommender was trained on, one list per id (in order)."""
    frame = predictor.recommend(np.asarray(ids, dtype=object), k=k, exclude_purchased=exclude)
    per = len(frame) // max(len(ids), 1)
    return [_items(frame, i * per, (i + 1) * per) for i in range(len(ids))]


def _one_type(values: pd.Series) -> pd.Series:
    """A JSON column as one type: numbers when every value is one (ints and floats mixed),
    else text, so the recommender encodes each value as it encoded the training table."""
    if values.dtype != object:
        return values
    present = values[values.notna()]
    if present.empty:
        return values
    kinds = {type(v) for v in present}
    if kinds <= {int, float, np.int64, np.float64}:
        return pd.to_numeric(values, errors="coerce")
    if len(kinds) == 1:
        return values
    return values.map(lambda v: None if pd.isna(v) else str(v))


def recommend_cold(predictor: RecommenderModel, rows: list[dict[str, Any]],
                   k: int) -> list[list[schemas.Recommendation]]:
    """Top-k for customers described by attributes, one list per row (in order)."""
    frame = pd.DataFrame(rows, index=pd.RangeIndex(len(rows), name="customer_id"))
    frame = frame.drop(columns=[c for c in frame.columns if c == "customer_id"])
    for column in frame.columns:
        frame[column] = _one_type(frame[column])
    answer = predictor.recommend_cold(frame.reset_index(), k=k)
    per = len(answer) // max(len(rows), 1)
    return [_items(answer, i * per, (i + 1) * per) for i in range(len(rows))]
