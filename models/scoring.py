"""Batch scoring: segment, churn probability, top-k products and next best action per customer.

Plain Python over the plain predictors (``SegmentationModel``, ``ChurnModel``,
``RecommenderModel``), vectorised: no MLflow, no Prefect. A model that is ``None`` (no champion)
leaves its columns null; the action rules then see nulls, which never match a condition.

The frame the action rules read is put together in one place, :func:`scored_frame`, from each
step's output: batch scoring (:func:`score_customers`) and the serving app (which precomputes the
steps over its snapshot) both call it, so their next best actions cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from tailor.configs.schema import ScoringSettings
from tailor.contracts import CustomerFeatures, CustomerScores, DataFrame
from tailor.models.actions import ACTION_COLUMN, next_best_action
from tailor.models.features import BASE_COLUMNS, PROVENANCE_COLUMNS


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
    if per > 0 and per * len(ids) == len(recs) and np.array_equal(rec_ids,
                                                                 np.repeat(ids, per)):
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


@dataclass(frozen=True)
class ScoreStep:
    """The columns one model kind adds to the scored table.

    ``score(model, frame, customers, settings)`` returns those columns indexed like ``frame``
    (the features plus the columns of the steps before it); ``empty(index)`` is what a kind
    with no champion leaves (nulls, which no action condition matches).
    """

    kind: str
    columns: tuple[str, ...]
    score: Callable[[Any, pd.DataFrame, pd.DataFrame | None, ScoringSettings], pd.DataFrame]
    empty: Callable[[pd.Index], pd.DataFrame]


def _segment_step(model: Any, frame: pd.DataFrame, customers: pd.DataFrame | None,
                  settings: ScoringSettings) -> pd.DataFrame:
    return _segments(model, frame)


def _churn_step(model: Any, frame: pd.DataFrame, customers: pd.DataFrame | None,
                settings: ScoringSettings) -> pd.DataFrame:
    p = _churn(model, frame)
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("churn model answered probabilities outside [0, 1]")
    return pd.DataFrame({"churn_probability": p}, index=frame.index)


def _recommender_step(model: Any, frame: pd.DataFrame, customers: pd.DataFrame | None,
                      settings: ScoringSettings) -> pd.DataFrame:
    segments = frame["segment"] if "segment" in frame.columns else None
    recs = recommendations(model, frame, customers, settings.k, segments)
    return recs.to_frame()


SEGMENTATION = ScoreStep("segmentation", ("segment", "segment_name"), _segment_step,
                         lambda index: _segments(None, pd.DataFrame(index=index)))
RECOMMENDER = ScoreStep(
    "recommender", ("recommendations",), _recommender_step,
    lambda index: pd.DataFrame({"recommendations": pd.Series([None] * len(index), dtype=object,
                                                             index=index)}))
CHURN = ScoreStep("churn", ("churn_probability",), _churn_step,
                  lambda index: pd.DataFrame({"churn_probability": np.full(len(index), np.nan)},
                                             index=index))
BUILT_IN_STEPS = (SEGMENTATION, RECOMMENDER, CHURN)


def score_columns(steps: Sequence[ScoreStep] = BUILT_IN_STEPS) -> tuple[str, ...]:
    """The scored table's columns: id, each step's columns, the action, each version."""
    return ("customer_id", *(c for step in steps for c in step.columns), ACTION_COLUMN,
            *(f"{step.kind}_version" for step in steps))


SCORE_COLUMNS = score_columns()


def join_step_outputs(features: pd.DataFrame, outputs: Mapping[str, pd.DataFrame | None],
                      steps: Sequence[ScoreStep] = BUILT_IN_STEPS) -> pd.DataFrame:
    """``features`` with every step's columns: ``outputs[kind]`` aligned on the customer index,
    or the step's empty (null) columns for a kind with no output (no champion, or not
    precomputed). Dtypes are kept (``segment`` stays nullable Int64)."""
    columns: dict[str, Any] = {}
    for step in steps:
        part = outputs.get(step.kind)
        if part is None:
            part = step.empty(features.index)
        elif not part.index.equals(features.index):
            part = part.reindex(features.index)
        missing = [c for c in step.columns if c not in part.columns]
        if missing:
            raise ValueError(f"the {step.kind} score step gave no column(s) {missing}; "
                             f"it declares {list(step.columns)}")
        columns.update({c: part[c].array for c in step.columns})
    return features.assign(**columns)


def scored_frame(features: pd.DataFrame, outputs: Mapping[str, pd.DataFrame | None],
                 settings: ScoringSettings,
                 steps: Sequence[ScoreStep] = BUILT_IN_STEPS) -> pd.DataFrame:
    """``features`` + every step's columns + the next best action, over the whole population
    (``<column>_pct`` percentiles are relative to it): the one definition of what the action
    rules read, shared by batch scoring and the serving snapshot."""
    frame = join_step_outputs(features, outputs, steps)
    frame[ACTION_COLUMN] = next_best_action(frame, settings)
    return frame


def step_outputs(features: pd.DataFrame, models: Mapping[str, tuple[str, Any] | None],
                 settings: ScoringSettings, customers: pd.DataFrame | None = None,
                 steps: Sequence[ScoreStep] = BUILT_IN_STEPS) -> dict[str, pd.DataFrame]:
    """Each kind's columns from its model, in step order (a later step reads the earlier ones'
    columns: the recommender's cold start reads the segment); kinds without a model are left
    out."""
    outputs: dict[str, pd.DataFrame] = {}
    frame = features
    for step in steps:
        found = models.get(step.kind)
        if found is not None:
            outputs[step.kind] = step.score(found[1], frame, customers, settings)
        frame = join_step_outputs(frame, outputs, (step,))
    return outputs


def apply_steps(features: pd.DataFrame, models: Mapping[str, tuple[str, Any] | None],
                settings: ScoringSettings, customers: pd.DataFrame | None = None,
                steps: Sequence[ScoreStep] = BUILT_IN_STEPS) -> pd.DataFrame:
    """``features`` with every step's columns and the next best action."""
    outputs = step_outputs(features, models, settings, customers, steps)
    return scored_frame(features, outputs, settings, steps)


@pa.check_types(inplace=True)
def score_customers(
    features: DataFrame[CustomerFeatures],
    models: Mapping[str, tuple[str, Any] | None],
    settings: ScoringSettings,
    customers: pd.DataFrame | None = None,
    steps: Sequence[ScoreStep] = BUILT_IN_STEPS,
) -> DataFrame[CustomerScores]:
    """One row per customer of ``features`` (indexed by customer_id), columns
    :func:`score_columns` of ``steps``. ``models`` maps each kind to ``(version, predictor)``
    or None. Both frames are checked against their contracts (in place: no copy)."""
    frame = apply_steps(features, models, settings, customers, steps)
    out = {"customer_id": features.index.to_numpy(dtype=object)}
    for step in steps:
        for column in step.columns:
            out[column] = frame[column].array
    out[ACTION_COLUMN] = frame[ACTION_COLUMN].to_numpy()
    for step in steps:
        found = models.get(step.kind)
        version = None if found is None else str(found[0])
        out[f"{step.kind}_version"] = pd.Series([version] * len(features), dtype=object).to_numpy()
    return pd.DataFrame(out, columns=list(score_columns(steps)))  # type: ignore[return-value]


__all__ = ["BUILT_IN_STEPS", "SCORE_COLUMNS", "ScoreStep", "apply_steps", "cold_attributes",
           "join_step_outputs", "recommendations", "score_columns", "score_customers",
           "scored_frame", "step_outputs"]
