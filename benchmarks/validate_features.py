"""Benchmark: validate + build customer features on ~1M generated order lines.

Generation runs in a child process so that the peak memory printed is that of reading,
validating and building features only. Usage:
    .venv/bin/python benchmarks/validate_features.py [--customers N] [--seed S]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time

import pandas as pd

from tailor.configs import load_settings
from tailor.data.io import read_dataset
from tailor.data.validate import validate_dataset
from tailor.models.features import customer_features, default_as_of
from tailor.models.interactions import build_interactions


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=18_000)  # ~1M lines
    parser.add_argument("--products", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "from tailor.cli import app; app()", "data", "generate",
             "--customers", str(args.customers), "--products", str(args.products),
             "--seed", str(args.seed), "--out", tmp],
            check=True, stdout=subprocess.DEVNULL)
        t_gen = time.perf_counter() - t0

        t0 = time.perf_counter()
        raw = read_dataset(tmp)
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = validate_dataset(raw, settings.data)
        t_validate = time.perf_counter() - t0
        clean = result.dataset
        horizon = pd.Timedelta(days=settings.features.horizon_days)
        as_of = default_as_of(clean.transactions) - horizon
        t0 = time.perf_counter()
        features = customer_features(clean.transactions, as_of, settings.features,
                                     customers=clean.customers, products=clean.products)
        t_features = time.perf_counter() - t0
        t0 = time.perf_counter()
        inter = build_interactions(clean.transactions, as_of, settings.features,
                                   customer_features=features, customers=clean.customers,
                                   products=clean.products)
        t_inter = time.perf_counter() - t0

    lines = len(raw.transactions)
    total = t_read + t_validate + t_features + t_inter
    print(f"order lines            {lines:,}")
    print(f"quarantined            {sum(len(q) for q in result.quarantine.values()):,}")
    print(f"customers with features {features.shape[0]:,} x {features.shape[1]} columns")
    print(f"interactions           {inter.interactions.shape} nnz={inter.interactions.nnz:,}")
    print(f"generate (not timed)   {t_gen:6.1f} s")
    print(f"read                   {t_read:6.1f} s")
    print(f"validate               {t_validate:6.1f} s")
    print(f"customer features      {t_features:6.1f} s")
    print(f"interactions+features  {t_inter:6.1f} s")
    print(f"TOTAL read..features   {total:6.1f} s  ({lines / total:,.0f} lines/s)")
    print(f"peak RSS               {_peak_rss_gb():6.2f} GB")


if __name__ == "__main__":
    main()
