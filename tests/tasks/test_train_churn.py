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

from .conftest import predict_in_fresh_process, tracked_settings


def test_tracked_churn_run(store: Path, tmp_path: Path, small_retailer: GeneratedData) -> None:
    settings = tracked_settings(store, "churn.n_trials=3")
    clean = small_retailer.dataset
    as_of = default_as_of(clean.transactions)
    result = train_model(kinds.get("churn"), settings, clean, as_of, "churn-test", "fp2")
    client: MlflowClient = client_for(settings.tracking)
    run = client.get_run(result.run_id)
    metrics = run.data.metrics
    for key in ("roc_auc", "pr_auc", "brier", "log_loss", "lift_top_decile",
                "baseline_recency_roc_auc", "threshold"):
        assert f"holdout_{key}" in metrics, key
        assert key not in metrics, f"{key}: every quality figure says which window it is on"
    for key in ("roc_auc", "log_loss", "threshold"):
        assert f"validation_{key}" in metrics, key
    assert metrics["holdout_roc_auc"] > 0.75
    assert metrics["holdout_brier"] < metrics["holdout_baseline_rate_brier"]
    # the buy-till-you-die baselines, fitted before the holdout, on the same customers
    for name in ("bgnbd", "pareto_nbd"):
        for key in ("roc_auc", "brier", "expected_calibration_error"):
            assert f"holdout_baseline_{name}_{key}" in metrics, (name, key)
        assert 0.5 < metrics[f"holdout_baseline_{name}_roc_auc"] <= 1
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

    example = client.download_artifacts(result.run_id, "model/input_example.json",
                                        str(tmp_path))
    payload = json.loads(Path(example).read_text())
    frame = pd.DataFrame(payload["data"], columns=payload["columns"])
    out = predict_in_fresh_process(f"models:/tailor-churn/{result.version}",
                                   tracking_uri(settings.tracking), frame, tmp_path)
    assert list(out.columns) == ["churn_probability"]
    p = out["churn_probability"].to_numpy()
    assert np.all((p >= 0) & (p <= 1))
