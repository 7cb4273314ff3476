"""Repair what a killed process left in the MLflow store, and say what was repaired.

A SIGKILL (OOM killer, lost node, Ctrl-\\) runs no ``finally``: runs stay RUNNING, a version
registered just before the kill was never gated, and a promotion may stop between two alias
moves. Every retrain starts with :func:`reconcile` (holding the store's lock, see
:mod:`registry_lock`, so no live retrain is in the middle of anything), `tailor score`
runs it when no retrain holds the lock, and `tailor doctor [--fix]` runs it by hand.

What is repaired, in order:

1. **Interrupted promotions** (a RUNNING intent of :mod:`promotion_intent` whose owner
   is gone): if every planned move is in place, the promotion is *completed* (version tags
   written, audit runs finished); otherwise it is *rolled back*: each alias the plan moved is
   moved back (audited as a ``revert``), so the models' aliases are again the set the last
   complete gate decision produced. An alias someone else moved meanwhile is left alone and
   reported.
2. **Audit runs** left RUNNING: FINISHED when their alias did move (the move happened and must
   be in the trail), FAILED when it did not.
3. **Other runs** left RUNNING (parent, model and trial runs): KILLED.
4. **Versions with no gate decision** whose training run is over: tagged
   ``tailor.gate.state = none`` with the reason; :func:`registry.promote` refuses them.

A record is repaired only when its owner process is provably gone (:mod:`owner`): on this
host, its pid has exited. A record from another host, or without an owner, is repaired once it
is older than ``stale_hours``. Every repaired run carries ``tailor.reconciled`` saying why.

Plain library code (no Prefect): `tailor doctor` calls it directly; the flows run it
through the ``repair-crash-leftovers`` task of :mod:`tailor.tasks.reconcile`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.entities import Run, RunStatus

from tailor.adapters import promotion_intent, registry
from tailor.adapters.owner import describe_owner, owner_alive
from tailor.adapters.promotion_intent import Intent

RECONCILED = "tailor.reconciled"
ACTOR = "tailor reconcile"


@dataclass(frozen=True)
class Finding:
    """One inconsistency: what was found, and what was (or would be) done about it."""

    what: str
    action: str
    fixed: bool

    def line(self) -> str:
        return f"{self.what}: {'' if self.fixed else 'would '}{self.action}"


def _gone(tags: dict[str, str], start_ms: int, stale_hours: float) -> str | None:
    """Why the owner of a RUNNING record is gone, or None while it may be alive."""
    alive = owner_alive(tags)
    if alive is False:
        return f"its process ({describe_owner(tags)}) is gone"
    if alive is None:
        age_h = (datetime.now(UTC).timestamp() * 1000 - start_ms) / 3_600_000
        if age_h > stale_hours:
            return f"RUNNING for {age_h:.0f} h and its process cannot be checked from here"
    return None


def _running(client: MlflowClient, experiment_ids: list[str]) -> list[Run]:
    if not experiment_ids:
        return []
    out: list[Run] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'",
                                  max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _finish_audit_run(client: MlflowClient, run: Run, why: str, fix: bool) -> Finding:
    tags = run.data.tags
    model, alias = tags.get("audit.model", "?"), tags.get("audit.alias", "?")
    to_version = tags.get("audit.to_version") or None
    moved = registry.alias_version(client, model, alias) == to_version
    what = (f"audit run {run.info.run_id} ({model}@{alias} -> v{to_version}) left RUNNING: "
            f"{why}")
    status = RunStatus.FINISHED if moved else RunStatus.FAILED
    action = ("mark it FINISHED: the alias did move" if moved
              else "mark it FAILED: the alias did not move")
    if fix:
        client.set_tag(run.info.run_id, RECONCILED, f"{why}; {action}")
        client.set_terminated(run.info.run_id, RunStatus.to_string(status))
    return Finding(what, action, fix)


def _audit_runs_of(client: MlflowClient, intent: str) -> list[Run]:
    experiment = client.get_experiment_by_name(registry.AUDIT_EXPERIMENT)
    if experiment is None:
        return []
    return [r for r in _running(client, [experiment.experiment_id])
            if r.data.tags.get("audit.intent") == intent]


def _repair_intent(client: MlflowClient, intent: Intent, why: str, fix: bool) -> list[Finding]:
    findings = [_finish_audit_run(client, run, why, fix)
                for run in _audit_runs_of(client, intent.run_id)]
    where = {(m.model, m.alias): registry.alias_version(client, m.model, m.alias)
             for m in intent.moves}
    done = [m for m in intent.moves if where[(m.model, m.alias)] == m.to_version]
    foreign = [m for m in intent.moves
               if where[(m.model, m.alias)] not in (m.from_version, m.to_version)]
    what = f"promotion {intent.run_id} interrupted ({len(done)} of {len(intent.moves)} moves " \
           f"applied): {why}"
    if len(done) == len(intent.moves):
        action = "complete it: every move is in place; tag the versions"
        if fix:
            for move in done:
                registry.tag_version(client, replace(move, at=datetime.now(UTC),
                                                     run_id=intent.run_id))
            promotion_intent.close_intent(client, intent.run_id, promotion_intent.COMPLETED,
                                          action)
        return [*findings, Finding(what, action, fix)]
    undo = [m for m in done if m.from_version != m.to_version]
    action = "roll it back: " + (", ".join(f"{m.model}@{m.alias} v{m.to_version} -> "
                                           f"v{m.from_version or '-'}" for m in undo)
                                 or "nothing had moved")
    if foreign:
        action += "; left alone (moved by someone else since): " + ", ".join(
            f"{m.model}@{m.alias} at v{where[(m.model, m.alias)]}" for m in foreign)
    if fix:
        for move in reversed(undo):
            back = registry.plan_move(client, move.model, move.alias, move.from_version,
                                      actor=ACTOR, reason=f"roll back interrupted promotion "
                                      f"{intent.run_id}: {why}", kind=registry.KIND_REVERT)
            registry.apply_moves(client, [back])
        promotion_intent.close_intent(client, intent.run_id, promotion_intent.ROLLED_BACK,
                                      action)
    return [*findings, Finding(what, action, fix)]


def _intents(client: MlflowClient, stale_hours: float, fix: bool) -> list[Finding]:
    findings: list[Finding] = []
    for intent in promotion_intent.open_intents(client):
        why = _gone(intent.tags, intent.start_time, stale_hours)
        if why is not None:
            findings += _repair_intent(client, intent, why, fix)
    return findings


def _experiments(client: MlflowClient, prefix: str) -> list[str]:
    names = {registry.AUDIT_EXPERIMENT, promotion_intent.INTENT_EXPERIMENT}
    return [e.experiment_id for e in client.search_experiments()
            if e.name.startswith(f"{prefix}-") or e.name in names]


def _runs(client: MlflowClient, prefix: str, stale_hours: float, fix: bool) -> list[Finding]:
    findings = []
    audit = client.get_experiment_by_name(registry.AUDIT_EXPERIMENT)
    audit_id = audit.experiment_id if audit is not None else None
    intents = client.get_experiment_by_name(promotion_intent.INTENT_EXPERIMENT)
    intents_id = intents.experiment_id if intents is not None else None
    for run in _running(client, _experiments(client, prefix)):
        if run.info.experiment_id == intents_id:
            continue  # still applying: its owner lives
        why = _gone(dict(run.data.tags), run.info.start_time, stale_hours)
        if why is None:
            continue
        if run.info.experiment_id == audit_id:
            findings.append(_finish_audit_run(client, run, why, fix))
            continue
        action = "mark it KILLED"
        if fix:
            client.set_tag(run.info.run_id, RECONCILED, f"{why}; {action}")
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        findings.append(Finding(f"run {run.info.run_id} ({run.info.run_name}) left RUNNING: "
                                f"{why}", action, fix))
    return findings


def _ungated(client: MlflowClient, names: Iterable[str], stale_hours: float,
             fix: bool) -> list[Finding]:
    findings = []
    for name in names:
        for version in client.search_model_versions(f"name='{name}'"):
            tags = version.tags or {}
            if registry.GATE_PROMOTE in tags or registry.GATE_STATE in tags:
                continue
            run = client.get_run(version.run_id) if version.run_id else None
            status = run.info.status if run is not None else None
            if run is not None and status == "RUNNING" and _gone(
                    dict(run.data.tags), run.info.start_time, stale_hours) is None:
                continue  # its retrain is still on the way to the gate
            reason = (f"no gate decision: its training run ended ({status}) before the gate "
                      "scored it")
            action = "tag it as never gated (it cannot be promoted)"
            if fix:
                client.set_model_version_tag(name, version.version, registry.GATE_STATE,
                                             registry.UNGATED)
                client.set_model_version_tag(name, version.version, registry.GATE_REASON,
                                             reason)
            findings.append(Finding(f"{name} v{version.version}: {reason}", action, fix))
    return findings


def _registered(client: MlflowClient) -> list[str]:
    wanted = {registry.registered_name(k) for k in registry.model_kinds()}
    return sorted(m.name for m in client.search_registered_models() if m.name in wanted)


def reconcile(client: MlflowClient, experiment_prefix: str, *, fix: bool,
              stale_hours: float = 24.0) -> list[Finding]:
    """Find (and with ``fix`` repair) every crash leftover; the caller holds the store's lock.

    Versions are checked after runs, so a version whose run was just marked KILLED is seen
    as over."""
    findings = _intents(client, stale_hours, fix)
    findings += _runs(client, experiment_prefix, stale_hours, fix)
    findings += _ungated(client, _registered(client), stale_hours, fix)
    return findings
