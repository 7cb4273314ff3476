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
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors as pa_errors
import pyarrow as pa
import pyarrow.compute as pc

from tailor.configs.schema import DataSettings
from tailor.contracts import REQUIRED_COLUMNS, TABLES, Customers, Products, Transactions
from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW, Dataset
from tailor.data.io import write_frame_atomic

STRING = pd.StringDtype("pyarrow")
"""Dtype of clean id and text columns: arrow strings validate and group far faster than objects."""
RULE = "_rule"
RULES = "_rules"
SOURCE_COLUMNS = (SOURCE_FILE, SOURCE_ROW)

TRANSACTION_RULES = (
    "missing_order_id",
    "missing_customer",
    "missing_product",
    "unparsable_quantity",
    "zero_quantity",
    "absurd_quantity",
    "unparsable_price",
    "non_positive_price",
    "absurd_price",
    "unparsable_timestamp",
    "future_timestamp",
    "unknown_product",
    "unknown_customer",
    "duplicate_line",
)
CUSTOMER_RULES = ("missing_customer_id", "duplicate_customer_id", "no_transactions")
PRODUCT_RULES = ("missing_product_id", "unparsable_price", "negative_price", "duplicate_product_id",
                 "no_transactions")
SHARE_EXEMPT = frozenset({"no_transactions"})
"""Rules whose rows do not count toward ``data.max_rejected_share`` (sound rows, just unused)."""
ROW_RULES: dict[str, tuple[str, ...]] = {
    "transactions": TRANSACTION_RULES,
    "customers": CUSTOMER_RULES,
    "products": PRODUCT_RULES,
}
RULE_COLUMNS: dict[str, dict[str, str]] = {  # table -> rule -> the column it looks at
    "transactions": {
        "missing_order_id": "order_id", "missing_customer": "customer_id",
        "missing_product": "product_id",
        **dict.fromkeys(("unparsable_quantity", "zero_quantity", "absurd_quantity"), "quantity"),
        **dict.fromkeys(("unparsable_price", "non_positive_price", "absurd_price"),
                        "unit_price"),
        "unparsable_timestamp": "timestamp", "future_timestamp": "timestamp",
        "unknown_product": "product_id",
        "unknown_customer": "customer_id",  # duplicate_line looks at all contract columns
    },
    "customers": dict.fromkeys(CUSTOMER_RULES, "customer_id"),
    "products": {"missing_product_id": "product_id", "duplicate_product_id": "product_id",
                 "unparsable_price": "price", "negative_price": "price",
                 "no_transactions": "product_id"},
}
CONTRACTS = {"transactions": Transactions, "customers": Customers, "products": Products}

_NULL_TOKENS = ("", "nan", "none", "null", "<na>", "nat")
_NULL_VARIANTS = tuple({v for t in _NULL_TOKENS for v in (t, t.upper(), t.capitalize())}
                       | {"NaN", "<NA>", "NaT"})
_FLOAT_ID = r"^[+-]?\d+\.0+$"
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_TZ_SUFFIX = r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d\d(?::?\d\d)?)$"


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


# --- coercion: raw column -> contract type, with missing/unparsable as None/NaN/NaT ---------


def _as_arrow_text(col: pd.Series) -> pa.Array | pa.ChunkedArray:
    """An id column as arrow text; whole floats lose their ``.0`` (arrow casts 17850.0: 17850)."""
    if pd.api.types.is_float_dtype(col.dtype):
        vals = col.to_numpy(dtype=float, na_value=np.nan)
        return pc.cast(pa.array(vals, mask=~np.isfinite(vals)), pa.large_string())
    if pd.api.types.is_integer_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        return pc.cast(pa.array(col, from_pandas=True), pa.large_string())
    try:
        return pa.array(col.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed values (ints among text): str() each
        return pc.cast(pa.array(col.astype(STRING)), pa.large_string())


def clean_ids(col: pd.Series) -> pd.Series:
    """Ids as stripped :data:`STRING` values, NA where missing; ``17850.0`` -> ``"17850"``."""
    text = pc.utf8_trim_whitespace(_as_arrow_text(col))
    float_like = pc.match_substring_regex(text, _FLOAT_ID)
    text = pc.if_else(float_like, pc.utf8_rtrim(pc.utf8_rtrim(text, "0"), "."), text)
    null = pc.is_in(text, value_set=pa.array(_NULL_VARIANTS, pa.large_string()))
    text = pc.if_else(null, pa.scalar(None, pa.large_string()), text)
    return pd.Series(pd.arrays.ArrowStringArray(text), index=col.index)


def clean_numbers(col: pd.Series) -> np.ndarray:
    """Numbers as float64, NaN where missing or unparsable (text is stripped, ``"1e3"`` is ok)."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return np.full(len(col), np.nan)
    if pd.api.types.is_numeric_dtype(col.dtype):
        return col.to_numpy(dtype=float, na_value=np.nan)
    try:
        text = pc.utf8_trim_whitespace(
            pa.array(col.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True))
        number = pc.match_substring_regex(text, _NUMBER)
        text = pc.if_else(number, text, pa.scalar(None, pa.large_string()))
        return pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text (e.g. Decimal from SQL)
        parsed = pd.to_numeric(col.astype(object), errors="coerce")
        return pd.Series(parsed).to_numpy(dtype=float, na_value=np.nan)


def _naive_utc(parsed: pd.Series) -> pd.Series:
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert(None)
    return parsed.astype("datetime64[ns]")


def _parse_quietly(text: pd.Series, **kwargs: object) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(text, errors="coerce", **kwargs)  # type: ignore[call-overload]


def _parse_iso(text: pd.Series) -> pd.Series:
    parsed = _parse_quietly(text, format="ISO8601")
    if pd.api.types.is_datetime64_dtype(parsed.dtype) and not isinstance(
        parsed.dtype, pd.DatetimeTZDtype
    ):
        return parsed.astype("datetime64[ns]")
    # Some values carry an offset. pandas' ISO parser lends an earlier value's offset to later
    # naive ones, so parse the two kinds apart: offsets -> UTC, naive ones as written.
    aware = text.str.contains(_TZ_SUFFIX, regex=True, na=False)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    out[aware] = _naive_utc(_parse_quietly(text[aware], format="ISO8601", utc=True))
    out[~aware] = _naive_utc(_parse_quietly(text[~aware], format="ISO8601", utc=True))
    return out


def clean_timestamps(col: pd.Series, dayfirst: bool = False) -> pd.Series:
    """Timestamps as naive ``datetime64[ns]`` (offsets converted to UTC), NaT if unparsable."""
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        try:
            return _naive_utc(col)
        except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
            return _naive_utc(_parse_quietly(col.astype(object), utc=True))
    if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        return pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns]")
    if pd.api.types.infer_dtype(col, skipna=True) not in ("string", "empty"):
        # datetime/date objects (some SQL drivers) or mixed values: let pandas judge each one
        return _naive_utc(_parse_quietly(col, format="mixed", utc=True, dayfirst=dayfirst))
    text = col.astype(STRING).str.strip()
    out = _parse_iso(text)
    for kwargs in ({}, {"format": "mixed"}):  # one inferred format, then value by value
        failed = (out.isna() & text.notna()).to_numpy()
        if not failed.any():
            break
        out[failed] = _naive_utc(
            _parse_quietly(text[failed], utc=True, dayfirst=dayfirst, **kwargs)
        )
    return out


def clean_texts(col: pd.Series) -> pd.Series:
    """Free text as :data:`STRING` (numbers become their text), NA where missing."""
    return col.astype(STRING)


# --- per-table checks --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Checked:
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict[str, int]
    clean_rows: np.ndarray  # _source_row of each clean row, to point back at the file


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


def _split(raw: pd.DataFrame, typed: dict[str, pd.Series | np.ndarray],
           masks: dict[str, np.ndarray], rules: tuple[str, ...]) -> _Checked:
    """Accepted rows (typed contract columns + raw extras) and quarantined raw rows with rules."""
    n = len(raw)
    names = [r for r in rules if r in masks]
    matrix = (np.column_stack([masks[r] for r in names]) if names
              else np.zeros((n, 0), dtype=bool))
    bad = matrix.any(axis=1)
    keep = np.flatnonzero(~bad)
    columns = {}
    for col in raw.columns:
        if col in SOURCE_COLUMNS:
            continue
        values = typed.get(col, raw[col])
        columns[col] = (values.iloc[keep].reset_index(drop=True)
                        if isinstance(values, pd.Series) else values[keep])
    clean = pd.DataFrame(columns, index=pd.RangeIndex(len(keep)))

    drop = np.flatnonzero(bad)
    ordered = [c for c in raw.columns if c not in SOURCE_COLUMNS] + list(SOURCE_COLUMNS)
    quarantine = raw.iloc[drop][ordered].reset_index(drop=True)
    hits = matrix[drop]
    label = np.array(names, dtype=object)
    quarantine[RULE] = label[hits.argmax(axis=1)] if len(drop) else np.array([], dtype=object)
    joined = np.full(len(drop), "", dtype=object)
    for i, rule in enumerate(names):
        joined[hits[:, i]] = joined[hits[:, i]] + ";" + rule
    quarantine[RULES] = np.array([s[1:] for s in joined], dtype=object)
    counts = quarantine[RULE].value_counts()
    return _Checked(clean, quarantine, {str(k): int(v) for k, v in counts.items()},
                    raw[SOURCE_ROW].to_numpy()[keep])


def _duplicate_ids(ids: pd.Series) -> np.ndarray:
    return (ids.notna() & ids.duplicated(keep="first")).to_numpy()


@dataclass(frozen=True)
class _Marked:
    """A side table's typed columns and rule masks before the split: ``no_transactions`` can
    only be added once the transactions are checked against the ids that pass the rest."""

    raw: pd.DataFrame
    ids: pd.Series  # the clean id column, also in ``typed``
    typed: dict[str, pd.Series | np.ndarray]
    masks: dict[str, np.ndarray]

    def passing_ids(self) -> pd.Series:
        """Ids of the rows no rule has flagged so far (what transactions may refer to)."""
        flagged = np.zeros(len(self.raw), dtype=bool)
        for mask in self.masks.values():
            flagged |= mask
        return self.ids[~flagged]

    def split(self, bought: pd.Series, rules: tuple[str, ...]) -> _Checked:
        """Flag ids absent from the accepted transactions (``bought``), then split."""
        unused = (self.ids.notna() & ~self.ids.isin(bought)).to_numpy(dtype=bool)
        return _split(self.raw, self.typed, {**self.masks, "no_transactions": unused}, rules)


def _mark_customers(raw: pd.DataFrame, settings: DataSettings) -> _Marked:
    ids = clean_ids(raw["customer_id"])
    masks = {
        "missing_customer_id": ids.isna().to_numpy(),
        "duplicate_customer_id": _duplicate_ids(ids),
    }
    return _Marked(raw, ids, {"customer_id": ids}, masks)


def _mark_products(raw: pd.DataFrame, settings: DataSettings) -> _Marked:
    ids = clean_ids(raw["product_id"])
    typed: dict[str, pd.Series | np.ndarray] = {"product_id": ids}
    masks = {"missing_product_id": ids.isna().to_numpy()}
    if "price" in raw.columns:
        price = clean_numbers(raw["price"])
        given = clean_texts(raw["price"]).str.strip().str.len() > 0
        masks["unparsable_price"] = given.to_numpy(dtype=bool, na_value=False) & ~np.isfinite(price)
        masks["negative_price"] = price < 0
        typed["price"] = price
    for col in ("category", "description"):
        if col in raw.columns:
            typed[col] = clean_texts(raw[col])
    masks["duplicate_product_id"] = _duplicate_ids(ids)
    return _Marked(raw, ids, typed, masks)


def _check_transactions(raw: pd.DataFrame, settings: DataSettings,
                        known: dict[str, pd.Series | None], latest: pd.Timestamp) -> _Checked:
    """Row rules of the order lines; ``latest`` is the last plausible time (run + tolerance)."""
    order, customer, product = (clean_ids(raw[c])
                                for c in ("order_id", "customer_id", "product_id"))
    quantity = clean_numbers(raw["quantity"])
    price = clean_numbers(raw["unit_price"])
    timestamp = clean_timestamps(raw["timestamp"], dayfirst=settings.timestamp_dayfirst)
    with np.errstate(invalid="ignore"):
        q_ok = np.isfinite(quantity) & (np.floor(quantity) == quantity)
        p_ok = np.isfinite(price)
        masks = {
            "missing_order_id": order.isna().to_numpy(),
            "missing_customer": customer.isna().to_numpy(),
            "missing_product": product.isna().to_numpy(),
            "unparsable_quantity": ~q_ok,
            "zero_quantity": q_ok & (quantity == 0),
            "absurd_quantity": q_ok & (np.abs(quantity) > settings.max_abs_quantity),
            "unparsable_price": ~p_ok,
            "non_positive_price": p_ok & (price <= 0),
            "absurd_price": p_ok & (price > settings.max_unit_price),
            "unparsable_timestamp": timestamp.isna().to_numpy(),
            "future_timestamp": (timestamp > latest).to_numpy(dtype=bool),
        }
    for rule, ids, table, required in (
        ("unknown_product", product, "products", settings.require_known_products),
        ("unknown_customer", customer, "customers", settings.require_known_customers),
    ):
        ids_known = known.get(table)
        if required and ids_known is not None:
            masks[rule] = (ids.notna() & ~ids.isin(ids_known)).to_numpy()
    key = pd.DataFrame({"o": order, "c": customer, "p": product, "q": quantity, "u": price,
                        "t": timestamp})
    masks["duplicate_line"] = key.duplicated(keep="first").to_numpy()
    # rejected rows may hold NaN; accepted ones are whole numbers within bounds
    whole = np.where(q_ok & (np.abs(quantity) <= settings.max_abs_quantity), quantity, 0)
    typed = {"order_id": order, "customer_id": customer, "product_id": product,
             "quantity": whole.astype(np.int64), "unit_price": price, "timestamp": timestamp}
    return _split(raw, typed, masks, TRANSACTION_RULES)


# --- whole data set ----------------------------------------------------------------------------


def _contract_check(name: str, checked: _Checked, source: str) -> pd.DataFrame:
    """The pandera model is the last word: a failure here is a bug in this module, not bad data."""
    try:
        return CONTRACTS[name].validate(checked.clean, lazy=True)
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


# --- output ------------------------------------------------------------------------------------


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
    "CUSTOMER_RULES",
    "PRODUCT_RULES",
    "ROW_RULES",
    "SHARE_EXEMPT",
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
