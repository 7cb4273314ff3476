"""Recommender report figures and tables (matplotlib Agg: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import pandas as pd
from matplotlib.figure import Figure

from tailor.models.recommender import evaluate
from tailor.models.recommender_model import RecommenderModel

CURVE_SERIES = {"model": "", "LightFM alone": "lightfm_", "repeat baseline": "baseline_repeat_",
                "popularity baseline": "baseline_popularity_"}


def precision_curve(model: RecommenderModel, transactions: pd.DataFrame, horizon_days: int,
                    ks: Sequence[int] = (1, 3, 5, 10, 20)) -> pd.DataFrame:
    """precision@k and recall@k of the model and baselines for several k (rows: k)."""
    metrics = evaluate(model, transactions, horizon_days, k=ks, with_auc=False)
    rows = []
    for k in ks:
        row: dict[str, float] = {"k": float(k)}
        for name, prefix in CURVE_SERIES.items():
            row[f"{name} precision"] = metrics[f"{prefix}precision_at_{k}"]
            row[f"{name} recall"] = metrics[f"{prefix}recall_at_{k}"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("k")


def plot_precision_curve(curve: pd.DataFrame) -> Figure:
    """Precision and recall against k on the holdout, one line per model/baseline."""
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 4.5))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("precision", "recall"), strict=True):
        for name in CURVE_SERIES:
            ax.plot(curve.index, curve[f"{name} {metric}"], marker="o", label=name)
        ax.set_xlabel("k (products recommended)")
        ax.set_ylabel(f"{metric}@k")
        ax.set_title(f"Holdout {metric}@k (higher is better)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    return fig


__all__ = ["plot_precision_curve", "precision_curve"]
