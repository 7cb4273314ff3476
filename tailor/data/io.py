"""Read and write data sets: a directory of CSV/Parquet files, or tables in a SQL database."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from tailor.contracts import TABLES
from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW, Dataset


class DataSourceError(FileNotFoundError):
    """The data set (or one of its tables) cannot be found or read."""


def _find_table(directory: Path, name: str) -> Path | None:
    found = [directory / f"{name}{ext}" for ext in (".parquet", ".csv")
             if (directory / f"{name}{ext}").exists()]
    if len(found) > 1:
        raise DataSourceError(
            f"{directory}: both {found[0].name} and {found[1].name} exist; keep one"
        )
    return found[0] if found else None


def _tag(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame[SOURCE_FILE] = source
    frame[SOURCE_ROW] = pd.RangeIndex(1, len(frame) + 1)
    return frame


def read_table(path: Path) -> pd.DataFrame:
    """Read one table without interpreting values: CSV cells stay strings, so nothing is lost."""
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # any reader failure is reported with the file
        raise DataSourceError(f"{path}: cannot read table ({exc})") from exc
    return _tag(frame, str(path))


def read_dataset(directory: str | Path) -> Dataset:
    """Read ``transactions`` (required), ``customers`` and ``products`` from a directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataSourceError(f"{directory}: no such data directory")
    tables: dict[str, pd.DataFrame | None] = {}
    sources: dict[str, str] = {}
    for name in TABLES:
        path = _find_table(directory, name)
        if path is None:
            if name == "transactions":
                raise DataSourceError(
                    f"{directory}: no transactions.parquet or transactions.csv"
                )
            tables[name] = None
            continue
        tables[name] = read_table(path)
        sources[name] = str(path)
    return Dataset(sources=sources, **tables)


def _sql_source(engine: sa.Engine, sql_table: str, schema: str | None) -> str:
    qualified = f"{schema}.{sql_table}" if schema else sql_table
    return f"{engine.url.render_as_string(hide_password=True)}#{qualified}"


def read_sql_dataset(url: str, tables: Mapping[str, str], schema: str | None = None) -> Dataset:
    """Read tables from a database; ``tables`` maps contract name -> SQL table name.

    ``schema`` is the database schema holding the tables (PostgreSQL ``search_path`` default if
    None). Values come as the driver types them (text stays text), so validation sees the same
    mess as in a file. A SQL table has no row order: ``_source_row`` is the position in the
    result set, and each source is ``<url without password>#<schema>.<table>``.
    """
    if "transactions" not in tables:
        raise DataSourceError("SQL data set: a 'transactions' table name is required")
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise DataSourceError(f"SQL data set: unknown table role(s) {unknown}; use {TABLES}")
    engine = sa.create_engine(url)
    frames: dict[str, pd.DataFrame | None] = dict.fromkeys(TABLES)
    sources: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            for name, sql_table in tables.items():
                source = _sql_source(engine, sql_table, schema)
                try:
                    frame = pd.read_sql_table(sql_table, conn, schema=schema)
                except ValueError as exc:
                    raise DataSourceError(f"{source}: {exc}") from exc
                frames[name] = _tag(frame, source)
                sources[name] = source
    finally:
        engine.dispose()
    return Dataset(sources=sources, **frames)


def write_sql_table(frame: pd.DataFrame, url: str, table: str, schema: str | None = None,
                    if_exists: str = "fail") -> int:
    """Write one table (without ``_source_*`` columns) in a single transaction; returns rows.

    ``if_exists`` is pandas' ``fail`` | ``replace`` | ``append``.
    """
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            _strip_sources(frame).to_sql(table, conn, schema=schema, if_exists=if_exists,
                                         index=False, chunksize=10_000)
    finally:
        engine.dispose()
    return len(frame)


def _strip_sources(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in (SOURCE_FILE, SOURCE_ROW) if c in frame.columns])


def write_frame_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write parquet or CSV (by extension) to a temp file and rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_dataset(dataset: Dataset, directory: str | Path, fmt: str = "parquet") -> Path:
    """Write the contract tables of ``dataset`` to ``directory`` (each file atomically)."""
    directory = Path(directory)
    for name in TABLES:
        frame = dataset.table(name)
        if frame is not None:
            write_frame_atomic(_strip_sources(frame), directory / f"{name}.{fmt}")
    return directory
