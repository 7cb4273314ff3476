"""Raw columns into contract types, with missing or unparsable values as NA, NaN or NaT, so
that the row rules can find them."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

STRING = pd.StringDtype("pyarrow")
"""Dtype of clean id and text columns: arrow strings validate and group far faster than objects."""

_NULL_TOKENS = ("", "nan", "none", "null", "<na>", "nat")
_NULL_VARIANTS = tuple({v for t in _NULL_TOKENS for v in (t, t.upper(), t.capitalize())}
                       | {"NaN", "<NA>", "NaT"})
_FLOAT_ID = r"^[+-]?\d+\.0+$"
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_TZ_SUFFIX = r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d\d(?::?\d\d)?)$"


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


def _any(mask: pa.Array | pa.ChunkedArray) -> bool:
    return bool(pc.any(mask).as_py())


def clean_ids(col: pd.Series) -> pd.Series:
    """Ids as stripped :data:`STRING` values, NA where missing; ``17850.0`` -> ``"17850"``.

    The regex and each rewrite (a copy of every string) run only when some value needs them:
    a literal ``.`` is the cheap test for a float-like id."""
    text = pc.utf8_trim_whitespace(_as_arrow_text(col))
    if _any(pc.match_substring(text, ".")):
        float_like = pc.match_substring_regex(text, _FLOAT_ID)
        if _any(float_like):
            text = pc.if_else(float_like, pc.utf8_rtrim(pc.utf8_rtrim(text, "0"), "."), text)
    null = pc.is_in(text, value_set=pa.array(_NULL_VARIANTS, pa.large_string()))
    if _any(null):
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


__all__ = [
    "STRING",
    "clean_ids",
    "clean_numbers",
    "clean_texts",
    "clean_timestamps",
]
