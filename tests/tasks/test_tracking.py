"""Tracking adapters against a real local MLflow store and Optuna storage (no mocks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient

from tailor.adapters import tracking
from tailor.configs import load_settings
from tailor.kinds.spec import TrialMetrics
from tailor.models.windows import scoped


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> MlflowClient:
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_tracking_uri_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings().tracking
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri(settings).endswith("mlruns/mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri(settings) == "http://127.0.0.1:5000"
    explicit = load_settings(overrides=["tracking.mlflow_tracking_uri=sqlite:////tmp/x.db"])
    assert tracking.tracking_uri(explicit.tracking) == "sqlite:////tmp/x.db"


def test_optuna_storage_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Setting, else $TAILOR_OPTUNA_STORAGE (what `tailor stack env` exports), else the local
    sqlite file under the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(tracking.OPTUNA_STORAGE_ENV, raising=False)
    settings = load_settings().tracking
    assert tracking.optuna_storage(settings) == f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    pg = "postgresql+psycopg://db.example/tailor_optuna"
    monkeypatch.setenv(tracking.OPTUNA_STORAGE_ENV, pg)
    assert tracking.optuna_storage(settings) == pg
    explicit = load_settings(overrides=["tracking.optuna_storage=sqlite:////tmp/o.db"])
    assert tracking.optuna_storage(explicit.tracking) == "sqlite:////tmp/o.db"


def test_fingerprint_changes_with_content_not_with_copy() -> None:
    frame = pd.DataFrame({"a": np.arange(1000), "b": ["x"] * 1000})
    assert tracking.data_fingerprint(frame) == tracking.data_fingerprint(frame.copy())
    changed = frame.copy()
    changed.loc[500, "a"] = -1
    assert tracking.data_fingerprint(changed) != tracking.data_fingerprint(frame)


def test_trials_become_child_runs_and_non_finite_metrics_are_tagged(
    client: MlflowClient, tmp_path: Path
) -> None:
    exp = tracking.ensure_experiment(client, "test-trials")
    assert tracking.ensure_experiment(client, "test-trials") == exp
    parent = tracking.start_run(client, exp, "parent")
    study = tracking.create_study(f"sqlite:///{tmp_path / 'optuna.db'}", "s", "maximize", 0)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        trial.set_user_attr("secondary", x * 2)
        trial.set_user_attr("baseline_zero_secondary", 0.0)
        trial.set_user_attr("weight", 0.5)  # a parameter the trial found, not a metric
        trial.report(x, 0)
        return -(x**2)

    names = TrialMetrics(objective="neg_square", intermediate="x_at_step", params=("weight",),
                         baselines=("zero",))
    study.optimize(objective, n_trials=3,
                   callbacks=[tracking.TrialRunLogger(client, exp, parent, "seg", names)])
    tracking.log_metrics(client, parent, {"good": 1.0, "bad": float("nan")})
    tracking.end_run(client, parent)
    children = client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'")
    assert len(children) == 3
    assert {r.data.tags["mlflow.runName"] for r in children} == {
        "seg-trial-000", "seg-trial-001", "seg-trial-002"}
    for child in children:
        assert set(child.data.params) == {"x", "weight"}
        assert set(child.data.metrics) == {"validation_secondary", "validation_neg_square",
                                           "baseline_zero_validation_secondary",
                                           "validation_x_at_step"}
    run = client.get_run(parent)
    assert run.data.metrics == {"good": 1.0}
    assert run.data.tags["tailor.non_finite_metrics"] == "bad"


def test_study_resumes_by_name(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = tracking.create_study(storage, "resume-me", "minimize", 1)
    first.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = tracking.create_study(storage, "resume-me", "minimize", 1)
    again.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(again.trials) == 4


def test_metric_names_say_which_data_and_put_the_baseline_first() -> None:
    metrics = {"roc_auc": 0.8, "baseline_recency_roc_auc": 0.7,
               "baseline_pareto_nbd_brier": 0.2, "baseline_popularity_cold_precision_at_10": 0.1}
    assert scoped(metrics, "holdout_", ("recency", "pareto_nbd", "popularity")) == {
        "holdout_roc_auc": 0.8, "baseline_recency_holdout_roc_auc": 0.7,
        "baseline_pareto_nbd_holdout_brier": 0.2,
        "baseline_popularity_holdout_cold_precision_at_10": 0.1}
