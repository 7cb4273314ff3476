"""Segmentation metrics: cluster quality, bootstrap stability and the RFM-grid baseline, and the
objective a trial is ranked by."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from tailor.configs.schema import SegmentationSettings
from tailor.models.segmentation_errors import SegmentationError
from tailor.models.segmentation_kmeans import _assign, _kmeans_centers

if TYPE_CHECKING:
    from tailor.models.segmentation import SegmentationModel

METRIC_NAMES = (
    "silhouette", "davies_bouldin", "calinski_harabasz", "stability_ari", "k",
    "smallest_cluster_share",
)
BASELINE_PREFIX = "baseline_rfm_grid_"
# Added to the objective of a trial with a cluster below min_cluster_share: any such trial
# ranks below every trial without one (silhouette lies in [-1, 1]).
TINY_CLUSTER_PENALTY = 4.0
# Subtracted (plus the shortfall) below the stability floor: unstable trials rank below stable.
UNSTABLE_PENALTY = 2.0


def stability_ari(x: np.ndarray, labels: np.ndarray, k: int, settings: SegmentationSettings
                  ) -> float:
    """Mean ARI between the model's labels and labels from models fit on bootstrap resamples.

    Each bootstrap model predicts the same seeded evaluation sample, so the score asks: would a
    slightly different customer base have produced the same segments?
    """
    rng = np.random.default_rng(settings.seed)
    n = len(x)
    m = min(n, settings.stability_sample)
    eval_idx = rng.choice(n, size=m, replace=False) if m < n else np.arange(n)
    scores = []
    for b in range(settings.stability_resamples):
        boot = rng.choice(n, size=m, replace=True)
        kb = min(k, len(np.unique(x[boot], axis=0)))
        centers = _kmeans_centers(x[boot], kb, settings.seed + 1 + b, settings.n_init)
        scores.append(adjusted_rand_score(labels[eval_idx], _assign(x[eval_idx], centers)))
    return float(np.mean(scores))


def cluster_metrics(x: np.ndarray, labels: np.ndarray, settings: SegmentationSettings
                    ) -> dict[str, float]:
    """Silhouette (seeded sample), Davies-Bouldin, Calinski-Harabasz, k, smallest share."""
    n_labels = len(np.unique(labels))
    counts = np.bincount(labels)
    out = {"k": float(len(counts)), "smallest_cluster_share": float(counts.min() / len(labels))}
    if n_labels < 2 or n_labels >= len(labels):
        return out | {"silhouette": -1.0, "davies_bouldin": float("inf"),
                      "calinski_harabasz": 0.0}
    sample = settings.silhouette_sample if settings.silhouette_sample < len(x) else None
    sil = silhouette_score(x, labels, sample_size=sample, random_state=settings.seed)
    return out | {
        "silhouette": float(sil),
        "davies_bouldin": float(davies_bouldin_score(x, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(x, labels)),
    }


def rfm_grid_labels(features: pd.DataFrame) -> np.ndarray | None:
    """Classic rule baseline: recency, frequency and monetary each split at the median (<= 8)."""
    cols = ("recency_days", "frequency", "monetary")
    if any(c not in features for c in cols):
        return None
    bits = [(features[c].astype(float) > features[c].astype(float).median()).to_numpy(int)
            for c in cols]
    _, labels = np.unique(bits[0] * 4 + bits[1] * 2 + bits[2], return_inverse=True)
    return labels


def evaluate_segmentation(model: SegmentationModel, features: pd.DataFrame,
                          settings: SegmentationSettings,
                          truth: pd.Series | None = None) -> dict[str, float]:
    """Flat metrics (names in :data:`METRIC_NAMES`) plus the RFM-grid baseline in the same space.

    ``truth`` (latent segment per customer, e.g. from the generator) adds ``ari_truth``.
    """
    x = model.transform(features)
    labels = _assign(x, model.centers)
    metrics = cluster_metrics(x, labels, settings)
    metrics["k"] = float(model.k)
    metrics["smallest_cluster_share"] = float(
        np.bincount(labels, minlength=model.k).min() / len(labels))
    metrics["stability_ari"] = stability_ari(x, labels, model.k, settings)
    grid = rfm_grid_labels(features)
    if grid is not None:
        base = cluster_metrics(x, grid, settings)
        for name in ("silhouette", "davies_bouldin", "calinski_harabasz", "k"):
            metrics[BASELINE_PREFIX + name] = base[name]
    if truth is not None:
        aligned = truth.reindex(features.index)
        if aligned.isna().any():
            raise SegmentationError(
                f"truth lacks {int(aligned.isna().sum())} customer(s) of the features frame, "
                f"e.g. {aligned.index[aligned.isna()][0]!r}")
        metrics["ari_truth"] = float(adjusted_rand_score(aligned.to_numpy(), labels))
        if grid is not None:
            metrics[BASELINE_PREFIX + "ari_truth"] = float(
                adjusted_rand_score(aligned.to_numpy(), grid))
    return metrics


def objective_value(metrics: Mapping[str, float], settings: SegmentationSettings) -> float:
    """Silhouette, penalised for a tiny cluster and (mode ``silhouette_stability_floor``) for
    stability below the floor; the penalties make such trials rank below acceptable ones."""
    value = metrics["silhouette"]
    if metrics["smallest_cluster_share"] < settings.min_cluster_share:
        value -= TINY_CLUSTER_PENALTY
    if (settings.objective == "silhouette_stability_floor"
            and metrics["stability_ari"] < settings.stability_floor):
        value -= UNSTABLE_PENALTY + (settings.stability_floor - metrics["stability_ari"])
    if settings.objective == "silhouette_plus_stability":
        value += metrics["stability_ari"]
    return float(value)


__all__ = [
    "BASELINE_PREFIX",
    "METRIC_NAMES",
    "TINY_CLUSTER_PENALTY",
    "UNSTABLE_PENALTY",
    "cluster_metrics",
    "evaluate_segmentation",
    "objective_value",
    "rfm_grid_labels",
    "stability_ari",
]
