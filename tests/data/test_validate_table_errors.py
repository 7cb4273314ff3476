"""The validator's whole-table errors: a missing column, the rejected share above its limit, empty
tables and no accepted transaction."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tailor.configs.schema import DataSettings
from tailor.data.dataset import Dataset
from tailor.data.io import read_dataset
from tailor.data.validate import DataContractError, validate_dataset

from .conftest import (
    COLUMNS,
    DEFAULTS,
    LOOSE,
    NOW,
    check_invariant,
    line,
    lines_with,
    products,
    tagged,
)


def test_missing_column_names_file_column_and_rule() -> None:
    frame = tagged([line(i) for i in range(3)], "exports/tx.csv").drop(columns="unit_price")
    frame = frame.rename(columns={"quantity": "Quantity"})
    with pytest.raises(DataContractError) as err:
        validate_dataset(Dataset(transactions=frame, sources={"transactions": "exports/tx.csv"}),
                         DEFAULTS)
    message = str(err.value)
    assert "exports/tx.csv" in message and "missing_column" in message
    assert "'unit_price'" in message and "'quantity'" in message and "'Quantity'" in message

    side = tagged([{"id": "C1"}], "cust.csv")
    with pytest.raises(DataContractError, match=r"cust\.csv.*'customer_id'.*missing_column"):
        validate_dataset(Dataset(transactions=lines_with({}), customers=side), DEFAULTS)


def test_rejected_share_above_limit_stops_with_the_top_rules() -> None:
    rows = [line(i) for i in range(10)]
    for at in (2, 5, 7):
        rows[at - 1] = line(50 + at, quantity="0")
    rows[8] = line(99, timestamp="later")
    raw = Dataset(transactions=tagged(rows, "shop/tx.csv"), sources={"transactions": "shop/tx.csv"})

    with pytest.raises(DataContractError) as err:
        validate_dataset(raw, DataSettings(max_rejected_share=0.3))
    message = str(err.value)
    for part in ("shop/tx.csv", "4 of 10", "40.0%", "30.0%",
                 "zero_quantity [column quantity]: 3 (e.g. row 2)",
                 "unparsable_timestamp [column timestamp]: 1 (e.g. row 9)"):
        assert part in message, part
    assert len(err.value.result.quarantine["transactions"]) == 4  # still available to inspect

    at_limit = validate_dataset(raw, DataSettings(max_rejected_share=0.4))
    assert len(at_limit.dataset.transactions) == 6


# --- empty tables ------------------------------------------------------------------------------


def test_header_only_transactions_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv"
    path.write_text(",".join(COLUMNS) + "\n")
    (tmp_path / "customers.csv").write_text("customer_id\nC1\n")
    with pytest.raises(DataContractError) as err:
        validate_dataset(read_dataset(tmp_path), DEFAULTS, now=NOW)
    message = str(err.value)
    assert message.startswith(f"{path}: transactions table has no data rows")
    assert "empty_table" in message and "export it again" in message
    assert "customers" not in message  # not blamed for the empty transactions
    assert err.value.result is not None and err.value.result.quarantine["transactions"].empty


def test_header_only_side_table_is_a_clear_error(tmp_path: Path) -> None:
    pd.DataFrame([line(i) for i in range(3)]).to_csv(tmp_path / "transactions.csv", index=False)
    (tmp_path / "products.csv").write_text("product_id,category\n")
    with pytest.raises(DataContractError,
                       match=rf"{tmp_path / 'products.csv'}: products table has no data rows.*"
                             r"empty_table.*remove the file"):
        validate_dataset(read_dataset(tmp_path), DEFAULTS, now=NOW)


def test_no_accepted_transaction_is_a_clear_error_even_without_a_share_limit() -> None:
    raw = Dataset(transactions=tagged([line(i, quantity="0") for i in range(3)]
                                      + [line(3, unit_price="free")], "shop/tx.csv"),
                  products=products())
    with pytest.raises(DataContractError) as err:
        validate_dataset(raw, LOOSE, now=NOW)
    message = str(err.value)
    assert message.splitlines() == [
        "shop/tx.csv: none of the 4 transactions rows is accepted (rule nothing_accepted); "
        "check the export and the column mapping; quarantined by: zero_quantity [column "
        "quantity]: 3 (e.g. row 1), unparsable_price [column unit_price]: 1 (e.g. row 4)"]
    check_invariant(raw, err.value.result)
