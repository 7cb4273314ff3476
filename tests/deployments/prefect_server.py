"""A REAL Prefect server for tests, and the processes around it.

``prefect server start`` runs in its own process group, with its own PREFECT_HOME and a sqlite
database in tmp (PREFECT_API_DATABASE_CONNECTION_URL; a postgresql+asyncpg://... URL there is
how Prefect would run on PostgreSQL). Every process is stopped (its whole group) even on
failure. The UI is served only when asked for; then PREFECT_SERVER_API_PORT is set to the port
too, or the UI would call the API on 4200 (docs/operations.md).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

TAILOR = str(Path(sys.executable).with_name("tailor"))
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This machine's environment without any Prefect/MLflow setting a developer may have."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PREFECT_") and k != "MLFLOW_TRACKING_URI"}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="true", MLFLOW_ENABLE_TELEMETRY="false", **extra)
    return env


def start(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group (flow runs are children), SIGKILL what remains."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


@contextmanager
def running_server(root: Path, ui: bool = False, set_api_port: bool = True,
                   **settings: str) -> Iterator[dict[str, Any]]:
    """A Prefect server on a free port until the block ends: its API URL, root and log.
    ``set_api_port=False`` starts it the way that leaves its UI calling port 4200."""
    port = free_port()
    if set_api_port:
        settings = {"PREFECT_SERVER_API_PORT": str(port),
                    "PREFECT_UI_URL": f"http://127.0.0.1:{port}",  # links in notifications
                    **settings}
    env = clean_env(
        root / "home",
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{root / 'prefect.db'}",
        PREFECT_UI_ENABLED="true" if ui else "false",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
        **settings,
    )
    log = root / "server.log"
    process = start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                     "--port", str(port)], env, log, root)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"prefect server exited with {process.returncode}:\n{tail(log)}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after 120 s:\n{tail(log)}")
            time.sleep(0.5)
        yield {"url": url, "ui": f"http://127.0.0.1:{port}", "root": root, "log": log}
    finally:
        stop(process)


@contextmanager
def api(url: str) -> Iterator[None]:
    """Point this process's Prefect client at ``url`` for the block only."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


@contextmanager
def client_of(url: str) -> Iterator[Any]:
    from prefect.client.orchestration import get_client

    with api(url), get_client(sync_client=True) as client:
        yield client


def wait_for(client: Any, run_id: Any, serve: subprocess.Popen | None, log: Path,
             timeout_s: float, states: set[str] = FINAL) -> Any:
    """The flow run once its state type is one of ``states``; fails when ``serve`` exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.read_flow_run(run_id)
        if run.state is not None and (run.state.type.value in states
                                      or run.state.name in states):
            return run
        if serve is not None and serve.poll() is not None:
            pytest.fail(f"tailor serve-flows exited with {serve.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"run {run.name} still {run.state_name} after {timeout_s} s:\n"
                        f"{tail(log)}")
        time.sleep(1)


def tiny_world(root: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """Generated data under ``root/data`` and ``root/tailor.yaml``: sqlite stores in
    ``root/store``, tiny tuning budgets, and ``sections`` (e.g. ``deployments``) on top."""
    from tailor.configs import load_settings
    from tailor.data.generate import generate, write_generated

    store = root / "store"
    config = {
        "tracking": {"mlflow_tracking_uri": f"sqlite:///{store / 'mlflow.db'}",
                     "optuna_storage": f"sqlite:///{store / 'optuna.db'}"},
        "segmentation": {"n_trials": 2, "exhaustive_limit": 0},
        "recommender": {"n_trials": 2, "max_epochs": 3},
        "churn": {"n_trials": 2},
        "generate": {"customers": 400, "products": 100},
        **sections,
    }
    config_file = root / "tailor.yaml"
    config_file.write_text(yaml.safe_dump(config))
    write_generated(generate(load_settings([config_file]).generate), root / "data")
    return {"root": root, "config": config_file, "store": store}
