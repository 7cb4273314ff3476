"""The vectorised building blocks of customer features and the LightFM matrices give exactly
what the plain pandas / numpy / lightfm calls they replace give (same values, order, dtypes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightfm.data import Dataset

from tailor.configs import load_settings
from tailor.data.generate import generate
from tailor.data.validate import validate_dataset
from tailor.data.validate_coercion import STRING
from tailor.models.features import (
    _buyer_codes,
    _category_shares,
    _factorized,
    _sorted_unique,
)
from tailor.models.interaction_features import (
    _feature_matrix,
    _interaction_matrices,
)
from tailor.models.interactions import _pair_weights


@pytest.mark.parametrize("span", [1, 50, 5_000, 10**12, 2**62])
@pytest.mark.parametrize("inverse", [True, False])
def test_sorted_unique_equals_numpy(span: int, inverse: bool) -> None:
    keys = np.random.default_rng(span).integers(-3, span, 20_000)
    for sample in (keys, keys[:1], keys[:0]):
        got, got_inverse = _sorted_unique(sample, inverse)
        if inverse:
            want, want_inverse = np.unique(sample, return_inverse=True)
            np.testing.assert_array_equal(got_inverse, want_inverse)
            assert got_inverse.dtype == want_inverse.dtype
        else:
            want = np.unique(sample)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype


@pytest.fixture(scope="module")
def clean():
    settings = load_settings(overrides=["generate.customers=300", "generate.products=80",
                                        "generate.messy_share=0.03"])
    return validate_dataset(generate(settings.generate).dataset, settings.data).dataset


def test_codes_equal_factorize_on_the_rows(clean) -> None:
    tx = clean.transactions
    rng = np.random.default_rng(0)
    bought = rng.random(len(tx)) < 0.7
    returned = ~bought & (rng.random(len(tx)) < 0.5)
    for col in ("order_id", "product_id"):
        codes, uniques = _factorized(tx[col], bought)
        want_codes, want_uniques = pd.factorize(tx[col][bought])
        np.testing.assert_array_equal(codes, want_codes)
        pd.testing.assert_index_equal(uniques, want_uniques)
    codes, ids, ret = _buyer_codes(tx["customer_id"], bought, returned)
    want_codes, want_ids = pd.factorize(tx["customer_id"][bought], sort=True)
    np.testing.assert_array_equal(codes, want_codes)
    pd.testing.assert_index_equal(ids, want_ids)
    np.testing.assert_array_equal(ret, want_ids.get_indexer(tx["customer_id"][returned]))


def test_category_shares_equal_the_string_way(clean) -> None:
    tx = clean.transactions
    category_of = clean.products.set_index("product_id")["category"]
    # one product without a category and lines of a product missing from the catalogue
    category_of.iloc[0] = pd.NA
    tx = pd.concat([tx, tx.head(5).assign(product_id=pd.Series(["P-none"] * 5, dtype=STRING))],
                   ignore_index=True)
    codes, ids = pd.factorize(tx["customer_id"], sort=True)
    value = tx["quantity"].to_numpy(np.float64) * tx["unit_price"].to_numpy(np.float64)
    product_codes, product_ids = pd.factorize(tx["product_id"])
    got = _category_shares(value, product_codes, product_ids, codes, len(ids), category_of, 4)
    # the plain way: map every line's product to its category name
    category = tx["product_id"].map(category_of)
    spend = pd.Series(value).groupby(category.to_numpy()).sum()
    ranked = sorted(spend.items(), key=lambda kv: (-kv[1], str(kv[0])))[:4]
    assert list(got.columns[:-1]) == sorted(f"cat_share_{name}" for name, _ in ranked)
    for k, name in enumerate(got.columns[:-1]):
        chosen = (category == name.removeprefix("cat_share_")).fillna(False).to_numpy(bool)
        totals = np.bincount(codes, weights=np.where(chosen, value, 0.0), minlength=len(ids))
        all_spend = np.bincount(codes, weights=value, minlength=len(ids))
        np.testing.assert_allclose(got.iloc[:, k].to_numpy(), totals / all_spend, rtol=1e-12)
    assert np.allclose(got.sum(axis=1), 1.0)


@pytest.mark.parametrize("scheme", ["binary", "count", "quantity", "decay"])
def test_pair_weights_equal_unique_and_bincount(scheme: str) -> None:
    settings = load_settings().features.model_copy(update={"interaction_weight": scheme})
    rng = np.random.default_rng(5)
    n, n_items = 30_000, 70
    u, i = rng.integers(0, 400, n), rng.integers(0, n_items, n)
    quantity = rng.integers(1, 9, n)
    ts = (np.datetime64("2024-01-01") + rng.integers(0, 10**6, n).astype("timedelta64[m]")
          ).astype("datetime64[ns]")
    as_of = pd.Timestamp("2026-01-01")
    pairs, inverse = np.unique(u * n_items + i, return_inverse=True)
    line = {"quantity": quantity.astype(np.float64),
            "decay": np.exp(-np.log(2.0) * ((as_of.to_datetime64() - ts) / np.timedelta64(1, "D"))
                            / settings.decay_half_life_days)}.get(scheme, np.ones(n))
    weight = np.bincount(inverse, weights=line, minlength=len(pairs))
    if scheme == "binary":
        weight = np.ones(len(pairs))
    got = _pair_weights(u, i, quantity, ts, n_items, as_of, settings)
    for g, w in zip(got, (pairs // n_items, pairs % n_items, weight), strict=True):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype


def _grouped_lists(ids: np.ndarray, identity: str, long: pd.DataFrame
                   ) -> list[tuple[str, list[str]]]:
    """lightfm's own input: ``(id, [identity feature, other features...])`` per entity."""
    long = long.sort_values("pos", kind="stable")
    pos = long["pos"].to_numpy()
    feats = long["feature"].to_numpy()
    bounds = np.searchsorted(pos, np.arange(len(ids) + 1))
    return [(entity, [identity + entity, *feats[bounds[k]:bounds[k + 1]].tolist()])
            for k, entity in enumerate(ids)]


def test_matrices_equal_lightfm_dataset() -> None:
    rng = np.random.default_rng(9)
    users = np.array([f"u{k:03d}" for k in range(50)], dtype=object)
    vocab = [f"f={k}" for k in range(12)]
    long = pd.DataFrame({"pos": rng.integers(-1, 52, 400),  # -1 and >= 50 are not users
                         "feature": rng.choice(vocab, 400)})  # repeats are summed
    dataset = Dataset(user_identity_features=False, item_identity_features=False)
    dataset.fit(users=users, items=users[:20],
                user_features=["user:" + u for u in users] + vocab)
    _, user_map, _, _ = dataset.mapping()
    want = dataset.build_user_features(_grouped_lists(users, "user:", long), normalize=True)
    got = _feature_matrix(users, "user:", long, user_map)
    for attr in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(got, attr), getattr(want, attr))
        assert getattr(got, attr).dtype == getattr(want, attr).dtype
    assert got.shape == want.shape

    u, i = np.sort(rng.integers(0, 50, 300)), rng.integers(0, 20, 300)
    w = rng.random(300) * 3
    want_i, want_w = dataset.build_interactions(zip(users[u], users[:20][i], w, strict=True))
    got_i, got_w = _interaction_matrices(dataset.interactions_shape(), u, i, w)
    for g, e in ((got_i, want_i), (got_w, want_w)):
        assert g.shape == e.shape and g.dtype == e.dtype
        for attr in ("row", "col", "data"):
            np.testing.assert_array_equal(getattr(g, attr), getattr(e, attr))
            assert getattr(g, attr).dtype == getattr(e, attr).dtype


def _pandas_base_features(tx: pd.DataFrame, as_of: pd.Timestamp, window_days: int
                          ) -> pd.DataFrame:
    """The base columns the plain pandas way, each as the features module documents it."""
    day = pd.Timedelta(days=1)
    window = pd.Timedelta(days=window_days)
    past = tx[tx["timestamp"] < as_of]
    bought = past[past["quantity"] > 0].assign(value=lambda f: f["quantity"] * f["unit_price"])
    lines = bought.groupby("customer_id")
    first, last = lines["timestamp"].min(), lines["timestamp"].max()
    orders = bought.groupby(["customer_id", "order_id"])["timestamp"].min()
    frequency = orders.groupby(level=0).size().astype(float)
    recent = (orders >= as_of - window).groupby(level=0).sum()
    previous = ((orders >= as_of - 2 * window) & (orders < as_of - window)).groupby(level=0).sum()
    days = (bought.assign(day=bought["timestamp"].dt.floor("D"))
            .drop_duplicates(["customer_id", "day"]).sort_values(["customer_id", "day"]))
    gaps = days.groupby("customer_id")["day"].diff() / day
    gap = gaps.groupby(days["customer_id"])
    returns = past[past["quantity"] < 0]
    returned_units = (-returns["quantity"]).groupby(returns["customer_id"]).sum()
    returned_value = (-returns["quantity"] * returns["unit_price"]).groupby(
        returns["customer_id"]).sum()
    ids = first.index
    tenure = (as_of - first) / day
    gross, units = lines["value"].sum(), lines["quantity"].sum().astype(float)
    out = pd.DataFrame({
        "recency_days": (as_of - last) / day,
        "frequency": frequency,
        "monetary": (gross - returned_value.reindex(ids).fillna(0)).clip(lower=0),
        "avg_order_value": gross / frequency,
        "tenure_days": tenure,
        "active_months": bought.assign(m=bought["timestamp"].dt.to_period("M"))
        .groupby("customer_id")["m"].nunique().astype(float),
        "ipi_mean_days": gap.mean().reindex(ids).fillna(tenure),
        "ipi_std_days": gap.std(ddof=0).reindex(ids).fillna(0.0),
        "ipi_median_days": gap.median().reindex(ids).fillna(tenure),
        "basket_units_mean": units / frequency,
        "basket_lines_mean": lines.size() / frequency,
        "distinct_products": lines["product_id"].nunique().astype(float),
        "return_rate": (returned_units.reindex(ids).fillna(0) / units).clip(0, 1),
        "orders_recent": recent.astype(float),
        "orders_previous": previous.astype(float),
        "trend": (recent - previous) / (recent + previous + 1.0),
        "purchase_days": days.groupby("customer_id").size().astype(float),
    })
    return out.set_axis(pd.Index(ids.astype(object), name="customer_id"))


@pytest.mark.parametrize("days_before_end", [0, 45, 200])
def test_base_features_equal_the_pandas_way(clean, days_before_end: int) -> None:
    """The one DuckDB query gives, per customer and column, what plain pandas gives."""
    from tailor.models.features import BASE_COLUMNS, customer_features, default_as_of

    settings = load_settings().features
    tx = clean.transactions
    as_of = default_as_of(tx) - pd.Timedelta(days=days_before_end)
    got = customer_features(tx, as_of, settings)[list(BASE_COLUMNS)]
    want = _pandas_base_features(tx, as_of, settings.trend_window_days)[list(BASE_COLUMNS)]
    assert got.index.tolist() == sorted(want.index.tolist())
    assert (got["frequency"] > 0).all() and got["ipi_std_days"].gt(0).any()
    assert got["return_rate"].gt(0).any() and got["orders_previous"].gt(0).any()
    pd.testing.assert_frame_equal(got, want.loc[got.index], check_exact=False, rtol=1e-9,
                                  atol=1e-9)


def test_features_built_in_threads_at_once_are_those_built_one_by_one(clean) -> None:
    """Models build features in threads side by side; each call has its own DuckDB cursor."""
    from concurrent.futures import ThreadPoolExecutor

    from tailor.models.features import customer_features, default_as_of

    settings = load_settings().features
    tx = clean.transactions
    dates = [default_as_of(tx) - pd.Timedelta(days=d) for d in (0, 30, 60, 90, 120, 150)]
    alone = [customer_features(tx, d, settings) for d in dates]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(lambda d: customer_features(tx, d, settings), dates * 3))
    for i, frame in enumerate(together):
        pd.testing.assert_frame_equal(frame, alone[i % len(dates)])
