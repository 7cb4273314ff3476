"""``tailor stack``: the shared servers a team runs tailor against (MLflow, Prefect and the
Optuna storage on one PostgreSQL server), started, described and stopped from one folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tailor.cli._common import fail

if TYPE_CHECKING:  # psutil, SQLAlchemy: only when a command runs
    from tailor.deployments.stack import Stack

stack_app = typer.Typer(help=__doc__, no_args_is_help=True)

DirOpt = Annotated[Path, typer.Option(
    "--dir", help="Folder holding stack.json, the servers' logs and MLflow's artifacts.")]
DEFAULT_DIR = Path("stack")


def _recorded(dir_: Path, command: str) -> Stack:
    """The stack recorded in ``dir_``, or its error in red and exit code 1."""
    from tailor.deployments.stack import StackError, require_stack

    try:
        return require_stack(dir_)
    except StackError as exc:
        raise fail(f"tailor stack {command}: {exc}") from None


@stack_app.command("up")
def up_cmd(
    database_url: Annotated[str, typer.Option(
        help="PostgreSQL server URL, e.g. postgresql://postgres@127.0.0.1:5432/postgres "
             "(the databases tailor_mlflow, tailor_prefect, tailor_optuna are created on it "
             "if missing).")],
    dir_: DirOpt = DEFAULT_DIR,
    host: Annotated[str, typer.Option(
        help="Interface both servers listen on (loopback by default).")] = "127.0.0.1",
    mlflow_port: Annotated[int | None, typer.Option(help="Default: a free port.")] = None,
    prefect_port: Annotated[int | None, typer.Option(help="Default: a free port.")] = None,
    work_pool: Annotated[str | None, typer.Option(
        help="Also start a Prefect process worker on this work pool (created if missing).")
                         ] = None,
    database_prefix: Annotated[str, typer.Option(
        help="Databases are PREFIX_mlflow, PREFIX_prefect, PREFIX_optuna.")] = "tailor",
) -> None:
    """Start an MLflow tracking server and a Prefect server on PostgreSQL, in the
    background; waits until both answer."""
    from tailor.deployments.stack import StackError, env_lines, up

    try:
        stack = up(database_url, dir_, host, mlflow_port, prefect_port, work_pool,
                   database_prefix, progress=typer.echo)
    except StackError as exc:
        raise fail(f"tailor stack up: {exc}") from None
    typer.echo(f"stack up in {stack.dir}; to use it:")
    for line in env_lines(stack):
        typer.echo(f"  {line}")
    typer.echo(f"(or: eval \"$(tailor stack env --dir {dir_})\")")


@stack_app.command("env")
def env_cmd(dir_: DirOpt = DEFAULT_DIR) -> None:
    """Print the export lines that point tailor, services and workers at the stack."""
    from tailor.deployments.stack import env_lines

    typer.echo("\n".join(env_lines(_recorded(dir_, "env"))))


@stack_app.command("status")
def status_cmd(dir_: DirOpt = DEFAULT_DIR) -> None:
    """Each recorded server: its PID, URL, whether it runs and answers (exit 1 if not all)."""
    from tailor.deployments.stack import status

    rows = status(_recorded(dir_, "status"))
    for row in rows:
        state = "up" if row.answering else "running, not answering" if row.running else "down"
        typer.echo(f"{row.name:8} pid {row.pid:<8} {state:24} {row.url}")
    if not all(row.answering for row in rows):
        raise typer.Exit(1)


@stack_app.command("down")
def down_cmd(dir_: DirOpt = DEFAULT_DIR) -> None:
    """Stop exactly the servers `tailor stack up` started in DIR (databases are kept)."""
    from tailor.deployments.stack import down

    stopped = down(_recorded(dir_, "down"))
    for name, was_running in stopped.items():
        typer.echo(f"{name}: {'stopped' if was_running else 'was not running'}")
