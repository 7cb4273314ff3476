"""Optuna trials spread over a Dask cluster through the study's shared RDB storage.

A model kind tunes by calling ``study.optimize(objective, n_trials, timeout, callbacks)``; it
neither knows nor cares where the trials run. When its training task runs on a Dask worker,
:func:`spread_over_cluster` hands the kind a :class:`ClusterStudy` instead: the same study
(trials, best trial, enqueued points all read from and written to the storage), whose
``optimize`` splits the trial budget into one share per worker. Each share loads the study by
name from the storage (PostgreSQL on a team's stack) and optimises it there, so every worker's
TPE sampler sees the trials the others have finished; enqueued trials (segmentation's grid) are
taken by whichever worker asks first. The task secedes from its worker while the shares run
(``worker_client``), so it holds no worker thread while waiting.

The callbacks (each finished trial logged as an MLflow child run) run afterwards, in the task,
for every trial the shares finished, in trial order. With trials in parallel the sequence
depends on timing: a seeded retrain is reproducible only with the threads runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna

WORKER_ATTR = "tailor.worker"
"""Trial user attribute naming the Dask worker that ran it."""


def _optimize_share(storage: str, study_name: str, seed: int, pruner: optuna.pruners.BasePruner,
                    objective: Callable[[optuna.Trial], float], n_trials: int,
                    timeout: float | None) -> int:
    """One worker's share of the trials, on the study loaded from the shared storage."""
    from distributed import get_worker

    from tailor.adapters.tracking import study_storage

    address = get_worker().address
    study = optuna.load_study(study_name=study_name, storage=study_storage(storage),
                              sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)

    def tagged(trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, address)
        return objective(trial)

    study.optimize(tagged, n_trials=n_trials, timeout=timeout)
    return n_trials


class ClusterStudy:
    """An Optuna study whose ``optimize`` runs on every worker of the current Dask cluster;
    everything else is the study itself."""

    def __init__(self, study: optuna.Study, storage: str, seed: int) -> None:
        self._wrapped = study
        self._storage_url = storage
        self._share_seed = seed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def optimize(self, func: Callable[[optuna.Trial], float], n_trials: int | None = None,
                 timeout: float | None = None,
                 callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]]
                 | None = None, **_: Any) -> None:
        from distributed import worker_client

        if n_trials is None:
            raise ValueError("tuning on a Dask cluster needs a trial budget (n_trials)")
        seen = {t.number for t in self._wrapped.get_trials(deepcopy=False)
                if t.state.is_finished()}  # enqueued (waiting) trials are still to run
        with worker_client() as client:
            workers = max(1, len(client.scheduler_info()["workers"]))
            shares = [n_trials // workers + (i < n_trials % workers)
                      for i in range(min(workers, n_trials))]
            futures = [client.submit(_optimize_share, self._storage_url, self._wrapped.study_name,
                                     self._share_seed + i + 1, self._wrapped.pruner, func, share,
                                     timeout, pure=False, key=f"trials-{self._wrapped.study_name}"
                                     f"-{len(seen)}-{i}")
                       for i, share in enumerate(shares)]
            client.gather(futures)
        finished = [t for t in self._wrapped.get_trials(deepcopy=False)
                    if t.number not in seen and t.state.is_finished()]
        for trial in sorted(finished, key=lambda t: t.number):
            for callback in callbacks or ():
                callback(self._wrapped, trial)


def spreads(storage: str) -> bool:
    """Whether trials may run on several workers at once: not on sqlite, which has no row
    locks, so two workers can claim the same enqueued trial (the second fails to finish it)."""
    return not storage.startswith("sqlite")


def spread_over_cluster(study: optuna.Study, storage: str, seed: int) -> optuna.Study:
    """``study`` as a :class:`ClusterStudy` when this runs in a task on a Dask worker (the
    ``dask`` runner) and the storage is a database server, else unchanged."""
    if not spreads(storage):
        return study
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return study
    return ClusterStudy(study, storage, seed)  # type: ignore[return-value]
