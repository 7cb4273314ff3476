"""Interaction weights, feature matrices and cold-user rows on small hand-made frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightfm import LightFM

from tailor.configs.schema import FeatureSettings
from tailor.models.features import customer_features
from tailor.models.interactions import InteractionData, build_interactions, cold_user_features

AS_OF = pd.Timestamp("2024-03-01")


@pytest.fixture
def transactions() -> pd.DataFrame:
    rows = [
        ("o1", "a", "p1", 2, 10.0, "2024-02-20"),  # 10 days before as_of
        ("o2", "a", "p1", 3, 10.0, "2024-02-10"),  # 20 days before
        ("o2", "a", "p2", 1, 5.0, "2024-02-10"),
        ("r1", "a", "p2", -1, 5.0, "2024-02-11"),  # returned: not a positive, adds no weight
        ("r2", "a", "p4", -1, 8.0, "2024-02-11"),  # returned, never bought: no interaction
        ("o3", "b", "p3", 4, 2.0, "2024-02-25"),
        ("o4", "b", "p9", 1, 3.0, "2024-02-26"),  # not in the catalogue: still an item
        ("o5", "b", "p1", 1, 10.0, "2024-03-01"),  # at as_of: ignored
        ("o6", "f", "p5", 1, 1.0, "2024-03-02"),  # future customer and product line
    ]
    frame = pd.DataFrame(rows, columns=["order_id", "customer_id", "product_id", "quantity",
                                        "unit_price", "timestamp"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame


@pytest.fixture
def products() -> pd.DataFrame:
    return pd.DataFrame({
        "product_id": ["p1", "p2", "p3", "p4", "p5"],
        "category": ["shirts", "shirts", "mugs", None, "mugs"],
        "description": ["The red cotton shirt", "Blue cotton shirt", "Red mug", "red scarf",
                        None],
        "price": [10.0, 5.0, 2.0, 8.0, 1.0],
        "brand": ["acme", "acme", "bolt", "bolt", "acme"],
    })


@pytest.fixture
def customers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["a", "b", "z"], "region": ["north", "south", "north"]})


def _dense(data: InteractionData, matrix: str) -> pd.DataFrame:
    return pd.DataFrame(getattr(data, matrix).toarray(), index=data.user_ids,
                        columns=data.item_ids)


@pytest.mark.parametrize(("scheme", "a_p1"), [
    ("binary", 1.0),
    ("count", 2.0),  # two purchase lines
    ("quantity", 5.0),  # 2 + 3 units
    ("decay", 0.5 + 0.25),  # half-life 10 days: ages 10 and 20 days
])
def test_weights_per_scheme(transactions: pd.DataFrame, products: pd.DataFrame, scheme: str,
                            a_p1: float) -> None:
    settings = FeatureSettings(interaction_weight=scheme, decay_half_life_days=10.0)
    data = build_interactions(transactions, AS_OF, settings, products=products)
    weights = _dense(data, "weights")
    assert weights.loc["a", "p1"] == pytest.approx(a_p1)
    # the return does not reduce the weight, the return-only pair is no interaction
    single = {"binary": 1.0, "count": 1.0, "quantity": 1.0, "decay": 0.25}[scheme]
    assert weights.loc["a", "p2"] == pytest.approx(single)
    assert weights.loc["a", "p4"] == 0.0
    interactions = _dense(data, "interactions")
    assert set(np.unique(interactions.to_numpy())) == {0, 1}
    assert ((interactions > 0) == (weights > 0)).all().all()
    assert interactions.sum().sum() == 4  # a-p1, a-p2, b-p3, b-p9


def test_users_items_and_feature_names(transactions: pd.DataFrame, products: pd.DataFrame,
                                       customers: pd.DataFrame) -> None:
    settings = FeatureSettings(min_token_count=2, description_tokens=2)
    feats = customer_features(transactions, AS_OF, settings, customers, products)
    segments = pd.Series([1, 2], index=["a", "b"])
    data = build_interactions(transactions, AS_OF, settings, feats, customers, products,
                              segments)
    assert list(data.user_ids) == list(feats.index) == ["a", "b"]
    assert list(data.item_ids) == ["p1", "p2", "p3", "p4", "p5", "p9"]
    assert data.interactions.shape == data.weights.shape == (2, 6)
    assert data.user_features.shape == (2, len(data.user_feature_names))
    assert data.item_features.shape == (6, len(data.item_feature_names))
    users = set(data.user_feature_names)
    assert {"user:a", "user:b", "attr:region=north", "attr:region=south", "segment=1",
            "segment=2", "rfm:recency=q1", "rfm:monetary=q5"} <= users
    items = set(data.item_feature_names)
    assert {"item:p9", "category=shirts", "category=mugs", "attr:brand=acme",
            "price=q1", "price=q5"} <= items
    # tokens: in >= 2 products, top 2 by count; "the" is a stop-word, "scarf" too rare
    assert {n for n in items if n.startswith("word=")} == {"word=cotton", "word=red"}
    # rows are L1-normalised, each entity has its identity feature
    for matrix in (data.user_features, data.item_features):
        assert np.allclose(np.asarray(matrix.sum(axis=1)).ravel(), 1.0)
    user_index, feature_index = data.user_index(), data.user_feature_index()
    row = data.user_features[user_index["a"]].toarray().ravel()
    assert row[feature_index["user:a"]] > 0 and row[feature_index["attr:region=north"]] > 0
    assert row[feature_index["segment=1"]] > 0 and row[feature_index["user:b"]] == 0
    item_row = data.item_features[data.item_index()["p1"]].toarray().ravel()
    active = {data.item_feature_names[k] for k in np.flatnonzero(item_row)}
    assert active == {"item:p1", "category=shirts", "attr:brand=acme", "word=cotton",
                      "word=red", "price=q5"}


def test_price_band_falls_back_to_paid_price(transactions: pd.DataFrame,
                                             products: pd.DataFrame) -> None:
    data = build_interactions(transactions, AS_OF, FeatureSettings(price_bands=2),
                              products=products)
    row = data.item_features[data.item_index()["p9"]].toarray().ravel()  # paid 3.0, median 5.0
    names = {data.item_feature_names[k] for k in np.flatnonzero(row)}
    assert names == {"item:p9", "price=q1"}


def test_numeric_attributes_are_binned_and_ids_skipped() -> None:
    n = 40
    ids = [f"c{k:02d}" for k in range(n)]
    tx = pd.DataFrame({"order_id": ids, "customer_id": ids, "product_id": "p1", "quantity": 1,
                       "unit_price": 1.0, "timestamp": pd.Timestamp("2024-01-01")})
    customers = pd.DataFrame({"customer_id": ids,
                              "age": [str(18 + k) for k in range(n)],  # CSV cells are str
                              "email": [f"{k}@example.com" for k in range(n)],
                              "vip": [k % 2 == 0 for k in range(n)]})
    data = build_interactions(tx, AS_OF, FeatureSettings(quantile_bins=4), customers=customers)
    names = [n for n in data.user_feature_names if not n.startswith("user:")]
    assert names == ["attr:age=q1", "attr:age=q2", "attr:age=q3", "attr:age=q4",
                     "attr:vip=False", "attr:vip=True"]


def test_cold_user_gets_attribute_row_without_identity(transactions: pd.DataFrame,
                                                       products: pd.DataFrame,
                                                       customers: pd.DataFrame) -> None:
    settings = FeatureSettings()
    feats = customer_features(transactions, AS_OF, settings, customers, products)
    data = build_interactions(transactions, AS_OF, settings, feats, customers, products,
                              pd.Series([1, 2], index=["a", "b"]))
    attributes = pd.DataFrame({"customer_id": ["z", "y", "x"],
                               "region": ["north", "mars", "south"],
                               "segment": [2, None, None],
                               "recency_days": [np.nan, np.nan, 1000.0]})
    rows = cold_user_features(data, attributes)
    assert rows.shape == (3, len(data.user_feature_names))
    dense = rows.toarray()
    identity = np.char.startswith(data.user_feature_names.astype(str), "user:")
    assert not dense[:, identity].any()
    names = [{data.user_feature_names[k] for k in np.flatnonzero(r)} for r in dense]
    assert names[0] == {"attr:region=north", "segment=2"}
    assert np.isclose(dense[0].sum(), 1.0)
    assert names[1] == set()  # only values never seen in training: zero row
    assert names[2] == {"attr:region=south", "rfm:recency=q5"}


def test_matrices_train_and_score_with_lightfm(transactions: pd.DataFrame,
                                               products: pd.DataFrame,
                                               customers: pd.DataFrame) -> None:
    settings = FeatureSettings(interaction_weight="decay")
    feats = customer_features(transactions, AS_OF, settings, customers, products)
    data = build_interactions(transactions, AS_OF, settings, feats, customers, products)
    model = LightFM(no_components=4, random_state=0)
    model.fit(data.interactions, sample_weight=data.weights, user_features=data.user_features,
              item_features=data.item_features, epochs=2)
    cold = cold_user_features(data, customers.set_index("customer_id").loc[["z"]])
    scores = model.predict(0, np.arange(len(data.item_ids)), user_features=cold,
                           item_features=data.item_features)
    assert scores.shape == (len(data.item_ids),) and np.isfinite(scores).all()


def test_rfm_needs_customer_feature_columns(transactions: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="recency_days"):
        build_interactions(transactions, AS_OF, FeatureSettings(),
                           customer_features=pd.DataFrame(index=pd.Index(["a"])))


def test_no_purchase_before_as_of_is_a_clear_error(transactions: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no purchase before as_of"):
        build_interactions(transactions, "2020-01-01", FeatureSettings())
