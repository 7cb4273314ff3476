"""The task runner a retrain's model tasks run on, chosen by ``orchestration.runner``.

``threads`` keeps them in the flow's process (Prefect's default). ``dask`` hands them to
prefect-dask's :class:`~prefect_dask.DaskTaskRunner`: a ``LocalCluster`` of single-threaded
worker processes started for the flow run, or an existing scheduler at
``orchestration.dask_address``. A worker may be on another machine, so the settings sent to it
carry the stores as absolute URLs (:func:`with_resolved_stores`), not "the default under the
working directory".
"""

from __future__ import annotations

import os

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tailor.adapters import tracking
from tailor.configs.schema import OrchestrationSettings, Settings


def _local_workers(settings: OrchestrationSettings, tasks: int) -> int:
    """LocalCluster worker processes: as configured, else one per task up to the cores."""
    return settings.dask_workers or max(1, min(tasks, os.cpu_count() or 1))


def task_runner(settings: OrchestrationSettings, tasks: int) -> TaskRunner:
    """The configured runner for a flow that submits ``tasks`` concurrent tasks."""
    if settings.runner == "threads":
        return ThreadPoolTaskRunner()
    import logging

    from prefect_dask import DaskTaskRunner

    # the scheduler and nannies of a LocalCluster live in this process: their INFO lines
    # (workers joining and leaving) would drown the run's own log
    logging.getLogger("distributed").setLevel(logging.WARNING)
    # workers often outlive the nanny's 4 s close timeout and are then killed, as designed:
    # one warning per worker per run that says nothing an operator acts on
    logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(cluster_kwargs={
        "n_workers": _local_workers(settings, tasks), "threads_per_worker": 1, "processes": True,
        "dashboard_address": None})


def describe(settings: OrchestrationSettings, tasks: int) -> str:
    """One line for the run's log and its MLflow tag: which runner, where."""
    if settings.runner == "threads":
        return "threads (Prefect ThreadPoolTaskRunner in the flow's process)"
    if settings.dask_address:
        return f"dask (DaskTaskRunner on the scheduler at {settings.dask_address})"
    return (f"dask (DaskTaskRunner on a LocalCluster of {_local_workers(settings, tasks)} "
            "worker process(es))")


def with_resolved_stores(settings: Settings) -> Settings:
    """``settings`` with the MLflow and Optuna stores as the URLs this process resolves, so a
    task on any worker writes to the same stores."""
    stores = settings.tracking.model_copy(update={
        "mlflow_tracking_uri": tracking.tracking_uri(settings.tracking),
        "optuna_storage": tracking.optuna_storage(settings.tracking)})
    return settings.model_copy(update={"tracking": stores})
