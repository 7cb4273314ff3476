"""Tracked segmentation training: one run, trials as children, artifacts, a loadable version."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tailor import kinds
from tailor.adapters.registry import model_uri
from tailor.adapters.tracking import client_for, tracking_uri
from tailor.adapters.training import train_model
from tailor.data.generate import GeneratedData
from tailor.models.features import default_as_of

from .conftest import predict_in_fresh_process, tracked_settings


def test_tracked_segmentation_run(store: Path, tmp_path: Path, small_features: pd.DataFrame,
                                  small_retailer: GeneratedData) -> None:
    settings = tracked_settings(store, "segmentation.n_trials=4", "segmentation.exhaustive_limit=0",
                                "segmentation.k_min=3",
                                "segmentation.k_max=7", "segmentation.stability_resamples=3")
    truth = small_retailer.truth["customers"].set_index("customer_id")["segment"]
    clean = small_retailer.dataset
    as_of = default_as_of(clean.transactions)
    result = train_model(kinds.get("segmentation"),
                         settings, clean, as_of, "seg-test", "fp0", truth=truth)
    client: MlflowClient = client_for(settings.tracking)

    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["tailor.data_fingerprint"] == "fp0"
    metrics = run.data.metrics
    quality = ("silhouette", "davies_bouldin", "calinski_harabasz", "stability_ari", "k",
               "smallest_cluster_share")
    for data in ("served", "holdout", "validation"):  # which features each figure is on
        for key in quality:
            assert f"{data}_{key}" in metrics, (data, key)
        assert f"baseline_rfm_grid_{data}_silhouette" in metrics, data
    for key in ("served_ari_truth", "baseline_rfm_grid_served_ari_truth", "holdout_objective",
                "validation_objective"):
        assert key in metrics, key
    assert not set(quality) & set(metrics), "every figure says which features it is on"
    assert not [k for k in metrics if "_baseline_" in k], "baselines are baseline_<name>_<data>_*"
    # the twin clustered the features 90 days earlier; the served model those at as_of
    assert result.twin.as_of == as_of - pd.Timedelta(days=90)
    assert run.data.params["customers"] == str(len(small_features))
    assert 0.0 <= metrics["served_ari_truth"] <= 1.0  # quality: tests/models
    children = client.search_runs([result.experiment_id],
                                  f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert len(children) == 4
    # each trial: the same validation_* names as the run, which has the best trial's values
    for trial in children:
        assert {f"validation_{k}" for k in (*quality, "objective")} <= set(trial.data.metrics)
        assert set(trial.data.metrics) <= set(metrics), set(trial.data.metrics) - set(metrics)
    best = max(children, key=lambda t: t.data.metrics["validation_objective"])
    for name, value in best.data.metrics.items():
        assert metrics[name] == pytest.approx(value), name
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {"plots/segments_pca.png", "plots/metrics_vs_k.png"} <= artifacts
    tables = {a.path for a in client.list_artifacts(result.run_id, "tables")}
    assert tables == {"tables/segment_profile.csv"}  # once, as CSV; the trials are in optuna/
    optuna_files = {a.path for a in client.list_artifacts(result.run_id, "optuna")}
    assert "optuna/trials.csv" in optuna_files
    assert run.inputs.dataset_inputs, "dataset lineage is logged"
    assert result.version == "1"

    # The registered version loads from its URI in a fresh process and answers the same.
    client.set_registered_model_alias("tailor-segmentation", "champion", result.version)
    rows = small_features.head(20).reset_index(drop=True)
    fresh = predict_in_fresh_process(model_uri("segmentation"), tracking_uri(settings.tracking),
                                     rows, tmp_path)
    assert list(fresh.columns) == ["segment", "segment_name"]
    assert fresh["segment_name"].str.len().min() > 0

    # Same study name: the re-run resumes (no trials owed), same data gives the same metrics.
    again = train_model(kinds.get("segmentation"),
                         settings, clean, as_of, "seg-test", "fp0", truth=truth)
    children_again = client.search_runs([result.experiment_id],
                                        f"tags.mlflow.parentRunId = '{again.run_id}'")
    assert children_again == []
    assert again.metrics == result.metrics
    assert again.version == "2"
