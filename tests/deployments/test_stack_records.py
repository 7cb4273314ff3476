"""What `tailor stack` records and derives, without starting servers: database URLs per role,
the export lines, and stopping only a process whose start time matches the record."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tailor.deployments.stack import (
    STACK_FILE,
    Server,
    Stack,
    StackError,
    database_url,
    down,
    env_lines,
    read_stack,
)


def test_each_role_gets_its_database_on_the_same_server_with_its_driver() -> None:
    base = "postgresql://team:s3cret@db.example:5433/postgres"
    assert database_url(base, "tailor_mlflow") == (
        "postgresql+psycopg://team:s3cret@db.example:5433/tailor_mlflow")
    assert database_url(base, "tailor_prefect", "postgresql+asyncpg").startswith(
        "postgresql+asyncpg://team:s3cret@db.example:5433/")
    with pytest.raises(StackError, match="must be a PostgreSQL URL"):
        database_url("mysql://root@localhost/x", "tailor_mlflow")


def _stack(tmp_path: Path, server: Server) -> Stack:
    return Stack(str(tmp_path), "postgresql://postgres@127.0.0.1/postgres",
                 {"mlflow": server, "prefect": server}, prefix="team")


def test_env_lines_export_the_four_variables_quoted(tmp_path: Path) -> None:
    server = Server("mlflow", 1, 0.0, "http://127.0.0.1:5000", None, "log")
    lines = env_lines(_stack(tmp_path, server))
    assert [line.split("=")[0] for line in lines] == [
        "export MLFLOW_TRACKING_URI", "export PREFECT_API_URL", "export TAILOR_OPTUNA_STORAGE",
        "export TAILOR_REGISTRY_LOCK_URL"]
    assert lines[2].endswith("/team_optuna")


def test_down_never_signals_a_process_that_reused_a_recorded_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 start_new_session=True)
    try:
        started = psutil.Process(bystander.pid).create_time()
        reused = Server("mlflow", bystander.pid, started - 3600, "http://x", None, "log")
        assert reused.process() is None  # same pid, another process
        assert down(_stack(tmp_path, reused)) == {"mlflow": False, "prefect": False}
        assert bystander.poll() is None, "down killed a process it did not start"

        ours = Server("mlflow", bystander.pid, started, "http://x", None, "log")
        assert down(Stack(str(tmp_path), "postgresql://h/p", {"mlflow": ours})) == {
            "mlflow": True}
        assert bystander.wait(timeout=10) is not None
    finally:
        if bystander.poll() is None:
            bystander.kill()


def test_a_stack_file_tailor_did_not_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / STACK_FILE).write_text('{"servers": 3}')
    with pytest.raises(StackError, match="is not a stack file tailor wrote"):
        read_stack(tmp_path)
    assert read_stack(tmp_path / "nowhere") is None
