"""Helpers shared by the importers: the error they raise and traceable reading of text exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW


class ImporterError(ValueError):
    """The export does not have the layout the importer translates (file, column or line named)."""


def require_columns(frame: pd.DataFrame, columns: Sequence[str], source: Path) -> None:
    """Fail with the missing column names rather than a KeyError deep inside the mapping."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ImporterError(
            f"{source}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}"
        )


def on_unique(values: pd.Series, func: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Apply ``func`` once per distinct value and spread the results back (missing stays
    missing): exports repeat a few thousand ids, names and dates over many lines."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) == 0:  # nothing but missing values
        return pd.Series(None, index=values.index, dtype=object)
    mapped = func(pd.Series(uniques, dtype=object)).reset_index(drop=True)
    taken = mapped.take(np.where(codes >= 0, codes, 0)).to_numpy()
    out = pd.Series(taken, index=values.index, dtype=mapped.dtype)
    return out.mask(codes < 0)


def read_delimited(path: Path, sep: str, names: Sequence[str],
                   encoding: str = "latin-1") -> tuple[pd.DataFrame, int]:
    """Read a header-less delimited text file as strings, keeping each row's line number.

    Blank lines are skipped (and counted, second return value) but do not shift the line
    numbers, so ``_source_row`` is the physical line a user can open. A line with the wrong
    number of fields is an :class:`ImporterError` naming file and line.
    """
    if not path.is_file():
        raise ImporterError(f"{path}: file not found")
    text = path.read_text(encoding=encoding)
    lines = pd.Series(text.splitlines(), dtype=object)
    line_no = np.arange(1, len(lines) + 1)
    blank = (lines.str.strip() == "").to_numpy()
    lines, line_no = lines[~blank], line_no[~blank]
    counts = np.strings.count(lines.to_numpy(dtype=np.str_), sep) + 1
    bad = counts != len(names)
    if bad.any():
        first = int(bad.argmax())
        raise ImporterError(
            f"{path}: line {line_no[first]} has {counts[first]} field(s) separated by "
            f"{sep!r}, expected {len(names)} ({', '.join(names)})"
        )
    frame = pd.read_csv(
        io.StringIO("\n".join(lines)), sep=sep, header=None, names=list(names), dtype=str,
        keep_default_na=False, quoting=csv.QUOTE_NONE, skip_blank_lines=False, engine="c",
    ) if len(lines) else pd.DataFrame({name: pd.Series(dtype=object) for name in names})
    frame = frame.apply(lambda col: on_unique(col, lambda u: u.str.strip()))
    frame[SOURCE_FILE] = str(path)
    frame[SOURCE_ROW] = line_no
    return frame, int(blank.sum())
