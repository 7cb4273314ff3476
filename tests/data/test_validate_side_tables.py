"""The validator on the customers and products tables: id and price rules, and rows without an
accepted transaction."""

from __future__ import annotations

import numpy as np
import pytest

from tailor.configs.schema import DataSettings
from tailor.contracts import Customers, Products
from tailor.data.dataset import SOURCE_ROW, Dataset
from tailor.data.validate import DataContractError, validate_dataset

from .conftest import DEFAULTS, LOOSE, NOW, check_invariant, customers, line, products, tagged


@pytest.mark.parametrize(("table", "rule", "rows", "bad_row"), [
    ("customers", "missing_customer_id", ["C1", " ", "C2"], 2),
    ("customers", "duplicate_customer_id", ["C1", "C2", " C1"], 3),
    ("products", "missing_product_id", ["P1", None, "P2"], 2),
    ("products", "duplicate_product_id", ["P1", "P1", "P2"], 2),
])
def test_customer_and_product_id_rules(table: str, rule: str, rows: list[str | None],
                                       bad_row: int) -> None:
    id_column = f"{table[:-1]}_id"
    side = tagged([{id_column: value, "attr": str(i)} for i, value in enumerate(rows)],
                  f"{table}.csv")
    bought = sorted({value.strip() for value in rows if value and value.strip()})
    tx = tagged([line(i, **{id_column: value}) for i, value in enumerate(bought)], "t.csv")
    result = validate_dataset(Dataset(transactions=tx, **{table: side}), LOOSE)

    quarantined = result.quarantine[table]
    assert quarantined[["_rule", SOURCE_ROW]].values.tolist() == [[rule, bad_row]]
    clean = result.dataset.table(table)
    assert clean[id_column].tolist() == [r for i, r in enumerate(rows, 1) if i != bad_row]
    assert clean["attr"].tolist()[0] == "0"  # attribute columns kept as read
    (Customers if table == "customers" else Products).validate(clean)
    assert len(result.dataset.transactions) == 2  # the first row of an id is kept: lines known


def test_product_price_rules_and_referential_check_uses_clean_products() -> None:
    catalog = products(("P0", "P1", "P2", "P3"), price=["1.5", "cheap", "-2", None],
                       category=["a", "b", None, "d"])
    tx = tagged([line(i, product_id=f"P{i}") for i in range(4)], "t.csv")
    result = validate_dataset(Dataset(transactions=tx, products=catalog),
                              DataSettings(max_rejected_share=1.0))

    assert result.quarantine["products"][["_rule", SOURCE_ROW]].values.tolist() == [
        ["unparsable_price", 2], ["negative_price", 3]]
    clean = result.dataset.products
    assert clean["product_id"].tolist() == ["P0", "P3"]
    assert clean["price"].tolist()[0] == 1.5 and np.isnan(clean["price"].tolist()[1])
    assert clean["category"].tolist() == ["a", "d"]
    Products.validate(clean)
    # lines of the rejected products now point at nothing: they are quarantined, not dropped
    assert result.quarantine["transactions"][["_rule", SOURCE_ROW]].values.tolist() == [
        ["unknown_product", 2], ["unknown_product", 3]]


# --- customers and products without an accepted transaction ------------------------------------


def test_side_rows_without_an_accepted_transaction_are_quarantined() -> None:
    tx = tagged([line(0, customer_id="C0", product_id="P0"),
                 line(1, customer_id="C1", product_id="P1"),
                 line(2, customer_id="C2", product_id="P2", quantity="0"),  # only line of C2/P2
                 line(3, customer_id="C9", product_id="P0")], "t.csv")  # C9: not in customers
    people = customers(("C0", "C1", "C2", "C3", "C3"))
    catalog = products(("P0", "P1", "P2", "P3"))
    raw = Dataset(transactions=tx, customers=people, products=catalog)
    result = validate_dataset(raw, DEFAULTS, now=NOW)

    rules = ["_rule", "_rules", SOURCE_ROW]
    assert result.quarantine["customers"][rules].values.tolist() == [
        ["no_transactions", "no_transactions", 3],
        ["no_transactions", "no_transactions", 4],
        ["duplicate_customer_id", "duplicate_customer_id;no_transactions", 5]]
    assert result.quarantine["products"][rules].values.tolist() == [
        ["no_transactions", "no_transactions", 3], ["no_transactions", "no_transactions", 4]]
    assert result.dataset.customers["customer_id"].tolist() == ["C0", "C1"]
    assert result.dataset.products["product_id"].tolist() == ["P0", "P1"]
    # unchanged: a line whose customer is not in customers is kept unless required known
    assert result.dataset.transactions["customer_id"].tolist() == ["C0", "C1", "C9"]
    summary = result.summary.values.tolist()
    assert ["customers", "no_transactions", 2] in summary
    assert ["products", "no_transactions", 2] in summary
    check_invariant(raw, result)

    strict = validate_dataset(raw, DataSettings(require_known_customers=True,
                                                max_rejected_share=1.0), now=NOW)
    assert strict.quarantine["transactions"]["_rule"].tolist() == [
        "zero_quantity", "unknown_customer"]


def test_no_transactions_rows_do_not_count_toward_the_rejected_share() -> None:
    tx = tagged([line(i, customer_id="C0") for i in range(3)], "t.csv")
    prospects = customers(("C0", *(f"N{i}" for i in range(9))))  # 90% never ordered
    result = validate_dataset(Dataset(transactions=tx, customers=prospects),
                              DataSettings(max_rejected_share=0.1), now=NOW)
    assert len(result.quarantine["customers"]) == 9
    assert result.dataset.customers["customer_id"].tolist() == ["C0"]

    doubled = customers(("C0", "C0", "C0", "N1"))  # 2 duplicates: 50% counted, 25% not
    with pytest.raises(DataContractError) as err:
        validate_dataset(Dataset(transactions=tx, customers=doubled),
                         DataSettings(max_rejected_share=0.4), now=NOW)
    message = str(err.value)
    for part in ("customers.csv", "2 of 4 customers rows (50.0%)", "1 no_transactions rows not "
                 "counted", "duplicate_customer_id [column customer_id]: 2 (e.g. row 2)"):
        assert part in message, part
    assert "no_transactions [column" not in message


def test_a_side_table_whose_ids_match_no_transaction_is_an_error() -> None:
    tx = tagged([line(i, customer_id=f"{17850 + i % 3}") for i in range(6)], "t.csv")
    people = customers(("C17850", "C17851", "C17852"))  # another id format than transactions
    with pytest.raises(DataContractError) as err:
        validate_dataset(Dataset(transactions=tx, customers=people, sources={
            "customers": "shop/customers.csv"}), DEFAULTS, now=NOW)
    message = str(err.value)
    for part in ("shop/customers.csv", "none of the 3 customers rows", "nothing_accepted",
                 "no_transactions [column customer_id]: 3 (e.g. row 1)"):
        assert part in message, part
    assert err.value.result is not None
    assert len(err.value.result.dataset.transactions) == 6
