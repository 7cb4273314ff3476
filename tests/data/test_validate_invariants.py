"""The validator end to end: nothing is silently dropped (a messy CSV round trip and a hypothesis
property), and every rule is documented."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from tailor.configs.schema import DataSettings
from tailor.contracts import Transactions
from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW, Dataset
from tailor.data.io import read_dataset
from tailor.data.validate import ROW_RULES, RULE_COLUMNS, DataContractError, validate_dataset

from .conftest import COLUMNS, NOW, check_invariant, products, tagged


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
