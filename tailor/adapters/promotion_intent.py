"""The durable record of a promotion: every planned alias move, written before any is applied.

Moving the aliases of three models is several registry calls; a process killed between two
leaves some moved and some not, and no ``finally`` runs. So the whole plan is first written as
one record (a run in the experiment ``tailor-registry-intents``, created in one call with the
plan and its state in its tags, so it is in the same store as the aliases and the audit trail).
The record stays RUNNING while the moves are applied and is closed with its outcome:

- ``applied``: every move done and the versions tagged (FINISHED);
- ``reverted``: a move failed in-process and those applied were put back (FAILED);
- ``completed`` / ``rolled back``: a killed promotion repaired later by
  :mod:`tailor.adapters.reconcile` (FINISHED / FAILED), with what was done in ``intent.repair``.

A RUNNING record whose owner process is gone is therefore a promotion that was interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Run, RunStatus

from tailor.adapters import tracking
from tailor.adapters.owner import owner_tags
from tailor.adapters.registry import AliasMove

INTENT_EXPERIMENT = "tailor-registry-intents"
STATE = "intent.state"
PLAN = "intent.plan"
REPAIR = "intent.repair"
APPLYING = "applying"
APPLIED = "applied"
REVERTED = "reverted"
COMPLETED = "completed"
ROLLED_BACK = "rolled back"
_MAX_TAG = 8000
_REASON = 300


@dataclass(frozen=True)
class Intent:
    run_id: str
    moves: tuple[AliasMove, ...]
    tags: dict[str, str]
    start_time: int  # ms since the epoch


def _plan(moves: Sequence[AliasMove]) -> str:
    rows = [{"model": m.model, "alias": m.alias, "from": m.from_version, "to": m.to_version,
             "kind": m.kind, "actor": m.actor, "reason": m.reason[:_REASON],
             "metrics": dict(m.metrics)} for m in moves]
    text = json.dumps(rows, sort_keys=True)
    if len(text) > _MAX_TAG:
        raise ValueError(f"a promotion plan of {len(moves)} moves does not fit one record")
    return text


def open_intent(client: MlflowClient, moves: Sequence[AliasMove], what: str) -> str:
    """Write the plan (state ``applying``) and return the record's run id."""
    experiment = tracking.ensure_experiment(client, INTENT_EXPERIMENT)
    tags = {STATE: APPLYING, PLAN: _plan(moves), **owner_tags()}
    return client.create_run(experiment, tags=tags, run_name=what).info.run_id


def close_intent(client: MlflowClient, run_id: str, state: str, repair: str | None = None) -> None:
    """Record the outcome; ``applied`` and ``completed`` count as done (FINISHED)."""
    client.set_tag(run_id, STATE, state)
    if repair:
        client.set_tag(run_id, REPAIR, repair[:_MAX_TAG])
    ok = state in (APPLIED, COMPLETED)
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED if ok
                                                      else RunStatus.FAILED))


def _moves(run: Run) -> tuple[AliasMove, ...]:
    rows = json.loads(run.data.tags.get(PLAN, "[]"))
    return tuple(AliasMove(model=r["model"], alias=r["alias"], from_version=r["from"],
                           to_version=r["to"], actor=r["actor"], reason=r["reason"],
                           kind=r["kind"], metrics=r.get("metrics") or {},
                           intent=run.info.run_id) for r in rows)


def open_intents(client: MlflowClient) -> list[Intent]:
    """Records still RUNNING (being applied now, or interrupted), oldest first."""
    experiment = client.get_experiment_by_name(INTENT_EXPERIMENT)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'",
                              max_results=1000, order_by=["attributes.start_time ASC"])
    return [Intent(r.info.run_id, _moves(r), dict(r.data.tags), r.info.start_time)
            for r in runs]
