"""Tracked churn training: calibrated probabilities, baseline on the same holdout, pyfunc."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from tailor import kinds
from tailor.adapters.tracking import client_for, tracking_uri
from tailor.adapters.training import train_model
from tailor.data.generate import GeneratedData
from tailor.models.features import default_as_of

from .conftest import logged_input_example, predict_in_fresh_process, tracked_settings


def test_tracked_churn_run(store: Path, tmp_path: Path, small_retailer: GeneratedData) -> None:
    settings = tracked_settings(store, "churn.n_trials=3")
    clean = small_retailer.dataset
    as_of = default_as_of(clean.transactions)
    result = train_model(kinds.get("churn"), settings, clean, as_of, "churn-test", "fp2")
    client: MlflowClient = client_for(settings.tracking)
    run = client.get_run(result.run_id)
    metrics = run.data.metrics
    for key in ("roc_auc", "pr_auc", "brier", "log_loss", "lift_top_decile", "threshold"):
        assert f"holdout_{key}" in metrics, key
        assert key not in metrics, f"{key}: every quality figure says which window it is on"
    for key in ("roc_auc", "log_loss", "threshold"):
        assert f"validation_{key}" in metrics, key
    assert not [k for k in metrics if "_baseline_" in k], "baselines are baseline_<name>_<data>_*"
    assert metrics["holdout_roc_auc"] > 0.75
    assert metrics["holdout_brier"] < metrics["baseline_rate_holdout_brier"]
    assert "baseline_recency_holdout_roc_auc" in metrics
    # the buy-till-you-die baselines, fitted before the holdout, on the same customers
    for name in ("bgnbd", "pareto_nbd"):
        for key in ("roc_auc", "brier", "expected_calibration_error"):
            assert f"baseline_{name}_holdout_{key}" in metrics, (name, key)
        assert 0.5 < metrics[f"baseline_{name}_holdout_roc_auc"] <= 1
    assert 0 <= metrics["validation_model_weight"] <= 1
    assert float(run.data.params["model_weight"]) == metrics["validation_model_weight"]
    params = run.data.params
    assert params["holdout_start"] == (as_of - pd.Timedelta(days=90)).date().isoformat()
    served_cutoffs = params["served_cutoffs"].split(",")
    assert served_cutoffs[0] == params["holdout_start"]  # the newest complete label window
    assert max(params["twin_cutoffs"].split(",")) < params["holdout_start"]
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {"plots/holdout_reliability.png", "plots/holdout_feature_importance.png"} <= plots
    children = client.search_runs([result.experiment_id],
                                  f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert len(children) == 3
    # a trial logs its validation figures under the names the run gives the same figures
    for trial in children:
        assert set(trial.data.metrics) == {f"validation_{k}" for k in (
            "log_loss", "roc_auc", "pr_auc", "brier", "lift_top_decile")}
        assert set(trial.data.metrics) <= set(metrics)
    tables = {a.path for a in client.list_artifacts(result.run_id, "tables")}
    assert tables == {"tables/holdout_feature_importance.csv", "tables/holdout_reliability.csv"}

    example = logged_input_example(client, result.run_id, tmp_path)
    payload = json.loads(Path(example).read_text())
    frame = pd.DataFrame(payload["data"], columns=payload["columns"])
    out = predict_in_fresh_process(f"models:/tailor-churn/{result.version}",
                                   tracking_uri(settings.tracking), frame, tmp_path)
    assert list(out.columns) == ["churn_probability"]
    p = out["churn_probability"].to_numpy()
    assert np.all((p >= 0) & (p <= 1))
