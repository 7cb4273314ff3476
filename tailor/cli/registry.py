"""The MLflow registry commands: ``models``, ``promote``, ``rollback``, ``audit``, ``doctor``,
``ui``.
They talk to the store directly, without Prefect."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tailor.cli._common import ConfigOpt, SetOpt, fail, quiet_services, settings
from tailor.cli._render import print_models

ModelArg = Annotated[str, typer.Argument(help="segmentation, recommender or churn.")]


def _actor() -> str:
    """Who moved an alias, for the audit trail."""
    import getpass

    try:
        return f"{getpass.getuser()} via tailor cli"
    except (KeyError, OSError):
        return "tailor cli"


def models_cmd(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """List each model with its champion and challenger versions and key metrics."""
    resolved = settings(config, set_)
    quiet_services()
    from tailor.adapters.registry_audit import describe_models
    from tailor.adapters.tracking import client_for, tracking_uri

    table = describe_models(client_for(resolved.tracking),
                            key_metrics=resolved.registry.key_metrics)
    print_models(table, tracking_uri(resolved.tracking))


def promote_cmd(
    model: ModelArg,
    version: Annotated[str, typer.Argument(help="The registered version to serve.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit trail).")] = "manual",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Point the champion alias at VERSION (audited: who, when, from, to, why)."""
    resolved = settings(config, set_)
    quiet_services()
    from mlflow.exceptions import MlflowException

    from tailor.adapters.registry import RegistryError, promote
    from tailor.adapters.tracking import client_for

    try:
        move = promote(client_for(resolved.tracking), model, version, actor=_actor(),
                       reason=reason)
    except (RegistryError, ValueError) as exc:
        raise fail(str(exc)) from None
    except MlflowException as exc:  # e.g. the version does not exist
        raise fail(f"cannot promote {model} v{version}: {exc.message}") from None
    typer.echo(f"{move.model}@champion: v{move.from_version} -> v{move.to_version}")


def rollback_cmd(
    model: ModelArg,
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit trail).")] = "rollback",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Point the champion alias back at the previous champion (audited)."""
    resolved = settings(config, set_)
    quiet_services()
    from tailor.adapters.registry import RegistryError, rollback
    from tailor.adapters.tracking import client_for

    try:
        move = rollback(client_for(resolved.tracking), model, actor=_actor(), reason=reason)
    except (RegistryError, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{move.model}@champion: v{move.from_version} -> v{move.to_version}")


def audit_cmd(
    model: Annotated[str | None, typer.Argument(
        help="segmentation, recommender or churn (default: every model).")] = None,
    at: Annotated[str | None, typer.Option(
        help="Also say which version was champion at this time (ISO 8601; naive is UTC).")
                  ] = None,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Include moves that failed or were interrupted.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """The registry's audit trail: every alias move, oldest first (when, model, alias, from,
    to, kind, who, why, audit run)."""
    resolved = settings(config, set_)
    quiet_services()
    from tailor.adapters.registry import RegistryError, model_kinds
    from tailor.adapters.registry_audit import audit_trail, champion_at
    from tailor.adapters.tracking import client_for

    client = client_for(resolved.tracking)
    try:
        trail = audit_trail(client, model, include_failed=failed)
        champions = ({name: champion_at(client, name, at) for name in
                      ([model] if model else model_kinds(client))} if at else {})
    except (RegistryError, ValueError) as exc:
        raise fail(f"tailor audit: {exc}") from None
    if trail.empty:
        typer.echo("no alias move recorded yet")
    for row in trail.itertuples(index=False):
        moved = f"v{row.from_version} -> v{row.to_version}" if row.from_version else (
            f"(none) -> v{row.to_version}")
        failed_note = "" if row.status == "FINISHED" else f" [{row.status}]"
        typer.echo(f"{row.at:%Y-%m-%d %H:%M:%S}Z  {row.model}@{row.alias}  {moved}  "
                   f"{row.kind} by {row.actor}: {row.reason}  (audit run {row.run_id})"
                   f"{failed_note}")
    for name, version in champions.items():
        typer.echo(f"champion of {name} at {at}: " + (f"v{version}" if version else "none"))


def doctor_cmd(
    fix: Annotated[bool, typer.Option(
        "--fix", help="Repair what is found (takes the store's lock; fails if a retrain "
                      "holds it).")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Check the MLflow store for what killed runs leave: interrupted promotions, runs left
    RUNNING, versions never gated. Exit code 1 when something is found and not repaired."""
    resolved = settings(config, set_)
    quiet_services()
    from tailor.adapters.reconcile import reconcile
    from tailor.adapters.registry_lock import RegistryBusyError, registry_lock
    from tailor.adapters.tracking import client_for, tracking_uri

    uri = tracking_uri(resolved.tracking)
    client = client_for(resolved.tracking)
    try:
        with registry_lock(uri, "tailor doctor --fix" if fix else "tailor doctor"):
            findings = reconcile(client, resolved.tracking.experiment_prefix, fix=fix,
                                 stale_hours=resolved.registry.stale_run_hours)
    except RegistryBusyError as exc:
        raise fail(f"tailor doctor: {exc}") from None
    typer.echo(f"store: {uri}")
    for finding in findings:
        typer.echo(("repaired " if fix else "found ") + finding.line())
    if not findings:
        typer.echo("consistent: no interrupted promotion, no run left RUNNING, every version "
                   "gated")
    elif not fix:
        raise fail(f"{len(findings)} problem(s); `tailor doctor --fix` repairs them")


def ui_cmd(
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Open the MLflow UI on the configured tracking store (local sqlite by default)."""
    import subprocess

    resolved = settings(config, set_)
    from tailor.adapters.tracking import tracking_uri

    uri = tracking_uri(resolved.tracking)
    if uri.startswith(("http://", "https://")):  # a tracking server (`tailor stack`) is the UI
        typer.echo(f"the MLflow tracking server at {uri} serves the UI: open {uri} in a browser")
        raise typer.Exit(0)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", "127.0.0.1", "--port", str(port)]
    typer.echo(f"MLflow UI on http://127.0.0.1:{port} for {uri}")
    typer.echo("In its sidebar, switch GenAI to Model training for the Model registry; "
               "retrains are in the experiment tailor-retrain (README: Comparing challenger "
               "and champion in the MLflow UI).")
    raise typer.Exit(subprocess.call(command))
