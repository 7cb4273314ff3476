"""One retrain (or repair) at a time per MLflow store: an exclusive lock beside the store.

Two retrains of one data set that gate and promote at once can replace a champion the other's
challenger was never compared with; Prefect's deployment concurrency limit serialises runs it
schedules, and this lock serialises everything else (`tailor train` from a shell or cron,
`tailor doctor --fix`). It is an ``flock`` on a file: the kernel releases it when the holder
dies, however it dies, so a killed retrain never leaves the store locked, and holding it proves
that no other tailor process on this machine is inside a retrain of that store.

The lock file sits next to a local sqlite store (``mlflow.db.tailor-lock``); for a remote store
(PostgreSQL, an MLflow server) it lives under ``~/.cache/tailor/locks/``, one per store URI, and
so serialises the processes of one machine only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tailor.adapters.owner import owner_tags

LOCK_SUFFIX = ".tailor-lock"


class RegistryBusyError(RuntimeError):
    """Another process holds the store's lock; the message names it and what to do."""


def lock_path(tracking_uri: str) -> Path:
    """Where the lock of the store at ``tracking_uri`` lives."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///") + LOCK_SUFFIX)
    digest = hashlib.sha256(tracking_uri.encode()).hexdigest()[:16]
    return Path.home() / ".cache" / "tailor" / "locks" / f"{digest}{LOCK_SUFFIX}"


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        return "another process"
    return (f"{info.get('what', 'a tailor process')} (pid {info.get('tailor.owner.pid', '?')} "
            f"on {info.get('tailor.owner.host', '?')}, since {info.get('since', '?')})")


@contextlib.contextmanager
def registry_lock(tracking_uri: str, what: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the store's lock for the block; wait up to ``wait_seconds`` for it, then raise
    :class:`RegistryBusyError` naming the holder."""
    path = lock_path(tracking_uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RegistryBusyError(
                        f"the MLflow store {tracking_uri} is busy: {_holder(handle)} holds "
                        f"{path}; wait for it to finish (or set registry.lock_wait_seconds)"
                    ) from None
                time.sleep(0.5)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({**owner_tags(), "what": what,
                                     "since": datetime.now(UTC).isoformat(timespec="seconds")}))
            handle.flush()
            os.fsync(handle.fileno())
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def try_registry_lock(tracking_uri: str, what: str) -> Iterator[bool]:
    """Like :func:`registry_lock` without waiting, yielding False instead of raising when busy
    (for `tailor score`, which repairs crash leftovers only when no retrain is running)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(registry_lock(tracking_uri, what))
            held = True
        except RegistryBusyError:
            held = False
        yield held
