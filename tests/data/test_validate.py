"""The validator: each rule quarantines exactly the offending row, nothing is silently dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tailor.cli import app
from tailor.configs.schema import DataSettings
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
from tailor.models.features import default_as_of
from tailor.tasks.data import validate as validate_task

DEFAULTS = DataSettings()
LOOSE = DataSettings(max_rejected_share=1.0)  # tiny tables: one bad row is a big share
COLUMNS = ("order_id", "customer_id", "product_id", "quantity", "unit_price", "timestamp")
NOW = pd.Timestamp("2024-06-01 12:00")  # the time of the run, pinned


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
    assert result.dataset.products["price"].tolist() == [3.5]
    # every P2 line is quarantined, so P2 has no accepted transaction
    assert result.quarantine["products"][["_rule", SOURCE_ROW]].values.tolist() == [
        ["no_transactions", 2]]
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
                                  "01/03/2023 10:00", "2023-02-30", "2099-01-01"]),
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
    try:
        result = validate_dataset(raw, DataSettings(max_rejected_share=1.0), now=NOW)
        stopped = False
    except DataContractError as exc:  # nothing accepted: still every row classified
        assert exc.result is not None
        result, stopped = exc.result, True

    check_invariant(raw, result)
    quarantined = result.quarantine["transactions"]
    assert quarantined[SOURCE_ROW].is_unique
    assert (quarantined["_rule"] == quarantined["_rules"].str.split(";").str[0]).all()
    Transactions.validate(result.dataset.transactions)
    clean_tx, clean_products = result.dataset.transactions, result.dataset.products
    assert stopped == (len(clean_tx) == 0 or (clean_products is not None
                                              and len(clean_products) == 0))
    if clean_products is not None:  # every kept product was bought, on an accepted line
        assert clean_products["product_id"].isin(clean_tx["product_id"]).all()


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
