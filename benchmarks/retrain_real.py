"""Benchmark: the retrain flow on real Online Retail vs the same training functions called bare.

Both sides train the three models with the configured trials (default 20 each) as of the day
after the last transaction (each tuned and judged by a twin on the 90 days before it, the
served model fit on all history) and run the models concurrently in three threads, as the flow
does:

- bare: the windows, ``fit_*_run`` with in-memory Optuna studies, no Prefect, no MLflow;
- flow: the ``train-models`` Prefect flow (temporary local API) with a fresh sqlite MLflow
  store and Optuna storage, child runs per trial, artifacts, registry versions and the gate.

Overhead = flow / bare - 1. Usage:
    .venv/bin/python benchmarks/retrain_real.py [--trials 20] [--data FILE]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna

from tailor.configs import load_settings
from tailor.data.importers.online_retail import import_online_retail
from tailor.data.io import write_dataset
from tailor.data.validate import validate_dataset
from tailor.kinds.churn import churn_data, fit_churn_run
from tailor.kinds.recommender import fit_recommender_run
from tailor.kinds.segmentation import fit_segmentation_run
from tailor.models.churn_data import plan_windows_for_churn
from tailor.models.features import default_as_of
from tailor.models.recommender import plan as recommender_windows
from tailor.models.segmentation import plan as segmentation_windows

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "online-retail" / "online_retail.parquet"


def _bare(settings, clean, as_of) -> dict[str, float]:  # type: ignore[no-untyped-def]
    def study(direction: str, seed: int) -> optuna.Study:
        return optuna.create_study(direction=direction,
                                   sampler=optuna.samplers.TPESampler(seed=seed),
                                   pruner=optuna.pruners.MedianPruner(n_warmup_steps=2))

    def segmentation() -> float:
        windows = segmentation_windows(clean.transactions, as_of, settings.features)
        run = fit_segmentation_run(settings, clean, windows, study("maximize", 42))
        return run.metrics["holdout_objective"]

    def recommender() -> float:
        windows = recommender_windows(clean.transactions, as_of, settings.features,
                                      settings.recommender)
        run = fit_recommender_run(settings, clean, windows, study("maximize", 42))
        return run.metrics[f"holdout_precision_at_{settings.recommender.k}"]

    def churn() -> float:
        windows = plan_windows_for_churn(clean.transactions, as_of, settings.features,
                                         settings.churn)
        data = churn_data(settings, clean, windows)
        return fit_churn_run(settings, data, study("minimize", 42)).metrics["holdout_roc_auc"]

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(fn) for name, fn in
                   {"segmentation": segmentation, "recommender": recommender,
                    "churn": churn}.items()}
        return {name: f.result() for name, f in futures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = [f"{m}.n_trials={args.trials}" for m in ("segmentation", "recommender", "churn")]

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "retail"
        write_dataset(import_online_retail(args.data), data_dir)
        store = Path(tmp) / "store"
        overrides = [*trials, f"tracking.mlflow_tracking_uri=sqlite:///{store / 'mlflow.db'}",
                     f"tracking.optuna_storage=sqlite:///{store / 'optuna.db'}"]
        settings = load_settings(overrides=overrides)
        from tailor.data.io import read_dataset

        clean = validate_dataset(read_dataset(data_dir), settings.data).dataset
        as_of = default_as_of(clean.transactions)

        t0 = time.perf_counter()
        bare = _bare(settings, clean, as_of)
        t_bare = time.perf_counter() - t0

        from prefect.testing.utilities import prefect_test_harness

        from tailor.flows.train import train_models

        with prefect_test_harness(server_startup_timeout=120):
            t0 = time.perf_counter()
            summary = train_models(str(data_dir), str(Path(tmp) / "out"), overrides=overrides)
            t_flow = time.perf_counter() - t0

    print(f"as of {summary['as_of']}, {args.trials} trials per model, load {os.getloadavg()}")
    print(f"bare training functions (3 threads): {t_bare:7.1f} s   {bare}")
    print(f"train-models flow (Prefect+MLflow):  {t_flow:7.1f} s")
    for row in summary["models"]:
        print(f"  {row['model']:<13} v{row['version']} {row['gate_metric']} "
              f"{row['challenger']:.4f} promoted={row['promoted']}")
    print(f"orchestration + tracking overhead:   {t_flow / t_bare - 1:7.1%}")


if __name__ == "__main__":
    main()
