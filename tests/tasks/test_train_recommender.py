"""Tracked recommender training: the twin's holdout metrics with baselines, the served model
fit on all history, a loadable pyfunc version."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tailor import kinds
from tailor.adapters.pyfunc import load_predictor
from tailor.adapters.tracking import client_for, tracking_uri
from tailor.adapters.training import train_model
from tailor.data.generate import GeneratedData
from tailor.models.features import default_as_of

from .conftest import logged_input_example, predict_in_fresh_process, tracked_settings


def test_tracked_recommender_run(store: Path, tmp_path: Path,
                                 small_retailer: GeneratedData) -> None:
    settings = tracked_settings(store, "recommender.n_trials=2", "recommender.max_epochs=5",
                                "recommender.max_eval_users=300")
    clean = small_retailer.dataset
    as_of = default_as_of(clean.transactions)
    result = train_model(kinds.get("recommender"), settings, clean, as_of, "rec-test", "fp1")
    client: MlflowClient = client_for(settings.tracking)
    run = client.get_run(result.run_id)
    metrics = run.data.metrics
    for key in ("precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10", "auc",
                "catalogue_coverage", "cold_precision_at_10"):
        assert f"holdout_{key}" in metrics, key
        assert key not in metrics, f"{key}: every quality figure says which window it is on"
    assert {"validation_precision_at_10", "validation_cold_precision_at_10"} <= set(metrics)
    for key in ("baseline_popularity_holdout_precision_at_10",
                "baseline_repeat_holdout_precision_at_10",
                "baseline_decayed_frequency_holdout_precision_at_10",
                "baseline_popularity_holdout_cold_precision_at_10",
                "holdout_new_item_share_at_10", "baseline_repeat_holdout_new_item_share_at_10"):
        assert key in metrics, key
    assert not [k for k in metrics if "_baseline_" in k], "baselines are baseline_<name>_<data>_*"
    assert 0 <= metrics["holdout_new_item_share_at_10"] <= 1
    assert run.data.params["ranker"] in ("True", "False")
    assert (metrics["holdout_precision_at_10"]
            > metrics["baseline_popularity_holdout_precision_at_10"])
    holdout_start = as_of - pd.Timedelta(days=90)
    assert run.data.params["holdout_start"] == holdout_start.date().isoformat()
    assert run.data.params["as_of"] == as_of.date().isoformat()
    # the twin was fit before the holdout; the registered (served) model on everything before
    assert result.twin.as_of == holdout_start and result.windows.as_of == as_of
    served = load_predictor(client, "tailor-recommender", result.version)
    assert served.as_of == as_of
    recent = clean.transactions[clean.transactions["timestamp"] >= holdout_start]
    newcomers = set(recent["customer_id"]) - set(result.twin.user_ids)
    assert newcomers and served.known(list(newcomers)).all()
    children = client.search_runs([result.experiment_id],
                                  f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert len(children) == 2
    # trials: validation figures named as in the run, the blend weights as params like the run's
    for trial in children:
        names = set(trial.data.metrics)
        assert names <= {"validation_precision_at_10", "validation_cold_precision_at_10",
                         "validation_lightfm_precision_at_10"}, names
        assert "validation_lightfm_precision_at_10" in names  # per epoch, for the pruner
        if trial.data.tags["tailor.trial_state"] == "COMPLETE":
            assert "validation_precision_at_10" in names
            blend = {"w_lightfm", "w_repeat", "w_popularity", "cold_lightfm"}
            assert blend <= set(trial.data.params) and blend <= set(run.data.params)
    history = client.get_metric_history(children[0].info.run_id,
                                        "validation_lightfm_precision_at_10")
    assert len(history) >= 2 and len({m.step for m in history}) == len(history)
    best = max((t for t in children if "validation_precision_at_10" in t.data.metrics),
               key=lambda t: t.data.metrics["validation_precision_at_10"])
    assert best.data.metrics["validation_precision_at_10"] == pytest.approx(
        metrics["validation_precision_at_10"])

    # Known customers by id and a never-seen customer by attributes, from a fresh process.
    example = logged_input_example(client, result.run_id, tmp_path)
    assert Path(example).exists()
    customers = clean.customers.head(3).astype({"customer_id": str})
    cold = customers.head(1).assign(customer_id="brand-new")
    frame = pd.concat([customers, cold], ignore_index=True).astype(str)
    out = predict_in_fresh_process(f"models:/tailor-recommender/{result.version}",
                                   tracking_uri(settings.tracking), frame, tmp_path)
    assert set(out.columns) >= {"customer_id", "rank", "product_id", "score"}
    assert set(out["customer_id"]) == set(frame["customer_id"])
    assert out.groupby("customer_id").size().eq(10).all()
