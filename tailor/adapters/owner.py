"""Which process wrote an MLflow record, and whether it still lives.

A SIGKILLed or OOM-killed process cannot mark its runs finished, so every run tailor creates
carries its owner (host, pid and the pid's start time, which tells a live owner from a later
process that reused the pid). Recovery (:mod:`tailor.adapters.reconcile`) repairs only records whose
owner is provably gone: on this host, a pid that no longer exists or started later.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

HOST = "tailor.owner.host"
PID = "tailor.owner.pid"
STARTED = "tailor.owner.started"


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on (Linux), None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ")"
    fields = text.rsplit(")", 1)[-1].split()
    return fields if len(fields) > 19 else None


def _start_ticks(pid: int) -> str | None:
    """The process start time in clock ticks since boot, None when unknown."""
    fields = _stat(pid)
    return None if fields is None else fields[19]


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of a record."""
    pid = os.getpid()
    return {HOST: socket.gethostname(), PID: str(pid), STARTED: _start_ticks(pid) or ""}


def owner_alive(tags: Mapping[str, str]) -> bool | None:
    """True: the owner runs; False: it is gone; None: cannot tell (another host, no tags)."""
    host, pid = tags.get(HOST), tags.get(PID)
    if not host or not pid or host != socket.gethostname():
        return None
    try:
        number = int(pid)
    except ValueError:
        return None
    try:
        os.kill(number, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    fields = _stat(number)
    if fields is not None and fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    started = tags.get(STARTED)
    now = None if fields is None else fields[19]
    return not (started and now and started != now)  # else the pid was reused


def describe_owner(tags: Mapping[str, str]) -> str:
    return f"pid {tags.get(PID, '?')} on {tags.get(HOST, '?')}"
