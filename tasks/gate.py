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


@task(name="gate", cache_policy=NO_CACHE)
def evaluate_gate(kind: str, challenger: TrackedTraining, clean: Dataset,
                  settings: Settings) -> Decision:
    """Score challenger and champion configurations side by side and decide (moves nothing)."""
    return gate.evaluate(kind, challenger, clean, settings)


@task(name="move-aliases", cache_policy=NO_CACHE)
def apply_decisions(decisions: list[Decision], settings: Settings) -> list[Decision]:
    """Record every decision on its version and apply the alias moves together (all or
    nothing); returns the decisions as applied."""
    return gate.apply(decisions, settings)
