"""The store lock: one holder at a time, the holder named to the others, and released by the
kernel (a file lock) or by PostgreSQL (an advisory lock) when its holder is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tailor.adapters.registry_lock import (
    REGISTRY_LOCK_ENV,
    RegistryBusyError,
    lock_path,
    registry_lock,
    try_registry_lock,
)


def _hold_in_child(uri: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    code = ("import sys, time\n"
            "from tailor.adapters.registry_lock import registry_lock\n"
            f"with registry_lock({uri!r}, 'tailor train (test)'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(600)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2],
                             env={**os.environ, **(env or {})})
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_lock_file_sits_beside_a_sqlite_store_and_in_the_cache_for_servers() -> None:
    assert lock_path("sqlite:////data/mlruns/mlflow.db") == Path(
        "/data/mlruns/mlflow.db.tailor-lock")
    remote = lock_path("postgresql://db/mlflow")
    assert remote.parent == Path.home() / ".cache" / "tailor" / "locks"
    assert remote != lock_path("postgresql://db/other")


def test_a_second_holder_is_refused_with_the_first_named(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    child = _hold_in_child(uri)
    try:
        named = rf"tailor train \(test\) \(pid {child.pid}"
        with pytest.raises(RegistryBusyError, match=named), registry_lock(uri, "second"):
            pass
        with try_registry_lock(uri, "score") as held:
            assert held is False
        started = time.monotonic()
        with pytest.raises(RegistryBusyError), registry_lock(uri, "second", wait_seconds=1.0):
            pass
        assert time.monotonic() - started >= 1.0
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # the kernel dropped the dead holder's lock: no stale lock to clean up by hand
    with registry_lock(uri, "after the kill"), try_registry_lock(uri, "nested") as held:
        assert held is False  # flock is per open file: a second open is refused too
    with try_registry_lock(uri, "score") as held:
        assert held is True


def test_with_a_lock_database_the_lock_is_a_postgresql_advisory_lock(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `tailor stack env` sets up: every machine that reaches the database sees the lock,
    and PostgreSQL drops it with the dead holder's connection."""
    uri = "http://mlflow.example:5000"  # a server store: the file lock would be per machine
    child = _hold_in_child(uri, {REGISTRY_LOCK_ENV: pg_url})
    monkeypatch.setenv(REGISTRY_LOCK_ENV, pg_url)
    try:
        named = rf"tailor: tailor train \(test\) \(pid {child.pid} on .*advisory lock"
        with pytest.raises(RegistryBusyError, match=named), registry_lock(uri, "second"):
            pass
        with try_registry_lock(uri, "score") as held:
            assert held is False
        with try_registry_lock("http://another.store:5000", "score") as held:
            assert held is True  # one lock per store
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 10  # the server notices the closed socket at once
    while True:
        with try_registry_lock(uri, "after the kill") as held:
            if held:
                break
        assert time.monotonic() < deadline, "the dead holder's advisory lock was not dropped"
        time.sleep(0.2)
