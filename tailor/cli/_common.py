"""What every command shares: the --config/--set options, quiet services, settings that fail
with exit code 2, and flows run against a throwaway Prefect API with one-line errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from tailor.configs import ConfigError, Settings, load_settings

T = TypeVar("T")

ConfigOpt = Annotated[
    list[Path] | None,
    typer.Option("--config", "-c", help="YAML file merged over the defaults (repeatable)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override one value: section.key=value (repeatable)."),
]

CONSOLE_LEVEL = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"
"""Prefect's terminal handler level (its logging.yml key handlers.console.level)."""

# Set by the root callback (--debug) before any command runs.
DEBUG = {"on": False}


def quiet_services(hide_prefect_errors: bool = True) -> None:
    """Keep local runs offline and readable: no telemetry, no chatty server logs, and (unless
    --debug) no Prefect tracebacks: a failing command prints one clear line instead."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # INFO reaches the flow run's log on a Prefect server (the operator's view); the terminal
    # shows warnings, and Prefect's traceback of a failing task (ERROR) only with --debug
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    if DEBUG["on"] or not hide_prefect_errors:
        os.environ.setdefault(CONSOLE_LEVEL, "WARNING")
    else:
        os.environ[CONSOLE_LEVEL] = "CRITICAL"
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    # with a tracking server MLflow prints each run's and experiment's URL on stdout
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    from tailor.flows.library_noise import quiet_libraries

    quiet_libraries()


def settings(config: list[Path] | None, overrides: list[str] | None) -> Settings:
    """The merged settings, or the configuration error on stderr and exit code 2."""
    try:
        return load_settings(config or [], overrides or [])
    except ConfigError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


def flow_args(config: list[Path] | None,
              overrides: list[str] | None) -> tuple[list[str], list[str]]:
    """--config and --set as the plain lists a flow takes (its parameters must serialize)."""
    return [str(c) for c in config or []], list(overrides or [])


def fail(message: str) -> typer.Exit:
    """Print ``message`` in red on stderr; raise the returned exit (code 1)."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def run_flow(command: str, run: Callable[[], T]) -> T:
    """Run a flow against a Prefect API that dies with this process; turn a failure into one
    clear line and exit code 1 (the traceback only with --debug)."""
    from tailor.adapters.registry import RegistryError
    from tailor.adapters.registry_lock import RegistryBusyError
    from tailor.data.io import DataSourceError
    from tailor.data.validate import DataContractError
    from tailor.local_prefect import local_prefect_api

    expected = (DataSourceError, DataContractError, ConfigError, RegistryError,
                RegistryBusyError, ValueError)
    try:
        with local_prefect_api():
            return run()
    except expected as exc:
        if DEBUG["on"]:
            raise
        raise fail(f"tailor {command}: {exc}") from None
    except Exception as exc:
        if DEBUG["on"]:
            raise
        raise fail(f"tailor {command} failed: {type(exc).__name__}: {exc}\n"
                   f"(run `tailor --debug {command} ...` for the traceback)") from None
