"""What validation hands back and where it goes: the result, the error that stops a run (still
carrying the result), and the quarantine files and summary table written from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tailor.contracts import TABLES
from tailor.data.dataset import Dataset
from tailor.data.io import write_frame_atomic
from tailor.data.validate_coercion import clean_texts


class DataContractError(ValueError):
    """A whole table breaks the contract. The message names file, column, rule and a row.

    ``result`` holds the validation result when the rows were all classified (every error but
    ``missing_column``), so a caller can still write the quarantine for inspection.
    """

    def __init__(self, message: str, result: ValidationResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class ValidationResult:
    """Clean data set, quarantined rows per table, and counts per rule."""

    dataset: Dataset
    quarantine: dict[str, pd.DataFrame]
    summary: pd.DataFrame


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Raw object columns may mix types (ints and text); parquet needs one type per column."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == object and pd.api.types.infer_dtype(
            frame[col], skipna=True
        ) not in ("string", "empty"):
            frame[col] = clean_texts(frame[col])
    return frame


def write_quarantine(result: ValidationResult, out_dir: str | Path) -> Path:
    """Write ``<out_dir>/<table>.parquet`` per validated table and ``summary.csv``, atomically.

    A table validated now gets a file even when nothing was rejected (zero rows), and a table
    not in this data set loses any file from an earlier run, so the folder never shows old rows.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        path = out_dir / f"{name}.parquet"
        if name in result.quarantine:
            write_frame_atomic(_parquet_safe(result.quarantine[name]), path)
        else:
            path.unlink(missing_ok=True)
    write_frame_atomic(result.summary, out_dir / "summary.csv")
    return out_dir


def write_failed_quarantine(error: DataContractError, out_dir: str | Path) -> DataContractError:
    """Write the quarantine of a stopped run and return the error saying where it is.

    The rows were all classified before a whole-table problem stopped the run, and the
    quarantine is what explains it, so it must not be lost with the run. A missing column has
    no classified rows: that error comes back unchanged.
    """
    if error.result is None:
        return error
    target = write_quarantine(error.result, out_dir)
    return DataContractError(
        f"{error}\nquarantine written to {target} (each rejected row with its rule; "
        f"counts in summary.csv)",
        result=error.result,
    )


def format_summary(result: ValidationResult) -> str:
    """The summary as an aligned text table with each rule's share of its table."""
    summary = result.summary
    totals = summary.groupby("table", sort=False)["rows"].transform("sum")
    lines = [("table", "rule", "rows", "share")]
    for (table, rule, rows), total in zip(summary.itertuples(index=False), totals, strict=True):
        share = rows / total if total else 0.0
        lines.append((table, rule, f"{rows:,}", f"{share:.2%}"))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return "\n".join(
        f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d:>{widths[3]}}"
        for a, b, c, d in lines
    )


__all__ = [
    "DataContractError",
    "ValidationResult",
    "format_summary",
    "write_failed_quarantine",
    "write_quarantine",
]
