"""The synthetic retailer: deterministic, self-consistent, and its latent truth is recoverable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from tailor.configs.schema import DataSettings, GenerateSettings
from tailor.contracts import REQUIRED_COLUMNS
from tailor.data.dataset import SOURCE_ROW
from tailor.data.generate import (
    MESSY_RULES,
    SEGMENT_PROFILES,
    GeneratedData,
    generate,
    read_truth,
    write_generated,
)
from tailor.data.io import read_dataset

SMALL = GenerateSettings(customers=300, products=120, days=200, seed=3, messy_share=0.03)


@pytest.fixture(scope="module")
def default_data() -> GeneratedData:
    return generate(GenerateSettings())


def _sha256_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _reference_rules(tx: pd.DataFrame, products: pd.DataFrame) -> pd.Series:
    """What a validator with default settings should say about each row (None = clean)."""
    limit = DataSettings().max_abs_quantity
    rule = pd.Series(None, index=tx.index, dtype=object)
    stamp = tx["timestamp"]
    if stamp.dtype == object:
        parsed = pd.to_datetime(stamp, format="%Y-%m-%d %H:%M:%S", errors="coerce")
        rule[parsed.isna()] = "unparsable_timestamp"
    rule[tx["customer_id"].isna() | (tx["customer_id"] == "")] = "missing_customer"
    rule[~tx["product_id"].isin(products["product_id"])] = "unknown_product"
    rule[tx["unit_price"] <= 0] = "non_positive_price"
    rule[tx["quantity"].abs() > limit] = "absurd_quantity"
    contract = list(REQUIRED_COLUMNS["transactions"])
    rule[tx.duplicated(contract, keep="first")] = "duplicate_line"
    return rule


def _clean(data: GeneratedData) -> pd.DataFrame:
    tx = data.dataset.transactions
    broken = data.truth["messy"]["_source_row"].to_numpy() - 1
    return tx.drop(index=broken)


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    first = write_generated(generate(SMALL), tmp_path / "a")
    second = write_generated(generate(SMALL), tmp_path / "b")
    other = write_generated(generate(SMALL.model_copy(update={"seed": 4})), tmp_path / "c")
    hashes = _sha256_tree(first)
    assert set(hashes) == {
        "transactions.parquet", "customers.parquet", "products.parquet",
        "truth/customers.parquet", "truth/segments.parquet", "truth/favourites.parquet",
        "truth/messy.parquet",
    }
    assert hashes == _sha256_tree(second)
    assert hashes["transactions.parquet"] != _sha256_tree(other)["transactions.parquet"]


def test_written_files_read_back_with_truth_rows(tmp_path: Path) -> None:
    data = generate(SMALL)
    out = write_generated(data, tmp_path / "gen")
    raw = read_dataset(out)
    truth = read_truth(out)
    pd.testing.assert_frame_equal(truth["messy"], data.truth["messy"])
    rules = _reference_rules(raw.transactions, raw.products)
    flagged = raw.transactions.loc[rules.notna(), SOURCE_ROW].to_numpy()
    np.testing.assert_array_equal(flagged, truth["messy"]["_source_row"].to_numpy())
    assert (rules[rules.notna()].to_numpy() == truth["messy"]["rule"].to_numpy()).all()


def test_tables_follow_the_contract(default_data: GeneratedData) -> None:
    ds = default_data.dataset
    for name in ("transactions", "customers", "products"):
        frame = ds.table(name)
        assert frame is not None
        assert set(REQUIRED_COLUMNS[name]) <= set(frame.columns)
        assert not [c for c in frame.columns if c.startswith("_source")]
    assert list(ds.transactions.columns) == list(REQUIRED_COLUMNS["transactions"])
    assert ds.transactions["timestamp"].dtype == "datetime64[ns]"
    assert ds.customers["customer_id"].is_unique and ds.products["product_id"].is_unique
    assert {"region", "channel", "signup_date", "age_band"} <= set(ds.customers.columns)
    assert {"category", "description", "price"} <= set(ds.products.columns)
    clean = _clean(default_data)
    assert (clean["quantity"] != 0).all() and (clean["unit_price"] > 0).all()


def test_messy_rows_break_exactly_the_recorded_rule(default_data: GeneratedData) -> None:
    tx, products = default_data.dataset.transactions, default_data.dataset.products
    messy = default_data.truth["messy"]
    rules = _reference_rules(tx, products)
    found = rules[rules.notna()]
    np.testing.assert_array_equal(found.index.to_numpy() + 1, messy["_source_row"].to_numpy())
    np.testing.assert_array_equal(found.to_numpy(), messy["rule"].to_numpy())
    n_clean = len(tx) - len(messy)
    assert len(messy) == round(GenerateSettings().messy_share * n_clean)
    # typed timestamps cannot hold an unparsable value: that kind is only in text mode
    assert set(messy["rule"]) == set(MESSY_RULES) - {"unparsable_timestamp"}
    assert (messy["original_row"] < messy["_source_row"]).all()


def test_text_timestamps_add_unparsable_rows() -> None:
    data = generate(SMALL.model_copy(update={"timestamp_as_text": True}))
    tx, messy = data.dataset.transactions, data.truth["messy"]
    assert tx["timestamp"].dtype == object
    assert "unparsable_timestamp" in set(messy["rule"])
    rules = _reference_rules(tx, data.dataset.products)
    np.testing.assert_array_equal(np.flatnonzero(rules.notna()) + 1, messy["_source_row"])
    np.testing.assert_array_equal(rules.dropna().to_numpy(), messy["rule"].to_numpy())


def test_every_purchase_is_consistent_with_the_truth(default_data: GeneratedData) -> None:
    clean = _clean(default_data)
    truth = default_data.truth["customers"].set_index("customer_id")
    assert set(clean["customer_id"]) <= set(default_data.dataset.customers["customer_id"])
    assert set(clean["product_id"]) <= set(default_data.dataset.products["product_id"])
    assert (default_data.dataset.customers["customer_id"].to_numpy() == truth.index).all()
    joined = clean.join(truth[["signup_time", "churn_time"]], on="customer_id")
    assert (joined["timestamp"] >= joined["signup_time"]).all()
    churned = joined["churn_time"].notna()
    assert churned.any()
    assert (joined.loc[churned, "timestamp"] < joined.loc[churned, "churn_time"]).all()
    taste = truth.filter(like="taste_")
    assert taste.shape[1] == GenerateSettings().categories
    np.testing.assert_allclose(taste.sum(axis=1), 1.0)
    assert set(truth["segment"]) == set(range(len(SEGMENT_PROFILES)))
    start = pd.Timestamp(GenerateSettings().start)
    assert clean["timestamp"].min() >= start
    assert clean["timestamp"].max() < start + pd.Timedelta(days=GenerateSettings().days)


def test_returns_follow_an_earlier_purchase(default_data: GeneratedData) -> None:
    clean = _clean(default_data).reset_index(drop=True)
    keys = ["order_id", "customer_id", "product_id"]
    buys, returns = clean[clean["quantity"] > 0], clean[clean["quantity"] < 0]
    assert not buys.duplicated(keys).any() and not returns.duplicated(keys).any()
    pairs = returns.merge(buys, on=keys, how="left", suffixes=("", "_buy"), indicator=True)
    assert (pairs["_merge"] == "both").all()
    assert (pairs["timestamp"] > pairs["timestamp_buy"]).all()
    assert (-pairs["quantity"] <= pairs["quantity_buy"]).all()
    assert (pairs["unit_price"] == pairs["unit_price_buy"]).all()
    share = len(returns) / len(buys)
    assert 0.5 * GenerateSettings().return_share < share <= GenerateSettings().return_share * 1.1


def test_default_size_and_realistic_shape(default_data: GeneratedData) -> None:
    clean = _clean(default_data)
    assert 100_000 <= len(default_data.dataset.transactions) <= 300_000
    buys = clean[clean["quantity"] > 0]
    # seasonality: December busier than spring/summer, Saturday busier than Sunday
    per_month = buys.groupby(buys["timestamp"].dt.month).size()
    assert per_month[12] > 1.5 * per_month[[2, 3, 4, 5, 6, 7, 8, 9]].mean()
    per_weekday = buys["timestamp"].dt.dayofweek.value_counts()
    assert per_weekday[5] > per_weekday[6]
    # popularity skew: the top tenth of products carries a large share of the lines
    counts = buys["product_id"].value_counts()
    assert counts.iloc[: len(counts) // 10].sum() > 0.3 * counts.sum()
    # repeat purchases: many lines re-buy a product from one of the customer's earlier orders
    first = buys.groupby(["customer_id", "product_id"])["order_id"].transform("min")
    assert (buys["order_id"] > first).mean() > 0.3
    # attributes correlate with segment (cold start has something to learn from)
    seg = default_data.truth["customers"].set_index("customer_id")["segment_name"]
    customers = default_data.dataset.customers.join(seg, on="customer_id")
    app = customers.groupby("segment_name")["channel"].apply(lambda c: (c == "app").mean())
    assert app["vip"] > 2 * app["occasional"]


def test_descriptions_carry_category_signal(default_data: GeneratedData) -> None:
    products = default_data.dataset.products
    last_word = products["description"].str.split().str[-1]
    categories_per_word = products.groupby(last_word)["category"].nunique()
    assert (categories_per_word == 1).all()


@pytest.mark.parametrize("seed", [42, 7])
def test_segments_are_recoverable_by_kmeans(seed: int) -> None:
    data = generate(GenerateSettings(seed=seed))
    buys = _clean(data)
    buys = buys[buys["quantity"] > 0].merge(data.dataset.products[["product_id", "category"]],
                                            on="product_id")
    buys["value"] = buys["quantity"] * buys["unit_price"]
    orders = buys.groupby(["customer_id", "order_id"]).agg(
        value=("value", "sum"), time=("timestamp", "first"))
    per = orders.groupby("customer_id").agg(n=("value", "size"), value=("value", "mean"),
                                            first=("time", "min"), last=("time", "max"))
    per = per[per["n"] >= 3]
    months = np.maximum((per["last"] - per["first"]).dt.days / 30.44, 1.0)
    spend = buys.pivot_table(index="customer_id", columns="category", values="value",
                             aggfunc="sum", fill_value=0.0)
    features = pd.DataFrame({
        "log_orders_per_month": np.log(per["n"] / months),
        "log_order_value": np.log(per["value"]),
    }).join(spend.div(spend.sum(axis=1), axis=0))
    truth = data.truth["customers"].set_index("customer_id").loc[features.index, "segment"]
    assert truth.nunique() == len(SEGMENT_PROFILES)
    labels = KMeans(len(SEGMENT_PROFILES), n_init=10, random_state=0).fit_predict(
        StandardScaler().fit_transform(features))
    assert adjusted_rand_score(truth, labels) >= 0.85


def test_many_categories_and_bad_settings() -> None:
    data = generate(GenerateSettings(customers=100, products=60, categories=25, days=100))
    assert data.dataset.products["category"].nunique() == 25
    with pytest.raises(ValueError, match="products"):
        generate(GenerateSettings(products=5, categories=12))
