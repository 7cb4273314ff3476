"""The pipeline commands, each a Prefect flow run against a throwaway API: ``prepare``,
``train``, ``score``, and ``run`` (all three in one flow, on generated data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tailor.cli._common import (
    ConfigOpt,
    SetOpt,
    fail,
    flow_args,
    quiet_services,
    run_flow,
    settings,
)
from tailor.cli._render import print_preparation, print_scoring, print_training


def prepare(
    data: Annotated[Path, typer.Option(help="Data set directory.")],
    out: Annotated[Path, typer.Option(help="Output directory (quarantine/, features/).")],
    as_of: Annotated[str | None, typer.Option(
        help="Feature date (default: the day after the last transaction).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Validate a data set and build point-in-time customer features (a Prefect flow)."""
    settings(config, set_)  # fail fast on bad configuration, before Prefect starts
    quiet_services()
    from tailor.flows.prepare import prepare_data

    configs, sets = flow_args(config, set_)
    summary = run_flow("prepare",
                       lambda: prepare_data(str(data), str(out), as_of, configs, sets))
    typer.echo(json.dumps(summary, indent=2))


def train(
    data: Annotated[Path, typer.Option(help="Data set directory.")],
    out: Annotated[Path, typer.Option(help="Output directory (quarantine/).")] = Path(
        "out/train"),
    models: Annotated[str, typer.Option(
        help="Comma-separated: segmentation,recommender,churn.")] = (
        "segmentation,recommender,churn"),
    as_of: Annotated[str | None, typer.Option(
        help="Scoring date (default: the day after the last transaction). The registered "
             "models are fit on all history before it; each is judged by a twin fit before "
             "the H days before it (docs/windows.md).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Validate, then tune, fit, evaluate and register the chosen models (a Prefect flow).

    A model the data cannot train (too short a history, a single product) is skipped with a
    one-line reason and the others train; the command fails only when none could."""
    settings(config, set_)
    quiet_services()
    from tailor.flows.train import train_models

    configs, sets = flow_args(config, set_)
    kinds = [m.strip() for m in models.split(",") if m]
    summary = run_flow("train",
                       lambda: train_models(str(data), str(out), kinds, as_of, configs, sets))
    print_training(summary)  # when every model is skipped, the flow fails, saying why


def score(
    data: Annotated[Path, typer.Option(help="Data set directory.")],
    out: Annotated[str, typer.Option(
        help="scores.parquet, scores.csv, or a database table as <sqlalchemy url>#schema.table "
             "(schema optional; written atomically: the old scores stay until the new ones "
             "are complete).")],
    as_of: Annotated[str | None, typer.Option(
        help="Scoring date (default: the day after the last transaction).")] = None,
    k: Annotated[int | None, typer.Option(
        "--k", help="Recommendations per customer (default: scoring.k).")] = None,
    snapshot_dir: Annotated[Path | None, typer.Option(
        help="Serving snapshot directory (default: scoring.snapshot_dir).")] = None,
    quarantine: Annotated[Path | None, typer.Option(
        help="Where rejected rows go (default: quarantine/ beside --out).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Score every customer with the @champion models: segment, churn probability, top-k
    products and next best action, one row per customer (a Prefect flow)."""
    settings(config, set_)
    quiet_services()
    from tailor.adapters.score_output import ScoreTargetError, parse_target
    from tailor.flows.score import score_customers

    try:
        parse_target(out)
    except ScoreTargetError as exc:
        raise fail(str(exc)) from None
    configs, sets = flow_args(config, set_)
    summary = run_flow("score", lambda: score_customers(
        str(data), out, as_of, k, configs, sets,
        None if snapshot_dir is None else str(snapshot_dir),
        None if quarantine is None else str(quarantine)))
    print_scoring(summary)


def run(
    out: Annotated[Path, typer.Option(help="Where the sample data and results go.")] = Path(
        "out/sample"),
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """The main job on generated data: generate a retailer, then one flow validates it once,
    builds features, tunes and registers the three models (promoting those that beat the
    champions) and scores everyone."""
    resolved = settings(config, set_)
    quiet_services()
    from tailor.adapters.tracking import tracking_uri
    from tailor.data.generate import generate, write_generated
    from tailor.flows.run import run_main_job

    data_dir = out / "data"
    generated = generate(resolved.generate)
    write_generated(generated, data_dir)
    typer.echo(f"generated {len(generated.dataset.transactions):,} order lines in {data_dir}")
    summary = run_flow("run", lambda: run_main_job(str(data_dir), str(out), resolved))
    typer.echo("")
    print_preparation(summary["prepare"])
    print_training(summary["train"])
    typer.echo("")
    print_scoring(summary["score"])
    typer.echo(f"MLflow store: {tracking_uri(resolved.tracking)}")
    typer.echo(f"browse runs:  {_this_command()} ui   (MLflow UI on http://127.0.0.1:5000)")


def _this_command() -> str:
    """How the user can run this command again (``.venv/bin/tailor`` after ``make run``)."""
    import shutil
    import sys

    invoked = Path(sys.argv[0])
    if invoked.name != "tailor" or shutil.which("tailor") == str(invoked):
        return "tailor"
    try:
        return str(invoked.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(invoked)
