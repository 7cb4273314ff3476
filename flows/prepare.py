"""Flows: load a data set, validate it into clean rows and a quarantine, and build features.

``prepare_data`` is what ``tailor prepare`` runs; ``build_features`` is its second half, the
subflow ``tailor run`` calls on the data set it validated once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from tailor.configs import load_settings
from tailor.configs.schema import Settings
from tailor.flows.library_noise import summarised_warnings
from tailor.flows.validated import ValidatedData, load_validated
from tailor.models.features import default_as_of
from tailor.tasks.data import build_customer_features, write_table


@flow(name="prepare-data", log_prints=True)
def prepare_data(
    data_dir: str,
    out_dir: str,
    as_of: str | None = None,
    config_files: list[str] | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Validate ``data_dir`` (quarantine into ``out_dir``), then write features as of a date."""
    with summarised_warnings(get_run_logger()):
        settings = load_settings(config_files or [], overrides or [])
        data = load_validated(data_dir, settings.data, str(Path(out_dir) / "quarantine"))
        return build_features(settings, data, out_dir, as_of)


@flow(name="build-features", log_prints=True)
def build_features(settings: Settings, data: ValidatedData, out_dir: str,
                   as_of: str | None = None) -> dict[str, Any]:
    """Point-in-time customer features of a validated data set, written under ``out_dir``."""
    clean = data.dataset
    cutoff = pd.Timestamp(as_of) if as_of else default_as_of(clean.transactions)
    features = build_customer_features(
        clean.transactions, clean.customers, clean.products, cutoff, settings.features
    )
    features_path = write_table(features, str(Path(out_dir) / "features" /
                                               "customer_features.parquet"), index=True)
    summary = {
        "data_dir": data.data_dir,
        "as_of": cutoff.date().isoformat(),
        "rows_read": data.rows_read,
        "rows_accepted": len(clean.transactions),
        "rows_quarantined": data.rows_quarantined(),
        "customers": int(features.shape[0]),
        "feature_columns": int(features.shape[1]),
        "features_path": features_path,
        "quarantine_dir": data.quarantine_dir,
    }
    create_markdown_artifact(
        key="prepare-data-summary",
        markdown=_summary_markdown(summary),
        description="Rows accepted and quarantined, and the features written",
    )
    return summary


def _summary_markdown(summary: dict[str, Any]) -> str:
    lines = ["# Data preparation", "", "| item | value |", "|---|---|"]
    for key, value in summary.items():
        if key == "rows_quarantined":
            for rule, rows in value.items():
                lines.append(f"| quarantined: {rule} | {rows:,} |")
        else:
            lines.append(f"| {key} | {value:,} |" if isinstance(value, int)
                         else f"| {key} | {value} |")
    return "\n".join(lines)
