"""No feature may see the future: rewriting rows on or after as_of changes nothing.

A random but realistic shop (a few hundred customers, returns, categories, descriptions) is
built once; hypothesis then varies how its future is rewritten (altered quantities, prices,
products and customers, deleted rows, new customers, products and orders, rows exactly at
as_of). Every feature and matrix must stay identical. A change before as_of must show, so the
comparison itself is known to be able to fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailor.configs.schema import FeatureSettings
from tailor.models.features import customer_features
from tailor.models.interactions import InteractionData, build_interactions

AS_OF = pd.Timestamp("2024-10-01")
START = pd.Timestamp("2023-06-01")
END = pd.Timestamp("2025-01-31")
SETTINGS = FeatureSettings(interaction_weight="decay", min_token_count=2, top_categories=4,
                           trend_window_days=60)
WORDS = ["red", "blue", "cotton", "linen", "mug", "shirt", "vintage", "heart", "glass", "the"]


@dataclass(frozen=True)
class Shop:
    transactions: pd.DataFrame
    customers: pd.DataFrame
    products: pd.DataFrame


def _shop(seed: int = 7, n_customers: int = 300, n_products: int = 80) -> Shop:
    rng = np.random.default_rng(seed)
    customer_ids = np.array([f"C{k:04d}" for k in range(n_customers)], dtype=object)
    product_ids = np.array([f"P{k:03d}" for k in range(n_products)], dtype=object)
    prices = np.round(rng.gamma(2.0, 4.0, n_products) + 0.5, 2)
    n_orders = 2_000
    order_customer = rng.choice(customer_ids, n_orders, p=rng.dirichlet(np.ones(n_customers)))
    span = (END - START).total_seconds()
    order_time = START + pd.to_timedelta(np.sort(rng.random(n_orders)) * span, unit="s")
    lines_per_order = rng.integers(1, 5, n_orders)
    order_of_line = np.repeat(np.arange(n_orders), lines_per_order)
    n = len(order_of_line)
    product = rng.choice(n_products, n, p=rng.dirichlet(np.full(n_products, 0.5)))
    quantity = rng.integers(1, 6, n)
    is_return = rng.random(n) < 0.03
    transactions = pd.DataFrame({
        "order_id": np.where(is_return, "R", "O") + pd.Series(order_of_line).astype(str),
        "customer_id": order_customer[order_of_line],
        "product_id": product_ids[product],
        "quantity": np.where(is_return, -quantity, quantity).astype(np.int64),
        "unit_price": prices[product],
        "timestamp": order_time[order_of_line].floor("min").astype("datetime64[ns]"),
        "channel": rng.choice(["web", "store"], n),
    })
    customers = pd.DataFrame({
        "customer_id": customer_ids,
        "region": rng.choice(["north", "south", "east", "west"], n_customers),
        "age": rng.integers(18, 80, n_customers).astype(np.int64),
    })
    products = pd.DataFrame({
        "product_id": product_ids,
        "category": rng.choice([f"cat{k}" for k in range(7)], n_products).astype(object),
        "description": [" ".join(rng.choice(WORDS, 3)) for _ in range(n_products)],
        "price": prices,
        "brand": rng.choice(["acme", "bolt", "cora"], n_products),
    })
    return Shop(transactions, customers, products)


@dataclass(frozen=True)
class Snapshot:
    features: pd.DataFrame
    data: InteractionData


def _snapshot(transactions: pd.DataFrame, shop: Shop) -> Snapshot:
    features = customer_features(transactions, AS_OF, SETTINGS, shop.customers, shop.products)
    segments = pd.Series(np.minimum(features["frequency"].to_numpy(), 4).astype(int),
                         index=features.index)
    data = build_interactions(transactions, AS_OF, SETTINGS, features, shop.customers,
                              shop.products, segments)
    return Snapshot(features, data)


def _assert_identical(left: Snapshot, right: Snapshot) -> None:
    pd.testing.assert_frame_equal(left.features, right.features, check_exact=True)
    a, b = left.data, right.data
    for name in ("user_ids", "item_ids", "user_feature_names", "item_feature_names"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("interactions", "weights", "user_features", "item_features"):
        x, y = getattr(a, name).tocsr(), getattr(b, name).tocsr()
        assert x.shape == y.shape and x.dtype == y.dtype, name
        assert (x != y).nnz == 0, f"{name} differs"
    assert a.user_encodings == b.user_encodings


@pytest.fixture(scope="module")
def shop() -> Shop:
    return _shop()


@pytest.fixture(scope="module")
def baseline(shop: Shop) -> Snapshot:
    snapshot = _snapshot(shop.transactions, shop)
    assert 150 < len(snapshot.features) < 300  # some customers only buy after as_of
    assert (shop.transactions["timestamp"] >= AS_OF).sum() > 500
    return snapshot


def _rewrite_future(tx: pd.DataFrame, rng: np.random.Generator, alter: float, delete: float,
                    new_rows: int, shop: Shop) -> pd.DataFrame:
    future = np.flatnonzero((tx["timestamp"] >= AS_OF).to_numpy())
    tx = tx.copy()
    chosen = future[rng.random(len(future)) < alter]
    k = len(chosen)
    col = tx.columns.get_loc
    tx.iloc[chosen, col("quantity")] = rng.choice([-3, -1, 1, 2, 7, 50], k)
    tx.iloc[chosen, col("unit_price")] = np.round(rng.uniform(0.1, 500.0, k), 2)
    tx.iloc[chosen, col("product_id")] = rng.choice(
        np.concatenate([shop.products["product_id"].to_numpy(), ["NEW-P1", "NEW-P2"]]), k)
    tx.iloc[chosen, col("customer_id")] = rng.choice(
        np.concatenate([shop.customers["customer_id"].to_numpy(), ["NEW-C1"]]), k)
    tx.iloc[chosen, col("timestamp")] = AS_OF + pd.to_timedelta(
        rng.integers(0, 120 * 24 * 60, k), unit="min")
    dropped = future[rng.random(len(future)) < delete]
    tx = tx.drop(index=tx.index[dropped])
    added = pd.DataFrame({
        "order_id": [f"N{k}" for k in rng.integers(0, 50, new_rows)],
        "customer_id": rng.choice(np.concatenate([shop.customers["customer_id"].to_numpy(),
                                                  ["NEW-C2", "NEW-C3"]]), new_rows),
        "product_id": rng.choice(np.concatenate([shop.products["product_id"].to_numpy(),
                                                 ["NEW-P3"]]), new_rows),
        "quantity": rng.choice([-2, 1, 3], new_rows).astype(np.int64),
        "unit_price": np.round(rng.uniform(0.5, 50.0, new_rows), 2),
        # half of the new rows land exactly on as_of: the boundary belongs to the future
        "timestamp": AS_OF + pd.to_timedelta(
            rng.integers(0, 30, new_rows) * (rng.random(new_rows) < 0.5), unit="D"),
        "channel": "app",
    })
    return pd.concat([tx, added], ignore_index=True)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), alter=st.floats(0.0, 1.0),
       delete=st.floats(0.0, 1.0), new_rows=st.integers(0, 200))
def test_future_rows_change_nothing(shop: Shop, baseline: Snapshot, seed: int, alter: float,
                                    delete: float, new_rows: int) -> None:
    rewritten = _rewrite_future(shop.transactions, np.random.default_rng(seed), alter, delete,
                                new_rows, shop)
    _assert_identical(baseline, _snapshot(rewritten, shop))


def test_truncating_at_as_of_changes_nothing(shop: Shop, baseline: Snapshot) -> None:
    past_only = shop.transactions[shop.transactions["timestamp"] < AS_OF]
    _assert_identical(baseline, _snapshot(past_only, shop))


@pytest.mark.parametrize("column", ["quantity", "unit_price", "product_id", "timestamp"])
def test_a_change_before_as_of_shows(shop: Shop, baseline: Snapshot, column: str) -> None:
    tx = shop.transactions.copy()
    row = int(np.flatnonzero(((tx["timestamp"] < AS_OF) & (tx["quantity"] > 0)).to_numpy())[-1])
    change = {"quantity": 40, "unit_price": 999.0, "product_id": "P000",
              "timestamp": AS_OF - pd.Timedelta(days=300)}[column]
    assert tx.iat[row, tx.columns.get_loc(column)] != change
    tx.iloc[row, tx.columns.get_loc(column)] = change
    with pytest.raises(AssertionError):
        _assert_identical(baseline, _snapshot(tx, shop))
