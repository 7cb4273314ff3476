"""Flows: score every customer with the champions and write one row per customer.

``score_customers`` (``tailor score``, the daily deployment) reads as: load -> validate
(quarantine) -> ``score_validated``, the subflow ``tailor run`` also calls on the data set it
validated once: repair what a killed retrain left (when none is running) -> load
champions -> features as of a date -> score (segment, churn probability, top-k products, next
best action) -> write scores atomically -> write the serving snapshot (features, customer
attributes, manifest: a new directory, published in one atomic switch, see
``tailor/adapters/snapshot.py``) -> summary artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from tailor import kinds
from tailor.adapters.registry_lock import try_registry_lock
from tailor.adapters.score_output import parse_target
from tailor.adapters.tracking import data_fingerprint, tracking_uri
from tailor.configs import load_settings
from tailor.configs.schema import ScoringSettings, Settings
from tailor.flows.library_noise import summarised_warnings
from tailor.flows.reporting import markdown_table
from tailor.flows.run_names import name_flow_runs, pending_name, run_stamp
from tailor.flows.validated import ValidatedData, load_validated
from tailor.models.actions import ACTION_COLUMN, action_names
from tailor.models.features import default_as_of
from tailor.models.windows import check_scoring_date, fit_until
from tailor.tasks.data import build_customer_features
from tailor.tasks.reconcile import reconcile_store
from tailor.tasks.scoring import (
    load_champions_task,
    score_task,
    write_scores_task,
    write_snapshot_task,
)


def _default_quarantine(out: str, snapshot_dir: str) -> Path:
    target = parse_target(out)
    base = target.path.parent if target.path is not None else Path(snapshot_dir).parent
    return base / "quarantine"


def _scoring(settings: Settings, k: int | None) -> ScoringSettings:
    scoring = settings.scoring if k is None else settings.scoring.model_copy(update={"k": k})
    if scoring.k < 1:
        raise ValueError(f"k must be at least 1, got {scoring.k}")
    return scoring


@flow(name="score-customers", flow_run_name=pending_name("score"), log_prints=True)
def score_customers(
    data_dir: str,
    out: str,
    as_of: str | None = None,
    k: int | None = None,
    config_files: list[str] | None = None,
    overrides: list[str] | None = None,
    snapshot_dir: str | None = None,
    quarantine_dir: str | None = None,
) -> dict[str, Any]:
    """Score the customers of ``data_dir`` as of a date (default: the day after the last
    transaction) with the ``@champion`` models; write to ``out`` (file or ``url#table``).

    Args:
        data_dir: Data set directory (transactions, optional customers and products).
        out: Score table: a .parquet or .csv path, or a SQLAlchemy URL with #table.
        as_of: Scoring date (YYYY-MM-DD): features from purchases before it. Empty means the
            day after the last purchase.
        k: Recommendations per customer; empty means scoring.k.
        config_files: YAML files merged over the defaults, in order (as `tailor score -c`).
        overrides: section.key=value overrides applied last (as `tailor score --set`).
        snapshot_dir: Where the serving snapshot is published; empty means
            scoring.snapshot_dir.
        quarantine_dir: Where rejected rows go; empty means beside the output.
    """
    with summarised_warnings(get_run_logger()):
        settings = load_settings(config_files or [], overrides or [])
        snapshot = snapshot_dir or _scoring(settings, k).snapshot_dir
        parse_target(out)  # a bad --out or k fails before any work
        data = load_validated(data_dir, settings.data,
                              quarantine_dir or str(_default_quarantine(out, snapshot)))
        return score_validated(settings, data, out, as_of, k, snapshot_dir)


@flow(name="score-validated-customers", log_prints=True)
def score_validated(settings: Settings, data: ValidatedData, out: str, as_of: str | None = None,
                    k: int | None = None, snapshot_dir: str | None = None) -> dict[str, Any]:
    """Score a validated data set's customers with the champions; write scores and snapshot."""
    scoring = _scoring(settings, k)
    snapshot = snapshot_dir or scoring.snapshot_dir
    parse_target(out)
    logger = get_run_logger()

    # a killed retrain may have left a promotion half-applied: repair it before reading the
    # champions, unless a live retrain holds the store (it owns what it is doing)
    with try_registry_lock(tracking_uri(settings.tracking), "tailor score") as held:
        if held:
            reconcile_store(settings)
    champions = load_champions_task(settings.tracking)
    clean = data.dataset
    cutoff = pd.Timestamp(as_of) if as_of else default_as_of(clean.transactions)
    predictors = {kind: None if found is None else found.predictor
                  for kind, found in champions.items()}
    check_scoring_date(predictors, cutoff)  # a champion fit after the date has seen its future
    features = build_customer_features(clean.transactions, clean.customers, clean.products,
                                       cutoff, settings.features)
    scores = score_task(features, champions, scoring, clean.customers)
    where = write_scores_task(scores, out)

    versions = {kind: None if found is None else found.version
                for kind, found in champions.items()}
    fitted = {kind: None if (until := fit_until(p)) is None else until.date().isoformat()
              for kind, p in predictors.items()}
    missing = [kind for kind in kinds.kinds() if versions.get(kind) is None]
    if missing:
        logger.warning("scored without %s: no champion; those columns are empty",
                       ", ".join(missing))
    fingerprint = data_fingerprint(clean.transactions)
    stamp = run_stamp(cutoff.date().isoformat(), fingerprint)
    name_flow_runs(f"score-validated-{stamp}", {"score-customers": f"score-{stamp}"})
    manifest = {"as_of": cutoff.date().isoformat(), "data_fingerprint": fingerprint,
                "customers": len(features), "model_versions": versions,
                "models_fit_before": fitted,
                "scores": where, "k": scoring.k}
    snapshot_path = write_snapshot_task(snapshot, features, clean.customers, manifest,
                                        scoring.keep_snapshots)

    counts = scores[ACTION_COLUMN].value_counts()
    actions = {name: int(counts.get(name, 0)) for name in action_names(scoring)}
    summary = {**manifest, "rows": len(scores), "actions": actions,
               "missing_champions": missing, "snapshot_dir": snapshot_path}
    logger.info("scored %s customers as of %s with %s -> %s; next best actions: %s",
                f"{len(scores):,}", manifest["as_of"],
                ", ".join(f"{kind} v{v}" for kind, v in versions.items() if v) or "no champion",
                where, ", ".join(f"{name} {n:,}" for name, n in actions.items()))
    create_markdown_artifact(key="score-customers-summary", markdown=_markdown(summary),
                             description=f"{len(scores):,} customers scored -> {where}")
    return summary


def _markdown(summary: dict[str, Any]) -> str:
    versions = pd.DataFrame([{"model": kind, "champion_version": version or "none (skipped)"}
                             for kind, version in summary["model_versions"].items()])
    actions = pd.DataFrame([{"next_best_action": name, "customers": count}
                            for name, count in summary["actions"].items()])
    return "\n".join([
        f"# Customers scored as of {summary['as_of']}", "",
        f"{summary['rows']:,} rows -> `{summary['scores']}`; serving snapshot in "
        f"`{summary['snapshot_dir']}` (data fingerprint `{summary['data_fingerprint']}`).", "",
        "## Models", "", markdown_table(versions), "",
        "## Next best actions", "", markdown_table(actions),
    ])
