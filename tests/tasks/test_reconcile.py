"""Repairing crash leftovers in a real MLflow store: interrupted promotions, runs left RUNNING,
versions never gated. A "dead owner" is this process's pid with another start time, which
:func:`tailor.adapters.owner.owner_alive` must read as a later process that reused the pid."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from dataclasses import replace

import pytest

from tailor.adapters import owner, promotion_intent, registry, registry_audit
from tailor.adapters.reconcile import RECONCILED, reconcile
from tailor.adapters.registry import CHALLENGER, CHAMPION, RegistryError

from .conftest import RegistryStore

ACTOR = "tester"
PREFIX = "tailor"
DEAD = {owner.HOST: socket.gethostname(), owner.PID: str(os.getpid()), owner.STARTED: "1"}


@pytest.fixture
def store(registry_store: RegistryStore) -> RegistryStore:
    return registry_store


def _model(store: RegistryStore, versions: int = 3) -> str:
    name = f"test-{uuid.uuid4().hex[:8]}"
    store.client.create_registered_model(name)
    for _ in range(versions):
        store.client.create_model_version(name, source=store.source, run_id=store.run_id)
    return name


def _serve(store: RegistryStore, name: str, version: str) -> None:
    registry.set_challenger(store.client, name, version, actor=ACTOR, reason="setup")
    registry.promote(store.client, name, version, actor=ACTOR, reason="setup")


def _intent(store: RegistryStore, name: str, applied: int, to: str = "2") -> str:
    """A promotion of ``name`` to ``to`` (both aliases) killed after ``applied`` moves."""
    moves = [registry.plan_move(store.client, name, alias, to, actor=ACTOR, reason="gate")
             for alias in (CHALLENGER, CHAMPION)]
    run_id = promotion_intent.open_intent(store.client, moves, "test promotion")
    for move in moves[:applied]:
        registry._apply_one(store.client, replace(move, intent=run_id))
    for key, value in DEAD.items():
        store.client.set_tag(run_id, key, value)
    return run_id


def _aliases(store: RegistryStore, name: str) -> dict[str, str]:
    return {k: str(v) for k, v in store.client.get_registered_model(name).aliases.items()}


def test_owner_liveness_tells_this_process_from_a_dead_or_foreign_one() -> None:
    assert owner.owner_alive(owner.owner_tags()) is True
    assert owner.owner_alive(DEAD) is False  # same pid, other start time: reused
    assert owner.owner_alive({**DEAD, owner.HOST: "elsewhere"}) is None
    assert owner.owner_alive({}) is None
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    assert owner.owner_alive({**owner.owner_tags(), owner.PID: gone.stdout.strip()}) is False


def test_a_half_applied_promotion_is_rolled_back_and_audited(store: RegistryStore) -> None:
    name = _model(store)
    _serve(store, name, "1")
    intent = _intent(store, name, applied=1)
    assert _aliases(store, name) == {CHALLENGER: "2", CHAMPION: "1"}

    looked = reconcile(store.client, PREFIX, fix=False)
    assert any("1 of 2 moves applied" in f.line() and "would roll it back" in f.line()
               for f in looked)
    assert _aliases(store, name) == {CHALLENGER: "2", CHAMPION: "1"}  # looking moves nothing

    fixed = reconcile(store.client, PREFIX, fix=True)
    assert any("roll it back" in f.line() for f in fixed)
    assert _aliases(store, name) == {CHALLENGER: "1", CHAMPION: "1"}
    record = store.client.get_run(intent)
    assert record.info.status == "FAILED"
    assert record.data.tags[promotion_intent.STATE] == promotion_intent.ROLLED_BACK
    trail = registry_audit.audit_trail(store.client, name)
    assert trail.iloc[-1][["alias", "from_version", "to_version", "kind"]].tolist() == [
        CHALLENGER, "2", "1", registry.KIND_REVERT]
    assert reconcile(store.client, PREFIX, fix=True) == []  # repaired once, for good


def test_a_fully_applied_promotion_is_completed(store: RegistryStore) -> None:
    name = _model(store)
    _serve(store, name, "1")
    intent = _intent(store, name, applied=2)
    findings = reconcile(store.client, PREFIX, fix=True)
    assert any("2 of 2 moves applied" in f.line() and "complete it" in f.line()
               for f in findings)
    assert _aliases(store, name) == {CHALLENGER: "2", CHAMPION: "2"}
    assert store.client.get_run(intent).info.status == "FINISHED"
    assert store.client.get_model_version(name, "2").tags.get("champion_since")


def test_an_alias_moved_by_someone_else_is_left_alone(store: RegistryStore) -> None:
    name = _model(store)
    _serve(store, name, "1")
    _intent(store, name, applied=1)
    registry.promote(store.client, name, "3", actor="someone", reason="by hand")
    findings = reconcile(store.client, PREFIX, fix=True)
    assert any("left alone" in f.line() and "@champion at v3" in f.line() for f in findings)
    assert _aliases(store, name) == {CHALLENGER: "1", CHAMPION: "3"}


def test_runs_left_running_by_dead_processes_are_closed(store: RegistryStore) -> None:
    client = store.client
    dead = client.create_run(store.experiment, tags=DEAD).info.run_id
    alive = client.create_run(store.experiment, tags=owner.owner_tags()).info.run_id
    unknown = client.create_run(store.experiment).info.run_id
    name = _model(store)
    _serve(store, name, "1")
    audit_experiment = client.get_experiment_by_name(registry.AUDIT_EXPERIMENT).experiment_id
    audit_tags = {**DEAD, "audit.model": name, "audit.alias": CHAMPION}
    moved = client.create_run(audit_experiment,
                              tags={**audit_tags, "audit.to_version": "1"}).info.run_id
    not_moved = client.create_run(audit_experiment,
                                  tags={**audit_tags, "audit.to_version": "2"}).info.run_id

    reconcile(client, PREFIX, fix=True)
    assert client.get_run(dead).info.status == "KILLED"
    assert "is gone" in client.get_run(dead).data.tags[RECONCILED]
    assert client.get_run(alive).info.status == "RUNNING"
    assert client.get_run(unknown).info.status == "RUNNING"  # younger than stale_hours
    assert client.get_run(moved).info.status == "FINISHED"
    assert client.get_run(not_moved).info.status == "FAILED"
    reconcile(client, PREFIX, fix=True, stale_hours=1e-9)
    assert client.get_run(unknown).info.status == "KILLED"


def test_a_version_never_gated_is_marked_and_cannot_be_promoted(store: RegistryStore) -> None:
    client, name = store.client, registry.registered_name("churn")
    run = client.create_run(store.experiment, tags=DEAD).info.run_id
    client.create_registered_model(name)
    ungated = str(client.create_model_version(name, source=store.source, run_id=run).version)
    gated = str(client.create_model_version(name, source=store.source,
                                            run_id=store.run_id).version)
    client.set_model_version_tag(name, gated, registry.GATE_PROMOTE, "False")

    findings = reconcile(client, PREFIX, fix=True)
    assert any(f"v{ungated}: no gate decision" in f.line() for f in findings)
    tags = client.get_model_version(name, ungated).tags
    assert tags[registry.GATE_STATE] == registry.UNGATED
    assert registry.GATE_STATE not in client.get_model_version(name, gated).tags
    with pytest.raises(RegistryError, match="no gate decision"):
        registry.promote(client, name, ungated, actor=ACTOR, reason="by hand")
    registry.promote(client, name, gated, actor=ACTOR, reason="ops override of a decision")
    assert registry.alias_version(client, name, CHAMPION) == gated


def test_a_rerun_training_task_closes_its_dead_attempts_run_only(store: RegistryStore) -> None:
    """Dask re-runs a task whose worker died: the earlier attempt's model run, still RUNNING
    under the same parent, is marked KILLED; other kinds' and finished runs are untouched."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from tailor.adapters.training import supersede_earlier_attempts

    client = store.client
    parent = client.create_run(store.experiment).info.run_id

    def child(kind: str, finished: bool) -> str:
        run_id = client.create_run(store.experiment, tags={
            MLFLOW_PARENT_RUN_ID: parent, "tailor.model": kind}).info.run_id
        if finished:
            client.set_terminated(run_id, "FINISHED")
        return run_id

    dead, other, done = child("churn", False), child("recommender", False), child("churn", True)
    assert supersede_earlier_attempts(client, store.experiment, parent, "churn") == [dead]
    assert client.get_run(dead).info.status == "KILLED"
    assert "re-run" in client.get_run(dead).data.tags[RECONCILED]
    assert client.get_run(other).info.status == "RUNNING"
    assert client.get_run(done).info.status == "FINISHED"
    assert supersede_earlier_attempts(client, store.experiment, parent, "churn") == []
