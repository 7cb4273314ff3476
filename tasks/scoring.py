"""The score flow's Prefect tasks: champions in, one row per customer out.

Where and how the output is written (files, SQL tables, the serving snapshot) is
:mod:`tailor.adapters.score_output`; these tasks add the retries and the run's log. The frames
carry their contracts as types; each is checked once, where it is built
(:func:`~tailor.models.features.customer_features`,
:func:`~tailor.models.scoring.score_customers`), not again at every task it passes through.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tailor import kinds
from tailor.adapters.champions import Champion, load_champions
from tailor.adapters.score_output import DEFAULT_KEEP, write_scores, write_snapshot
from tailor.adapters.tracking import client_for
from tailor.configs.schema import ScoringSettings, TrackingSettings
from tailor.contracts import CustomerFeatures, CustomerScores, DataFrame
from tailor.models.scoring import score_customers
from tailor.tasks.retry import TRANSIENT_RETRIES


@task(name="load-champions", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def load_champions_task(tracking: TrackingSettings) -> dict[str, Champion | None]:
    """Each kind's champion; a missing one is a warning and its columns stay empty."""
    champions = load_champions(client_for(tracking))
    logger = get_run_logger()
    for kind, found in champions.items():
        if found is None:
            logger.warning("no champion for %s (tailor-%s@champion): its columns stay empty",
                           kind, kind)
    return champions


@task(name="score-customers", cache_policy=NO_CACHE)
def score_task(features: DataFrame[CustomerFeatures], champions: dict[str, Champion | None],
               settings: ScoringSettings,
               customers: pd.DataFrame | None) -> DataFrame[CustomerScores]:
    """Every registered kind's columns and the next best action for every customer."""
    return score_customers(features, champions, settings, customers, kinds.score_steps())


@task(name="write-scores", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def write_scores_task(frame: DataFrame[CustomerScores], out: str) -> str:
    return write_scores(frame, out)


@task(name="write-serving-snapshot", cache_policy=NO_CACHE,
      **TRANSIENT_RETRIES)
def write_snapshot_task(snapshot_dir: str, features: DataFrame[CustomerFeatures],
                        customers: pd.DataFrame | None, manifest: dict[str, Any],
                        keep: int = DEFAULT_KEEP) -> str:
    return str(write_snapshot(snapshot_dir, features, customers, manifest, keep))
