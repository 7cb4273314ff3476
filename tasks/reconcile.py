"""The Prefect task that repairs crash leftovers before a run; the repair itself is
:mod:`tailor.adapters.reconcile`."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tailor.adapters import tracking
from tailor.adapters.reconcile import reconcile
from tailor.configs.schema import Settings


@task(name="repair-crash-leftovers", cache_policy=NO_CACHE)
def reconcile_store(settings: Settings) -> list[str]:
    """Repair the store before a run (the caller holds its lock); one line per repair."""
    findings = reconcile(tracking.client_for(settings.tracking),
                         settings.tracking.experiment_prefix, fix=True,
                         stale_hours=settings.registry.stale_run_hours)
    logger = get_run_logger()
    for finding in findings:
        logger.warning("repaired %s", finding.line())
    return [finding.line() for finding in findings]
