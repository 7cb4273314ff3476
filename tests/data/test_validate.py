"""The validator: each rule quarantines exactly the offending row, nothing is silently dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from configs.schema import DataSettings
from tailor.contracts import Customers, Products, Transactions
from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW, Dataset
from tailor.data.io import read_dataset
from tailor.data.validate import (
    ROW_RULES,
    RULE_COLUMNS,
    STRING,
    DataContractError,
    ValidationResult,
    format_summary,
    validate_dataset,
    write_quarantine,
)

DEFAULTS = DataSettings()
LOOSE = DataSettings(max_rejected_share=1.0)  # tiny tables: one bad row is a big share
COLUMNS = ("order_id", "customer_id", "product_id", "quantity", "unit_price", "timestamp")


def line(i: int, **changes: object) -> dict[str, object]:
    """A clean raw transaction line as CSV text (distinct per i), with changes applied."""
    row: dict[str, object] = {
        "order_id": f"O{i}", "customer_id": f"C{i % 3}", "product_id": f"P{i % 4}",
        "quantity": str(i % 5 + 1), "unit_price": f"{1.25 * (i + 1):.2f}",
        "timestamp": f"2023-01-{i % 28 + 1:02d} 10:{i % 60:02d}:00", "country": "UK",
    }
    row.update(changes)
    return row


def tagged(rows: list[dict[str, object]], source: str) -> pd.DataFrame:
    """Rows as ``read_dataset`` hands them over: with ``_source_file``, 1-based ``_source_row``."""
    frame = pd.DataFrame(rows)
    frame[SOURCE_FILE] = source
    frame[SOURCE_ROW] = np.arange(1, len(frame) + 1)
    return frame


def products(ids: tuple[str | None, ...] = ("P0", "P1", "P2", "P3"),
             **extra: list[object]) -> pd.DataFrame:
    return tagged([{"product_id": pid, **{k: v[i] for k, v in extra.items()}}
                   for i, pid in enumerate(ids)], "products.csv")


def customers(ids: tuple[str, ...] = ("C0", "C1", "C2")) -> pd.DataFrame:
    return tagged([{"customer_id": cid, "segment": "x"} for cid in ids], "customers.csv")


def lines_with(bad: dict[str, object], n: int = 6, at: int = 3) -> pd.DataFrame:
    """n clean lines with the line at 1-based position ``at`` replaced by ``bad`` changes."""
    rows = [line(i) for i in range(n)]
    rows[at - 1] = line(100, **bad)
    return tagged(rows, "transactions.csv")


def check_invariant(raw: Dataset, result: ValidationResult) -> None:
    """rows in == accepted + quarantined, and every source row is in exactly one place."""
    for name in ("transactions", "customers", "products"):
        frame = raw.table(name)
        if frame is None:
            assert name not in result.quarantine
            continue
        clean = result.dataset.table(name)
        quarantined = result.quarantine[name]
        assert len(frame) == len(clean) + len(quarantined)
        counted = result.summary.query("table == @name")["rows"].sum()
        assert counted == len(frame)


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
    tx = tagged([line(0, customer_id="C1", product_id="P1")], "t.csv")
    result = validate_dataset(Dataset(transactions=tx, **{table: side}), LOOSE)

    quarantined = result.quarantine[table]
    assert quarantined[["_rule", SOURCE_ROW]].values.tolist() == [[rule, bad_row]]
    clean = result.dataset.table(table)
    assert clean[id_column].tolist() == [r for i, r in enumerate(rows, 1) if i != bad_row]
    assert clean["attr"].tolist()[0] == "0"  # attribute columns kept as read
    (Customers if table == "customers" else Products).validate(clean)
    assert len(result.dataset.transactions) == 1  # first C1/P1 row kept, so the line is known


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


def test_csv_round_trip_with_messy_strings(tmp_path: Path) -> None:
    (tmp_path / "transactions.csv").write_text(
        "order_id,customer_id,product_id,quantity,unit_price,timestamp,note\n"
        "1001,C1,P1,2,3.50,2023-01-05 10:00:00,ok\n"
        "1002,,P1,1,3.50,2023-01-05 10:05:00,blank customer\n"
        "1003,C2,P2,2.5,1.00,2023-01-05 10:10:00,half a thing\n"
        "1004,C2,P2,1,1.00,yesterday,bad time\n"
        "1005, C3 ,P1,-1,3.50,05/01/2023 11:00,a return\n"
        "1006,C3,P2,3,1.00,2023-13-45 10:00:00,impossible date\n"
        "1007,C1,P1,2,3.50,2023-01-06,date only\n"
    )
    (tmp_path / "products.csv").write_text("product_id,category,price\nP1,mugs,3.5\nP2,cards,1\n")
    raw = read_dataset(tmp_path)
    result = validate_dataset(raw, DataSettings(max_rejected_share=0.6))

    quarantined = result.quarantine["transactions"]
    assert quarantined[["_rule", SOURCE_ROW, "note"]].values.tolist() == [
        ["missing_customer", 2, "blank customer"],
        ["unparsable_quantity", 3, "half a thing"],
        ["unparsable_timestamp", 4, "bad time"],
        ["unparsable_timestamp", 6, "impossible date"],
    ]
    assert quarantined["quantity"].tolist() == ["1", "2.5", "1", "3"]  # raw text, as read
    assert set(quarantined[SOURCE_FILE]) == {str(tmp_path / "transactions.csv")}
    clean = result.dataset.transactions
    assert clean["order_id"].tolist() == ["1001", "1005", "1007"]
    assert clean["customer_id"].tolist() == ["C1", "C3", "C1"]
    assert clean["quantity"].tolist() == [2, -1, 2]
    assert clean["timestamp"].tolist() == [pd.Timestamp("2023-01-05 10:00"),
                                           pd.Timestamp("2023-05-01 11:00"),
                                           pd.Timestamp("2023-01-06")]
    assert result.dataset.products["price"].tolist() == [3.5, 1.0]
    check_invariant(raw, result)


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


def test_every_rule_is_documented_in_the_module_docstring() -> None:
    import tailor.data.validate as module

    for table, rules in ROW_RULES.items():
        for rule in rules:
            assert rule in (module.__doc__ or ""), rule
            assert rule in RULE_COLUMNS[table] or rule == "duplicate_line", rule


MESSY = {
    "order_id": st.sampled_from(["O1", "O2", " O3 ", "", None, "17.0"]),
    "customer_id": st.sampled_from(["C1", "C2", " ", None, "nan", "C9"]),
    "product_id": st.sampled_from(["P0", "P1", "P9", None, "NULL"]),
    "quantity": st.sampled_from(["1", "2", "-1", "0", "2.5", "x", "99999", None, "3.0"]),
    "unit_price": st.sampled_from(["1.5", "0", "-2", "abc", "2e7", None, " 3 "]),
    "timestamp": st.sampled_from(["2023-01-01 10:00", "2023-01-02", "bad", None,
                                  "01/03/2023 10:00", "2023-02-30"]),
}


@hyp_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.fixed_dictionaries(MESSY), max_size=30),
       catalog=st.lists(st.sampled_from(["P0", "P1", " P1", None, "P2"]), max_size=5))
def test_nothing_is_silently_dropped(rows: list[dict[str, object]],
                                     catalog: list[str | None]) -> None:
    tx = tagged(rows, "t.csv") if rows else tagged([], "t.csv").reindex(
        columns=[*COLUMNS, SOURCE_FILE, SOURCE_ROW])
    side = products(tuple(catalog)) if catalog else None
    raw = Dataset(transactions=tx, products=side)
    result = validate_dataset(raw, DataSettings(max_rejected_share=1.0))

    check_invariant(raw, result)
    quarantined = result.quarantine["transactions"]
    assert quarantined[SOURCE_ROW].is_unique
    assert (quarantined["_rule"] == quarantined["_rules"].str.split(";").str[0]).all()
    Transactions.validate(result.dataset.transactions)
