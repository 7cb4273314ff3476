"""Flow: validate a data set, then tune, fit, evaluate and register the chosen models.

Reads as: load -> validate (quarantine) -> features -> train each chosen model (concurrently,
each its own MLflow run under one parent run) -> summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from configs import load_settings
from configs.schema import Settings
from flows.reporting import markdown_table
from models.features import default_as_of
from tailor.data.validate import ValidationResult
from tasks import tracking
from tasks.data import build_customer_features, load_raw, validate
from tasks.train_churn import train_churn_task
from tasks.train_recommender import train_recommender_task
from tasks.train_segmentation import train_segmentation_task
from tasks.training import PRIMARY_METRIC, TrackedTraining

MODELS = ("segmentation", "recommender", "churn")


@task(name="fingerprint-data", cache_policy=NO_CACHE)
def fingerprint(frame: pd.DataFrame) -> str:
    return tracking.data_fingerprint(frame)


@task(name="open-parent-run", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def open_parent_run(settings: Settings, name: str, fingerprint_: str,
                    result: ValidationResult, as_of: pd.Timestamp, models: list[str]) -> str:
    """The flow's MLflow run: what data went in and what was quarantined, models beneath it."""
    client = tracking.client_for(settings.tracking)
    experiment = tracking.ensure_experiment(
        client, f"{settings.tracking.experiment_prefix}-retrain",
        tracking.artifact_location(settings.tracking, "retrain"))
    run_id = tracking.start_run(
        client, experiment, name,
        tags=tracking.standard_tags(settings, fingerprint_, settings.generate.seed,
                                    **{"tailor.flow": "train-models"}))
    tracking.log_params(client, run_id, {"as_of": as_of.date().isoformat(),
                                         "models": ",".join(models)})
    summary = result.summary
    tracking.log_metrics(client, run_id, {
        f"rows_{row.table}_{row.rule}": float(row.rows) for row in summary.itertuples()})
    tracking.log_frame(client, run_id, summary, "data/validation_summary.csv")
    return run_id


@task(name="close-parent-run", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def close_parent_run(settings: Settings, run_id: str, ok: bool) -> None:
    tracking.end_run(tracking.client_for(settings.tracking), run_id, ok=ok)


def _summary_table(results: dict[str, TrackedTraining], settings: Settings) -> pd.DataFrame:
    rows = []
    for kind, res in results.items():
        metric = _primary_metric(kind, settings)
        rows.append({"model": kind, "version": res.version, "run_id": res.run_id,
                     "primary_metric": metric, "value": res.metrics.get(metric)})
    return pd.DataFrame(rows)


def _primary_metric(kind: str, settings: Settings) -> str:
    name = PRIMARY_METRIC[kind][0]
    return name.replace("_at_k", f"_at_{settings.recommender.k}")


@flow(name="train-models", log_prints=True)
def train_models(
    data_dir: str,
    out_dir: str,
    models: list[str] | None = None,
    as_of: str | None = None,
    config_files: list[str] | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Validate ``data_dir`` and train the chosen models as of a date (default: data end)."""
    settings = load_settings(config_files or [], overrides or [])
    chosen = list(models or MODELS)
    unknown = sorted(set(chosen) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    raw = load_raw(data_dir)
    result = validate(raw, settings.data, str(Path(out_dir) / "quarantine"))
    clean = result.dataset
    cutoff = pd.Timestamp(as_of) if as_of else default_as_of(clean.transactions)
    fp = fingerprint(clean.transactions)
    stamp = f"{cutoff.date().isoformat()}-{fp[:8]}"
    parent = open_parent_run(settings, f"train-{stamp}", fp, result, cutoff, chosen)
    futures = {}
    try:
        if "segmentation" in chosen:
            features = build_customer_features(clean.transactions, clean.customers,
                                               clean.products, cutoff, settings.features)
            futures["segmentation"] = train_segmentation_task.submit(
                settings, features, f"segmentation-{stamp}", fp, parent)
        if "recommender" in chosen:
            futures["recommender"] = train_recommender_task.submit(
                settings, clean, cutoff, f"recommender-{stamp}", fp, parent)
        if "churn" in chosen:
            futures["churn"] = train_churn_task.submit(
                settings, clean, cutoff, f"churn-{stamp}", fp, parent)
        results = {kind: future.result() for kind, future in futures.items()}
    except BaseException:
        close_parent_run(settings, parent, ok=False)
        raise
    close_parent_run(settings, parent, ok=True)
    table = _summary_table(results, settings)
    create_markdown_artifact(
        key="train-models-summary",
        markdown="# Trained models\n\n" + markdown_table(table),
        description=f"MLflow parent run {parent}",
    )
    return {"as_of": cutoff.date().isoformat(), "parent_run_id": parent,
            "fingerprint": fp, "models": table.to_dict(orient="records")}
