"""Running tailor as a service: ``serve`` (the HTTP API), ``deploy`` (the schedules on a
Prefect server) and ``serve-flows`` (the worker that executes them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tailor.cli._common import CONSOLE_LEVEL, ConfigOpt, SetOpt, fail, quiet_services, settings
from tailor.configs import Settings

if TYPE_CHECKING:  # imports Prefect: only when a command needs it
    from tailor.deployments.schedules import BuiltDeployments


def serve_cmd(
    host: Annotated[str | None, typer.Option(help="Interface (default: serving.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Serve the @champion models and the latest feature snapshot over HTTP (FastAPI).

    Endpoints and their schema: http://HOST:PORT/docs. Admin endpoints need serving.admin_token
    (or $TAILOR_ADMIN_TOKEN)."""
    resolved = settings(config, set_)
    quiet_services()
    from tailor.deployments.api.app import serve

    serve(resolved, host=host, port=port)


def _plan(resolved: Settings, config: list[Path] | None, set_: list[str] | None,
          work_pool: str | None = None) -> tuple[str, BuiltDeployments, list[str]]:
    """The server's URL, the deployments built from the settings, and what they would
    change on the server; raises DeploymentError (no server, bad schedule...)."""
    from tailor.deployments.schedules import (
        build_deployments,
        changes_on_server,
        require_server,
        ui_api_mismatch,
    )

    url = require_server()
    if warning := ui_api_mismatch(url):
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    built = build_deployments(resolved, config or [], list(set_ or []), work_pool=work_pool)
    return url, built, changes_on_server(built.deployments)


def deploy_cmd(
    work_pool: Annotated[str | None, typer.Option(
        help="Put the deployments on this Prefect process work pool (created if missing); "
             "`prefect worker start --pool NAME` runs them. Default: `tailor serve-flows`.")
                         ] = None,
    notify: Annotated[str | None, typer.Option(
        help="Be told when a run of these deployments fails, crashes or is late, or when no "
             "runner polls for them: a webhook URL (JSON POST with a `text` field, as Slack "
             "and Teams incoming webhooks take), or block:SLUG/NAME for a notification block "
             "already on the server. Creates or replaces two Prefect automations.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Register weekly retraining and daily scoring (cron schedules from the deployments
    section) on the Prefect server at $PREFECT_API_URL; `tailor serve-flows`, or workers on
    --work-pool, then run them."""
    resolved = settings(config, set_)
    quiet_services()
    from tailor.deployments.notify import NotifyError, set_up_notifications
    from tailor.deployments.schedules import (
        DeploymentError,
        describe,
        ensure_work_pool,
        register,
    )

    try:
        url, built, changes = _plan(resolved, config, set_, work_pool)
        if work_pool and ensure_work_pool(work_pool):
            typer.echo(f"created process work pool {work_pool}")
        ids = register(built.deployments)
        notification = set_up_notifications(notify, ids.values()) if notify else None
    except (DeploymentError, NotifyError) as exc:
        raise fail(str(exc)) from None
    for line in changes:
        typer.echo(f"changed {line}")
    typer.echo(f"registered on {url}:")
    for deployment in built.deployments:
        typer.echo(f"  {describe(deployment)}  id {ids[deployment.full_name]}")
    for note in built.skipped:
        typer.echo(f"  skipped {note}")
    if notification is not None:
        for name, automation_id in notification.automations.items():
            typer.echo(f"automation {name!r} id {automation_id} notifies through block "
                       f"{notification.block}")
    if work_pool:
        typer.echo(f"runs execute on work pool {work_pool}: start a worker with "
                   f"`prefect worker start --pool {work_pool}` (or `tailor stack up "
                   f"--work-pool {work_pool}`)")
    else:
        typer.echo("runs execute where `tailor serve-flows` runs (give it the same "
                   "--config/--set)")


def serve_flows_cmd(
    limit: Annotated[int | None, typer.Option(
        help="Most flow runs executed at the same time (default: no limit).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Register the scheduled deployments and execute their runs in this process (Prefect
    serve(); Ctrl-C stops). Needs the Prefect server at $PREFECT_API_URL."""
    resolved = settings(config, set_)
    # the runner's terminal (or journal) shows each run starting and ending
    os.environ.setdefault(CONSOLE_LEVEL, "INFO")
    quiet_services(hide_prefect_errors=False)
    from tailor.deployments.schedules import DeploymentError, serve_deployments

    try:
        url, built, changes = _plan(resolved, config, set_)
    except DeploymentError as exc:
        raise fail(str(exc)) from None
    for line in changes:  # serving registers too: say what it replaces
        typer.secho(f"re-registering {line}", fg=typer.colors.YELLOW, err=True)
    for note in built.skipped:
        typer.echo(f"skipped {note}")
    typer.echo(f"serving {len(built.deployments)} deployment(s) from {url}")
    serve_deployments(built.deployments, limit=limit)
