"""Optuna trials spread over a real Dask LocalCluster through a shared RDB storage: the budget
is split over the workers, every trial lands in the one study, the callbacks see each
finished trial once, in order; outside a worker the study is left as it is."""

from __future__ import annotations

import uuid
from pathlib import Path

import optuna
import pytest

from tailor.adapters.dask_trials import WORKER_ATTR, ClusterStudy, spread_over_cluster
from tailor.adapters.tracking import create_study

distributed = pytest.importorskip("distributed")


def _quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    return (x - 3.0) ** 2


def _tune_on_worker(storage: str, name: str, n_trials: int) -> list[int]:
    """What a training task does on a worker: create the study, hand it to the kind."""
    study = create_study(storage, name, "minimize", seed=1)
    seen: list[int] = []
    spread = spread_over_cluster(study, storage, seed=1)
    assert isinstance(spread, ClusterStudy)
    spread.enqueue_trial({"x": 3.0})  # delegated: a kind's grid points reach the storage
    spread.optimize(_quadratic, n_trials=n_trials,
                    callbacks=[lambda _study, trial: seen.append(trial.number)])
    return seen


@pytest.mark.postgres
def test_trials_spread_over_the_workers_into_one_study(pg_url: str) -> None:
    storage, name = pg_url, f"spread-{uuid.uuid4().hex[:8]}"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        seen = client.submit(_tune_on_worker, storage, name, 8, pure=False).result()
        workers = set(client.scheduler_info()["workers"])
    study = optuna.load_study(study_name=name, storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 8
    assert seen == sorted(t.number for t in done)  # each finished trial once, in order
    assert {t.user_attrs[WORKER_ATTR] for t in done} == workers
    assert study.best_value == 0.0  # the enqueued point was run by one of the shares


def test_outside_a_dask_worker_the_study_is_unchanged(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = create_study(storage, "local", "minimize", seed=1)
    assert spread_over_cluster(study, storage, seed=1) is study


def _on_worker_with_sqlite(storage: str) -> bool:
    study = create_study(storage, "on-sqlite", "minimize", seed=1)
    return spread_over_cluster(study, storage, seed=1) is study


def test_on_sqlite_a_worker_keeps_its_trials_to_itself(tmp_path: Path) -> None:
    """sqlite has no row locks: two workers could claim one enqueued trial."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert client.submit(_on_worker_with_sqlite, storage, pure=False).result()
