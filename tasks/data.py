"""Prefect tasks for data: load, validate (quarantine), build point-in-time features.

Large frames flow between these tasks, so caching by input hash is off (hashing 10M rows costs
more than recomputing) and only I/O gets retries.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from tailor.configs.schema import DataSettings, FeatureSettings
from tailor.contracts import CustomerFeatures, DataFrame, Transactions
from tailor.data.dataset import Dataset
from tailor.data.io import read_dataset, write_frame_atomic
from tailor.data.validate import (
    DataContractError,
    ValidationResult,
    validate_dataset,
    write_failed_quarantine,
    write_quarantine,
)
from tailor.models.features import customer_features
from tailor.tasks.retry import TRANSIENT_RETRIES
from tailor.tasks.run_log import run_logger, validation_lines


@task(name="load-data", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def load_raw(data_dir: str) -> Dataset:
    """Read the raw tables of a data set directory (CSV cells stay strings)."""
    return read_dataset(data_dir)


@task(name="validate-data", cache_policy=NO_CACHE)
def validate(raw: Dataset, settings: DataSettings, quarantine_dir: str) -> ValidationResult:
    """Split rows into contract-valid and quarantined; write the quarantine and its summary,
    also when a whole-table problem stops the run (the quarantine is what explains it)."""
    try:
        result = validate_dataset(raw, settings)
    except DataContractError as exc:
        raise write_failed_quarantine(exc, Path(quarantine_dir)) from exc
    write_quarantine(result, Path(quarantine_dir))
    logger = run_logger()
    for line in validation_lines(result.summary, raw.sources, quarantine_dir):
        logger.info(line)
    return result


@task(name="customer-features", cache_policy=NO_CACHE)
@pa.check_input(Transactions.to_schema(), "transactions", inplace=True)
def build_customer_features(
    transactions: DataFrame[Transactions],
    customers: pd.DataFrame | None,
    products: pd.DataFrame | None,
    as_of: pd.Timestamp,
    settings: FeatureSettings,
) -> DataFrame[CustomerFeatures]:
    """Customer features from history strictly before ``as_of`` (the frame is checked against
    its contract once, where :func:`customer_features` builds it)."""
    return customer_features(transactions, as_of, settings, customers=customers,
                             products=products)


@task(name="write-table", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def write_table(frame: pd.DataFrame, path: str, index: bool = False) -> str:
    """Write a table atomically (parquet or CSV by extension)."""
    out = frame.reset_index() if index else frame
    return str(write_frame_atomic(out, path))
