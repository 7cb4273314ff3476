"""Batch scoring: segment, churn probability, top-k products and next best action per customer.

Plain Python over the plain predictors (``SegmentationModel``, ``ChurnModel``,
``RecommenderModel``), vectorised: no MLflow, no Prefect. A model that is ``None`` (no champion)
leaves its columns null; the action rules then see nulls, which never match a condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tailor.configs.schema import ScoringSettings
from tailor.models.actions import ACTION_COLUMN, next_best_action
from tailor.models.features import BASE_COLUMNS, PROVENANCE_COLUMNS

MODEL_KINDS = ("segmentation", "recommender", "churn")
SCORE_COLUMNS = ("customer_id", "segment", "segment_name", "churn_probability",
                 "recommendations", ACTION_COLUMN,
                 *(f"{kind}_version" for kind in MODEL_KINDS))


def _segments(model: Any, features: pd.DataFrame) -> pd.DataFrame:
    if model is None:
        return pd.DataFrame({"segment": pd.array([pd.NA] * len(features), dtype="Int64"),
                             "segment_name": pd.Series([None] * len(features), dtype=object)},
                            index=features.index)
    out = model.predict(features)
    return pd.DataFrame({"segment": out["segment"].astype("Int64").to_numpy(),
                         "segment_name": out["segment_name"].astype(object).to_numpy()},
                        index=features.index)


def _churn(model: Any, features: pd.DataFrame) -> np.ndarray:
    if model is None:
        return np.full(len(features), np.nan)
    return np.asarray(model.predict_proba(features), dtype=np.float64)


def cold_attributes(features: pd.DataFrame, customers: pd.DataFrame | None,
                    segments: pd.Series | None = None) -> pd.DataFrame:
    """What the recommender's cold path can use for customers it has not seen: the customers
    table's attribute columns, the RFM feature columns and the segment (indexed by id)."""
    frame = features[[c for c in BASE_COLUMNS if c in features.columns]].copy()
    if customers is not None:
        attrs = customers.drop(columns=[c for c in PROVENANCE_COLUMNS if c in customers.columns])
        attrs = attrs.drop_duplicates("customer_id").set_index("customer_id")
        attrs.index = attrs.index.astype(str)
        frame = frame.join(attrs.drop(columns=[c for c in attrs.columns if c in frame.columns]))
    if segments is not None and segments.notna().any():
        frame["segment"] = segments.to_numpy()
    frame.index.name = "customer_id"
    return frame


def _as_lists(recs: pd.DataFrame, ids: np.ndarray) -> np.ndarray:
    """Ranked product ids per customer in ``ids`` order (recommend() returns them that way),
    as a 1-D object array of lists."""
    if len(ids) == 0:
        return np.empty(0, dtype=object)
    per = len(recs) // len(ids)
    rec_ids = recs["customer_id"].to_numpy(dtype=object)
    if per * len(ids) == len(recs) and np.array_equal(rec_ids, np.repeat(ids, per)):
        lists = recs["product_id"].astype(str).to_numpy(dtype=object).reshape(-1, per).tolist()
    else:  # uneven lists (fewer products than k for some): group instead of reshape
        ordered = recs.sort_values(["customer_id", "rank"], kind="stable")
        grouped = ordered.groupby("customer_id", sort=False)["product_id"].agg(list)
        lists = [[str(p) for p in grouped.get(i, [])] for i in ids]
    return pd.Series(lists, dtype=object).to_numpy()


def recommendations(model: Any, features: pd.DataFrame, customers: pd.DataFrame | None, k: int,
                    segments: pd.Series | None = None) -> pd.Series:
    """Top-k product ids (best first) per customer: known customers from their history and
    taste, customers first seen after the model's cutoff from attributes (cold start)."""
    ids = features.index.to_numpy(dtype=object)
    out = np.empty(len(ids), dtype=object)
    if model is None:
        return pd.Series(out, index=features.index, name="recommendations")
    seen = model.known(ids)
    if seen.any():
        out[seen] = _as_lists(model.recommend(ids[seen], k=k), ids[seen])
    if (~seen).any():
        cold = cold_attributes(features.loc[~seen], customers,
                               None if segments is None else segments.loc[~seen])
        out[~seen] = _as_lists(model.recommend_cold(cold, k=k), ids[~seen])
    return pd.Series(out, index=features.index, name="recommendations", dtype=object)


def score_customers(
    features: pd.DataFrame,
    models: Mapping[str, tuple[str, Any] | None],
    settings: ScoringSettings,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per customer of ``features`` (indexed by customer_id), columns
    :data:`SCORE_COLUMNS`. ``models`` maps each kind to ``(version, predictor)`` or None."""
    def part(kind: str) -> tuple[str | None, Any]:
        found = models.get(kind)
        return (None, None) if found is None else (str(found[0]), found[1])

    seg_version, seg_model = part("segmentation")
    rec_version, rec_model = part("recommender")
    churn_version, churn_model = part("churn")
    segments = _segments(seg_model, features)
    frame = features.assign(
        segment=segments["segment"], segment_name=segments["segment_name"],
        churn_probability=_churn(churn_model, features),
    )
    frame[ACTION_COLUMN] = next_best_action(frame, settings)
    recs = recommendations(rec_model, features, customers, settings.k,
                           segments["segment"] if seg_model is not None else None)
    return pd.DataFrame({
        "customer_id": features.index.to_numpy(dtype=object),
        "segment": segments["segment"].array,
        "segment_name": segments["segment_name"].to_numpy(),
        "churn_probability": frame["churn_probability"].to_numpy(),
        "recommendations": recs.to_numpy(),
        ACTION_COLUMN: frame[ACTION_COLUMN].to_numpy(),
        "segmentation_version": pd.Series([seg_version] * len(features), dtype=object).to_numpy(),
        "recommender_version": pd.Series([rec_version] * len(features), dtype=object).to_numpy(),
        "churn_version": pd.Series([churn_version] * len(features), dtype=object).to_numpy(),
    }, columns=list(SCORE_COLUMNS))


__all__ = ["SCORE_COLUMNS", "cold_attributes", "recommendations", "score_customers"]
