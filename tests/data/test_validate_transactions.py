"""The validator's row rules on transaction lines: each rule quarantines exactly the offending
line, clean lines pass in contract types, duplicates, unknown products and customers, and ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailor.configs.schema import DataSettings
from tailor.contracts import Transactions
from tailor.data.dataset import SOURCE_ROW, Dataset
from tailor.data.validate import STRING, validate_dataset

from .conftest import (
    COLUMNS,
    DEFAULTS,
    check_invariant,
    customers,
    line,
    lines_with,
    products,
    tagged,
)

TRANSACTION_CASES = [
    ("missing_order_id", {"order_id": "   "}),
    ("missing_order_id", {"order_id": None}),
    ("missing_customer", {"customer_id": None}),
    ("missing_customer", {"customer_id": "NULL"}),
    ("missing_product", {"product_id": ""}),
    ("unparsable_quantity", {"quantity": "2.5"}),
    ("unparsable_quantity", {"quantity": "two"}),
    ("unparsable_quantity", {"quantity": None}),
    ("zero_quantity", {"quantity": "0"}),
    ("absurd_quantity", {"quantity": "10001"}),
    ("absurd_quantity", {"quantity": "-20000"}),
    ("unparsable_price", {"unit_price": "£3"}),
    ("unparsable_price", {"unit_price": "3,50"}),
    ("non_positive_price", {"unit_price": "0"}),
    ("non_positive_price", {"unit_price": "-1.5"}),
    ("absurd_price", {"unit_price": "1000000.01"}),
    ("unparsable_timestamp", {"timestamp": "not a date"}),
    ("unparsable_timestamp", {"timestamp": "2023-02-30 10:00:00"}),
    ("unparsable_timestamp", {"timestamp": None}),
    ("future_timestamp", {"timestamp": "2099-01-01 10:00:00"}),  # against the real clock
]


@pytest.mark.parametrize(("rule", "bad"), TRANSACTION_CASES)
def test_each_transaction_rule_quarantines_that_row(rule: str, bad: dict[str, object]) -> None:
    raw = Dataset(transactions=lines_with(bad, at=3))
    result = validate_dataset(raw, DEFAULTS)

    quarantined = result.quarantine["transactions"]
    assert quarantined[["_rule", "_rules", SOURCE_ROW]].values.tolist() == [[rule, rule, 3]]
    assert quarantined["_source_file"].tolist() == ["transactions.csv"]
    column, value = next(iter(bad.items()))
    kept = quarantined[column].iloc[0]
    assert kept == value or (value is None and pd.isna(kept))  # the raw value, untouched
    assert len(result.dataset.transactions) == 5
    assert "O100" not in set(result.dataset.transactions["order_id"])
    check_invariant(raw, result)


def test_clean_lines_pass_in_contract_types() -> None:
    raw = Dataset(transactions=tagged(
        [line(i) for i in range(5)] + [line(9, quantity="-2", unit_price=" 4.5 ",
                                             order_id=" O9 ", timestamp="2023-03-01T08:00")],
        "transactions.csv"))
    result = validate_dataset(raw, DEFAULTS)

    clean = result.dataset.transactions
    assert len(result.quarantine["transactions"]) == 0
    assert list(clean.columns) == [*COLUMNS, "country"]  # extra column kept, no _source_*
    assert isinstance(clean.index, pd.RangeIndex)
    assert clean["quantity"].dtype == np.int64
    assert clean["unit_price"].dtype == np.float64
    assert clean["timestamp"].dtype == "datetime64[ns]"
    assert clean["order_id"].dtype == STRING
    last = clean.iloc[-1]
    assert (last["order_id"], last["quantity"], last["unit_price"]) == ("O9", -2, 4.5)
    assert last["timestamp"] == pd.Timestamp("2023-03-01 08:00")
    Transactions.validate(clean)
    assert result.summary.values.tolist() == [["transactions", "accepted", 6]]


def test_duplicate_line_keeps_the_first_and_compares_after_coercion() -> None:
    rows = [line(i) for i in range(4)]
    first = line(1)
    rows.append({**first, "order_id": f" {first['order_id']} ", "quantity": "2.0",
                 "country": "somewhere else"})  # same line once coerced; extras do not count
    rows.append(line(1, quantity="3"))  # differs in quantity: not a duplicate
    raw = Dataset(transactions=tagged(rows, "t.csv"))
    result = validate_dataset(raw, DEFAULTS)

    quarantined = result.quarantine["transactions"]
    assert quarantined[["_rule", SOURCE_ROW]].values.tolist() == [["duplicate_line", 5]]
    assert quarantined["order_id"].iloc[0] == " O1 "
    assert len(result.dataset.transactions) == 5


def test_unknown_product_and_customer_need_the_table_and_the_setting() -> None:
    rows = lines_with({"product_id": "P9", "customer_id": "C9"}, at=2)
    strict = DataSettings(require_known_customers=True)

    result = validate_dataset(Dataset(transactions=rows, products=products(),
                                      customers=customers()), strict)
    quarantined = result.quarantine["transactions"]
    assert quarantined[["_rule", "_rules", SOURCE_ROW]].values.tolist() == [
        ["unknown_product", "unknown_product;unknown_customer", 2]]

    result = validate_dataset(Dataset(transactions=rows, customers=customers()), strict)
    assert result.quarantine["transactions"]["_rule"].tolist() == ["unknown_customer"]

    relaxed = DataSettings(require_known_products=False, require_known_customers=False)
    result = validate_dataset(Dataset(transactions=rows, products=products(),
                                      customers=customers()), relaxed)
    assert len(result.quarantine["transactions"]) == 0
    result = validate_dataset(Dataset(transactions=rows), strict)  # no tables to check against
    assert len(result.quarantine["transactions"]) == 0


def test_all_failing_rules_are_listed_first_one_wins() -> None:
    raw = Dataset(transactions=lines_with({"customer_id": " ", "quantity": "0",
                                           "timestamp": "soon"}, at=4))
    result = validate_dataset(raw, DEFAULTS)
    quarantined = result.quarantine["transactions"]
    assert quarantined[["_rule", "_rules", SOURCE_ROW]].values.tolist() == [
        ["missing_customer", "missing_customer;zero_quantity;unparsable_timestamp", 4]]


def test_ids_are_stripped_strings_and_float_ids_lose_their_dot_zero() -> None:
    """A parquet/SQL export of a customer id column with gaps is float: 17850.0 is "17850"."""
    typed = pd.DataFrame({
        "order_id": [536365, 536365, 536366], "customer_id": [17850.0, np.nan, 13047.0],
        "product_id": [" 85123A", "71053 ", "22633"], "quantity": [6, 6, 2],
        "unit_price": [2.55, 3.39, 1.85],
        "timestamp": pd.to_datetime(["2010-12-01 08:26", "2010-12-01 08:26", "2010-12-01 08:28"]),
    })
    raw = Dataset(transactions=tagged(typed.to_dict("records"), "t.parquet"),
                  customers=tagged([{"customer_id": "17850"}, {"customer_id": "13047.0"}],
                                   "c.csv"),
                  products=products(("85123A", "71053", "22633")))
    result = validate_dataset(raw, DataSettings(require_known_customers=True,
                                                max_rejected_share=0.5))

    clean = result.dataset.transactions
    assert clean["order_id"].tolist() == ["536365", "536366"]
    assert clean["customer_id"].tolist() == ["17850", "13047"]
    assert clean["product_id"].tolist() == ["85123A", "22633"]
    assert result.dataset.customers["customer_id"].tolist() == ["17850", "13047"]
    assert result.quarantine["transactions"][["_rule", SOURCE_ROW]].values.tolist() == [
        ["missing_customer", 2]]
