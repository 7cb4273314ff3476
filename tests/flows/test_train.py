"""The train-models flow: one parent run, one run per model beneath it, registered versions."""

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
    for kind, row in by_model.items():
        run = client.get_run(row["run_id"])
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
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
        experiment = client.get_experiment(run.info.experiment_id)
        assert f"tailor-{kind}" in experiment.tags["mlflow.note.content"]
    retrain = client.get_experiment(parent.info.experiment_id)
    assert "decisions/promotion.csv" in retrain.tags["mlflow.note.content"]


@pytest.mark.usefixtures("prefect_harness")
def test_train_flow_rejects_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model"):
        train_models(str(tmp_path), str(tmp_path / "out"), models=["segmentation", "magic"])
