"""Retries only where waiting can help: a flaky disk, network or tracking server.

A missing file or a row that breaks the data contract fails the same way every time; retrying
it only repeats the message (and the traceback) three times. Tasks that do I/O use
:data:`TRANSIENT_RETRIES`, whose condition lets a failure retry only when it is transient.
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError

#: MLflow error codes a later attempt may not see (not INTERNAL_ERROR: MLflow's default code,
#: raised for permanent errors too)
_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED"}
#: OSErrors that say something about the request, not the moment
_PERMANENT_OS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def is_transient(exc: BaseException) -> bool:
    """Whether a retry of what raised ``exc`` might succeed."""
    if isinstance(exc, MlflowException):
        return exc.error_code in _TRANSIENT_CODES
    if isinstance(exc, OperationalError):  # a locked sqlite file, a dropped connection
        return True
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, _PERMANENT_OS)


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task run only for a transient error."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            exc = state.result(raise_on_failure=False)
        except Exception as unreadable:  # noqa: BLE001 - a result we cannot read: do not retry
            exc = unreadable
    return isinstance(exc, BaseException) and is_transient(exc)


TRANSIENT_RETRIES: dict[str, Any] = {"retries": 2, "retry_delay_seconds": [1, 5],
                                     "retry_condition_fn": retry_if_transient}
