"""Figures for a segmentation run: where segments sit, and how k was chosen."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import optuna
import pandas as pd
from matplotlib.figure import Figure

from tailor.models.segmentation import SegmentationModel, trials_frame


def plot_segments_pca(model: SegmentationModel, features: pd.DataFrame,
                      max_points: int = 5_000, seed: int = 0) -> Figure:
    """First two principal components of the clustered space, coloured by segment."""
    x = model.transform(features)
    labels = model.labels(features)
    rng = np.random.default_rng(seed)
    if len(x) > max_points:
        idx = rng.choice(len(x), size=max_points, replace=False)
        x_plot, labels_plot = x[idx], labels[idx]
    else:
        x_plot, labels_plot = x, labels
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:2] if vt.shape[0] >= 2 else np.vstack([vt, np.zeros_like(vt)])
    proj = (x_plot - mean) @ comps.T
    centers = (model.centers - mean) @ comps.T
    explained = (s[:2] ** 2) / max((s ** 2).sum(), 1e-12)
    fig = Figure(figsize=(7, 5.5))
    ax = fig.subplots()
    cmap = matplotlib.colormaps.get_cmap("tab10" if model.k <= 10 else "tab20")
    for seg in range(model.k):
        mask = labels_plot == seg
        ax.scatter(proj[mask, 0], proj[mask, 1], s=6, alpha=0.5, color=cmap(seg % cmap.N),
                   label=f"{seg}: {model.segment_names[seg]} (n={int((labels == seg).sum())})")
        ax.scatter(centers[seg, 0], centers[seg, 1], marker="X", s=120, color=cmap(seg % cmap.N),
                   edgecolor="black")
    ax.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({explained[1]:.0%} of variance)" if len(explained) > 1 else "PC2")
    ax.set_title(f"Customer segments (k={model.k}), PCA of the clustered features")
    ax.legend(fontsize=7, markerscale=2, loc="best")
    fig.tight_layout()
    return fig


def plot_metrics_vs_k(study: optuna.Study) -> Figure:
    """Silhouette and bootstrap stability of every completed trial against k, best per k joined.

    Both metrics are plotted raw (not the penalised objective) so the trade-off is visible.
    """
    frame = trials_frame(study)
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2, sharex=True)
    for ax, metric in zip(axes, ("silhouette", "stability_ari"), strict=True):
        if frame.empty or metric not in frame:
            ax.text(0.5, 0.5, "no completed trials", ha="center", va="center",
                    transform=ax.transAxes)
        else:
            ax.scatter(frame["k"], frame[metric], s=18, alpha=0.6, label="trial")
            best = frame.groupby("k")[metric].max()
            ax.plot(best.index, best.to_numpy(), marker="o", color="black", label="best per k")
            ax.legend(fontsize=8)
        ax.set_xlabel("k")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} vs k")
    fig.tight_layout()
    return fig
