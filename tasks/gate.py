"""The gate's Prefect tasks; the rule itself is :mod:`tailor.adapters.gate`.

Neither task is retried: a retry would move aliases planned against a registry that may have
changed; an interrupted promotion is repaired by :mod:`tailor.adapters.reconcile` instead.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tailor.adapters import gate
from tailor.adapters.gate import Decision
from tailor.adapters.training import TrackedTraining
from tailor.configs.schema import Settings
from tailor.data.dataset import Dataset
from tailor.tasks.run_log import alias_line, decision_line, run_logger


@task(name="gate", task_run_name="gate-{kind}", cache_policy=NO_CACHE)
def evaluate_gate(kind: str, challenger: TrackedTraining, clean: Dataset,
                  settings: Settings) -> Decision:
    """Score challenger and champion configurations side by side and decide (moves nothing)."""
    decision = gate.evaluate(kind, challenger, clean, settings)
    run_logger().info(decision_line(decision))
    return decision


@task(name="move-aliases", cache_policy=NO_CACHE)
def apply_decisions(decisions: list[Decision], settings: Settings) -> list[Decision]:
    """Record every decision on its version and apply the alias moves together (all or
    nothing); returns the decisions as applied."""
    applied = gate.apply(decisions, settings)
    logger = run_logger()
    for decision in applied:
        logger.info(alias_line(decision))
    return applied
