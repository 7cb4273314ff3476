"""Benchmark: the retrain after the first, when champions exist, on a store `scale.py` kept.

`benchmarks/scale.py` times a first retrain: an empty registry, so the gate has no champion to
refit. Every later retrain refits each champion's configuration on the challenger's holdout
window and scores both (tailor/adapters/gate.py), so a scheduled retrain costs more. This runs
`tailor train` again in a kept working directory (the same MLflow and Optuna stores, with the
champions of the first run), with ``--as-of`` a week before the first run's, so the Optuna
studies are new (a study is named by its as_of and data) as a weekly retrain's are, and times
it the same way, under the same RSS sampler.

Usage:
    .venv/bin/python benchmarks/scale.py --sizes 10m --keep DIR --data-cache CACHE
    .venv/bin/python benchmarks/weekly_retrain.py --workdir DIR/work-10m --data CACHE/data-10m

Prints one JSON line: the run (wall, peak RSS), the per-model spans and the time after the
models (the gate's refits and scoring, the alias moves).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import TAILOR, _env, mlflow_times, optuna_times, run_measured


def first_as_of(workdir: Path) -> pd.Timestamp:
    """The as_of of the latest retrain in the working directory's store."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tailor-retrain")
    if experiment is None:
        raise SystemExit(f"{workdir}: no tailor-retrain experiment (run scale.py --keep first)")
    parents = [r for r in client.search_runs([experiment.experiment_id])
               if "mlflow.parentRunId" not in r.data.tags]
    return pd.Timestamp(max(parents, key=lambda r: r.info.start_time).data.params["as_of"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--days-earlier", type=int, default=7)
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    as_of = first_as_of(workdir) - pd.Timedelta(days=args.days_earlier)
    out = workdir / "out"
    result = run_measured([TAILOR, "train", "--data", str(args.data.resolve()), "--out",
                           str(out), "--as-of", as_of.date().isoformat()],
                          workdir, _env(workdir), workdir / "weekly-train.log")
    print(json.dumps({"as_of": as_of.date().isoformat(), "train": result,
                      "mlflow": mlflow_times(workdir), "optuna": optuna_times(workdir)}))


if __name__ == "__main__":
    main()
