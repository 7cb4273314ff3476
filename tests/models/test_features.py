"""Customer features and churn labels on tiny frames whose values are computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailor.configs.schema import FeatureSettings
from tailor.models.features import (
    BASE_COLUMNS,
    churn_labels,
    customer_features,
    default_as_of,
    history,
)

AS_OF = pd.Timestamp("2024-03-01")
SETTINGS = FeatureSettings(trend_window_days=10, top_categories=1)


def _tx(rows: list[tuple[str, str, str, int, float, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["order_id", "customer_id", "product_id", "quantity",
                                        "unit_price", "timestamp"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame["channel"] = "web"  # extra columns are allowed by the contract
    return frame


@pytest.fixture
def transactions() -> pd.DataFrame:
    return _tx([
        ("o1", "a", "p1", 2, 10.0, "2024-02-01 10:00"),
        ("o1", "a", "p2", 1, 5.0, "2024-02-01 10:00"),
        ("o2", "a", "p1", 1, 10.0, "2024-02-12 09:00"),
        ("o3", "a", "p3", 4, 2.5, "2024-02-20 08:00"),
        ("o3", "a", "p2", 1, 5.0, "2024-02-20 08:00"),
        ("o5", "a", "p2", 1, 5.0, "2024-02-20 18:00"),  # second order, same purchase day
        ("r1", "a", "p1", -1, 10.0, "2024-02-21 12:00"),  # return
        ("o6", "a", "p1", 1, 10.0, "2024-02-26 00:00"),
        ("o4", "a", "p1", 5, 10.0, "2024-03-01 00:00"),  # at as_of: the future
        ("o7", "b", "p4", 1, 100.0, "2024-01-15 00:00"),  # p4 has no category
        ("r2", "c", "p1", -1, 10.0, "2024-02-10 00:00"),  # return only: not a customer yet
        ("r3", "c", "p1", -2, 10.0, "2024-03-05 00:00"),  # a return in the window
        ("o8", "d", "p1", 1, 10.0, "2024-03-20 15:00"),  # first purchase after as_of
    ])


@pytest.fixture
def products() -> pd.DataFrame:
    return pd.DataFrame({"product_id": ["p1", "p2", "p3", "p4"],
                         "category": ["X", "Y", "Z", None]})


@pytest.fixture
def customers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["a", "b", "e"],
                         "region": ["north", "south", "west"],
                         "_source_row": [1, 2, 3]})


def test_history_is_strictly_before_as_of(transactions: pd.DataFrame) -> None:
    past = history(transactions, AS_OF)
    assert past["timestamp"].max() < AS_OF
    assert len(past) == (transactions["timestamp"] < AS_OF).sum() == 10


def test_history_of_all_rows_shares_their_values_but_not_their_columns(
        transactions: pd.DataFrame) -> None:
    everything = history(transactions, transactions["timestamp"].max() + pd.Timedelta(days=1))
    pd.testing.assert_frame_equal(everything, transactions)
    assert np.shares_memory(everything["quantity"].to_numpy(), transactions["quantity"].to_numpy())
    everything["extra"] = 1.0  # a caller's new column stays its own
    assert "extra" not in transactions.columns
    assert not np.shares_memory(history(transactions, AS_OF)["quantity"].to_numpy(),
                                transactions["quantity"].to_numpy())


def test_default_as_of_is_midnight_after_last_transaction(transactions: pd.DataFrame) -> None:
    assert default_as_of(transactions) == pd.Timestamp("2024-03-21")


def test_hand_computed_features(transactions: pd.DataFrame, products: pd.DataFrame,
                                customers: pd.DataFrame) -> None:
    feats = customer_features(transactions, AS_OF, SETTINGS, customers, products)
    assert list(feats.index) == ["a", "b"]  # c only returned, d buys after as_of
    a = feats.loc["a"]
    assert a["recency_days"] == 4.0
    assert a["frequency"] == 5.0  # o1 o2 o3 o5 o6
    assert a["monetary"] == 65.0 - 10.0
    assert a["avg_order_value"] == 65.0 / 5
    assert a["tenure_days"] == pytest.approx(29 - 10 / 24)  # leap year: February has 29 days
    assert a["active_months"] == 1.0
    gaps = [11.0, 8.0, 6.0]  # days 02-01, 02-12, 02-20, 02-26
    assert a["ipi_mean_days"] == pytest.approx(np.mean(gaps))
    assert a["ipi_median_days"] == 8.0
    assert a["ipi_std_days"] == pytest.approx(np.std(gaps))
    assert a["basket_units_mean"] == 11 / 5
    assert a["basket_lines_mean"] == 7 / 5
    assert a["distinct_products"] == 3.0
    assert a["return_rate"] == pytest.approx(1 / 11)
    assert a["orders_recent"] == 3.0  # o3 o5 o6 in [02-20, 03-01)
    assert a["orders_previous"] == 1.0  # o2 in [02-10, 02-20)
    assert a["trend"] == pytest.approx((3 - 1) / (3 + 1 + 1))
    # X: 20 + 10 + 10 of 65 spent; Y (15) and Z (10) are below the top 1
    assert a["cat_share_x"] == pytest.approx(40 / 65)
    assert a["cat_share_other"] == pytest.approx(25 / 65)
    assert a["attr_region"] == "north"

    b = feats.loc["b"]  # one purchase: intervals filled with tenure, std 0
    assert b["recency_days"] == b["tenure_days"] == 46.0
    assert b["ipi_mean_days"] == b["ipi_median_days"] == 46.0
    assert b["ipi_std_days"] == 0.0
    assert b["trend"] == 0.0
    assert b["cat_share_x"] == 0.0
    assert b["cat_share_other"] == 1.0  # uncategorised product


def test_column_order_and_dtypes(transactions: pd.DataFrame, products: pd.DataFrame,
                                 customers: pd.DataFrame) -> None:
    feats = customer_features(transactions, AS_OF, SETTINGS, customers, products)
    assert list(feats.columns) == [*BASE_COLUMNS, "cat_share_x", "cat_share_other",
                                   "attr_region"]
    assert feats.index.name == "customer_id"
    numeric = feats.drop(columns="attr_region")
    assert (numeric.dtypes == "float64").all()
    assert not numeric.isna().any().any()
    wide = customer_features(transactions, AS_OF, FeatureSettings(top_categories=5),
                             products=products)
    assert list(wide.columns[len(BASE_COLUMNS):]) == [
        "cat_share_x", "cat_share_y", "cat_share_z", "cat_share_other"]
    shares = wide.filter(like="cat_share_")
    assert np.allclose(shares.sum(axis=1), 1.0)


def test_without_products_or_customers_only_base_columns(transactions: pd.DataFrame) -> None:
    feats = customer_features(transactions, AS_OF, SETTINGS)
    assert tuple(feats.columns) == BASE_COLUMNS


def test_category_names_become_unique_column_slugs(transactions: pd.DataFrame) -> None:
    products = pd.DataFrame({"product_id": ["p1", "p2", "p3", "p4"],
                             "category": ["A B", "a-b", "Other", None]})
    feats = customer_features(transactions, AS_OF, FeatureSettings(top_categories=3),
                              products=products)
    assert sorted(feats.filter(like="cat_share_").columns) == [
        "cat_share_a_b", "cat_share_a_b_2", "cat_share_other", "cat_share_other_2"]


def test_monetary_clips_returns_of_earlier_purchases_at_zero() -> None:
    tx = _tx([("o1", "a", "p1", 1, 10.0, "2024-01-01"),
              ("r1", "a", "p2", -3, 10.0, "2024-01-02")])
    feats = customer_features(tx, AS_OF, SETTINGS)
    assert feats.loc["a", "monetary"] == 0.0
    assert feats.loc["a", "return_rate"] == 1.0


def test_empty_history_gives_empty_frame_with_columns(transactions: pd.DataFrame,
                                                      customers: pd.DataFrame) -> None:
    feats = customer_features(transactions, "2020-01-01", SETTINGS, customers)
    assert feats.empty
    assert list(feats.columns) == [*BASE_COLUMNS, "attr_region"]


def test_churn_labels(transactions: pd.DataFrame) -> None:
    labels = churn_labels(transactions, AS_OF, 10)
    # a buys at exactly as_of (window is inclusive at its start), b never comes back
    assert labels.to_dict() == {"a": 0, "b": 1}
    assert labels.name == "churned"
    given = churn_labels(transactions, AS_OF, 20, pd.Index(["a", "c", "d", "e"]))
    # c only returns in the window (not a purchase); d buys on 03-20, inside 20 days
    assert given.to_dict() == {"a": 0, "c": 1, "d": 0, "e": 1}


def test_churn_window_must_be_observable(transactions: pd.DataFrame) -> None:
    churn_labels(transactions, AS_OF, 20)  # ends 03-21: the data covers 03-20 entirely
    with pytest.raises(ValueError, match="not observable"):
        churn_labels(transactions, AS_OF, 21)
    partial = churn_labels(transactions, AS_OF, 21, allow_partial=True)
    assert partial.to_dict() == {"a": 0, "b": 1}


def test_non_datetime_timestamp_is_a_clear_error(transactions: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match="timestamp"):
        customer_features(transactions.astype({"timestamp": str}), AS_OF, SETTINGS)
