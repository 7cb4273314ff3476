"""Segmentation on real data: Online Retail customers as of 2011-09-10 (history before it).

Imports and validates the export, builds point-in-time customer features (with the category
mix from the importer's product taxonomy), tunes k and the transform with Optuna, and prints the
chosen parameters, the metrics (with the RFM median-grid baseline), the marketer-facing profile
table, silhouette/stability per k from the study, and timings.

Usage: .venv/bin/python benchmarks/segmentation_real.py [--trials 20] [--objective NAME]
       [--set segmentation.key=value ...] [--figures DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import optuna
import pandas as pd

from configs import load_settings
from models.features import customer_features
from models.segmentation import (
    evaluate_segmentation,
    fit_segmentation,
    new_study,
    segment_profile,
    trials_frame,
    tune,
)
from models.segmentation_plots import plot_metrics_vs_k, plot_segments_pca
from tailor.data.importers.online_retail import import_online_retail
from tailor.data.validate import validate_dataset

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
AS_OF = "2011-09-10"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="default: segmentation.n_trials")
    parser.add_argument("--objective", default=None, help="override segmentation.objective")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="section.key=value, as on the CLI")
    parser.add_argument("--figures", type=Path, default=None, help="write PNGs here")
    args = parser.parse_args()
    # A quarter of the export is guest checkouts (no customer): expected here, not a broken feed.
    overrides = ["data.max_rejected_share=0.5", *args.overrides]
    if args.objective:
        overrides.append(f"segmentation.objective={args.objective}")
    settings = load_settings(overrides=overrides)
    seg = settings.segmentation
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    t0 = time.perf_counter()
    raw = import_online_retail(DATA / "online-retail" / "online_retail.parquet")
    result = validate_dataset(raw, settings.data)
    ds = result.dataset
    features = customer_features(ds.transactions, AS_OF, settings.features,
                                 products=ds.products)
    t_features = time.perf_counter() - t0
    quarantined = sum(len(q) for q in result.quarantine.values())
    print(f"clean transactions {len(ds.transactions):,} (quarantined rows {quarantined:,})")
    print(f"customers with history before {AS_OF}: {len(features):,}; "
          f"{sum(c.startswith(seg.category_prefix) for c in features.columns)} category columns; "
          f"import+validate+features {t_features:.1f}s")

    t1 = time.perf_counter()
    study = new_study(seg)
    params = tune(study, features, seg, n_trials=args.trials)
    t_tune = time.perf_counter() - t1
    t2 = time.perf_counter()
    model = fit_segmentation(features, params, seg)
    metrics = evaluate_segmentation(model, features, seg)
    t_fit = time.perf_counter() - t2
    n_trials = len(study.trials)
    print(f"\nobjective={seg.objective}  trials={n_trials}  tune {t_tune:.1f}s "
          f"({t_tune / max(n_trials, 1):.2f}s/trial)  final fit+evaluate {t_fit:.1f}s")
    print(f"chosen: {params}")
    print("\n== metrics")
    for name, value in metrics.items():
        print(f"  {name:40s} {value:.4f}")

    with pd.option_context("display.width", 250, "display.max_columns", 30,
                           "display.max_colwidth", 60, "display.float_format", "{:.3f}".format):
        profile = segment_profile(model, features, seg)
        cols = ["segment_name", "size", "share", "recency_days_mean", "frequency_mean",
                "monetary_mean", "avg_order_value_mean", "tenure_days_mean", "r_score",
                "f_score", "m_score", "t_score", "top_categories"]
        print("\n== profile")
        print(profile[[c for c in cols if c in profile]].to_string())
        trials = trials_frame(study)
        per_k = (trials.sort_values("value", ascending=False).groupby("k").head(1)
                 .sort_values("k"))
        print("\n== best trial per k (silhouette / stability are raw; value is the objective)")
        show = ["k", "log", "category_mix", "clip_quantile", "value", "silhouette",
                "stability_ari", "davies_bouldin", "calinski_harabasz", "smallest_cluster_share"]
        print(per_k[[c for c in show if c in per_k]].to_string(index=False))

    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        plot_segments_pca(model, features).savefig(args.figures / "segments_pca.png", dpi=110)
        plot_metrics_vs_k(study).savefig(args.figures / "metrics_vs_k.png", dpi=110)
        print(f"\nfigures written to {args.figures}")
    print(f"\ntotal {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
