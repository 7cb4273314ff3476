"""The validator on timestamps: ISO and other formats, offsets and dayfirst, and timestamps after
the time of the run."""

from __future__ import annotations

import pandas as pd
import pytest

from tailor.configs.schema import DataSettings
from tailor.data.dataset import SOURCE_ROW, Dataset
from tailor.data.validate import DataContractError, validate_dataset
from tailor.models.features import default_as_of

from .conftest import DEFAULTS, NOW, check_invariant, line, lines_with, tagged


def test_timestamps_iso_other_formats_offsets_and_dayfirst() -> None:
    stamps = ["2023-01-02 10:00:00", "2023-01-02T11:30", "2023-01-02", "01/02/2023 09:15",
              "2023-01-02 10:00:00+01:00", "2 Jan 2023 10:00"]
    raw = Dataset(transactions=tagged([line(i, timestamp=s) for i, s in enumerate(stamps)], "t"))

    got = validate_dataset(raw, DEFAULTS).dataset.transactions["timestamp"].tolist()
    assert got == [pd.Timestamp(s) for s in ("2023-01-02 10:00", "2023-01-02 11:30",
                                               "2023-01-02", "2023-01-02 09:15",
                                               "2023-01-02 09:00", "2023-01-02 10:00")]
    got = validate_dataset(raw, DataSettings(timestamp_dayfirst=True))
    assert got.dataset.transactions["timestamp"][3] == pd.Timestamp("2023-02-01 09:15")


# --- timestamps after the run ------------------------------------------------------------------


def test_future_timestamps_are_quarantined_and_do_not_move_the_scoring_date() -> None:
    rows = [line(i) for i in range(50)]
    rows[9] = line(9, timestamp="2099-12-31 00:00:00")  # a placeholder date: 2% of the lines
    raw = Dataset(transactions=tagged(rows, "t.csv"))
    result = validate_dataset(raw, DEFAULTS, now=NOW)

    quarantined = result.quarantine["transactions"]
    assert quarantined[["_rule", "_rules", SOURCE_ROW]].values.tolist() == [
        ["future_timestamp", "future_timestamp", 10]]
    assert quarantined["timestamp"].tolist() == ["2099-12-31 00:00:00"]  # raw text kept
    assert ["transactions", "future_timestamp", 1] in result.summary.values.tolist()
    assert default_as_of(result.dataset.transactions) == pd.Timestamp("2023-01-29")
    check_invariant(raw, result)


@pytest.mark.parametrize(("stamp", "hours", "future"), [
    ("2024-06-02 12:00:00", 24.0, False),  # exactly now + tolerance: still plausible
    ("2024-06-02 12:00:01", 24.0, True),
    ("2024-06-01 12:00:01", 0.0, True),
    ("2024-06-01 12:00:00", 0.0, False),
    ("2024-06-02 13:30:00+02:00", 24.0, False),  # 11:30 UTC
    ("2024-06-03 10:00:00", 48.0, False),
])
def test_future_timestamp_tolerance(stamp: str, hours: float, future: bool) -> None:
    raw = Dataset(transactions=lines_with({"timestamp": stamp}, at=2))
    result = validate_dataset(raw, DataSettings(future_tolerance_hours=hours), now=NOW)
    assert result.quarantine["transactions"]["_rule"].tolist() == (
        ["future_timestamp"] if future else [])


def test_the_time_of_the_run_is_utc_and_defaults_to_the_clock() -> None:
    raw = Dataset(transactions=lines_with({"timestamp": "2024-06-01 13:00:00"}, at=2))
    berlin = pd.Timestamp("2024-06-01 14:00", tz="Europe/Berlin")  # 12:00 UTC, like NOW
    tight = DataSettings(future_tolerance_hours=1.0)
    assert validate_dataset(raw, tight, now=berlin).quarantine["transactions"].empty
    late = validate_dataset(raw, tight, now=NOW - pd.Timedelta(hours=1))
    assert late.quarantine["transactions"]["_rule"].tolist() == ["future_timestamp"]
    yesterday = (pd.Timestamp.now(tz="UTC").tz_localize(None) - pd.Timedelta(days=1))
    recent = Dataset(transactions=lines_with({"timestamp": str(yesterday.floor("s"))}, at=2))
    assert validate_dataset(recent, DataSettings(future_tolerance_hours=0.0)).quarantine[
        "transactions"].empty


def test_future_timestamps_count_toward_the_rejected_share() -> None:
    rows = [line(i, timestamp="2099-01-01" if i < 4 else None) for i in range(4)]
    rows += [line(i) for i in range(4, 10)]
    raw = Dataset(transactions=tagged(rows, "shop/tx.csv"))
    with pytest.raises(DataContractError) as err:
        validate_dataset(raw, DataSettings(max_rejected_share=0.3), now=NOW)
    assert "future_timestamp [column timestamp]: 4 (e.g. row 1)" in str(err.value)
