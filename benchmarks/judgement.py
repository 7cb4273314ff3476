"""Benchmark: what judging a recommender on its holdout costs.

A retrain judges the recommender's twin on the holdout (``evaluate``: the model, its blend,
LightFM alone and three baselines, with AUC) and draws its precision@k curve. On a generated
data set (``--data DIR`` from ``tailor data generate``) this fits a recommender twin once
(``--epochs``, default 10; the time is printed, not judged) and times:

    evaluate (the holdout metrics)     precision curve (k = 1, 3, 5, 10, 20)

and prints the holdout figures, so two commits can be compared on the same data (the figures
must match). Usage:
    .venv/bin/python benchmarks/judgement.py --data DIR [--epochs N]
"""

from __future__ import annotations

import argparse
import time

from tailor.configs import load_settings
from tailor.data.io import read_dataset
from tailor.data.validate import validate_dataset
from tailor.kinds import recommender as kind
from tailor.models.features import default_as_of, history
from tailor.models.recommender import evaluate, fit_recommender
from tailor.models.recommender_plots import precision_curve

CURVE_KS = (1, 3, 5, 10, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    settings = load_settings()
    clean = validate_dataset(read_dataset(args.data), settings.data).dataset
    windows = kind.SPEC.plan(settings, clean, default_as_of(clean.transactions))
    start = windows.holdout_start
    t0 = time.perf_counter()
    twin = fit_recommender(history(clean.transactions, start), start, settings.features,
                           settings.recommender, {"epochs": args.epochs}, clean.customers,
                           clean.products)
    t_fit = time.perf_counter() - t0
    tx = history(clean.transactions, windows.as_of)
    t0 = time.perf_counter()
    metrics = evaluate(twin, tx, windows.holdout_days, clean.customers)
    t_eval = time.perf_counter() - t0
    t0 = time.perf_counter()
    curve = precision_curve(twin, tx, windows.holdout_days, CURVE_KS)
    t_curve = time.perf_counter() - t0
    k = settings.recommender.k
    print(f"order lines              {len(clean.transactions):,}")
    print(f"customers judged         {metrics['n_eval_users']:,.0f} x "
          f"{len(twin.item_ids):,} products")
    print(f"twin fit (not judged)    {t_fit:7.1f} s")
    print(f"evaluate                 {t_eval:7.1f} s")
    print(f"precision curve          {t_curve:7.1f} s")
    print(f"precision@{k}             {metrics[f'precision_at_{k}']:.6f}")
    print(f"auc                      {metrics['auc']:.6f}")
    print(f"lightfm auc              {metrics['lightfm_auc']:.6f}")
    print(curve.round(6).to_string())


if __name__ == "__main__":
    main()
