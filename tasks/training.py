"""The Prefect task that trains one model kind: a data shortfall becomes a skip, not a failure."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tailor import kinds
from tailor.adapters.training import SkippedTraining, TrackedTraining, train_model
from tailor.configs.schema import Settings
from tailor.data.dataset import Dataset
from tailor.models.windows import InsufficientHistoryError
from tailor.tasks.run_log import holdout_lines, run_logger, tuning_line


@task(name="train-model", task_run_name="train-{kind}", cache_policy=NO_CACHE)
def train_model_task(kind: str, settings: Settings, clean: Dataset, as_of: pd.Timestamp,
                     run_name: str, fingerprint: str, parent_run_id: str | None = None,
                     **options: Any) -> TrackedTraining | SkippedTraining:
    """One tracked training of ``kind``; a model the data cannot train (too short a history,
    a single product) is a :class:`SkippedTraining` with the reason, so the flow trains the
    others and reports it. The run's log gets the tuning and the holdout beside the baselines."""
    logger = run_logger()
    started = time.monotonic()
    try:
        result = train_model(kinds.get(kind), settings, clean, as_of, run_name, fingerprint,
                             parent_run_id, **options)
    except InsufficientHistoryError as exc:
        logger.warning("skipped %s: %s", kind, exc)
        return SkippedTraining(kind, str(exc))
    logger.info(tuning_line(result, time.monotonic() - started))
    gate_metric = kinds.get(kind).gate_metric(settings)
    for line in holdout_lines(kind, result.metrics, gate_metric, result.run_id):
        logger.info(line)
    return result
