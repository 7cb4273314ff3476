"""How the commands print what the flows and adapters return: one place per summary, so
`tailor run` and the single-step commands print the same lines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # both import pandas: not at `tailor --help` time
    import pandas as pd

    from tailor.data.generate import GeneratedData


def generated_line(data: GeneratedData, out: Path) -> str:
    """One line for a generated data set: rows, customers, products, where."""
    tx = data.dataset.transactions
    people = data.dataset.customers
    count = tx["customer_id"].nunique() if people is None else len(people)
    return (f"wrote {len(tx):,} order lines, {count:,} customers, "
            f"{data.dataset.products.shape[0]:,} products to {out} (truth in {out / 'truth'})")


def print_preparation(summary: dict) -> None:
    """The prepare flow's summary as `tailor run` shows it (`tailor prepare` prints JSON)."""
    typer.echo(f"as of {summary['as_of']}: {summary['rows_accepted']:,} of "
               f"{summary['rows_read']:,} order lines accepted")
    for rule, rows in summary["rows_quarantined"].items():
        typer.echo(f"  quarantined {rows:>8,}  {rule}")
    typer.echo(f"{summary['customers']:,} customers x {summary['feature_columns']} "
               f"features -> {summary['features_path']}")
    typer.echo(f"quarantine -> {summary['quarantine_dir']}")


def print_training(summary: dict) -> None:
    """Repairs and skips on stderr; one line per trained model with its gate verdict."""
    for line in summary.get("repaired", []):
        typer.secho(f"repaired {line}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"\ntrained as of {summary['as_of']} (MLflow parent run {summary['parent_run_id']})")
    if summary.get("task_runner"):
        typer.echo(f"  task runner: {summary['task_runner']}")
    for kind, reason in summary.get("skipped", {}).items():
        reason = reason.removeprefix(f"{kind}: ")
        typer.secho(f"  {kind:<13} skipped: {reason}", fg=typer.colors.YELLOW, err=True)
    for row in summary["models"]:
        if row["model"] in summary.get("skipped", {}):
            continue
        score = row["challenger"]
        shown = "n/a" if score is None else f"{score:.4f}"
        champ = "" if row["champion"] is None else (
            f" vs champion v{row['champion_version']} {row['champion']:.4f}")
        verdict = "PROMOTED" if row["promoted"] else "kept champion"
        typer.echo(f"  {row['model']:<13} v{row['version']:<3} {row['gate_metric']} {shown}"
                   f"{champ}: {verdict} ({row['reason']})")


def print_scoring(summary: dict) -> None:
    """Rows scored, the champion version behind each column, and the action counts."""
    typer.echo(f"scored {summary['rows']:,} customers as of {summary['as_of']} -> "
               f"{summary['scores']}")
    for kind, version in summary["model_versions"].items():
        typer.echo(f"  {kind:<13} " + (f"v{version}" if version else
                                       "no champion: columns left empty"))
    typer.echo("next best action:")
    for action, count in summary["actions"].items():
        typer.echo(f"  {count:>9,}  {action}")
    typer.echo(f"serving snapshot -> {summary['snapshot_dir']}")


def print_models(table: pd.DataFrame, registry_uri: str) -> None:
    """The registry table (``describe_models``): champion and challenger of each model."""
    typer.echo(f"registry: {registry_uri}")
    for row in table.itertuples():
        if not row.registered:
            typer.echo(f"{row.model}: not registered yet (run `tailor train`)")
            continue
        typer.echo(f"{row.model} (latest v{row.latest_version})")
        for alias in ("champion", "challenger"):
            version = getattr(row, f"{alias}_version")
            if version is None:
                typer.echo(f"  {alias:<10} -")
                continue
            metrics = getattr(row, f"{alias}_metrics") or {}
            shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
            typer.echo(f"  {alias:<10} v{version} since {getattr(row, f'{alias}_since')}"
                       f"  {shown}")
