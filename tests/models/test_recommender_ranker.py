"""The learned ranker: its candidates, its windows, no look-ahead, and the repurchase cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tailor.configs.schema import FeatureSettings, RecommenderSettings
from tailor.models import recommender_ranker as ranker
from tailor.models.recommender import fit_recommender
from tailor.models.recommender_ranker import (
    FEATURES,
    RANKED_OFFSET,
    _item_neighbours,
    _top_dense,
    _top_per_row,
    candidate_signals,
    candidates,
    fit_ranker,
    labelled,
    ranked_everyone,
    training_windows,
)

DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2023-01-01")
FAST = {"epochs": 3, "no_components": 8}


def _line(order: str, customer: str, product: str, day: float) -> dict:
    return {"order_id": order, "customer_id": customer, "product_id": product, "quantity": 1,
            "unit_price": 2.0, "timestamp": START + day * DAY}


def _cycles(customers: int = 240, cycle: float = 30.0, days: int = 400, seed: int = 0
            ) -> pd.DataFrame:
    """Each customer re-buys two of 20 products every ``cycle`` days, at their own phases."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        for slot, product in enumerate(rng.choice(20, size=2, replace=False)):
            phase = rng.uniform(0, cycle)
            for k, day in enumerate(np.arange(phase, days, cycle)):
                jitter = rng.normal(0, 1.0)
                rows.append(_line(f"o{c}-{slot}-{k}", f"c{c}", f"p{product}", day + jitter))
    frame = pd.DataFrame(rows)
    return frame[frame["timestamp"] >= START].reset_index(drop=True)


def test_candidates_are_own_popular_and_co_purchased() -> None:
    tx = pd.DataFrame([
        _line("1", "a", "x", 1), _line("2", "a", "x", 5), _line("3", "a", "y", 6),
        _line("4", "b", "y", 2), _line("5", "b", "z", 3), _line("6", "c", "z", 40),
        _line("7", "c", "w", 41),
    ])
    settings = RecommenderSettings(candidates_popular=1, candidates_neighbours=5)
    frame = candidates(tx, START + 50 * DAY, 30, settings).frame
    assert list(frame.columns) == ["customer_id", "product_id", *FEATURES]
    got = frame.groupby("customer_id")["product_id"].agg(set).to_dict()
    assert {"x", "y"} <= got["a"]  # own
    assert "z" in got["a"]  # co-bought with y by b
    assert "w" in got["b"]  # co-bought with z by c
    row = frame.set_index(["customer_id", "product_id"]).loc[("a", "x")]
    assert row["n"] == 2 and row["r_n"] == 1 and row["share"] == pytest.approx(2 / 3)
    assert row["last"] == pytest.approx(45) and row["own_cycle"] == pytest.approx(4)
    assert frame.set_index(["customer_id", "product_id"]).loc[("a", "z"), "n"] == 0


def test_nothing_at_or_after_the_date_is_read() -> None:
    tx = _cycles(customers=60)
    at = START + 300 * DAY
    before = candidates(tx, at, 30, RecommenderSettings()).frame
    later = tx["timestamp"] >= at
    changed = tx.copy()
    changed.loc[later, "product_id"] = "p0"
    changed.loc[later, "customer_id"] = "c0"
    pd.testing.assert_frame_equal(before, candidates(changed, at, 30, RecommenderSettings()).frame)


def test_windows_are_full_then_shorter_then_none() -> None:
    settings = RecommenderSettings(ranker_windows=3, ranker_step_days=30)
    full = training_windows(START, START + 400 * DAY, 90, 30, 14, settings)
    assert full == [(START + 310 * DAY, 90), (START + 280 * DAY, 90), (START + 250 * DAY, 90)]
    short = training_windows(START, START + 120 * DAY, 90, 30, 14, settings)
    assert short == [(START + 30 * DAY, 90), (START + 30 * DAY, 60), (START + 30 * DAY, 30)]
    assert training_windows(START, START + 40 * DAY, 90, 30, 14, settings) == []


def test_an_item_that_is_due_ranks_above_one_just_bought() -> None:
    """Two products on the same 30-day cycle: over a 14-day horizon the one last bought ~a cycle
    ago comes back, the one bought days ago does not. Counts are equal; the cycle decides."""
    tx = _cycles()
    as_of = START + 400 * DAY
    features = FeatureSettings(horizon_days=14)
    settings = RecommenderSettings(ranker=True, ranker_windows=3, ranker_step_days=7)
    windows = training_windows(START, as_of, 14, 30, 7, settings)
    ranker = fit_ranker(tx, windows, settings, 14)
    assert ranker is not None
    frame = candidates(tx, as_of, 14, settings).frame
    own = frame[frame["n"] > 0].assign(score=ranker.score(frame[frame["n"] > 0]))
    pairs = own.sort_values("last").groupby("customer_id")
    due, fresh = pairs.nth(-1), pairs.nth(0)  # the longest and the shortest since last bought
    both = due.set_index("customer_id").join(fresh.set_index("customer_id"), rsuffix="_fresh")
    clear = both[(both["last"] > 20) & (both["last_fresh"] < 10)]
    assert len(clear) > 30
    assert (clear["score"] > clear["score_fresh"]).mean() > 0.9

    model = fit_recommender(tx, as_of, features, settings, {**FAST, "ranker": True})
    assert model.ranked is not None and model.ranked.data.min() > RANKED_OFFSET
    top = model.recommend(list(clear.index), k=1).set_index("customer_id")["product_id"]
    assert (top.reindex(clear.index) == clear["product_id"]).mean() > 0.9


def test_candidates_for_some_customers_are_their_rows_of_everyone() -> None:
    tx = _cycles(customers=120, seed=3)
    settings = RecommenderSettings(candidates_popular=5, candidates_neighbours=5)
    as_of = START + 300 * DAY
    everyone = candidates(tx, as_of, 30, settings).frame
    asked = np.array(["c3", "c17", "c64", "nobody"], dtype=object)
    some = candidates(tx, as_of, 30, settings, only=asked).frame
    assert set(some["customer_id"]) == {"c3", "c17", "c64"}
    want = everyone[everyone["customer_id"].isin(asked)].reset_index(drop=True)
    pd.testing.assert_frame_equal(some.reset_index(drop=True), want)


def test_ranker_windows_learn_from_a_seeded_sample_of_their_buyers() -> None:
    tx = _cycles(customers=400, seed=5)
    start = START + 300 * DAY
    full = labelled(tx, start, 30, RecommenderSettings(ranker_max_customers=None), 30)
    capped = RecommenderSettings(ranker_max_customers=100)
    part = labelled(tx, start, 30, capped, 30)
    assert full["customer_id"].nunique() > 300
    assert part["customer_id"].nunique() == 100
    again = labelled(tx, start, 30, capped, 30)
    pd.testing.assert_frame_equal(part, again)  # same seed, same customers
    # each sampled customer's rows and labels are those of the unsampled windows
    keys = ["customer_id", "product_id"]
    want = full[full["customer_id"].isin(part["customer_id"])]
    pd.testing.assert_frame_equal(part.sort_values(keys).reset_index(drop=True),
                                  want.sort_values(keys).reset_index(drop=True))


def test_blocked_co_purchase_gives_what_the_whole_products_give() -> None:
    """The item x item cosine a block of products at a time, and the customers' co-purchase
    scores a dense block of customers at a time, keep exactly the cells the whole sparse
    products keep (ties included: the values are few and repeat)."""
    rng = np.random.default_rng(11)
    bought = sp.random(300, 90, density=0.06, format="csr", random_state=rng)
    bought.data[:] = 1.0
    norms = np.sqrt(np.asarray(bought.sum(axis=0)).ravel()) + 1e-9
    scaled = sp.csc_matrix(bought.multiply(1.0 / norms[None, :]))
    whole = sp.csr_matrix(scaled.T @ scaled)
    whole.setdiag(0)
    whole.eliminate_zeros()
    want = sp.csr_matrix(_top_per_row(whole, 5))
    for block in (7, 90, 1_000):
        got = _item_neighbours(bought, 5, block=block)
        assert (got != want).nnz == 0, block

    co = sp.csr_matrix(bought @ want.T)
    co.data = np.round(co.data, 1)  # many equal values: the tie rule decides
    top = _top_per_row(co, 4)
    rows, cols = _top_dense(co.toarray(), 4)
    assert sorted(zip(rows, cols, strict=True)) == sorted(zip(top.row, top.col, strict=True))


def test_candidates_do_not_depend_on_the_block_size(monkeypatch) -> None:
    tx = _cycles(customers=150, seed=8)
    settings = RecommenderSettings(candidates_popular=3, candidates_neighbours=4)
    as_of = START + 300 * DAY
    whole = candidates(tx, as_of, 30, settings).frame
    monkeypatch.setattr(ranker, "DENSE_CELLS", 20 * 7)  # 7 customers per block
    pd.testing.assert_frame_equal(candidates(tx, as_of, 30, settings).frame, whole)


def test_ranking_a_block_of_customers_at_a_time_gives_everyone_s_ranking() -> None:
    """The served model's ranked candidates, built and ranked a few customers at a time, are
    the cells and values of ranking everyone's candidates at once, in one block (and cover
    everyone)."""
    tx = _cycles(customers=150, seed=9)
    as_of = START + 400 * DAY
    settings = RecommenderSettings(ranker=True, ranker_windows=2, ranker_step_days=14,
                                   candidates_popular=4, candidates_neighbours=4)
    model = fit_ranker(tx, training_windows(START, as_of, 30, 30, 7, settings), settings, 30)
    assert model is not None
    signals = candidate_signals(tx, as_of, 30, settings)
    users = np.array([*sorted(signals.user_ids), "never-bought"], dtype=object)
    items = np.array(sorted(signals.item_ids), dtype=object)
    whole = ranked_everyone(model, signals, users, items, 5, settings, block=len(users))
    assert np.diff(whole.indptr)[:-1].min() == 5  # every buyer has its 5, the last none
    for block in (1, 7, 149, 1_000):
        got = ranked_everyone(model, signals, users, items, 5, settings, block=block)
        assert got.shape == whole.shape and got.dtype == whole.dtype
        assert (got != whole).nnz == 0, block


def test_the_ranker_is_chosen_on_the_tuning_customers() -> None:
    """With ``ranker: auto`` the choice is made on the tuning sample: the same decision and
    validation precisions as the uncapped choice on exactly those customers' history."""
    from tailor.models.customer_sample import customers_sample
    from tailor.models.recommender import choose_ranker

    tx = _cycles(customers=300, seed=12)
    as_of = START + 400 * DAY
    features = FeatureSettings(horizon_days=30)
    capped = RecommenderSettings(ranker="auto", ranker_windows=2, ranker_step_days=14,
                                 tuning_max_customers=120)
    whole = capped.model_copy(update={"tuning_max_customers": None})
    chosen, figures = choose_ranker(tx, as_of, 30, features, capped, FAST)
    sample = customers_sample(tx[tx["timestamp"] < as_of], 120, capped.seed)
    assert sample["customer_id"].nunique() == 120
    assert (chosen, figures) == choose_ranker(sample, as_of, 30, features, whole, FAST)
    assert set(figures) == {"ranker_precision_at_10", "blend_precision_at_10"}
    assert figures != choose_ranker(tx, as_of, 30, features, whole, FAST)[1]
