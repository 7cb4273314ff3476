"""Benchmark: batch scoring throughput (customers per second) on a generated retailer.

Fits the three models once with fixed, untuned parameters (no MLflow: only scoring is measured),
then times :func:`scoring.score_customers` (segment, churn probability, top-k, next best
action) and the parquet write, on every customer of the data set. Usage:
    .venv/bin/tailor data generate --customers 100000 --products 800 --out /tmp/bench100k
    .venv/bin/python benchmarks/scoring.py --data /tmp/bench100k [--k 10] [--repeats 3]
Without --data a data set of --customers customers is generated in a temporary directory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from tailor.adapters.score_output import write_file_atomic
from tailor.configs import load_settings
from tailor.data.generate import generate, write_generated
from tailor.data.io import read_dataset
from tailor.data.validate import validate_dataset
from tailor.models.churn import GRADIENT_BOOSTING, default_params, fit_churn_model
from tailor.models.churn_data import cutoff_frame
from tailor.models.features import customer_features, default_as_of
from tailor.models.recommender import default_params as recommender_params
from tailor.models.recommender import fit_recommender
from tailor.models.scoring import score_customers
from tailor.models.segmentation import fit_segmentation


def _timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"{label:<34} {time.perf_counter() - start:7.1f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings(overrides=["segmentation.n_init=2"])
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "data"
            gen = settings.generate.model_copy(update={"customers": args.customers,
                                                       "products": 800})
            _timed("generate", lambda: write_generated(generate(gen), data))
        clean = _timed("read + validate", lambda: validate_dataset(
            read_dataset(data), settings.data).dataset)
        tx, customers, products = clean.transactions, clean.customers, clean.products
        as_of = default_as_of(tx)
        cutoff = as_of - pd.Timedelta(days=settings.features.horizon_days)
        features = _timed("customer features", customer_features, tx, as_of, settings.features,
                          customers, products)
        segmentation = _timed("fit segmentation (setup)", fit_segmentation, features,
                              {"k": 6}, settings.segmentation)
        recommender = _timed(
            "fit recommender (setup)", fit_recommender, tx, cutoff, settings.features,
            settings.recommender, {**recommender_params(), "epochs": 5}, customers, products)
        frame = _timed("churn training frame (setup)", cutoff_frame, tx, cutoff,
                       settings.features.horizon_days, settings.features, settings.churn,
                       customers, products)
        churn = _timed("fit churn (setup)", fit_churn_model, default_params(GRADIENT_BOOSTING),
                       frame, settings.churn)
        models = {"segmentation": ("1", segmentation), "recommender": ("1", recommender),
                  "churn": ("1", churn)}
        scoring = settings.scoring.model_copy(update={"k": args.k})
        cold = int((~recommender.known(features.index.to_numpy(dtype=object))).sum())
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            scores = score_customers(features, models, scoring, customers)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        write_file_atomic(scores, Path(tmp) / "scores.parquet")
        write_s = time.perf_counter() - start
    best = min(times)
    n = len(scores)
    print(f"\n{n:,} customers ({cold:,} cold for the recommender), {len(tx):,} order lines, "
          f"k={args.k}, {len(recommender.item_ids)} products")
    print(f"score: best {best:.2f} s of {args.repeats} ({n / best:,.0f} customers/s); "
          f"parquet write {write_s:.2f} s")
    print(scores["next_best_action"].value_counts().to_string())


if __name__ == "__main__":
    main()
