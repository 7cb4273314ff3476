"""Named points where a test can kill the running process, as an OOM kill or a lost node would.

Crash safety is only believable when a real ``tailor train`` is killed at the worst moments and
the next run is seen to repair everything. Setting ``TAILOR_FAULT_POINT`` to one of
:data:`POINTS` makes the process SIGKILL itself there (no cleanup, no ``finally``); unset, a
fault point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "TAILOR_FAULT_POINT"
#: after a version is registered, before its run ends; after the first alias move of a
#: promotion; after every alias move, before the versions are tagged and the intent closed
POINTS = ("after-register", "between-moves", "before-tags")


def fault_point(name: str) -> None:
    """SIGKILL this process if ``$TAILOR_FAULT_POINT`` is ``name``."""
    if name not in POINTS:
        raise ValueError(f"unknown fault point {name!r}: expected one of {', '.join(POINTS)}")
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
