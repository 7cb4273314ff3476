"""End to end on generated data: successive retrains, the fair gate, failures, rollback.

Runs the real train-models flow (Prefect's temporary API), a real MLflow sqlite store and real
Optuna storage; only the trial counts are small.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mlflow import MlflowClient

from tailor.adapters import registry, registry_audit
from tailor.configs import load_settings
from tailor.data.generate import generate, write_generated
from tailor.flows.train import train_models
from tailor.models.segmentation import SegmentationError

TINY = ["segmentation.n_trials=2", "recommender.n_trials=2", "recommender.max_epochs=3",
        "churn.n_trials=2"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("retrain")
    store = root / "store"
    tracking = [f"tracking.mlflow_tracking_uri=sqlite:///{store / 'mlflow.db'}",
                f"tracking.optuna_storage=sqlite:///{store / 'optuna.db'}"]
    settings = load_settings(overrides=["generate.customers=400", "generate.products=100"])
    write_generated(generate(settings.generate), root / "data")
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}",
                          registry_uri=f"sqlite:///{store / 'mlflow.db'}")
    return {"root": root, "tracking": tracking, "client": client}


def _train(world: dict, *extra: str, models: list[str] | None = None) -> dict:
    return train_models(str(world["root"] / "data"), str(world["root"] / "out"), models=models,
                        overrides=[*world["tracking"], *TINY, *extra])


def _aliases(client: MlflowClient) -> dict[str, tuple[str | None, str | None]]:
    return {kind: (registry.alias_version(client, f"tailor-{kind}", "champion"),
                   registry.alias_version(client, f"tailor-{kind}", "challenger"))
            for kind in registry.model_kinds()}


@pytest.mark.usefixtures("prefect_harness")
def test_successive_retrains_gate_failures_and_rollback(world: dict) -> None:
    client: MlflowClient = world["client"]

    # 1. First run: every model passes its guardrails and becomes champion.
    first = _train(world)
    assert all(row["promoted"] for row in first["models"]), first["models"]
    assert _aliases(client) == {k: ("1", "1") for k in registry.model_kinds()}
    version = client.get_model_version("tailor-churn", "1")
    assert version.tags["tailor.gate.promote"] == "True"
    assert "first version" in version.description
    after_first = datetime.now(UTC)

    # 2. Same data again: the challenger is scored against the champion on the same holdout,
    #    ties it, and is not promoted (the margin protects against churn of versions).
    second = _train(world)
    parent = client.get_run(second["parent_run_id"]).data.metrics
    for row in second["models"]:
        assert row["champion_version"] == "1" and row["version"] == "2"
        assert row["champion"] == pytest.approx(row["challenger"])
        assert not row["promoted"], row
        # both scores charted: on the model run, and per kind on the retrain's parent run
        run = client.get_run(row["run_id"]).data.metrics
        kind = row["model"]
        assert run["gate_champion_score"] == pytest.approx(row["champion"])
        assert parent[f"gate_{kind}_champion_score"] == pytest.approx(row["champion"])
        assert parent[f"gate_{kind}_challenger_score"] == pytest.approx(row["challenger"])
        version = client.get_model_version(f"tailor-{kind}", "2")
        assert set(version.tags) == {"tailor.gate.promote", "challenger_since"}
        assert version.tags["tailor.gate.promote"] == "False"
        assert row["reason"] in version.description
    assert _aliases(client) == {k: ("1", "2") for k in registry.model_kinds()}

    # 3. A deliberately worse recommender (popularity dominates the blend) is not promoted.
    worse = _train(world, "recommender.blend_lightfm_weights=[0.0]",
                   "recommender.blend_popularity_weights=[100.0]", models=["recommender"])
    (row,) = worse["models"]
    assert row["version"] == "3" and row["challenger"] < row["champion"]
    assert not row["promoted"] and "does not beat" in row["reason"]
    assert _aliases(client)["recommender"] == ("1", "3")

    # 4. A run that fails midway (segmentation is configured on a column that does not exist)
    #    leaves every alias as it was, even though the recommender finished and registered a
    #    version.
    before = _aliases(client)
    with pytest.raises(SegmentationError, match="no_such_column"):
        _train(world, "segmentation.features=[no_such_column]",
               models=["recommender", "segmentation"])
    assert _aliases(client) == before
    failed = client.search_runs(  # the parent runs (model runs and trials share the experiment)
        [client.get_experiment_by_name("tailor-retrain").experiment_id],
        "tags.`tailor.flow` = 'train-models'", order_by=["attributes.start_time DESC"],
        max_results=1)[0]
    assert failed.info.status == "FAILED"

    # 4b. A model the data cannot train is skipped with its reason; the others train and gate.
    short = _train(world, "churn.min_history_days=3000", models=["segmentation", "churn"])
    assert set(short["skipped"]) == {"churn"}
    assert "churn.min_history_days (3000)" in short["skipped"]["churn"]
    rows = {row["model"]: row for row in short["models"]}
    assert rows["churn"]["version"] is None and rows["churn"]["reason"].startswith("skipped")
    assert rows["segmentation"]["version"] == "3"
    assert _aliases(client)["churn"] == before["churn"]

    # 5. Manual promotion and rollback move the alias with the same audit record.
    registry.promote(client, "tailor-churn", "2", actor="test", reason="manual check")
    assert registry.alias_version(client, "tailor-churn", "champion") == "2"
    registry.rollback(client, "tailor-churn", actor="test")
    assert registry.alias_version(client, "tailor-churn", "champion") == "1"
    trail = registry_audit.audit_trail(client, "tailor-churn")
    champion_moves = trail[trail["alias"] == "champion"]
    assert list(champion_moves["to_version"]) == ["1", "2", "1"]
    assert registry_audit.champion_at(client, "tailor-churn", after_first) == "1"
