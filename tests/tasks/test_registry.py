"""The registry adapter against real MLflow stores (sqlite file, and PostgreSQL when present)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.dummy import DummyRegressor

from tailor.adapters import registry, registry_audit
from tailor.adapters.registry import CHALLENGER, CHAMPION, RegistryError, StaleMoveError

from .conftest import mlflow_pointed_at

ACTOR = "tester"


@dataclass(frozen=True)
class Store:
    uri: str
    client: MlflowClient
    source: str  # a logged sklearn model every test version points to
    run_id: str


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One sqlite store per module (creating MLflow's schema takes seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    client = registry.make_client(uri)
    experiment = client.create_experiment("models", artifact_location=(root / "art").as_uri())
    with mlflow_pointed_at(uri):
        model = DummyRegressor(strategy="constant", constant=7.0).fit(np.zeros((3, 1)), [1, 2, 3])
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_metric("rmse", 1.5)
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"],
                                            serialization_format="cloudpickle",
                                            registered_model_name=registry.registered_name("churn"))
        version = client.get_model_version(registry.registered_name("churn"),
                                           str(info.registered_model_version))
        yield Store(uri, client, version.source, run.info.run_id)


def fresh_model(store: Store, versions: int = 3) -> str:
    """A registered model of its own per test, so tests sharing the store stay independent."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    store.client.create_registered_model(name)
    for _ in range(versions):
        store.client.create_model_version(name, source=store.source, run_id=store.run_id)
    return name


def test_names_and_uris() -> None:
    assert registry.registered_name("segmentation") == "tailor-segmentation"
    assert registry.model_uri("tailor-churn") == "models:/tailor-churn@champion"
    assert registry.model_uri("churn", CHALLENGER) == "models:/tailor-churn@challenger"
    with pytest.raises(ValueError, match="unknown model kind 'pricing'"):
        registry.registered_name("pricing")


def test_challenger_and_promote_move_aliases_and_audit(store: Store) -> None:
    client, name = store.client, fresh_model(store)
    first = registry.set_challenger(client, name, 1, actor=ACTOR, reason="trained")
    assert (first.from_version, first.to_version, first.alias) == (None, "1", CHALLENGER)
    promoted = registry.promote(client, name, "1", actor="alice", reason="beats baseline",
                                metrics={"auc": 0.81})
    registry.set_challenger(client, name, 2, actor=ACTOR, reason="retrained")

    assert registry.alias_version(client, name, CHAMPION) == "1"
    assert registry.alias_version(client, name, CHALLENGER) == "2"
    trail = registry_audit.audit_trail(client, name)
    assert trail[["alias", "from_version", "to_version", "actor"]].values.tolist() == [
        [CHALLENGER, None, "1", ACTOR], [CHAMPION, None, "1", "alice"],
        [CHALLENGER, "1", "2", ACTOR]]
    assert str(trail["at"].dtype) == "datetime64[ns, UTC]"
    assert trail["at"].is_monotonic_increasing and (trail["status"] == "FINISHED").all()
    assert trail["reason"].iloc[1] == "beats baseline"
    # the audit run carries the promotion metrics; the version carries convenience tags
    assert client.get_run(promoted.run_id).data.metrics == {"auc": 0.81}
    tags = client.get_model_version(name, "1").tags
    assert float(tags["metric.auc"]) == 0.81
    assert pd.Timestamp(tags["champion_since"]) <= pd.Timestamp.now(tz="UTC")
    # who and why are the audit run's (above), not repeated on the version
    assert set(tags) == {"champion_since", "challenger_since", "metric.auc"}
    # the audit of all models contains this one's moves
    assert set(trail["run_id"]) <= set(registry_audit.audit_trail(client)["run_id"])


def test_promoting_the_current_champion_again_records_nothing(store: Store) -> None:
    client, name = store.client, fresh_model(store)
    registry.promote(client, name, 2, actor=ACTOR, reason="first")
    again = registry.promote(client, name, 2, actor=ACTOR, reason="retry of the same flow")
    assert again.run_id is None and again.from_version == again.to_version == "2"
    assert len(registry_audit.audit_trail(client, name)) == 1


def test_rollback_walks_back_down_the_champion_history(store: Store) -> None:
    client, name = store.client, fresh_model(store)
    for version in (1, 2, 3):
        registry.promote(client, name, version, actor=ACTOR, reason=f"v{version}")
    back = registry.rollback(client, name, actor="oncall", reason="bad predictions")
    assert (back.from_version, back.to_version, back.kind) == ("3", "2", "rollback")
    assert registry.alias_version(client, name, CHAMPION) == "2"
    assert registry.rollback(client, name, actor="oncall").to_version == "1"  # not 3 again
    with pytest.raises(RegistryError, match="records no earlier champion"):
        registry.rollback(client, name, actor="oncall")
    assert registry.alias_version(client, name, CHAMPION) == "1"
    assert registry_audit.audit_trail(client, name)["kind"].tolist() == [
        "promote", "promote", "promote", "rollback", "rollback"]


def test_rollback_without_a_previous_champion_is_a_clear_error(store: Store) -> None:
    client, name = store.client, fresh_model(store)
    with pytest.raises(RegistryError, match="not set: there is nothing to roll back"):
        registry.rollback(client, name, actor=ACTOR)
    registry.promote(client, name, 1, actor=ACTOR, reason="first")
    with pytest.raises(RegistryError, match=r"records no earlier champion"):
        registry.rollback(client, name, actor=ACTOR)
    with pytest.raises(RegistryError, match="does not exist"):
        registry.rollback(client, f"missing-{uuid.uuid4().hex[:6]}", actor=ACTOR)


def test_champion_at_answers_for_times_between_moves(store: Store) -> None:
    client, name = store.client, fresh_model(store)
    before = datetime.now(UTC)
    one = registry.promote(client, name, 1, actor=ACTOR, reason="first")
    between = datetime.now(UTC)
    two = registry.promote(client, name, 2, actor=ACTOR, reason="second")
    registry.set_challenger(client, name, 3, actor=ACTOR, reason="candidate")
    assert one.at is not None and two.at is not None
    assert registry_audit.champion_at(client, name, before) is None
    assert registry_audit.champion_at(client, name, one.at) == "1"
    assert registry_audit.champion_at(client, name, between) == "1"
    assert registry_audit.champion_at(client, name, two.at - timedelta(microseconds=1)) == "1"
    assert registry_audit.champion_at(client, name, datetime.now(UTC)) == "2"
    naive_utc = two.at.replace(tzinfo=None)  # naive times are read as UTC
    assert registry_audit.champion_at(client, name, naive_utc) == "2"
    assert registry_audit.champion_at(client, name, datetime.now(UTC), alias=CHALLENGER) == "3"


def test_apply_moves_reverts_applied_moves_when_one_fails(store: Store) -> None:
    client = store.client
    a, b = fresh_model(store), fresh_model(store)
    registry.promote(client, a, 1, actor=ACTOR, reason="start")
    registry.promote(client, b, 1, actor=ACTOR, reason="start")
    plan = [  # the 2nd of 3 fails: the 1st is reverted, the 3rd never applied
        registry.plan_move(client, b, CHAMPION, 2, actor=ACTOR, reason="retrain",
                           metrics={"auc": 0.9}),
        registry.plan_move(client, a, CHAMPION, 99, actor=ACTOR, reason="no such version"),
        registry.plan_move(client, a, CHALLENGER, 2, actor=ACTOR, reason="retrain"),
    ]
    with pytest.raises(MlflowException, match="not found"):
        registry.apply_moves(client, plan)

    assert registry.alias_version(client, a, CHALLENGER) is None  # as it was: unset
    assert registry.alias_version(client, a, CHAMPION) == "1"
    assert registry.alias_version(client, b, CHAMPION) == "1"
    assert "metric.auc" not in client.get_model_version(b, "2").tags  # tags only on success

    everything = registry_audit.audit_trail(client, a, include_failed=True)
    failed = everything[everything["status"] == "FAILED"]
    assert failed[["alias", "to_version"]].values.tolist() == [[CHAMPION, "99"]]
    assert "not found" in client.get_run(failed["run_id"].iloc[0]).data.tags["audit.error"]
    assert registry_audit.audit_trail(client, a)["kind"].tolist() == ["promote"]
    b_trail = registry_audit.audit_trail(client, b)
    assert b_trail[["from_version", "to_version", "kind"]].values.tolist() == [
        [None, "1", "promote"], ["1", "2", "move"], ["2", "1", "revert"]]
    # the revert is not a champion the rollback history can fall back to
    with pytest.raises(RegistryError, match="records no earlier"):
        registry.rollback(client, b, actor=ACTOR)


def test_apply_moves_applies_all_when_all_succeed(store: Store) -> None:
    client, name = store.client, fresh_model(store)
    plan = [registry.plan_move(client, name, CHAMPION, 2, actor=ACTOR, reason="r"),
            registry.plan_move(client, name, CHALLENGER, 3, actor=ACTOR, reason="r")]
    applied = registry.apply_moves(client, plan)
    assert [m.run_id is not None for m in applied] == [True, True]
    assert registry.alias_version(client, name, CHAMPION) == "2"
    assert registry.alias_version(client, name, CHALLENGER) == "3"
    assert client.get_model_version(name, "3").tags["challenger_since"]


def test_apply_moves_with_a_stale_plan_moves_nothing(store: Store) -> None:
    client, name = store.client, fresh_model(store)
    plan = [registry.plan_move(client, name, CHALLENGER, 2, actor=ACTOR, reason="r"),
            registry.plan_move(client, name, CHAMPION, 2, actor=ACTOR, reason="r")]
    registry.promote(client, name, 1, actor="someone-else", reason="meanwhile")
    with pytest.raises(StaleMoveError, match="nothing was moved"):
        registry.apply_moves(client, plan)
    assert registry.alias_version(client, name, CHALLENGER) is None
    assert registry.alias_version(client, name, CHAMPION) == "1"
    with pytest.raises(ValueError, match="same alias twice"):
        registry.apply_moves(client, [plan[0], plan[0]])


def test_actor_and_reason_are_required(store: Store) -> None:
    name = fresh_model(store, versions=1)
    with pytest.raises(ValueError, match="actor must be a non-empty string"):
        registry.promote(store.client, name, 1, actor=" ", reason="x")


def test_champion_uri_loads_as_pyfunc(store: Store) -> None:
    client, name = store.client, fresh_model(store, versions=2)
    registry.promote(client, name, 2, actor=ACTOR, reason="serve")
    loaded = mlflow.pyfunc.load_model(registry.model_uri(name))
    assert loaded.predict(pd.DataFrame({"x": [0.0, 1.0]})).tolist() == [7.0, 7.0]


def test_describe_models_lists_known_models(store: Store) -> None:
    client = store.client
    churn = registry.registered_name("churn")  # version 1 logged by the fixture
    registry.promote(client, churn, 1, actor=ACTOR, reason="first", metrics={"auc": 0.7})
    table = registry_audit.describe_models(client).set_index("model")
    assert table.index.tolist() == ["tailor-segmentation", "tailor-recommender", "tailor-churn"]
    assert not table.loc["tailor-segmentation", "registered"]
    row = table.loc[churn]
    assert row["registered"] and row["champion_version"] == "1"
    assert row["latest_version"] == "1" and row["challenger_version"] is None
    assert row["champion_metrics"] == {"auc": 0.7, "rmse": 1.5}  # run metric + promotion tag
    assert row["champion_run_id"] == store.run_id and row["champion_since"] is not None
    only = registry_audit.describe_models(client, key_metrics={"churn": ["rmse"]}).set_index(
        "model")
    assert only.loc[churn, "champion_metrics"] == {"rmse": 1.5}


@pytest.mark.postgres
def test_moves_and_audit_on_a_postgresql_store(pg_url: str, tmp_path: Path) -> None:
    """The same code against PostgreSQL as MLflow's backend store (its own fresh database)."""
    import sqlalchemy as sa

    db = f"tailor_mlflow_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{db}"'))
    try:
        uri = sa.make_url(pg_url).set(database=db).render_as_string(hide_password=False)
        client = registry.make_client(uri)
        name = "tailor-churn"
        client.create_registered_model(name)
        for _ in range(2):
            client.create_model_version(name, source=str(tmp_path))
        registry.promote(client, name, 1, actor=ACTOR, reason="first")
        registry.promote(client, name, 2, actor=ACTOR, reason="second")
        plan = [registry.plan_move(client, name, CHALLENGER, 1, actor=ACTOR, reason="r"),
                registry.plan_move(client, name, CHAMPION, 7, actor=ACTOR, reason="r")]
        with pytest.raises(MlflowException):
            registry.apply_moves(client, plan)
        assert registry.alias_version(client, name, CHALLENGER) is None
        assert registry.rollback(client, name, actor=ACTOR).to_version == "1"
        trail = registry_audit.audit_trail(client, name)
        assert trail["kind"].tolist() == ["promote", "promote", "move", "revert",
                                          "rollback"]
        assert registry_audit.champion_at(client, name, trail["at"].iloc[1]) == "2"
        assert registry_audit.describe_models(client).set_index("model").loc[
            name, "champion_version"] == "1"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{db}" with (force)'))
        admin.dispose()


def test_tailor_audit_prints_the_trail_and_the_champion_at_a_time(store: Store) -> None:
    from typer.testing import CliRunner

    from tailor.cli import app

    client, name = store.client, fresh_model(store)
    registry.promote(client, name, 1, actor="alice", reason="first")
    between = datetime.now(UTC)
    registry.promote(client, name, 2, actor="bob", reason="beats v1")
    registry.rollback(client, name, actor="oncall", reason="bad predictions")
    result = CliRunner().invoke(app, ["audit", name, "--at", between.isoformat(),
                                      "--set", f"tracking.mlflow_tracking_uri={store.uri}"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split("  ")[1:3] for line in lines[:3]] == [
        [f"{name}@champion", "(none) -> v1"], [f"{name}@champion", "v1 -> v2"],
        [f"{name}@champion", "v2 -> v1"]]
    assert "rollback by oncall: bad predictions" in lines[2]
    assert lines[3] == f"champion of {name} at {between.isoformat()}: v1"
