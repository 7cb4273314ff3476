"""Validate a raw data set against the contract: clean tables out, bad rows into quarantine.

A retailer's export is messy, and one bad line must not stop a run nor vanish silently. So every
row either comes out clean, in contract types (:mod:`tailor.contracts`), or lands in quarantine
with its original raw values, where it came from (``_source_file``, ``_source_row``) and why:
``_rule`` (the first failing rule, in the order below) and ``_rules`` (all failing rules,
``;``-joined). ``rows in == accepted + quarantined`` for every table. Only problems with a whole
table stop the run (:class:`DataContractError`): a required column is missing (rule
``missing_column``); a table has no data row, only a header (``empty_table``: a failed export
more often than a quiet day); no row of a table is accepted (``nothing_accepted``: nothing to
learn from, usually a wrong column mapping or id format); or more than
``data.max_rejected_share`` of a table is quarantined. ``no_transactions`` rows do not count
toward that share: a catalogue product nobody bought, or a registered customer who never ordered,
is a sound row that models simply cannot use, and a real catalogue may hold many of them. Except
for a missing column, the error carries the full result, so the caller writes the quarantine.

Row rules, by table, in priority order:

transactions
    missing_order_id, missing_customer, missing_product
        the id is empty, blank or a null token (``nan``, ``None``, ``NULL``, ``<NA>``, ``NaT``).
    unparsable_quantity
        not a number, or not a whole number (``2.5``); ``2.0`` is read as 2.
    zero_quantity
        quantity 0 (negative quantities are returns and are kept).
    absurd_quantity
        ``|quantity| > data.max_abs_quantity``.
    unparsable_price, non_positive_price, absurd_price
        unit_price not a number; ``<= 0``; ``> data.max_unit_price``.
    unparsable_timestamp
        not a date/time. ISO 8601 is read first (fast), then one inferred format, then any
        format per value (``data.timestamp_dayfirst`` decides 01/02 vs 02/01). Values with a UTC
        offset are converted to UTC; naive ones are kept as written. Numbers (epoch seconds?
        milliseconds?) are ambiguous and rejected: importers convert them.
    future_timestamp
        later than the time of the run (``now``, UTC) plus ``data.future_tolerance_hours``: a
        placeholder date (2099) or a wrong century would otherwise become the latest date, and
        with it the default scoring date. The tolerance covers naive local times ahead of UTC.
    unknown_product
        product_id not in the clean products table (when products are given and
        ``data.require_known_products``).
    unknown_customer
        customer_id not in the clean customers table (when customers are given and
        ``data.require_known_customers``; by default such a line is kept: a purchase is
        evidence, its customer just has no attributes).
    duplicate_line
        the same order, customer, product, quantity, price and time as an earlier line (after
        coercion, so `` A1`` equals ``A1``): the first is kept, the repeats are quarantined.

customers
    missing_customer_id, duplicate_customer_id (the first row of an id is kept);
    no_transactions (the id is in no accepted transaction: no history, so no features).

products
    missing_product_id; unparsable_price, negative_price (only if a ``price`` column exists;
    a blank price is allowed); duplicate_product_id (the first row of an id is kept);
    no_transactions (the id is in no accepted transaction). Transactions are checked against
    the side rows that pass the other rules, and only then are the side rows checked against
    the accepted transactions, so the two checks never go round in a circle.

Ids are strings with surrounding whitespace removed. A retailer's id column often passes through
a float (a parquet/SQL column with gaps, or a spreadsheet): ``17850.0`` becomes ``"17850"``, both
from numeric columns and from text that is digits followed by ``.0``.

Clean types: ids (and products' category/description) are arrow-backed strings (:data:`STRING`,
pandas' ``str`` of pandas 3; pandera checks them several times faster than object columns),
quantity ``int64``, prices ``float64``, timestamp ``datetime64[ns]``. Other columns are kept
as read (CSV: text). Everything is vectorised: 1M lines take a few seconds.

The row rules and the split are in :mod:`tailor.data.validate_rules`, the coercion in
:mod:`tailor.data.validate_coercion`, the result, its error and the quarantine files in
:mod:`tailor.data.validate_quarantine`; all are importable from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd
import pandera.errors as pa_errors
import pandera.pandas as pa
from pandera.engines.pandas_engine import NpString

from tailor.configs.schema import DataSettings
from tailor.contracts import REQUIRED_COLUMNS, TABLES, Customers, Products, Transactions
from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW, Dataset
from tailor.data.validate_coercion import (
    STRING,
    clean_ids,
    clean_numbers,
    clean_texts,
    clean_timestamps,
)
from tailor.data.validate_quarantine import (
    DataContractError,
    ValidationResult,
    format_summary,
    write_failed_quarantine,
    write_quarantine,
)
from tailor.data.validate_rules import (
    CUSTOMER_RULES,
    PRODUCT_RULES,
    ROW_RULES,
    RULE,
    RULE_COLUMNS,
    SHARE_EXEMPT,
    TRANSACTION_RULES,
    _check_transactions,
    _Checked,
    _mark_customers,
    _mark_products,
    _Marked,
)

CONTRACTS = {"transactions": Transactions, "customers": Customers, "products": Products}


# --- raw tables -----------------------------------------------------------------------------------


def _source_of(raw: Dataset, name: str, frame: pd.DataFrame) -> str:
    if name in raw.sources:
        return raw.sources[name]
    if SOURCE_FILE in frame.columns and len(frame):
        return str(frame[SOURCE_FILE].iloc[0])
    return f"<{name} table>"


def _with_sources(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Raw rows with positional index and ``_source_*`` columns (added if the producer had none)."""
    frame = frame.reset_index(drop=True)
    if SOURCE_FILE not in frame.columns or SOURCE_ROW not in frame.columns:
        frame = frame.copy()
        if SOURCE_FILE not in frame.columns:
            frame[SOURCE_FILE] = source
        if SOURCE_ROW not in frame.columns:
            frame[SOURCE_ROW] = np.arange(1, len(frame) + 1)
    return frame


def _check_columns(name: str, frame: pd.DataFrame, source: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in frame.columns]
    if not missing:
        return
    by_lower = {str(c).strip().lower(): str(c) for c in frame.columns}
    hints = [f" (found {by_lower[c]!r}: rename it)" if c in by_lower else "" for c in missing]
    listed = ", ".join(f"'{c}'{h}" for c, h in zip(missing, hints, strict=True))
    raise DataContractError(
        f"{source}: {name} table has no column {listed} (rule missing_column); "
        f"required: {', '.join(REQUIRED_COLUMNS[name])}"
    )

# --- whole data set ----------------------------------------------------------------------------


@cache
def _schema_without_str_checks(name: str, columns: frozenset[str]) -> pa.DataFrameSchema:
    schema = CONTRACTS[name].to_schema()
    for col in sorted(columns):
        schema = schema.update_column(col, dtype=None)
    return schema


def _contract_schema(name: str, frame: pd.DataFrame) -> pa.DataFrameSchema:
    """The contract's schema, without the ``str`` dtype check on columns that are
    :data:`STRING`: every value of such a column is a str or NA, which pandera would confirm
    with one Python call per value; its other checks (nullable, length...) all stay."""
    schema = CONTRACTS[name].to_schema()
    arrow_text = frozenset(
        col for col, spec in schema.columns.items()
        if isinstance(spec.dtype, NpString) and col in frame.columns
        and frame[col].dtype == STRING
    )
    return _schema_without_str_checks(name, arrow_text)


def _contract_check(name: str, checked: _Checked, source: str) -> pd.DataFrame:
    """The pandera model is the last word: a failure here is a bug in this module, not bad data."""
    try:
        return _contract_schema(name, checked.clean).validate(checked.clean, lazy=True)
    except pa_errors.SchemaErrors as exc:
        cases = exc.failure_cases
        first = cases.iloc[0]
        index = first["index"]
        row = (f"row {checked.clean_rows[int(index)]}" if isinstance(index, int | np.integer)
               else "the whole column")
        raise DataContractError(
            f"{source}: clean {name} table breaks its contract (a validator bug, please report): "
            f"column {first['column']!r}, rule {first['check']!s}, e.g. {row} "
            f"({len(cases)} failure cases)"
        ) from exc


def _summary(checked: dict[str, _Checked]) -> pd.DataFrame:
    rows: list[tuple[str, str, int]] = []
    for name, result in checked.items():
        rows.append((name, "accepted", len(result.clean)))
        rows.extend((name, rule, count) for rule, count in
                    sorted(result.counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return pd.DataFrame(rows, columns=["table", "rule", "rows"]).astype({"rows": "int64"})


def _column_note(name: str, rule: str) -> str:
    column = RULE_COLUMNS[name].get(rule)
    return f" [column {column}]" if column else ""


def _top_rules(name: str, result: _Checked, exempt: frozenset[str] = frozenset()) -> str:
    """The five biggest first rules with their column and the first row each hit."""
    first_rows = result.quarantine.groupby(RULE, sort=False)[SOURCE_ROW].first()
    counts = {rule: n for rule, n in result.counts.items() if rule not in exempt}
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return ", ".join(
        f"{rule}{_column_note(name, rule)}: {count} (e.g. row {first_rows[rule]})"
        for rule, count in top
    )


def _share_problem(name: str, result: _Checked, source: str, limit: float) -> str | None:
    exempt = sum(result.counts.get(rule, 0) for rule in SHARE_EXEMPT)
    rejected = len(result.quarantine) - exempt
    total = len(result.quarantine) + len(result.clean)
    if total == 0 or rejected / total <= limit:
        return None
    not_counted = (f" ({exempt} {', '.join(sorted(SHARE_EXEMPT))} rows not counted)"
                   if exempt else "")
    return (f"{source}: {rejected} of {total} {name} rows ({rejected / total:.1%}) would be "
            f"quarantined{not_counted}, above the limit data.max_rejected_share={limit:.1%}; "
            f"top rules: {_top_rules(name, result, SHARE_EXEMPT)}")


def _empty_problem(name: str, result: _Checked, source: str, judge_accepted: bool) -> str | None:
    """A header-only table, or (if ``judge_accepted``) one with no accepted row: nothing to use."""
    total = len(result.quarantine) + len(result.clean)
    if total == 0:
        fix = ("export it again with its rows" if name == "transactions" else
               f"export it again with its rows, or remove the file if there are no {name}")
        return (f"{source}: {name} table has no data rows, only a header (rule empty_table); "
                f"{fix}")
    if judge_accepted and len(result.clean) == 0:
        hint = ("check that its ids are written as in transactions"
                if name != "transactions" else "check the export and the column mapping")
        return (f"{source}: none of the {total} {name} rows is accepted (rule nothing_accepted); "
                f"{hint}; quarantined by: {_top_rules(name, result)}")
    return None


def _problems(checked: dict[str, _Checked], sources: dict[str, str],
              settings: DataSettings) -> list[str]:
    """Whole-table problems. When no transaction is accepted, every side row is trivially
    ``no_transactions``, so side tables are then judged by their own rules only."""
    tx_accepted = len(checked["transactions"].clean) > 0
    problems: list[str] = []
    for name, result in checked.items():
        judge = name == "transactions" or tx_accepted
        problem = (_empty_problem(name, result, sources[name], judge)
                   or _share_problem(name, result, sources[name], settings.max_rejected_share))
        if problem:
            problems.append(problem)
    return problems


def _run_time(now: dt.datetime | None) -> pd.Timestamp:
    """The time of the run as naive UTC, like clean timestamps (a naive ``now`` is UTC)."""
    stamp = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _read_frames(raw: Dataset) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Each given table with its source and ``_source_*`` columns; missing columns raise."""
    frames: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    for name in TABLES:
        frame = raw.table(name)
        if frame is None:
            continue
        sources[name] = _source_of(raw, name, frame)
        _check_columns(name, frame, sources[name])
        frames[name] = _with_sources(frame, sources[name])
    return frames, sources


def _check_all(frames: dict[str, pd.DataFrame], settings: DataSettings,
               latest: pd.Timestamp) -> dict[str, _Checked]:
    """Side tables' own rules, then transactions against them, then them against transactions."""
    markers: dict[str, Callable[[pd.DataFrame, DataSettings], _Marked]] = {
        "customers": _mark_customers, "products": _mark_products}
    marked = {name: mark(frames[name], settings) for name, mark in markers.items()
              if name in frames}
    known = {name: (marked[name].passing_ids() if name in marked else None)
             for name in ("customers", "products")}
    tx = _check_transactions(frames["transactions"], settings, known, latest)
    checked = {"transactions": tx}
    id_columns = {"customers": "customer_id", "products": "product_id"}
    for name, table in marked.items():
        checked[name] = table.split(tx.clean[id_columns[name]], ROW_RULES[name])
    return {name: checked[name] for name in TABLES if name in checked}


def validate_dataset(raw: Dataset, settings: DataSettings,
                     now: dt.datetime | None = None) -> ValidationResult:
    """Split every raw table into clean contract-typed rows and quarantined raw rows.

    ``now`` is the time of the run (default: the current UTC time; naive values are UTC), the
    reference of ``future_timestamp``; tests pin it. Raises :class:`DataContractError` for a
    missing required column (before any work), an empty table, a table with no accepted row,
    or a quarantined share above ``settings.max_rejected_share`` (``no_transactions`` rows not
    counted). All but the first carry the full result on the exception's ``result``.
    """
    frames, sources = _read_frames(raw)
    latest = _run_time(now) + pd.Timedelta(hours=settings.future_tolerance_hours)
    checked = _check_all(frames, settings, latest)
    clean = {name: _contract_check(name, result, sources[name])
             for name, result in checked.items()}
    result = ValidationResult(
        dataset=Dataset(sources=dict(raw.sources), **clean),
        quarantine={name: r.quarantine for name, r in checked.items()},
        summary=_summary(checked),
    )
    problems = _problems(checked, sources, settings)
    if problems:
        raise DataContractError("\n".join(problems), result=result)
    return result


__all__ = [
    "CUSTOMER_RULES",
    "PRODUCT_RULES",
    "ROW_RULES",
    "RULE_COLUMNS",
    "SHARE_EXEMPT",
    "STRING",
    "TRANSACTION_RULES",
    "DataContractError",
    "ValidationResult",
    "clean_ids",
    "clean_numbers",
    "clean_texts",
    "clean_timestamps",
    "format_summary",
    "validate_dataset",
    "write_failed_quarantine",
    "write_quarantine",
]
