"""The serving snapshot on disk: immutable snapshot directories, published by a pointer file.

Layout of ``snapshot_dir``::

    CURRENT                                   one line: the name of the published snapshot
    snapshots/20250301T050012123456Z-3f9c2a1b/
        customer_features.parquet
        customers.parquet
        manifest.json
    snapshots/.20250302T050011000042Z-77aa01cd.partial/    a write in progress, or killed
    .lock                                     held (flock) by the one writer at a time

A write fills a new ``.partial`` directory, fsyncs every file and the directory, renames it to
its final name, and publishes it by replacing ``CURRENT`` (temp file, fsync, ``os.replace``,
fsync of ``snapshot_dir``). A reader resolves ``CURRENT`` once and reads only the directory it
names, so it sees the old snapshot or the new one, never files of both; a directory that
``CURRENT`` does not name is never read. A write killed at any point leaves ``CURRENT`` naming
the previous complete snapshot.

Why a pointer file and not a symlink swap: replacing a regular file with ``os.replace`` is
atomic on any POSIX filesystem, including mounts without symlinks (SMB, FUSE object-store
mounts); a pointer survives copies of the tree (rsync, gsutil, ``docker cp``) that drop or
follow links; and a reader has to resolve it once, explicitly, rather than opening files
through a path that may switch between two opens.

After each publish the newest ``keep`` complete snapshots and the published one are kept;
older ones and partial directories are removed. Writers hold an exclusive ``flock`` on
``.lock`` while they write, so pruning never removes a write in progress (a killed writer's
lock dies with it). A snapshot of the old layout (the three files directly in
``snapshot_dir``, no ``CURRENT``) is still read; the first new publish removes those files.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

CURRENT_FILE = "CURRENT"
VERSIONS_DIR = "snapshots"
LOCK_FILE = ".lock"
FEATURES_FILE = "customer_features.parquet"
CUSTOMERS_FILE = "customers.parquet"
MANIFEST_FILE = "manifest.json"
FILES = (FEATURES_FILE, CUSTOMERS_FILE, MANIFEST_FILE)
PARTIAL_SUFFIX = ".partial"
_NAME = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{8}")
_POINTER_TEMP = ".CURRENT."


def new_name(now: datetime | None = None) -> str:
    """``<UTC time to the microsecond>Z-<8 hex>``: sorts by write time, never collides."""
    return f"{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(4)}"


def _fsync_dir(path: Path) -> None:
    """Make renames and new entries in ``path`` durable (they live in the directory)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    with path.open("wb") as handle:
        frame.to_parquet(handle, index=False)
        handle.flush()
        os.fsync(handle.fileno())


def _write_json(body: Mapping[str, Any], path: Path) -> None:
    with path.open("w") as handle:
        json.dump(dict(body), handle, indent=2, default=str)
        handle.flush()
        os.fsync(handle.fileno())


def stage(snapshot_dir: str | Path, tables: Mapping[str, pd.DataFrame],
          manifest: Mapping[str, Any]) -> Path:
    """Write a complete snapshot directory (tables, then ``manifest.json``) without publishing
    it; returns it. Until the final rename it is a ``.partial`` directory."""
    versions = Path(snapshot_dir) / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    name = new_name()
    partial = versions / f".{name}{PARTIAL_SUFFIX}"
    partial.mkdir()
    try:
        for file, frame in tables.items():
            _write_parquet(frame, partial / file)
        _write_json(manifest, partial / MANIFEST_FILE)
        _fsync_dir(partial)
        final = versions / name
        os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _fsync_dir(versions)
    return final


def publish(snapshot_dir: str | Path, name: str) -> None:
    """Point ``CURRENT`` at ``snapshots/<name>`` in one atomic rename."""
    directory = Path(snapshot_dir)
    if not (snapshot_path(directory, name) / MANIFEST_FILE).is_file():
        raise FileNotFoundError(f"{directory / VERSIONS_DIR / name} is not a complete snapshot")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=_POINTER_TEMP, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{name}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, directory / CURRENT_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def read_pointer(snapshot_dir: str | Path) -> str | None:
    """What ``CURRENT`` says (stripped, at most 200 characters read); None without one."""
    try:
        with (Path(snapshot_dir) / CURRENT_FILE).open() as handle:
            return handle.read(200).strip()
    except FileNotFoundError:
        return None


def snapshot_path(snapshot_dir: str | Path, name: str) -> Path:
    """``snapshots/<name>``; a name that is not one this module writes is refused, so a
    corrupted pointer can never send a reader outside ``snapshots/``."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"{Path(snapshot_dir) / CURRENT_FILE} holds {name[:80]!r}, not a "
                         "snapshot name: re-run `tailor score` to publish a new snapshot")
    return Path(snapshot_dir) / VERSIONS_DIR / name


def published(snapshot_dir: str | Path) -> Path | None:
    """The directory to read: the one ``CURRENT`` names, else ``snapshot_dir`` itself when it
    holds an old-layout snapshot, else None (nothing published). Existence is not checked."""
    directory = Path(snapshot_dir)
    name = read_pointer(directory)
    if name is not None:
        return snapshot_path(directory, name)
    return directory if (directory / FEATURES_FILE).is_file() else None


def require_published(snapshot_dir: str | Path) -> Path:
    """:func:`published`, or an error saying what is missing and to re-run ``tailor score``."""
    directory = Path(snapshot_dir)
    target = published(directory)
    if target is None:
        raise FileNotFoundError(f"no snapshot in {directory}: neither {CURRENT_FILE} nor "
                                f"{FEATURES_FILE} (run `tailor score`, or point "
                                "serving.snapshot_dir at a snapshot)")
    if not (target / FEATURES_FILE).is_file():
        raise FileNotFoundError(f"{directory / CURRENT_FILE} names {target.name}, which has no "
                                f"{FEATURES_FILE}: re-run `tailor score`")
    return target


def prune(snapshot_dir: str | Path, keep: int) -> list[str]:
    """Remove complete snapshots beyond the newest ``keep`` (never the published one), every
    partial directory, stray pointer temp files, and old-layout files once a snapshot is
    published. Call it holding the writer lock. Returns the names removed."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    directory = Path(snapshot_dir)
    versions = directory / VERSIONS_DIR
    entries = list(versions.iterdir()) if versions.is_dir() else []
    complete = sorted(p.name for p in entries if _NAME.fullmatch(p.name) and p.is_dir())
    current = read_pointer(directory)
    kept = {*complete[-keep:], current}
    removed = []
    for entry in entries:
        partial = entry.name.startswith(".") and entry.name.endswith(PARTIAL_SUFFIX)
        if entry.name not in kept and (partial or entry.name in complete):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    for stray in directory.glob(f"{_POINTER_TEMP}*.tmp"):
        stray.unlink(missing_ok=True)
    if current in complete:
        for file in FILES:
            (directory / file).unlink(missing_ok=True)
    return removed


@contextmanager
def writer_lock(snapshot_dir: str | Path) -> Iterator[None]:
    """One writer at a time per ``snapshot_dir`` (blocks); released when its process dies."""
    with (Path(snapshot_dir) / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write(snapshot_dir: str | Path, tables: Mapping[str, pd.DataFrame],
          manifest: Mapping[str, Any], keep: int) -> Path:
    """Stage, publish and prune under the writer lock; returns the published directory."""
    directory = Path(snapshot_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with writer_lock(directory):
        prune(directory, keep)  # frees what killed writes left before writing more
        path = stage(directory, tables, manifest)
        publish(directory, path.name)
        prune(directory, keep)
    return path


__all__ = ["CURRENT_FILE", "CUSTOMERS_FILE", "FEATURES_FILE", "FILES", "MANIFEST_FILE",
           "VERSIONS_DIR", "new_name", "prune", "publish", "published", "read_pointer",
           "require_published", "snapshot_path", "stage", "write", "writer_lock"]
