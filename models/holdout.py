"""Score several trained models on one holdout, the same way, for a fair champion/challenger gate.

Each function takes plain predictors (whatever version they are) and data, and returns one score
per model on the same customers: never a metric a model logged on older data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tailor.configs.schema import ChurnSettings, SegmentationSettings


def window_purchases(transactions: pd.DataFrame, start: pd.Timestamp,
                     horizon_days: int) -> pd.DataFrame:
    """Distinct (customer_id, product_id) bought in ``[start, start + horizon_days)``."""
    end = start + pd.Timedelta(days=horizon_days)
    stamp = transactions["timestamp"]
    rows = transactions.loc[(stamp >= start) & (stamp < end) & (transactions["quantity"] > 0),
                            ["customer_id", "product_id"]]
    return rows.astype(str).drop_duplicates()


def recommender_precision(models: Mapping[str, Any], transactions: pd.DataFrame,
                          start: pd.Timestamp, horizon_days: int, k: int
                          ) -> tuple[dict[str, float], int]:
    """precision@k of each model on the customers every model knows and who bought in the window.

    Restricting to the common customers keeps the comparison fair when a newer model knows
    customers an older one has never seen. Returns (scores, number of customers scored).
    """
    bought = window_purchases(transactions, start, horizon_days)
    customers = bought["customer_id"].unique()
    for model in models.values():
        customers = customers[model.known(customers)]
    if len(customers) == 0:
        return dict.fromkeys(models, float("nan")), 0
    truth = bought[bought["customer_id"].isin(customers)].assign(hit=1.0)
    scores = {}
    for label, model in models.items():
        recs = model.recommend(customers, k=k)[["customer_id", "product_id"]].astype(str)
        hits = recs.merge(truth, on=["customer_id", "product_id"], how="left")["hit"].fillna(0)
        scores[label] = float(hits.sum() / (k * len(customers)))
    return scores, len(customers)


def churn_roc_auc(models: Mapping[str, Any], frame: Any, settings: ChurnSettings
                  ) -> dict[str, float]:
    """ROC-AUC of each churn model on the same labelled cutoff frame (NaN when it cannot score)."""
    from tailor.models.churn import evaluate

    scores = {}
    for label, model in models.items():
        try:
            scores[label] = float(evaluate(model, frame, settings)["roc_auc"])
        except (KeyError, ValueError):  # e.g. a feature the older model needs no longer exists
            scores[label] = float("nan")
    return scores


def segmentation_score(models: Mapping[str, Any], features: pd.DataFrame,
                       settings: SegmentationSettings) -> dict[str, float]:
    """The tuning objective (silhouette + stability, penalties) of each model on new features."""
    from tailor.models.segmentation import SegmentationError, evaluate_segmentation, objective_value

    scores = {}
    for label, model in models.items():
        try:
            metrics = evaluate_segmentation(model, features, settings)
            scores[label] = objective_value(metrics, settings)
        except (SegmentationError, KeyError, ValueError):
            scores[label] = float("nan")
    return scores


def is_finite(value: float | None) -> bool:
    return value is not None and bool(np.isfinite(value))
