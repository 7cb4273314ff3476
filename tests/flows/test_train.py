"""The train-models flow: one parent run, one run per model beneath it in the same
experiment, registered versions with few tags."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tailor.configs import load_settings
from tailor.data.generate import generate, write_generated
from tailor.flows.train import train_models


@pytest.mark.usefixtures("prefect_harness")
def test_train_flow_tracks_every_model_under_one_parent(tmp_path: Path) -> None:
    store = tmp_path / "store"
    overrides = [
        f"tracking.mlflow_tracking_uri=sqlite:///{store / 'mlflow.db'}",
        f"tracking.optuna_storage=sqlite:///{store / 'optuna.db'}",
        "segmentation.n_trials=2", "recommender.n_trials=2", "recommender.max_epochs=3",
        "churn.n_trials=2",
    ]
    settings = load_settings(overrides=[*overrides, "generate.customers=400",
                                        "generate.products=100"])
    write_generated(generate(settings.generate), tmp_path / "data")
    summary = train_models(str(tmp_path / "data"), str(tmp_path / "out"),
                           overrides=overrides)

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    parent = client.get_run(summary["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["rows_transactions_accepted"] > 0
    by_model = {row["model"]: row for row in summary["models"]}
    assert set(by_model) == {"segmentation", "recommender", "churn"}
    retrain = parent.info.experiment_id
    for kind, row in by_model.items():
        run = client.get_run(row["run_id"])
        # nested in the UI: a child of the parent, in the parent's experiment, trials beneath
        assert run.info.experiment_id == retrain
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        trials = client.search_runs([retrain], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
        assert len(trials) >= 2 and all(t.info.run_name.startswith(f"{kind}-trial-")
                                        for t in trials)
        # the gate's scores as numbers, on the model run and (per kind) on the parent
        assert run.data.metrics["gate_challenger_score"] == pytest.approx(row["challenger"])
        assert "gate_champion_score" not in run.data.metrics  # no champion yet
        assert parent.data.metrics[f"gate_{kind}_challenger_score"] == pytest.approx(
            row["challenger"])
        assert f"gate_{kind}_champion_score" not in parent.data.metrics
        assert row["gate_metric"] in run.data.metrics
        # each table once, as CSV
        tables = [a.path for a in client.list_artifacts(run.info.run_id, "tables")]
        assert tables and all(path.endswith(".csv") for path in tables), tables
        assert run.data.tags["tailor.data_fingerprint"] == summary["fingerprint"]
        assert row["version"] == "1"
        assert client.get_model_version(f"tailor-{kind}", "1").run_id == row["run_id"]
        assert row["challenger"] is not None and row["promoted"]
        # descriptions a person reads in the UI: what it is, which data, which decision
        model = client.get_registered_model(f"tailor-{kind}")
        assert "@champion" in model.description
        version = client.get_model_version(f"tailor-{kind}", "1")
        assert summary["as_of"] in version.description
        assert summary["fingerprint"] in version.description
        assert f"challenger {row['challenger']:.4f}, no champion" in version.description
        assert row["reason"] in version.description
        # the tags tools read, and nothing the description already says
        assert version.tags == {"tailor.gate.promote": "True",
                                "challenger_since": version.tags["challenger_since"],
                                "champion_since": version.tags["champion_since"],
                                f"metric.{row['gate_metric']}": version.tags[
                                    f"metric.{row['gate_metric']}"]}
    experiments = {e.name for e in client.search_experiments()}
    assert "tailor-retrain" in experiments
    assert not experiments & {f"tailor-{kind}" for kind in by_model}, experiments
    note = client.get_experiment(retrain).tags["mlflow.note.content"]
    assert "decisions/promotion.csv" in note and "tailor-<kind>" in note
    assert "gate_<kind>_challenger_score" in note
    every_run = client.search_runs([retrain], max_results=1000)
    assert not [m for r in every_run for m in r.data.metrics if "holdout_baseline" in m]


@pytest.mark.usefixtures("prefect_harness")
def test_train_flow_rejects_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model"):
        train_models(str(tmp_path), str(tmp_path / "out"), models=["segmentation", "magic"])
