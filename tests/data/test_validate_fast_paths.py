"""The fast paths of the validator give exactly what the plain pandas calls they replace give,
on generated data with known messy rows and on hand-made edge cases (NaN, -0.0, NA ids)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tailor.configs import load_settings
from tailor.contracts import Transactions
from tailor.data.generate import generate, write_generated
from tailor.data.io import read_dataset
from tailor.data.validate import _contract_schema
from tailor.data.validate_coercion import (
    _NULL_VARIANTS,
    STRING,
    clean_ids,
    clean_numbers,
    clean_timestamps,
)
from tailor.data.validate_rules import _duplicate_lines, _isin


def _plain_clean_ids(col: pd.Series) -> pd.Series:
    """clean_ids as first written: the regex and the rewrite over every value."""
    from tailor.data.validate_coercion import _FLOAT_ID, _as_arrow_text

    text = pc.utf8_trim_whitespace(_as_arrow_text(col))
    float_like = pc.match_substring_regex(text, _FLOAT_ID)
    text = pc.if_else(float_like, pc.utf8_rtrim(pc.utf8_rtrim(text, "0"), "."), text)
    null = pc.is_in(text, value_set=pa.array(_NULL_VARIANTS, pa.large_string()))
    text = pc.if_else(null, pa.scalar(None, pa.large_string()), text)
    return pd.Series(pd.arrays.ArrowStringArray(text), index=col.index)


@pytest.fixture(scope="module")
def messy_raw(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Generated order lines with 5% deliberately broken rows, plus exact repeats."""
    out: Path = tmp_path_factory.mktemp("messy")
    settings = load_settings(overrides=[
        "generate.customers=400", "generate.products=150", "generate.messy_share=0.05",
        "generate.timestamp_as_text=true",
    ])
    write_generated(generate(settings.generate), out)
    raw = read_dataset(out).transactions
    repeats = raw.sample(n=min(500, len(raw)), random_state=3)
    return pd.concat([raw, repeats], ignore_index=True)


def _key(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "o": clean_ids(raw["order_id"]), "c": clean_ids(raw["customer_id"]),
        "p": clean_ids(raw["product_id"]), "q": clean_numbers(raw["quantity"]),
        "u": clean_numbers(raw["unit_price"]), "t": clean_timestamps(raw["timestamp"]),
    })


def test_duplicate_lines_equal_pandas_on_generated_messy_data(messy_raw: pd.DataFrame) -> None:
    key = _key(messy_raw)
    want = key.duplicated(keep="first").to_numpy()
    assert want.sum() >= 500
    np.testing.assert_array_equal(_duplicate_lines(key), want)


def test_duplicate_lines_equal_pandas_past_the_hash_rounds() -> None:
    """Enough rows (> 50k candidates) for the bucket rounds to run, with NaN, -0.0 and NaT."""
    rng = np.random.default_rng(11)
    n = 120_000
    q = rng.integers(-3, 4, n).astype(float)
    q[rng.random(n) < 0.01] = np.nan
    u = np.round(rng.random(n) * 5, 1)
    u[rng.random(n) < 0.05] = -0.0
    u[rng.random(n) < 0.01] = np.nan
    t = pd.Series(pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 400, n), "D"))
    t[rng.random(n) < 0.01] = pd.NaT
    ids = pd.Series([f"X{v}" for v in rng.integers(0, 30, n)], dtype=STRING)
    ids[rng.random(n) < 0.01] = pd.NA
    key = pd.DataFrame({"o": ids, "c": ids.sample(frac=1, random_state=1).reset_index(drop=True),
                        "p": ids, "q": q, "u": u, "t": t})
    key = pd.concat([key, key.sample(n=5_000, random_state=2)], ignore_index=True)
    want = key.duplicated(keep="first").to_numpy()
    assert 5_000 <= want.sum() < n - 1_000
    np.testing.assert_array_equal(_duplicate_lines(key), want)


@pytest.mark.parametrize("values", [
    pd.Series(["b", None], dtype=STRING),
    pd.Series([], dtype=STRING),
    pd.Series(["a", "zz", "17"], dtype=STRING),
    pd.Series(["a", None], dtype=object),
    pd.Series(["a"], dtype="string[python]"),
])
def test_isin_equals_pandas(values: pd.Series) -> None:
    ids = clean_ids(pd.Series(["a", " b", "nan", None, "17.0"]))
    np.testing.assert_array_equal(_isin(ids, values), ids.isin(values).to_numpy())


def test_clean_ids_equal_the_plain_way(messy_raw: pd.DataFrame) -> None:
    odd = pd.Series([" 17850.0", "A1", "nan", None, "1.5", "12.00", " x ", "-3.0", "+4.000",
                     ".0", "5.", "NULL", "", "a.b", "7.0.0"])
    for col in (odd, pd.Series([17850.0, np.nan, 3.0]), pd.Series([1, 2, 3]),
                pd.Series(["a", 1, 2.0, None], dtype=object), pd.Series([], dtype=object),
                messy_raw["order_id"], messy_raw["customer_id"], messy_raw["product_id"]):
        pd.testing.assert_series_equal(clean_ids(col), _plain_clean_ids(col))


def _failures(exc: Exception) -> pd.DataFrame:
    return exc.failure_cases.reset_index(drop=True)  # type: ignore[attr-defined]


def test_contract_schema_fails_like_the_model() -> None:
    """Without pandera's per-value str check, string columns still fail alike on every rule."""
    frame = pd.DataFrame({
        "order_id": pd.Series(["a", "", None], dtype=STRING),
        "customer_id": pd.Series(["a", "b", "c"], dtype=STRING),
        "product_id": pd.Series(["a", "b", "c"], dtype=STRING),
        "quantity": np.array([1, 0, 2]), "unit_price": [1.0, -2.0, 3.0],
        "timestamp": pd.to_datetime(["2020-01-01"] * 3),
    })
    with pytest.raises(Exception) as plain:
        Transactions.validate(frame, lazy=True)
    with pytest.raises(Exception) as fast:
        _contract_schema("transactions", frame).validate(frame, lazy=True)
    pd.testing.assert_frame_equal(_failures(fast.value), _failures(plain.value))
    assert re.search("not_nullable", str(_failures(fast.value)["check"].tolist()))
    # a column that is not a pandas string keeps pandera's own dtype check
    as_object = frame.assign(customer_id=pd.Series(["a", 1, "c"], dtype=object))
    schema = _contract_schema("transactions", as_object)
    assert schema.columns["customer_id"].dtype is not None
    with pytest.raises(Exception) as plain:
        Transactions.validate(as_object, lazy=True)
    with pytest.raises(Exception) as fast:
        schema.validate(as_object, lazy=True)
    pd.testing.assert_frame_equal(_failures(fast.value), _failures(plain.value))
