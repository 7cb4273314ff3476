"""The ``tailor`` command line. Every subcommand has ``--help``.

Configuration: ``configs/default.yaml``, then each ``--config FILE``, then each
``--set section.key=value``. Standard variables keep their meaning (MLFLOW_TRACKING_URI,
PREFECT_API_URL).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from tailor.configs import ConfigError, Settings, load_settings

T = TypeVar("T")

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Generate, import and validate data sets.", no_args_is_help=True)
import_app = typer.Typer(help="Turn a real export into the tailor data contract.",
                         no_args_is_help=True)
config_app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)
app.add_typer(data_app, name="data")
data_app.add_typer(import_app, name="import")
app.add_typer(config_app, name="config")

ConfigOpt = Annotated[
    list[Path] | None,
    typer.Option("--config", "-c", help="YAML file merged over the defaults (repeatable)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override one value: section.key=value (repeatable)."),
]


_DEBUG = {"on": False}


@app.callback()
def _options(debug: Annotated[bool, typer.Option(
        "--debug", help="On a failure, show Prefect's logs and the full traceback.")] = False,
             ) -> None:
    _DEBUG["on"] = debug


def _quiet_services(hide_prefect_errors: bool = True) -> None:
    """Keep local runs offline and readable: no telemetry, no chatty server logs, and (unless
    --debug) no Prefect tracebacks: a failing command prints one clear line instead."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if _DEBUG["on"] or not hide_prefect_errors:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    else:  # Prefect logs a failing task's traceback at ERROR: only --debug shows it
        os.environ["PREFECT_LOGGING_LEVEL"] = "CRITICAL"
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    import logging
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # MLflow's hint about integer columns in inferred signatures: ours are never null.
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
    # PyMC-Marketing's imports: a notice about ArviZ's next major version, and PyTensor's
    # about BLAS (its C backend is only used for the BTYD fits, which are small)
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor")
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")


def _settings(config: list[Path] | None, overrides: list[str] | None) -> Settings:
    try:
        return load_settings(config or [], overrides or [])
    except ConfigError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def _run_flow(command: str, run: Callable[[], T]) -> T:
    """Run a flow against a Prefect API that dies with this process; turn a failure into one
    clear line and exit code 1 (the traceback only with --debug)."""
    from tailor.adapters.registry import RegistryError
    from tailor.adapters.registry_lock import RegistryBusyError
    from tailor.configs import ConfigError
    from tailor.data.io import DataSourceError
    from tailor.data.validate import DataContractError
    from tailor.local_prefect import local_prefect_api

    expected = (DataSourceError, DataContractError, ConfigError, RegistryError,
                RegistryBusyError, ValueError)
    try:
        with local_prefect_api():
            return run()
    except expected as exc:
        if _DEBUG["on"]:
            raise
        raise _fail(f"tailor {command}: {exc}") from None
    except Exception as exc:
        if _DEBUG["on"]:
            raise
        raise _fail(f"tailor {command} failed: {type(exc).__name__}: {exc}\n"
                    f"(run `tailor --debug {command} ...` for the traceback)") from None


@config_app.command("show")
def config_show(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the configuration after merging files and overrides."""
    settings = _settings(config, set_)
    typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))


@data_app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option(help="Directory to write the data set and truth/ to.")],
    customers: Annotated[int | None, typer.Option(help="Number of customers.")] = None,
    products: Annotated[int | None, typer.Option(help="Number of products.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same bytes).")] = None,
    kind: Annotated[str | None, typer.Option(
        help="retailer (default), or repeat-buying: one product bought repeatedly.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Generate synthetic data with known truth: a retailer (segments, churn times, tastes)
    or single-product repeat buying (who is still a customer)."""
    from tailor.data.generate import generate, write_generated

    settings = _settings(config, set_).generate
    if kind is not None and kind.replace("-", "_") not in ("retailer", "repeat_buying"):
        raise _fail(f"--kind {kind!r}: expected retailer or repeat-buying")
    changes = {k: v for k, v in {"customers": customers, "products": products, "seed": seed,
                                  "kind": None if kind is None else kind.replace("-", "_")
                                  }.items() if v is not None}
    settings = settings.model_copy(update=changes)
    data = generate(settings)
    write_generated(data, out)
    tx = data.dataset.transactions
    people = data.dataset.customers
    count = tx["customer_id"].nunique() if people is None else len(people)
    typer.echo(f"wrote {len(tx):,} order lines, {count:,} customers, "
               f"{data.dataset.products.shape[0]:,} products to {out} (truth in {out / 'truth'})")


@data_app.command("validate")
def data_validate(
    data: Annotated[Path, typer.Option(help="Data set directory (CSV or Parquet tables).")],
    quarantine: Annotated[Path | None, typer.Option(
        help="Where to write rejected rows (default: DATA/_quarantine).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Check a data set against the contract; write rejected rows with their rule."""
    from tailor.data.io import DataSourceError, read_dataset
    from tailor.data.validate import (
        DataContractError,
        format_summary,
        validate_dataset,
        write_failed_quarantine,
        write_quarantine,
    )

    settings = _settings(config, set_)
    out = quarantine or data / "_quarantine"
    try:
        result = validate_dataset(read_dataset(data), settings.data)
    except DataSourceError as exc:
        raise _fail(str(exc)) from None
    except DataContractError as exc:
        if exc.result is not None:
            typer.echo(format_summary(exc.result))
        raise _fail(str(write_failed_quarantine(exc, out))) from None
    target = write_quarantine(result, out)
    typer.echo(format_summary(result))
    typer.echo(f"quarantine written to {target}")


@import_app.command("online-retail")
def import_online_retail_cmd(
    file: Annotated[Path, typer.Argument(help="UCI Online Retail export (.parquet or .csv).")],
    out: Annotated[Path, typer.Option(help="Directory to write the contract tables to.")],
) -> None:
    """Import the UCI Online Retail export (see docs/data.md for each quirk's treatment)."""
    from tailor.data.importers.common import ImporterError
    from tailor.data.importers.online_retail import import_online_retail
    from tailor.data.io import write_dataset

    try:
        dataset = import_online_retail(file)
    except ImporterError as exc:
        raise _fail(str(exc)) from None
    write_dataset(dataset, out)
    typer.echo(f"wrote {len(dataset.transactions):,} order lines to {out}; "
               f"run `tailor data validate --data {out}` next")


@import_app.command("movielens")
def import_movielens_cmd(
    directory: Annotated[Path, typer.Argument(help="MovieLens 100K folder (u.data, u.user...).")],
    out: Annotated[Path, typer.Option(help="Directory to write the contract tables to.")],
    min_rating: Annotated[int, typer.Option(
        help="Ratings at or above this become interactions (0 keeps all).")] = 4,
) -> None:
    """Import MovieLens 100K: ratings become interactions, users and movies keep attributes."""
    from tailor.data.importers.common import ImporterError
    from tailor.data.importers.movielens import import_movielens
    from tailor.data.io import write_dataset

    try:
        dataset = import_movielens(directory, min_rating=min_rating)
    except ImporterError as exc:
        raise _fail(str(exc)) from None
    write_dataset(dataset, out)
    typer.echo(f"wrote {len(dataset.transactions):,} interactions to {out}")


@app.command("prepare")
def prepare(
    data: Annotated[Path, typer.Option(help="Data set directory.")],
    out: Annotated[Path, typer.Option(help="Output directory (quarantine/, features/).")],
    as_of: Annotated[str | None, typer.Option(
        help="Feature date (default: the day after the last transaction).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Validate a data set and build point-in-time customer features (a Prefect flow)."""
    _settings(config, set_)  # fail fast on bad configuration, before Prefect starts
    _quiet_services()
    from tailor.flows.prepare import prepare_data

    summary = _run_flow("prepare", lambda: prepare_data(
        str(data), str(out), as_of, [str(c) for c in config or []], list(set_ or [])))
    typer.echo(json.dumps(summary, indent=2))


@app.command("train")
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
    _settings(config, set_)
    _quiet_services()
    from tailor.flows.train import train_models

    summary = _run_flow("train", lambda: train_models(
        str(data), str(out), [m.strip() for m in models.split(",") if m], as_of,
        [str(c) for c in config or []], list(set_ or [])))
    _print_training(summary)
    if summary["skipped"] and len(summary["skipped"]) == len(summary["models"]):
        raise _fail("tailor train: no model could be trained on this data (reasons above)")


def _print_training(summary: dict) -> None:
    for line in summary.get("repaired", []):
        typer.secho(f"repaired {line}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"\ntrained as of {summary['as_of']} (MLflow parent run {summary['parent_run_id']})")
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


@app.command("run")
def run(
    out: Annotated[Path, typer.Option(help="Where the sample data and results go.")] = Path(
        "out/sample"),
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """The main job on generated data: generate a retailer, validate it, build features, tune
    and register the three models (promoting those that beat the champions), score everyone."""
    settings = _settings(config, set_)
    _quiet_services()
    from tailor.adapters.tracking import tracking_uri
    from tailor.data.generate import generate, write_generated
    from tailor.flows.prepare import prepare_data
    from tailor.flows.score import score_customers
    from tailor.flows.train import train_models

    data_dir = out / "data"
    generated = generate(settings.generate)
    write_generated(generated, data_dir)
    typer.echo(f"generated {len(generated.dataset.transactions):,} order lines in {data_dir}")
    configs_ = [str(c) for c in config or []]

    def main_job() -> None:
        summary = prepare_data(str(data_dir), str(out), None, configs_, list(set_ or []))
        typer.echo("")
        typer.echo(f"as of {summary['as_of']}: {summary['rows_accepted']:,} of "
                   f"{summary['rows_read']:,} order lines accepted")
        for rule, rows in summary["rows_quarantined"].items():
            typer.echo(f"  quarantined {rows:>8,}  {rule}")
        typer.echo(f"{summary['customers']:,} customers x {summary['feature_columns']} "
                   f"features -> {summary['features_path']}")
        typer.echo(f"quarantine -> {summary['quarantine_dir']}")
        _print_training(train_models(str(data_dir), str(out), None, None, configs_,
                                     list(set_ or [])))
        typer.echo("")
        _print_scoring(score_customers(str(data_dir), str(out / "scores.parquet"), None, None,
                                       configs_, list(set_ or [])))

    _run_flow("run", main_job)
    typer.echo(f"MLflow store: {tracking_uri(settings.tracking)}")
    typer.echo("browse runs:  .venv/bin/tailor ui   (MLflow UI on http://127.0.0.1:5000)")


ModelArg = Annotated[str, typer.Argument(help="segmentation, recommender or churn.")]


@app.command("models")
def models_cmd(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """List each model with its champion and challenger versions and key metrics."""
    settings = _settings(config, set_)
    _quiet_services()
    from tailor.adapters.registry import describe_models
    from tailor.adapters.tracking import client_for, tracking_uri

    table = describe_models(client_for(settings.tracking),
                            key_metrics=settings.registry.key_metrics)
    typer.echo(f"registry: {tracking_uri(settings.tracking)}")
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


@app.command("promote")
def promote_cmd(
    model: ModelArg,
    version: Annotated[str, typer.Argument(help="The registered version to serve.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit trail).")] = "manual",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Point the champion alias at VERSION (audited: who, when, from, to, why)."""
    settings = _settings(config, set_)
    _quiet_services()
    from mlflow.exceptions import MlflowException

    from tailor.adapters.registry import RegistryError, promote
    from tailor.adapters.tracking import client_for

    try:
        move = promote(client_for(settings.tracking), model, version, actor=_actor(),
                       reason=reason)
    except (RegistryError, ValueError) as exc:
        raise _fail(str(exc)) from None
    except MlflowException as exc:  # e.g. the version does not exist
        raise _fail(f"cannot promote {model} v{version}: {exc.message}") from None
    typer.echo(f"{move.model}@champion: v{move.from_version} -> v{move.to_version}")


@app.command("rollback")
def rollback_cmd(
    model: ModelArg,
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit trail).")] = "rollback",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Point the champion alias back at the previous champion (audited)."""
    settings = _settings(config, set_)
    _quiet_services()
    from tailor.adapters.registry import RegistryError, rollback
    from tailor.adapters.tracking import client_for

    try:
        move = rollback(client_for(settings.tracking), model, actor=_actor(), reason=reason)
    except (RegistryError, ValueError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{move.model}@champion: v{move.from_version} -> v{move.to_version}")


@app.command("doctor")
def doctor_cmd(
    fix: Annotated[bool, typer.Option(
        "--fix", help="Repair what is found (takes the store's lock; fails if a retrain "
                      "holds it).")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Check the MLflow store for what killed runs leave: interrupted promotions, runs left
    RUNNING, versions never gated. Exit code 1 when something is found and not repaired."""
    settings = _settings(config, set_)
    _quiet_services()
    from tailor.adapters.registry_lock import RegistryBusyError, registry_lock
    from tailor.adapters.tracking import client_for, tracking_uri
    from tailor.tasks.reconcile import reconcile

    uri = tracking_uri(settings.tracking)
    client = client_for(settings.tracking)
    try:
        with registry_lock(uri, "tailor doctor --fix" if fix else "tailor doctor"):
            findings = reconcile(client, settings.tracking.experiment_prefix, fix=fix,
                                 stale_hours=settings.registry.stale_run_hours)
    except RegistryBusyError as exc:
        raise _fail(f"tailor doctor: {exc}") from None
    typer.echo(f"store: {uri}")
    for finding in findings:
        typer.echo(("repaired " if fix else "found ") + finding.line())
    if not findings:
        typer.echo("consistent: no interrupted promotion, no run left RUNNING, every version "
                   "gated")
    elif not fix:
        raise _fail(f"{len(findings)} problem(s); `tailor doctor --fix` repairs them")


@app.command("ui")
def ui_cmd(
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Open the MLflow UI on the configured tracking store (local sqlite by default)."""
    import subprocess

    settings = _settings(config, set_)
    from tailor.adapters.tracking import tracking_uri

    uri = tracking_uri(settings.tracking)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", "127.0.0.1", "--port", str(port)]
    typer.echo(f"MLflow UI on http://127.0.0.1:{port} for {uri}")
    raise typer.Exit(subprocess.call(command))


def _actor() -> str:
    import getpass

    try:
        return f"{getpass.getuser()} via tailor cli"
    except (KeyError, OSError):
        return "tailor cli"


@app.command("score")
def score_cmd(
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
    _settings(config, set_)
    _quiet_services()
    from tailor.flows.score import score_customers
    from tailor.tasks.scoring import ScoreTargetError, parse_target

    try:
        parse_target(out)
    except ScoreTargetError as exc:
        raise _fail(str(exc)) from None
    summary = _run_flow("score", lambda: score_customers(
        str(data), out, as_of, k, [str(c) for c in config or []], list(set_ or []),
        None if snapshot_dir is None else str(snapshot_dir),
        None if quarantine is None else str(quarantine)))
    _print_scoring(summary)


def _print_scoring(summary: dict) -> None:
    typer.echo(f"scored {summary['rows']:,} customers as of {summary['as_of']} -> "
               f"{summary['scores']}")
    for kind, version in summary["model_versions"].items():
        typer.echo(f"  {kind:<13} " + (f"v{version}" if version else
                                       "no champion: columns left empty"))
    typer.echo("next best action:")
    for action, count in summary["actions"].items():
        typer.echo(f"  {count:>9,}  {action}")
    typer.echo(f"serving snapshot -> {summary['snapshot_dir']}")


@app.command("serve")
def serve_cmd(
    host: Annotated[str | None, typer.Option(help="Interface (default: serving.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Serve the @champion models and the latest feature snapshot over HTTP (FastAPI).

    Endpoints and their schema: http://HOST:PORT/docs. Admin endpoints need serving.admin_token
    (or $TAILOR_ADMIN_TOKEN)."""
    settings = _settings(config, set_)
    _quiet_services()
    from tailor.deployments.api.app import serve

    serve(settings, host=host, port=port)


@app.command("deploy")
def deploy_cmd(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Register weekly retraining and daily scoring (cron schedules from the deployments
    section) on the Prefect server at $PREFECT_API_URL; `tailor serve-flows` then runs them."""
    settings = _settings(config, set_)
    _quiet_services()
    from tailor.deployments.schedules import (
        DeploymentError,
        build_deployments,
        changes_on_server,
        describe,
        register,
        require_server,
    )

    try:
        url = require_server()
        built = build_deployments(settings, config or [], list(set_ or []))
        changes = changes_on_server(built.deployments)
        ids = register(built.deployments)
    except DeploymentError as exc:
        raise _fail(str(exc)) from None
    for line in changes:
        typer.echo(f"changed {line}")
    typer.echo(f"registered on {url}:")
    for deployment in built.deployments:
        typer.echo(f"  {describe(deployment)}  id {ids[deployment.full_name]}")
    for note in built.skipped:
        typer.echo(f"  skipped {note}")
    typer.echo("runs execute where `tailor serve-flows` runs (give it the same --config/--set)")


@app.command("serve-flows")
def serve_flows_cmd(
    limit: Annotated[int | None, typer.Option(
        help="Most flow runs executed at the same time (default: no limit).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Register the scheduled deployments and execute their runs in this process (Prefect
    serve(); Ctrl-C stops). Needs the Prefect server at $PREFECT_API_URL."""
    settings = _settings(config, set_)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")  # show each run starting/ending
    _quiet_services(hide_prefect_errors=False)
    from tailor.deployments.schedules import (
        DeploymentError,
        build_deployments,
        changes_on_server,
        require_server,
        serve_deployments,
    )

    try:
        url = require_server()
        built = build_deployments(settings, config or [], list(set_ or []))
        changes = changes_on_server(built.deployments)
    except DeploymentError as exc:
        raise _fail(str(exc)) from None
    for line in changes:  # serving registers too: say what it replaces
        typer.secho(f"re-registering {line}", fg=typer.colors.YELLOW, err=True)
    for note in built.skipped:
        typer.echo(f"skipped {note}")
    typer.echo(f"serving {len(built.deployments)} deployment(s) from {url}")
    serve_deployments(built.deployments, limit=limit)


def main() -> None:  # pragma: no cover - console entry point
    app(sys.argv[1:])
