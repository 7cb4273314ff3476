"""Writing the quarantine and its summary, also when the rejected-share limit stops the validate
task or ``tailor data validate``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tailor.cli import app
from tailor.configs.schema import DataSettings
from tailor.data.dataset import SOURCE_ROW, Dataset
from tailor.data.io import read_dataset
from tailor.data.validate import (
    DataContractError,
    format_summary,
    validate_dataset,
    write_quarantine,
)
from tailor.tasks.data import validate as validate_task

from .conftest import DEFAULTS, line, lines_with, products


def test_write_quarantine_writes_tables_and_summary_and_nothing_stale(tmp_path: Path) -> None:
    out = tmp_path / "quarantine"
    out.mkdir()
    pd.DataFrame({"old": [1]}).to_parquet(out / "customers.parquet")  # from an earlier run
    raw = Dataset(transactions=lines_with({"quantity": "0"}, at=2), products=products())
    result = validate_dataset(raw, DEFAULTS)

    assert write_quarantine(result, out) == out
    assert sorted(p.name for p in out.iterdir()) == [
        "products.parquet", "summary.csv", "transactions.parquet"]
    written = pd.read_parquet(out / "transactions.parquet")
    pd.testing.assert_frame_equal(written, result.quarantine["transactions"])
    assert written[["_rule", SOURCE_ROW]].values.tolist() == [["zero_quantity", 2]]
    assert len(pd.read_parquet(out / "products.parquet")) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary.values.tolist() == [["transactions", "accepted", 5],
                                       ["transactions", "zero_quantity", 1],
                                       ["products", "accepted", 4]]


def test_write_quarantine_copes_with_mixed_raw_values(tmp_path: Path) -> None:
    mixed = lines_with({"order_id": None}, at=1)
    mixed["product_id"] = mixed["product_id"].astype(object)
    mixed.loc[0, "product_id"] = 17  # an int among text, as some drivers hand over
    result = validate_dataset(Dataset(transactions=mixed), DEFAULTS)
    write_quarantine(result, tmp_path)
    assert pd.read_parquet(tmp_path / "transactions.parquet")["product_id"].tolist() == ["17"]


def test_format_summary_lists_every_rule_with_counts_and_shares() -> None:
    raw = Dataset(transactions=lines_with({"unit_price": "0"}, n=8, at=5))
    text = format_summary(validate_dataset(raw, DEFAULTS))
    lines = text.splitlines()
    assert lines[0].split() == ["table", "rule", "rows", "share"]
    assert lines[1].split() == ["transactions", "accepted", "7", "87.50%"]
    assert lines[2].split() == ["transactions", "non_positive_price", "1", "12.50%"]


# --- the quarantine survives a stopped run -----------------------------------------------------


def _half_broken(directory: Path) -> Path:
    """A data set directory where 4 of 10 lines are quarantined (above a 30% limit)."""
    directory.mkdir()
    rows = [line(i, quantity="0" if i < 4 else str(i % 5 + 1)) for i in range(10)]
    pd.DataFrame(rows).to_csv(directory / "transactions.csv", index=False)
    return directory


def test_validate_task_writes_the_quarantine_when_the_share_limit_stops_it(
        tmp_path: Path) -> None:
    data = _half_broken(tmp_path / "data")
    out = tmp_path / "quarantine"
    with pytest.raises(DataContractError) as err:
        validate_task.fn(read_dataset(data), DataSettings(max_rejected_share=0.3), str(out))
    message = str(err.value)
    assert "4 of 10 transactions rows" in message and "zero_quantity" in message
    assert f"quarantine written to {out}" in message
    written = pd.read_parquet(out / "transactions.parquet")
    assert written[["_rule", SOURCE_ROW]].values.tolist() == [
        ["zero_quantity", i] for i in range(1, 5)]
    assert pd.read_csv(out / "summary.csv").values.tolist() == [
        ["transactions", "accepted", 6], ["transactions", "zero_quantity", 4]]


def test_cli_validate_writes_the_quarantine_when_the_share_limit_stops_it(
        tmp_path: Path) -> None:
    data = _half_broken(tmp_path / "data")
    result = CliRunner().invoke(app, ["data", "validate", "--data", str(data),
                                      "--set", "data.max_rejected_share=0.3"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    quarantine = data / "_quarantine"
    assert f"quarantine written to {quarantine}" in result.output
    assert "zero_quantity [column quantity]: 4 (e.g. row 1)" in result.output
    assert "zero_quantity" in result.output.splitlines()[2]  # the summary is printed first
    written = pd.read_parquet(quarantine / "transactions.parquet")
    assert written["_rule"].tolist() == ["zero_quantity"] * 4
    assert (quarantine / "summary.csv").exists()
