"""Flows: validate a data set, train challengers, score them against the champions, promote.

``train_models`` (``tailor train``, the weekly deployment) reads as: load -> validate
(quarantine, in this run's own folder) -> ``train_challengers``, the subflow ``tailor run`` also
calls on the data set it validated once: take the store's lock and repair what a killed run
left -> keep the history before the scoring date -> train
each chosen model (concurrently, each its own MLflow run under one parent run: tune and judge a
holdout twin, register the served model fit on all that history; a model the data cannot train
is skipped with its reason) -> score challenger and champion configurations on the challenger's
holdout -> record the decisions and move the aliases together (one durable intent) -> summary.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tailor import kinds
from tailor.adapters import tracking
from tailor.adapters.gate import Decision, gate_metrics
from tailor.adapters.registry_lock import registry_lock
from tailor.adapters.training import SkippedTraining, TrackedTraining
from tailor.configs import load_settings
from tailor.configs.schema import Settings
from tailor.data.validate import ValidationResult
from tailor.flows import runners
from tailor.flows.library_noise import summarised_warnings
from tailor.flows.reporting import decision_lines, training_report
from tailor.flows.run_names import name_flow_runs, pending_name, run_stamp
from tailor.flows.validated import ValidatedData, load_validated
from tailor.models.features import default_as_of
from tailor.models.windows import check_as_of
from tailor.tasks.gate import apply_decisions, evaluate_gate
from tailor.tasks.reconcile import reconcile_store
from tailor.tasks.retry import TRANSIENT_RETRIES
from tailor.tasks.training import train_model_task

SUMMARY_ARTIFACT = "train-models-summary"
"""The key of each retrain's decision artifact (the Prefect UI's Artifacts page groups by it)."""


@task(name="fingerprint-data", cache_policy=NO_CACHE)
def fingerprint(frame: pd.DataFrame) -> str:
    return tracking.data_fingerprint(frame)


@task(name="open-parent-run", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def open_parent_run(settings: Settings, name: str, fingerprint_: str,
                    result: ValidationResult, as_of: pd.Timestamp, models: list[str],
                    runner: str) -> str:
    """The flow's MLflow run: what data went in and what was quarantined, models beneath it."""
    client = tracking.client_for(settings.tracking)
    experiment = tracking.ensure_experiment(
        client, f"{settings.tracking.experiment_prefix}-retrain",
        tracking.artifact_location(settings.tracking, "retrain"),
        description="tailor retrains: one parent run per `tailor train` or scheduled retrain "
                    "(rows accepted and quarantined, the gate's decisions in "
                    "decisions/promotion.csv and its scores as gate_<kind>_challenger_score / "
                    "gate_<kind>_champion_score); each model's training run is a child of it "
                    "(holdout_*, validation_*, baseline_<name>_holdout_* and gate_* metrics, "
                    "the version registered as tailor-<kind>), with its Optuna trials "
                    "(validation_*) as children in turn.")
    run_id = tracking.start_run(
        client, experiment, name,
        tags=tracking.standard_tags(settings, fingerprint_, settings.generate.seed,
                                    **{"tailor.flow": "train-models",
                                       "tailor.task_runner": runner}))
    tracking.log_params(client, run_id, {"as_of": as_of.date().isoformat(),
                                         "models": ",".join(models)})
    summary = result.summary
    tracking.log_metrics(client, run_id, {
        f"rows_{row.table}_{row.rule}": float(row.rows) for row in summary.itertuples()})
    tracking.log_frame(client, run_id, summary, "data/validation_summary.csv")
    return run_id


@task(name="log-decisions", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def log_decisions(settings: Settings, run_id: str, table: pd.DataFrame,
                  decisions: list[Decision]) -> None:
    """The decisions table, and each gated kind's scores as ``gate_<kind>_*`` metrics (one
    chart per retrain series in the MLflow UI)."""
    client = tracking.client_for(settings.tracking)
    tracking.log_frame(client, run_id, table, "decisions/promotion.csv")
    tracking.log_metrics(client, run_id, {
        name: value for d in decisions
        for name, value in gate_metrics(d, f"gate_{d.kind}_").items()})


@task(name="close-parent-run", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def close_parent_run(settings: Settings, run_id: str, ok: bool) -> None:
    tracking.end_run(tracking.client_for(settings.tracking), run_id, ok=ok)


def _summary_table(results: dict[str, TrackedTraining | SkippedTraining],
                   decisions: dict[str, Decision]) -> pd.DataFrame:
    rows = []
    for kind, res in results.items():
        if isinstance(res, SkippedTraining):
            rows.append({"model": kind, "version": None, "run_id": None, "trials": None,
                         "pruned": None, "best_validation": None, "gate_metric": None,
                         "challenger": None, "champion_version": None, "champion": None,
                         "promoted": False, "reason": f"skipped: {res.reason}"})
            continue
        d = decisions.get(kind)
        tuning = res.tuning
        rows.append({
            "model": kind, "version": res.version, "run_id": res.run_id,
            "trials": tuning.trials if tuning else None,
            "pruned": tuning.pruned if tuning else None,
            "best_validation": tuning.best_value if tuning else None,
            "gate_metric": d.metric if d else None,
            "challenger": d.challenger_score if d else None,
            "champion_version": d.champion_version if d else None,
            "champion": d.champion_score if d else None,
            "promoted": d.promote if d else False,
            "reason": d.reason if d else "not gated (promote=False)",
        })
    return pd.DataFrame(rows)


@flow(name="train-models", flow_run_name=pending_name("retrain"), log_prints=True)
def train_models(
    data_dir: str,
    out_dir: str,
    models: list[str] | None = None,
    as_of: str | None = None,
    config_files: list[str] | None = None,
    overrides: list[str] | None = None,
    promote: bool = True,
) -> dict[str, Any]:
    """Validate ``data_dir``, train the chosen models as of a date (default: the data's end),
    and (``promote``) gate each challenger against its champion and move the aliases.

    Args:
        data_dir: Data set directory (transactions, optional customers and products; parquet
            or CSV) or an importer's output.
        out_dir: Where this retrain writes its own folder (runs/train-<time>-<pid>/quarantine).
        models: Model kinds to train; empty means every kind (segmentation, recommender,
            churn).
        as_of: Scoring date (YYYY-MM-DD): models see only purchases before it. Empty means
            the day after the last purchase.
        config_files: YAML files merged over the defaults, in order (as `tailor train -c`).
        overrides: section.key=value overrides applied last (as `tailor train --set`).
        promote: Gate each challenger against its champion and move the champion alias when
            it wins; false registers versions without moving any alias.
    """
    logger = get_run_logger()
    with summarised_warnings(logger):
        settings = load_settings(config_files or [], overrides or [])
        chosen = chosen_models(models)
        run_dir = Path(out_dir) / "runs" / run_folder_name()
        data = load_validated(data_dir, settings.data, str(run_dir / "quarantine"))
        summary = train_challengers(settings, data, chosen, as_of, promote)
        report_training(summary)
        if summary["skipped"] and len(summary["skipped"]) == len(summary["models"]):
            # a Failed run, so that the operator is told (nothing new will serve)
            raise NothingTrainedError("no model could be trained on this data: " + "; ".join(
                reason for reason in summary["skipped"].values()))
        return summary | {"run_dir": str(run_dir)}


class NothingTrainedError(ValueError):
    """Every chosen model was skipped: the data cannot train any of them."""


def report_training(summary: dict[str, Any]) -> None:
    """On the flow run an operator opens: the outcome and each decision in its log, and the
    decision artifact (its card counts what was trained and promoted)."""
    table = pd.DataFrame(summary["models"])
    markdown, card = training_report(summary["as_of"], table, summary["parent_run_id"])
    logger = get_run_logger()
    logger.info("retrain: %s", card)
    for line in decision_lines(table):
        logger.info(line)
    create_markdown_artifact(key=SUMMARY_ARTIFACT, markdown=markdown, description=card)


def chosen_models(models: list[str] | None) -> list[str]:
    """The model kinds to train (default: every registered kind); unknown names fail here."""
    known = kinds.kinds()
    chosen = list(models or known)
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(known)}")
    return chosen


def run_folder_name() -> str:
    """One output folder per retrain (two retrains never write the same quarantine)."""
    return f"train-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"


def train_challengers(settings: Settings, data: ValidatedData, models: list[str],
                      as_of: str | None = None, promote: bool = True) -> dict[str, Any]:
    """Train and gate the chosen models (the ``train-challengers`` subflow) with their tasks
    on the runner that ``orchestration`` chooses (threads, or a Dask cluster)."""
    chosen = chosen_models(models)
    runner = runners.task_runner(settings.orchestration, len(chosen))
    resolved = runners.with_resolved_stores(settings)
    # the Optuna schema, created here once: worker processes creating it at the same moment
    # race on PostgreSQL (duplicate CREATE TYPE)
    tracking.study_storage(tracking.optuna_storage(resolved.tracking))
    return _train_challengers.with_options(task_runner=runner)(
        resolved, data, chosen, as_of, promote)


@flow(name="train-challengers", log_prints=True)
def _train_challengers(settings: Settings, data: ValidatedData, models: list[str],
                       as_of: str | None = None, promote: bool = True) -> dict[str, Any]:
    """Under the store's lock (after repairing what a killed run left), train the chosen
    models on a validated data set and gate them against the champions."""
    runner = runners.describe(settings.orchestration, len(models))
    get_run_logger().info("task runner: %s", runner)
    holder = f"tailor train pid {os.getpid()}"
    with registry_lock(tracking.tracking_uri(settings.tracking), holder,
                       settings.registry.lock_wait_seconds):
        repaired = reconcile_store(settings)
        summary = _train(settings, data, models, as_of, promote, runner)
    return summary | {"repaired": repaired, "task_runner": runner}


def _train(settings: Settings, data: ValidatedData, chosen: list[str], as_of: str | None,
           promote: bool, runner: str) -> dict[str, Any]:
    result = data.result
    cutoff = check_as_of(result.dataset.transactions,
                         pd.Timestamp(as_of) if as_of else
                         default_as_of(result.dataset.transactions))
    clean = result.dataset.before(cutoff)  # nothing at or after the scoring date is read
    fp = fingerprint(clean.transactions)
    stamp = run_stamp(cutoff.date().isoformat(), fp)
    name_flow_runs(f"train-challengers-{stamp}", {"train-models": f"retrain-{stamp}"})
    parent = open_parent_run(settings, f"train-{stamp}", fp, result, cutoff, chosen, runner)
    try:
        futures = {spec.kind: train_model_task.submit(spec.kind, settings, clean, cutoff,
                                                      f"{spec.kind}-{stamp}", fp, parent)
                   for spec in kinds.specs(chosen)}
        results = {kind: future.result() for kind, future in futures.items()}
        trained = {kind: res for kind, res in results.items()
                   if isinstance(res, TrackedTraining)}
        decisions: dict[str, Decision] = {}
        if promote:
            gates = {kind: evaluate_gate.submit(kind, res, clean, settings)
                     for kind, res in trained.items()}
            applied = apply_decisions([gate.result() for gate in gates.values()], settings)
            decisions = {d.kind: d for d in applied}
    except BaseException:
        close_parent_run(settings, parent, ok=False)
        raise
    table = _summary_table(results, decisions)
    log_decisions(settings, parent, table, list(decisions.values()))
    close_parent_run(settings, parent, ok=True)
    return {"as_of": cutoff.date().isoformat(), "parent_run_id": parent,
            "fingerprint": fp, "models": table.to_dict(orient="records"),
            "skipped": {kind: res.reason for kind, res in results.items()
                        if isinstance(res, SkippedTraining)}}
