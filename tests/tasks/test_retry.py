"""Which failures are retried: only those a later attempt could escape."""

from __future__ import annotations

import sqlite3

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE
from prefect.states import Failed
from sqlalchemy.exc import OperationalError

from tailor.data.io import DataSourceError
from tailor.data.validate import DataContractError
from tailor.tasks.retry import is_transient, retry_if_transient


def test_data_and_missing_files_are_never_retried() -> None:
    for exc in (FileNotFoundError("x.parquet"), DataSourceError("no transactions file"),
                DataContractError("column quantity: not a number"), ValueError("bad"),
                PermissionError("read-only"),
                MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST),
                MlflowException("a bug")):
        assert not is_transient(exc), exc


def test_flaky_io_and_tracking_errors_are_retried() -> None:
    for exc in (ConnectionResetError(), TimeoutError(), OSError(5, "I/O error"),
                OperationalError("select", {}, sqlite3.OperationalError("database is locked")),
                MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE)):
        assert is_transient(exc), exc


def test_the_prefect_condition_reads_the_failed_state() -> None:
    assert retry_if_transient(None, None, Failed(data=ConnectionResetError()))
    assert not retry_if_transient(None, None, Failed(data=FileNotFoundError("gone")))
