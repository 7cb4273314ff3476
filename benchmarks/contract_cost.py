"""Benchmark: what checking the frame contracts costs, on the real Online Retail export.

Imports and validates the export as ``tailor data import`` + ``tailor prepare`` do, then times
``customer_features`` with its ``CustomerFeatures`` check (as called everywhere) and without it
(the undecorated function), the check alone, and the ``CustomerScores`` check of a campaign table
of the same customers (fixed lists: the check's cost, not the recommender's). Medians of
``--repeats`` runs, interleaved so that load on the shared cores hits both alike. Usage:
    .venv/bin/python benchmarks/contract_cost.py [--data EXPORT] [--repeats N]
(``--data`` default: ``../shared/data/online-retail/online_retail.parquet``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailor.configs import load_settings
from tailor.contracts import CustomerFeatures, CustomerScores
from tailor.data.importers import import_online_retail
from tailor.data.validate import validate_dataset
from tailor.models.features import customer_features, default_as_of
from tailor.models.scoring import SCORE_COLUMNS

DEFAULT = Path("../shared/data/online-retail/online_retail.parquet")


def _seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _scores(features: pd.DataFrame, k: int) -> pd.DataFrame:
    n = len(features)
    frame = pd.DataFrame({"customer_id": features.index.to_numpy(dtype=object),
                          "segment": pd.array(np.arange(n) % 5, dtype="Int64"),
                          "segment_name": np.where(np.arange(n) % 2, "loyal", "new"),
                          "recommendations": [[f"p{j}" for j in range(k)] for _ in range(n)],
                          "churn_probability": np.linspace(0, 1, n),
                          "next_best_action": "nurture"})
    for kind in ("segmentation", "recommender", "churn"):
        frame[f"{kind}_version"] = "1"
    return frame[list(SCORE_COLUMNS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    settings = load_settings()
    clean = validate_dataset(import_online_retail(args.data), settings.data).dataset
    tx, customers, products = clean.transactions, clean.customers, clean.products
    as_of = default_as_of(tx)

    def checked() -> pd.DataFrame:
        return customer_features(tx, as_of, settings.features, customers, products)

    def unchecked() -> pd.DataFrame:
        return customer_features.__wrapped__(tx, as_of, settings.features, customers, products)

    features = checked()
    scores = _scores(features, settings.scoring.k)
    runs: dict[str, list[float]] = {"with check": [], "without check": [],
                                    "CustomerFeatures.validate": [],
                                    "CustomerScores.validate": []}
    for _ in range(args.repeats):
        runs["without check"].append(_seconds(unchecked))
        runs["with check"].append(_seconds(checked))
        runs["CustomerFeatures.validate"].append(
            _seconds(lambda: CustomerFeatures.validate(features, inplace=True)))
        runs["CustomerScores.validate"].append(
            _seconds(lambda: CustomerScores.validate(scores, inplace=True)))
    median = {label: statistics.median(times) for label, times in runs.items()}
    print(f"{len(tx):,} clean lines, {len(features):,} customers x {features.shape[1]} "
          f"feature columns, {args.repeats} repeats (median, min)")
    for label, times in runs.items():
        print(f"  {label:<27} {median[label] * 1e3:8.1f} ms  {min(times) * 1e3:8.1f} ms")
    base = median["without check"]
    print(f"  check / customer_features: {median['CustomerFeatures.validate'] / base:6.1%} "
          f"(with - without: {(median['with check'] - base) / base:6.1%})")


if __name__ == "__main__":
    main()
