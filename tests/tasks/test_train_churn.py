"""Tracked churn training: calibrated probabilities, baseline on the same holdout, pyfunc."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from models.features import default_as_of
from tailor.data.generate import GeneratedData
from tasks.tracking import client_for, tracking_uri
from tasks.train_churn import train_churn

from .conftest import predict_in_fresh_process, tracked_settings


def test_tracked_churn_run(store: Path, tmp_path: Path, small_retailer: GeneratedData) -> None:
    settings = tracked_settings(store, "churn.n_trials=3")
    clean = small_retailer.dataset
    as_of = default_as_of(clean.transactions)
    result = train_churn(settings, clean, as_of, "churn-test", "fp2")
    client: MlflowClient = client_for(settings.tracking)
    run = client.get_run(result.run_id)
    metrics = run.data.metrics
    for key in ("roc_auc", "pr_auc", "brier", "log_loss", "lift_top_decile",
                "baseline_recency_roc_auc", "threshold"):
        assert key in metrics, key
    assert metrics["roc_auc"] > 0.75
    assert metrics["brier"] < metrics["baseline_rate_brier"]
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {"plots/reliability.png", "plots/feature_importance.png"} <= plots
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
