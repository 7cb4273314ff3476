"""Figures of the churn model: reliability (calibration) diagram and feature importance."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def reliability_table(labels: np.ndarray, probabilities: np.ndarray, bins: int) -> pd.DataFrame:
    """Per equal-width probability bin: rows, mean predicted probability, observed churn rate."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    y = np.asarray(labels, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(which, weights=p, minlength=bins) / count
        observed = np.bincount(which, weights=y, minlength=bins) / count
    edges = np.linspace(0.0, 1.0, bins + 1)
    table = pd.DataFrame({"bin_low": edges[:-1], "bin_high": edges[1:], "rows": count,
                          "mean_predicted": predicted, "observed_rate": observed})
    return table.loc[table["rows"] > 0].reset_index(drop=True)


def reliability_figure(labels: np.ndarray, probabilities: dict[str, np.ndarray],
                       bins: int = 10, title: str = "Churn reliability") -> Figure:
    """Observed churn rate vs predicted probability per bin, one line per named model.

    Pass e.g. ``{"model": p, "recency baseline": q}``; the lower panel shows how many customers
    fall in each bin of the first model (a well-calibrated but uninformative model piles up in
    one bin).
    """
    fig = Figure(figsize=(6, 7))
    (ax, hist) = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for name, p in probabilities.items():
        table = reliability_table(labels, p, bins)
        ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", label=name)
    ax.set_ylabel("observed churn rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left")
    first = next(iter(probabilities.values()))
    hist.hist(np.clip(first, 0, 1), bins=np.linspace(0, 1, bins + 1), color="C0")
    hist.set_xlabel("predicted churn probability")
    hist.set_ylabel("customers")
    fig.tight_layout()
    return fig


def importance_figure(table: pd.DataFrame, top: int = 20,
                      title: str = "Permutation importance (ROC-AUC drop)") -> Figure:
    """Horizontal bars of :func:`churn.permutation_importance_table`, largest on top."""
    shown = table.head(top).iloc[::-1]
    fig = Figure(figsize=(7, 0.35 * len(shown) + 1.5))
    ax = fig.subplots()
    ax.barh(shown["feature"], shown["importance_mean"], xerr=shown["importance_std"],
            color="C1")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("ROC-AUC drop when shuffled")
    ax.set_title(title)
    fig.tight_layout()
    return fig


__all__ = ["importance_figure", "reliability_figure", "reliability_table"]
