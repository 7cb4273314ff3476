"""One retrain (or repair) at a time per MLflow store: an exclusive lock beside the store.

Two retrains of one data set that gate and promote at once can replace a champion the other's
challenger was never compared with; Prefect's deployment concurrency limit serialises runs it
schedules, and this lock serialises everything else (`tailor train` from a shell or cron,
`tailor doctor --fix`). It is an ``flock`` on a file: the kernel releases it when the holder
dies, however it dies, so a killed retrain never leaves the store locked, and holding it proves
that no other tailor process on this machine is inside a retrain of that store.

The lock file sits next to a local sqlite store (``mlflow.db.tailor-lock``); for a remote store
(PostgreSQL, an MLflow server) it lives under ``~/.cache/tailor/locks/``, one per store URI, and
so serialises the processes of one machine only. With ``$TAILOR_REGISTRY_LOCK_URL`` set to a
PostgreSQL database (``tailor stack env`` sets it) the lock is instead a session advisory lock
there, keyed by the store URI: every machine sees it, and PostgreSQL releases it when the
holder's connection dies, as the kernel does for the file.
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
REGISTRY_LOCK_ENV = "TAILOR_REGISTRY_LOCK_URL"
"""A PostgreSQL URL: hold the registry lock there (all machines) instead of in a file."""


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


def _advisory_key(tracking_uri: str) -> int:
    """A signed 64-bit key (PostgreSQL's bigint) for the store's advisory lock."""
    return int.from_bytes(hashlib.sha256(tracking_uri.encode()).digest()[:8], "big",
                          signed=True)


@contextlib.contextmanager
def _advisory_lock(lock_url: str, tracking_uri: str, what: str,
                   wait_seconds: float) -> Iterator[None]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    key = _advisory_key(tracking_uri)
    owner = owner_tags()
    label = f"tailor: {what} (pid {owner['tailor.owner.pid']} on {owner['tailor.owner.host']})"
    engine = create_engine(lock_url, poolclass=NullPool,
                           connect_args={"application_name": label[:63]})
    try:
        with engine.connect() as conn:
            conn.commit()  # autobegin off: the lock belongs to the session, not a transaction
            deadline = time.monotonic() + wait_seconds
            while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                conn.rollback()
                if time.monotonic() >= deadline:
                    holder = conn.execute(text(
                        "SELECT a.application_name, a.backend_start FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                        "AND l.objsubid = 1 AND l.granted "
                        "AND ((l.classid::bigint << 32) | l.objid::bigint) = :k"),
                        {"k": key}).first()
                    name = (f"{holder[0] or 'a tailor process'} (connected since "
                            f"{holder[1]:%Y-%m-%dT%H:%M:%S%z})") if holder else "another process"
                    raise RegistryBusyError(
                        f"the MLflow store {tracking_uri} is busy: {name} holds its advisory "
                        f"lock in {engine.url.render_as_string(hide_password=True)}; wait for "
                        f"it to finish (or set registry.lock_wait_seconds)")
                time.sleep(0.5)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
    finally:
        engine.dispose()


@contextlib.contextmanager
def registry_lock(tracking_uri: str, what: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the store's lock for the block; wait up to ``wait_seconds`` for it, then raise
    :class:`RegistryBusyError` naming the holder."""
    lock_url = os.environ.get(REGISTRY_LOCK_ENV)
    if lock_url:
        with _advisory_lock(lock_url, tracking_uri, what, wait_seconds):
            yield
        return
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
