"""Prefect's temporary local API for one command, which dies with the command.

Without a Prefect server ($PREFECT_API_URL unset) Prefect starts a temporary API in a child
process (uvicorn, about 200 MB) and stops it when the Python process exits normally. A SIGKILLed
`tailor train` never gets there, and the child lived on (one was still up 4 min 41 s later).
Here the same server is started by the command itself, with the kernel told to SIGTERM it when
its parent dies (Linux ``PR_SET_PDEATHSIG``; elsewhere it falls back to Prefect's behaviour).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import prefect
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_LOGGING_TO_API_ENABLED,
    get_current_settings,
    temporary_settings,
)

_PR_SET_PDEATHSIG = 1
START_TIMEOUT_S = 120


def _die_with_parent() -> None:
    """In the child, before exec: ask for SIGTERM when the parent thread dies."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _child_server() -> Any:
    """Prefect's temporary server, started as Prefect starts it, bound to this process.

    Prefect's server package is imported here, not at module level: it costs about 2 s, and a
    command pointed at a running server never needs it."""
    from prefect.server.api.server import SubprocessASGIServer

    class ChildServer(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                   "PREFECT__SERVER_FINAL": "1",
                   **get_current_settings().to_environment_variables(exclude_unset=True)}
            args = [sys.executable, "-m", "uvicorn", "--app-dir",
                    str(prefect.__module_path__.parent), "--factory",
                    "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port",
                    str(self.port), "--log-level", "error", "--lifespan", "on"]
            linux = sys.platform.startswith("linux")
            return subprocess.Popen(args, env=env,
                                    preexec_fn=_die_with_parent if linux else None)

    return ChildServer()


@contextlib.contextmanager
def local_prefect_api() -> Iterator[str | None]:
    """Run the block against $PREFECT_API_URL when set, else against a temporary API that
    cannot outlive this process; yields the API URL used (None: Prefect's own default)."""
    configured = get_current_settings().api.url
    if configured or not get_current_settings().server.ephemeral.enabled:
        yield configured
        return
    server = _child_server()
    server.start(timeout=START_TIMEOUT_S)
    try:
        # logs stay on the console: a temporary API is gone before late log batches arrive
        with temporary_settings(updates={PREFECT_API_URL: server.api_url,
                                         PREFECT_LOGGING_TO_API_ENABLED: False}):
            yield server.api_url
    finally:
        server.stop()
