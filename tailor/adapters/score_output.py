"""Where the score flow's output goes: the campaign table and the serving snapshot, never
half-written.

Plain library code (no Prefect), so `tailor score` can check ``--out`` before any flow starts
and benchmarks and tests can write outputs directly; the ``write-scores`` and
``write-serving-snapshot`` tasks in :mod:`tailor.tasks.scoring` wrap it.

Where scores go (``--out``):

- ``scores.parquet`` (default format): ``recommendations`` is a ``list<string>`` column.
- ``scores.csv``: ``recommendations`` is a JSON array per cell (``["p1", "p2"]``).
- ``<sqlalchemy url>#[schema.]table``, e.g.
  ``postgresql+psycopg://user@host/db#marketing.customer_scores``: the rows go into a staging
  table and, in the same transaction, the old table is dropped and the staging table renamed,
  so readers see the old scores or the new ones, never a mix. On PostgreSQL
  ``recommendations`` is ``text[]``; elsewhere a JSON text. A view depending on the table
  would block the drop: point views at a table of their own.

Files are written to a temporary file beside the target and renamed into place.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from tailor.adapters import snapshot
from tailor.configs.schema import ScoringSettings
from tailor.data.io import write_frame_atomic
from tailor.models.features import PROVENANCE_COLUMNS

LIST_COLUMN = "recommendations"
DEFAULT_KEEP: int = ScoringSettings.model_fields["keep_snapshots"].default


class ScoreTargetError(ValueError):
    """An ``--out`` the scorer cannot write to; the message says what form is expected."""


@dataclass(frozen=True)
class ScoreTarget:
    """A file path, or a SQL table (``url`` + ``table`` + optional ``schema``)."""

    path: Path | None = None
    url: str | None = None
    table: str | None = None
    schema: str | None = None

    @property
    def is_sql(self) -> bool:
        return self.url is not None

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        shown = sa.make_url(self.url).render_as_string(hide_password=True)  # type: ignore[arg-type]
        return f"{shown}#{self.schema + '.' if self.schema else ''}{self.table}"


def parse_target(out: str) -> ScoreTarget:
    """``scores.parquet`` | ``scores.csv`` | ``<url>#[schema.]table`` -> :class:`ScoreTarget`."""
    if "://" not in out:
        path = Path(out)
        if path.suffix not in (".parquet", ".csv"):
            raise ScoreTargetError(f"--out {out}: expected a .parquet or .csv file, or "
                                   "<sqlalchemy url>#[schema.]table")
        return ScoreTarget(path=path)
    url, sep, where = out.rpartition("#")
    if not sep or not where or "://" not in url:
        raise ScoreTargetError(f"--out {out}: a database URL needs the table after '#', e.g. "
                               "postgresql+psycopg://user@host/db#schema.customer_scores")
    schema, _, table = where.rpartition(".")
    try:
        sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ScoreTargetError(f"--out: not a database URL: {exc}") from None
    return ScoreTarget(url=url, table=table, schema=schema or None)


def _parquet_table(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if LIST_COLUMN in frame.columns:  # typed even when every cell is null (no recommender)
        column = pa.array(frame[LIST_COLUMN].tolist(), type=pa.list_(pa.string()))
        table = table.set_column(table.schema.get_field_index(LIST_COLUMN), LIST_COLUMN, column)
    return table


def _json_lists(values: pd.Series) -> pd.Series:
    return values.map(lambda v: None if v is None else json.dumps(list(v)))


def write_file_atomic(frame: pd.DataFrame, path: Path) -> Path:
    """Parquet (typed list column) or CSV (JSON lists) via a temp file renamed into place."""
    if path.suffix == ".csv":
        out = frame.assign(**{LIST_COLUMN: _json_lists(frame[LIST_COLUMN])}) \
            if LIST_COLUMN in frame.columns else frame
        return write_frame_atomic(out, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(_parquet_table(frame), tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_sql_atomic(frame: pd.DataFrame, url: str, table: str,
                     schema: str | None = None, chunksize: int = 10_000) -> int:
    """Replace ``[schema.]table`` with ``frame`` in one transaction (staging table + rename)."""
    engine = sa.create_engine(url)
    staging = f"{table[:40]}__staging_{uuid.uuid4().hex[:8]}"
    try:
        postgres = engine.dialect.name == "postgresql"
        dtype: dict[str, Any] = {}
        out = frame
        if LIST_COLUMN in frame.columns:
            if postgres:
                from sqlalchemy.dialects.postgresql import ARRAY

                dtype[LIST_COLUMN] = ARRAY(sa.Text())
            else:
                out = frame.assign(**{LIST_COLUMN: _json_lists(frame[LIST_COLUMN])})
        quote = engine.dialect.identifier_preparer

        def name(t: str) -> str:
            return f"{quote.quote_schema(schema)}.{quote.quote(t)}" if schema else quote.quote(t)

        with engine.begin() as conn:
            out.to_sql(staging, conn, schema=schema, if_exists="fail", index=False,
                       chunksize=chunksize, dtype=dtype or None)
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name(table)}"))
            conn.execute(sa.text(f"ALTER TABLE {name(staging)} RENAME TO {quote.quote(table)}"))
    finally:
        engine.dispose()
    return len(frame)


def write_scores(frame: pd.DataFrame, out: str | ScoreTarget) -> str:
    """Write scores to a file or table (see the module docstring); returns where."""
    target = parse_target(out) if isinstance(out, str) else out
    if target.is_sql:
        write_sql_atomic(frame, target.url, target.table, target.schema)  # type: ignore[arg-type]
    else:
        write_file_atomic(frame, target.path)  # type: ignore[arg-type]
    return str(target)


def write_snapshot(snapshot_dir: str | Path, features: pd.DataFrame,
                   customers: pd.DataFrame | None, manifest: dict[str, Any],
                   keep: int = DEFAULT_KEEP) -> Path:
    """Features, customer attributes and manifest for the serving API as one new snapshot
    directory, published in one atomic switch (see :mod:`tailor.adapters.snapshot`): a kill at any
    point leaves the previous snapshot served. Returns the published directory."""
    attrs = pd.DataFrame({"customer_id": pd.Series(dtype=object)}) if customers is None else \
        customers.drop(columns=[c for c in PROVENANCE_COLUMNS if c in customers.columns])
    body = {**manifest, "written_at": datetime.now(UTC).isoformat(timespec="seconds")}
    tables = {snapshot.FEATURES_FILE: features.reset_index(), snapshot.CUSTOMERS_FILE: attrs}
    return snapshot.write(snapshot_dir, tables, body, keep)
