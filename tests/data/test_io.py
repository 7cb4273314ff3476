"""Reading data sets from directories (CSV/parquet) and from PostgreSQL, then validating them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tailor.configs.schema import DataSettings
from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW, Dataset
from tailor.data.io import (
    DataSourceError,
    read_dataset,
    read_sql_dataset,
    write_dataset,
    write_sql_table,
)
from tailor.data.validate import validate_dataset

LOOSE = DataSettings(max_rejected_share=1.0, require_known_customers=True)


def typed_dataset() -> Dataset:
    """A small clean data set in contract-like types, as a parquet export would hold it."""
    transactions = pd.DataFrame({
        "order_id": ["A1", "A1", "A2", "A3"],
        "customer_id": ["C1", "C1", "C2", "C1"],
        "product_id": ["P1", "P2", "P1", "P2"],
        "quantity": [2, 1, 3, -1],
        "unit_price": [1.5, 20.0, 1.5, 20.0],
        "timestamp": pd.to_datetime(["2023-01-01 10:00", "2023-01-01 10:00",
                                     "2023-01-02 09:30", "2023-01-03 12:00"]),
        "channel": ["web", "web", "store", "web"],
    })
    customers = pd.DataFrame({"customer_id": ["C1", "C2"], "age": [34, 51]})
    products = pd.DataFrame({"product_id": ["P1", "P2"], "category": ["mugs", "lamps"],
                             "price": [1.5, 20.0]})
    return Dataset(transactions=transactions, customers=customers, products=products)


def test_read_parquet_dir_keeps_types_and_tags_sources(tmp_path: Path) -> None:
    write_dataset(typed_dataset(), tmp_path, fmt="parquet")
    raw = read_dataset(tmp_path)

    assert raw.sources == {name: str(tmp_path / f"{name}.parquet")
                           for name in ("transactions", "customers", "products")}
    tx = raw.transactions
    assert tx["quantity"].dtype == np.int64
    assert tx["timestamp"].dtype.kind == "M"
    assert tx[SOURCE_ROW].tolist() == [1, 2, 3, 4]
    assert set(tx[SOURCE_FILE]) == {str(tmp_path / "transactions.parquet")}

    result = validate_dataset(raw, LOOSE)
    assert [len(q) for q in result.quarantine.values()] == [0, 0, 0]
    pd.testing.assert_series_equal(result.dataset.transactions["quantity"],
                                   typed_dataset().transactions["quantity"])
    assert result.dataset.customers["age"].tolist() == [34, 51]


def test_read_csv_dir_keeps_every_cell_as_text(tmp_path: Path) -> None:
    write_dataset(typed_dataset(), tmp_path, fmt="csv")
    (tmp_path / "customers.csv").write_text("customer_id,zip\nC1,02139\nC2,\n")
    raw = read_dataset(tmp_path)

    assert raw.transactions["quantity"].tolist() == ["2", "1", "3", "-1"]
    assert raw.customers["zip"].tolist()[0] == "02139"  # leading zero survives
    assert pd.isna(raw.customers["zip"].tolist()[1])  # a blank cell is missing, not ""
    assert raw.customers[SOURCE_ROW].tolist() == [1, 2]

    result = validate_dataset(raw, LOOSE)
    assert len(result.dataset.transactions) == 4
    assert result.dataset.transactions["quantity"].tolist() == [2, 1, 3, -1]


def test_read_dataset_errors_name_the_directory(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="no such data directory"):
        read_dataset(tmp_path / "nowhere")

    only_products = tmp_path / "only_products"
    only_products.mkdir()
    (only_products / "products.csv").write_text("product_id\nP1\n")
    with pytest.raises(DataSourceError, match=r"only_products.*no transactions\.parquet"):
        read_dataset(only_products)

    both = tmp_path / "both"
    write_dataset(typed_dataset(), both, fmt="csv")
    write_dataset(typed_dataset(), both, fmt="parquet")
    with pytest.raises(DataSourceError, match=r"both transactions\.parquet and transactions\.csv"):
        read_dataset(both)


@pytest.mark.postgres
def test_read_sql_dataset_from_a_schema_then_validate(pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    data = typed_dataset()
    for name in ("transactions", "customers", "products"):
        assert write_sql_table(data.table(name), url, f"shop_{name}", schema=schema) == len(
            data.table(name))

    raw = read_sql_dataset(url, {name: f"shop_{name}" for name in
                                 ("transactions", "customers", "products")}, schema=schema)
    assert raw.sources["transactions"].endswith(f"#{schema}.shop_transactions")
    assert raw.transactions[SOURCE_ROW].tolist() == [1, 2, 3, 4]
    result = validate_dataset(raw, LOOSE)

    clean = result.dataset.transactions
    assert [len(q) for q in result.quarantine.values()] == [0, 0, 0]
    expected = data.transactions
    assert clean["order_id"].tolist() == expected["order_id"].tolist()
    assert clean["quantity"].tolist() == expected["quantity"].tolist()
    assert clean["timestamp"].tolist() == expected["timestamp"].tolist()
    assert clean["channel"].tolist() == expected["channel"].tolist()
    assert result.dataset.products["price"].tolist() == [1.5, 20.0]


@pytest.mark.postgres
def test_messy_sql_tables_are_quarantined_like_messy_files(
    pg_schema: tuple[str, str], tmp_path: Path
) -> None:
    url, schema = pg_schema
    messy = pd.DataFrame({
        "order_id": ["1001", "1002", "1003", "1004", "1005", "1006", "1007"],
        "customer_id": ["C1", None, "C2", " C2 ", "C9", "C1", "C1"],
        "product_id": ["P1", "P1", "P2", "P2", "P1", "P1", "P3"],
        "quantity": ["2", "1", "2.5", "1", "4", "0", "1"],
        "unit_price": ["3.50", "3.50", "1.00", "1.00", "3.50", "3.50", "2"],
        "timestamp": ["2023-01-05 10:00:00", "2023-01-05 10:05:00", "2023-01-05 10:10:00",
                      "yesterday", "2023-01-06", "2023-01-07 08:00", "2023-01-07 08:00"],
    })
    customers = pd.DataFrame({"customer_id": ["C1", "C2", "C2"], "age": ["30", "41", "41"]})
    products = pd.DataFrame({"product_id": ["P1", "P2", " "], "price": ["3.5", "oops", "1"]})
    tables = {"transactions": messy, "customers": customers, "products": products}
    for name, frame in tables.items():
        write_sql_table(frame, url, name, schema=schema)
        frame.to_csv(tmp_path / f"{name}.csv", index=False)

    from_sql = validate_dataset(read_sql_dataset(url, {n: n for n in tables}, schema=schema),
                                LOOSE)
    from_csv = validate_dataset(read_dataset(tmp_path), LOOSE)

    rules = ["_rule", "_rules", SOURCE_ROW]
    assert from_sql.quarantine["transactions"][rules].values.tolist() == [
        ["missing_customer", "missing_customer", 2],
        # P2's price is unparsable, so P2 is quarantined and its lines point at nothing
        ["unparsable_quantity", "unparsable_quantity;unknown_product", 3],
        ["unparsable_timestamp", "unparsable_timestamp;unknown_product", 4],
        ["unknown_customer", "unknown_customer", 5],
        ["zero_quantity", "zero_quantity", 6],
        ["unknown_product", "unknown_product", 7],
    ]
    assert from_sql.quarantine["transactions"]["quantity"].tolist()[1] == "2.5"  # raw text
    # only C1's and P1's line 1001 is accepted: C2 and P2 have no accepted transaction
    assert from_sql.quarantine["customers"][rules].values.tolist() == [
        ["no_transactions", "no_transactions", 2],
        ["duplicate_customer_id", "duplicate_customer_id;no_transactions", 3]]
    assert from_sql.quarantine["products"][rules].values.tolist() == [
        ["unparsable_price", "unparsable_price;no_transactions", 2],
        ["missing_product_id", "missing_product_id", 3]]
    assert from_sql.dataset.transactions["order_id"].tolist() == ["1001"]
    for name in tables:
        sql_q, csv_q = from_sql.quarantine[name], from_csv.quarantine[name]
        assert sql_q[rules].values.tolist() == csv_q[rules].values.tolist(), name
        pd.testing.assert_frame_equal(from_sql.dataset.table(name),
                                      from_csv.dataset.table(name))
    assert from_sql.summary.values.tolist() == from_csv.summary.values.tolist()


@pytest.mark.postgres
def test_read_sql_dataset_errors(pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    with pytest.raises(DataSourceError, match="'transactions' table name is required"):
        read_sql_dataset(url, {"products": "p"}, schema=schema)
    with pytest.raises(DataSourceError, match="unknown table role"):
        read_sql_dataset(url, {"transactions": "t", "orders": "o"}, schema=schema)
    with pytest.raises(DataSourceError, match=rf"#{schema}\.nope"):
        read_sql_dataset(url, {"transactions": "nope"}, schema=schema)


@pytest.mark.postgres
def test_sql_float_ids_with_nulls_become_plain_strings(pg_schema: tuple[str, str]) -> None:
    """A retailer's CustomerID column with gaps arrives as double precision: 17850.0 -> '17850'."""
    url, schema = pg_schema
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                f'create table "{schema}".lines (invoice bigint, customer double precision, '
                "stock text, qty integer, price numeric(10, 2), at timestamp)"))
            conn.execute(sa.text(
                f'insert into "{schema}".lines values '
                "(536365, 17850, '85123A', 6, 2.55, '2010-12-01 08:26'), "
                "(536366, null, '71053', 6, 3.39, '2010-12-01 08:28')"))
    finally:
        engine.dispose()
    raw = read_sql_dataset(url, {"transactions": "lines"}, schema=schema)
    renamed = raw.transactions.rename(columns={
        "invoice": "order_id", "customer": "customer_id", "stock": "product_id",
        "qty": "quantity", "price": "unit_price", "at": "timestamp"})
    result = validate_dataset(Dataset(transactions=renamed, sources=raw.sources), LOOSE)

    clean = result.dataset.transactions
    assert clean[["order_id", "customer_id", "product_id"]].values.tolist() == [
        ["536365", "17850", "85123A"]]
    assert clean["unit_price"].tolist() == [2.55]
    assert clean["timestamp"].tolist() == [pd.Timestamp("2010-12-01 08:26")]
    assert result.quarantine["transactions"][["_rule", SOURCE_ROW]].values.tolist() == [
        ["missing_customer", 2]]
