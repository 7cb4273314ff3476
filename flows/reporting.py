"""Small renderers for Prefect markdown artifacts and terminal summaries."""

from __future__ import annotations

import pandas as pd

from tailor.models.windows import HOLDOUT_PREFIX


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-style markdown table (no extra dependency)."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if value != value else f"{value:.4f}"  # NaN: an empty cell
        return "" if value is None else str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _decision(row: pd.Series) -> str:
    if pd.isna(row["version"]):
        return "skipped"
    if pd.isna(row["gate_metric"]):
        return "not gated"
    return "PROMOTED" if row["promoted"] else "kept champion"


def _champion_cell(row: pd.Series) -> str:
    if pd.isna(row["champion_version"]):
        return "none"
    score = row["champion"]
    return f"v{row['champion_version']}: " + ("n/a" if pd.isna(score)
                                              else f"{score:.4f}")


def _table_reason(row: pd.Series) -> str:
    """The reason without its opening "<metric> <challenger score>", which the table's own
    columns show (the full text is in the run's log and on the version's tags)."""
    reason, score = str(row["reason"]), row["challenger"]
    if pd.isna(score):
        return reason
    return reason.removeprefix(f"{row['gate_metric']} {score:.4f} ")


def _trials(row: pd.Series) -> str:
    trials = row.get("trials")
    if pd.isna(trials):
        return ""
    return f"{int(trials)} ({int(row['pruned'])})"


def _metric(value: object) -> object:
    return value.removeprefix(HOLDOUT_PREFIX) if isinstance(value, str) else value


def training_report(as_of: str, table: pd.DataFrame, parent_run_id: str) -> tuple[str, str]:
    """The retrain's summary artifact, decision first, and its card's one-line description.

    The first table is what an operator decides on (model, version, promoted or kept, the
    gate metric for challenger and champion, the reason), narrow enough to read without a
    horizontal scroll; the run ids, long and only needed to open MLflow, are in a second table
    below it.
    """
    decisions = pd.DataFrame({
        "model": table["model"],
        "version": [None if pd.isna(v) else f"v{v}" for v in table["version"]],
        "decision": [_decision(row) for _, row in table.iterrows()],
        "holdout metric": [_metric(m) for m in table["gate_metric"]],
        "challenger": table["challenger"],
        "champion": [_champion_cell(row) for _, row in table.iterrows()],
        "reason": [_table_reason(row) for _, row in table.iterrows()],
    })
    runs = pd.DataFrame({"model": table["model"], "version": decisions["version"],
                         "trials (pruned)": [_trials(row) for _, row in table.iterrows()],
                         "best validation": table["best_validation"],
                         "MLflow run": table["run_id"]})
    trained = int(table["version"].notna().sum())
    promoted = int(table["promoted"].sum())
    skipped = len(table) - trained
    counts = (f"{trained} trained, {promoted} promoted, {trained - promoted} kept the champion"
              + (f", {skipped} skipped" if skipped else ""))
    card = f"{counts} (as of {as_of})"
    markdown = (f"# Retrain as of {as_of}: {counts}\n\n"
                + markdown_table(decisions)
                + f"\n\n## Tuning and MLflow runs\n\nParent run `{parent_run_id}`; each model's "
                  "study and run:\n\n"
                + markdown_table(runs))
    return markdown, card


def decision_lines(table: pd.DataFrame) -> list[str]:
    """One log line per model of the summary table: version, decision and reason."""
    lines = []
    for _, row in table.iterrows():
        version = "" if pd.isna(row["version"]) else f" v{row['version']}"
        score = row["challenger"]
        scores = ("" if pd.isna(score) else
                  f" ({row['gate_metric']} {score:.4f} vs champion {_champion_cell(row)})")
        lines.append(f"{row['model']}{version}: {_decision(row)}{scores}: {row['reason']}")
    return lines
