"""Recommender on real data: prints the figures quoted in the docs.

1. MovieLens 100K, LightFM's documented protocol: train ua.base, test ua.test, every rating a
   positive, WARP, no features; precision@10 on test excluding train items, AUC. LightFM's docs
   report P@10 ~0.11 and AUC ~0.90. Then the hybrid (user age band / gender / occupation, item
   genres) through the same code path.
2. Online Retail: history before 2011-09-10, holdout the next 90 days. Untuned defaults, then an
   Optuna study (validation = the 90 days before the cutoff, never the test window), then the
   tuned model on the test window, against popularity and repeat baselines.

Usage: .venv/bin/python benchmarks/recommender_real.py [--trials 20] [--timeout 1800]
       [--threads 1] [--skip-movielens] [--skip-retail]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp

from configs.schema import DataSettings, Settings
from models.interactions import InteractionData
from models.ranking_metrics import evaluate_ranking
from models.recommender import (
    default_params,
    evaluate,
    fit_lightfm,
    fit_recommender,
    prepare,
    representations,
    tune,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CUTOFF = "2011-09-10"
HORIZON = 90
GENRES = ("unknown", "action", "adventure", "animation", "children", "comedy", "crime",
          "documentary", "drama", "fantasy", "film_noir", "horror", "musical", "mystery",
          "romance", "sci_fi", "thriller", "war", "western")


def _show(title: str, metrics: dict[str, float], keys: list[str]) -> None:
    print(f"\n== {title}")
    for key in keys:
        if key in metrics:
            print(f"  {key:45s} {metrics[key]:.4f}")


def _feature_matrix(ids: np.ndarray, pairs: pd.DataFrame, identity: bool
                    ) -> tuple[sp.csr_matrix, np.ndarray]:
    """Identity + named features, rows L1-normalised (as build_interactions does)."""
    names = sorted(pairs["feature"].unique())
    col = {n: len(ids) + j for j, n in enumerate(names)}
    rows = list(range(len(ids))) + pairs["row"].tolist()
    cols = list(range(len(ids))) + [col[n] for n in pairs["feature"]]
    if not identity:
        rows, cols = pairs["row"].tolist(), [col[n] - len(ids) for n in pairs["feature"]]
    width = len(names) + (len(ids) if identity else 0)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                           shape=(len(ids), width))
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    matrix = sp.csr_matrix(sp.diags(1.0 / np.maximum(sums, 1e-12)) @ matrix)
    all_names = [f"id:{i}" for i in ids] + names if identity else names
    return matrix, np.array(all_names, dtype=object)


def movielens(directory: Path, threads: int) -> None:
    cols = ["user", "item", "rating", "ts"]
    base = pd.read_csv(directory / "ua.base", sep="\t", names=cols)
    test = pd.read_csv(directory / "ua.test", sep="\t", names=cols)
    n_users, n_items = 943, 1682
    train = sp.coo_matrix((np.ones(len(base), np.int32), (base.user - 1, base.item - 1)),
                          shape=(n_users, n_items))
    truth = sp.csr_matrix((np.ones(len(test), np.float32), (test.user - 1, test.item - 1)),
                          shape=(n_users, n_items))
    users = pd.read_csv(directory / "u.user", sep="|", names=["user", "age", "gender", "occ",
                                                                "zip"])
    items = pd.read_csv(directory / "u.item", sep="|", encoding="latin-1", header=None)
    age = pd.cut(users.age, [0, 18, 25, 35, 45, 50, 56, 200], right=False).astype(str)
    user_pairs = pd.concat([
        pd.DataFrame({"row": users.user - 1, "feature": "age=" + age}),
        pd.DataFrame({"row": users.user - 1, "feature": "gender=" + users.gender}),
        pd.DataFrame({"row": users.user - 1, "feature": "occupation=" + users.occ}),
    ])
    flags = items.iloc[:, 5:24].to_numpy()
    r, g = np.nonzero(flags)
    item_pairs = pd.DataFrame({"row": items.iloc[r, 0].to_numpy() - 1,
                               "feature": ["genre=" + GENRES[j] for j in g]})
    uf, uf_names = _feature_matrix(np.arange(1, n_users + 1), user_pairs, identity=True)
    itf, itf_names = _feature_matrix(np.arange(1, n_items + 1), item_pairs, identity=True)
    data = InteractionData(
        interactions=train, weights=sp.coo_matrix(train, dtype=np.float32), user_features=uf,
        item_features=itf, user_ids=np.arange(1, n_users + 1).astype(str).astype(object),
        item_ids=np.arange(1, n_items + 1).astype(str).astype(object),
        user_feature_names=uf_names, item_feature_names=itf_names)
    exclude = sp.csr_matrix(train)
    # LightFM's defaults (no_components=10, learning_rate=0.05, adagrad, no regularisation)
    lightfm_defaults = {"loss": "warp", "no_components": 10, "learning_rate": 0.05,
                        "learning_schedule": "adagrad", "user_alpha": 0.0, "item_alpha": 0.0,
                        "epochs": 30, "weighting": "binary"}
    keys = ["precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10", "auc",
            "catalogue_coverage"]
    for label, features in [("pure collaborative (no features)", "identity"),
                            ("hybrid (user age/gender/occupation, item genres)", "hybrid")]:
        params = {**lightfm_defaults, "features": features}
        start = time.perf_counter()
        model = fit_lightfm(data, params, seed=42, num_threads=threads)
        reps = representations(model, data, params)
        metrics = evaluate_ranking(reps.scores, truth, 10, exclude=exclude)
        _show(f"MovieLens 100K ua.base/ua.test, WARP, {label} "
              f"({time.perf_counter() - start:.1f}s)", metrics, keys)


def online_retail(path: Path, trials: int, timeout: float, threads: int) -> None:
    from tailor.data.importers.online_retail import import_online_retail
    from tailor.data.validate import validate_dataset

    settings = Settings()
    rec = settings.recommender.model_copy(update={"num_threads": threads, "n_trials": trials})
    raw = import_online_retail(path)
    # 25% of the export is guest checkouts (no customer id): quarantined, expected here
    ds = validate_dataset(raw, DataSettings(max_rejected_share=0.5)).dataset
    tx, customers, products = ds.transactions, ds.customers, ds.products
    print(f"\nOnline Retail: {len(tx):,} valid lines, {tx.customer_id.nunique():,} customers, "
          f"{len(products):,} products; cutoff {CUTOFF}, horizon {HORIZON} days")
    keys = ["n_eval_users", "precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10", "auc",
            "catalogue_coverage", "lightfm_precision_at_10", "baseline_popularity_precision_at_10",
            "baseline_repeat_precision_at_10", "baseline_repeat_ndcg_at_10", "n_cold_users",
            "cold_precision_at_10", "baseline_popularity_cold_precision_at_10",
            "baseline_random_cold_precision_at_10"]
    inputs = prepare(tx, CUTOFF, settings.features, rec, customers, products)
    start = time.perf_counter()
    model = fit_recommender(tx, CUTOFF, settings.features, rec, default_params(), customers,
                            products, inputs=inputs)
    metrics = evaluate(model, tx, HORIZON, customers)
    _show(f"untuned defaults {default_params()} ({time.perf_counter() - start:.0f}s)",
          metrics, keys)

    start = time.perf_counter()
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=rec.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3,
                                                                   n_warmup_steps=3))
    best = tune(study, tx, CUTOFF, settings.features, rec, customers, products,
                n_trials=trials, timeout=timeout)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    print(f"\n== Optuna: {len(done)} complete, {len(pruned)} pruned trials in "
          f"{time.perf_counter() - start:.0f}s; best validation P@10 {study.best_value:.4f}")
    print(f"  best params: {best}")
    model = fit_recommender(tx, CUTOFF, settings.features, rec, best, customers, products,
                            inputs=inputs)
    metrics = evaluate(model, tx, HORIZON, customers)
    _show("tuned model on the test window", metrics, keys)
    start = time.perf_counter()
    model.recommend(model.user_ids, k=10)
    rate = len(model.user_ids) / (time.perf_counter() - start)
    print(f"  recommend(): {rate:,.0f} users/s over {len(model.item_ids):,} items")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-movielens", action="store_true")
    parser.add_argument("--skip-retail", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not args.skip_movielens:
        movielens(DATA / "movielens-100k", args.threads)
    if not args.skip_retail:
        online_retail(DATA / "online-retail" / "online_retail.parquet", args.trials,
                      args.timeout, args.threads)


if __name__ == "__main__":
    main()
