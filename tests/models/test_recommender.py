"""Recommender on generated data with known tastes, plus metric and fast-path correctness."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

from tailor.configs.schema import GenerateSettings, Settings
from tailor.data.generate import generate
from tailor.models.ranking_metrics import evaluate_ranking, top_k
from tailor.models.recommender import (
    default_params,
    evaluate,
    fit_lightfm,
    fit_recommender,
    prepare,
    representations,
    tune,
)
from tailor.models.recommender_model import RecommenderModel

ROOT = Path(__file__).resolve().parents[2]
START = pd.Timestamp("2023-01-01")
AS_OF = START + pd.Timedelta(days=410)
HORIZON = 90
FAST = {"epochs": 8, "no_components": 16}


@pytest.fixture(scope="module")
def generated():
    data = generate(GenerateSettings(customers=800, products=150, days=500, messy_share=0.0,
                                     return_share=0.0, seed=7))
    return data.dataset


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="module")
def fitted(generated, settings) -> tuple[RecommenderModel, dict[str, float]]:
    ds = generated
    model = fit_recommender(ds.transactions, AS_OF, settings.features, settings.recommender,
                            {**default_params(), **FAST}, ds.customers, ds.products)
    return model, evaluate(model, ds.transactions, HORIZON, ds.customers)


# -- ranking metrics ---------------------------------------------------------------------------
def test_metrics_on_a_hand_checked_case() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.7, 0.0], [0.1, 0.2, 0.3, 0.4, 0.5]])
    truth = sp.csr_matrix(np.array([[0, 1, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))
    m = evaluate_ranking(lambda rows: scores[rows], truth, k=2, with_auc=False)
    # user 0: top-2 = items 0, 1 -> one hit at rank 2; user 1: top-2 = 4, 3 -> hit at rank 1
    assert m["precision_at_2"] == pytest.approx((0.5 + 0.5) / 2)
    assert m["recall_at_2"] == pytest.approx((0.5 + 1.0) / 2)
    ndcg0 = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert m["ndcg_at_2"] == pytest.approx((ndcg0 + 1.0) / 2)
    assert m["map_at_2"] == pytest.approx((0.5 / 2 + 1.0) / 2)
    assert m["catalogue_coverage"] == pytest.approx(4 / 5)


def test_auc_matches_sklearn_and_ignores_excluded_items() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(30, 40))
    truth = sp.csr_matrix((rng.random((30, 40)) < 0.2).astype(np.float32))
    exclude = sp.csr_matrix(((rng.random((30, 40)) < 0.1) & (truth.toarray() == 0))
                            .astype(np.float32))
    m = evaluate_ranking(lambda rows: scores[rows], truth, k=5, exclude=exclude)
    dense, ex = truth.toarray() > 0, exclude.toarray() > 0
    expected = [roc_auc_score(dense[u][~ex[u]], scores[u][~ex[u]]) for u in range(30)
                if 0 < dense[u].sum() < (~ex[u]).sum()]
    assert m["auc"] == pytest.approx(np.mean(expected))


def test_top_k_is_sorted_best_first() -> None:
    scores = np.random.default_rng(1).normal(size=(5, 50))
    top = top_k(scores, 7)
    assert (top == np.argsort(-scores, axis=1)[:, :7]).all()


# -- known truth -------------------------------------------------------------------------------
def test_beats_popularity_on_the_holdout(fitted) -> None:
    _, m = fitted
    assert m["n_eval_users"] > 50
    assert m["precision_at_10"] > m["baseline_popularity_precision_at_10"] + 0.05
    # LightFM alone learns the latent tastes too, not only the repeat signal
    assert m["lightfm_precision_at_10"] > m["baseline_popularity_precision_at_10"]
    assert m["precision_at_10"] >= m["baseline_repeat_precision_at_10"] - 0.01
    for key in ("recall_at_10", "ndcg_at_10", "map_at_10", "auc", "catalogue_coverage"):
        assert 0.0 <= m[key] <= 1.0


def test_cold_start_beats_random(fitted) -> None:
    _, m = fitted
    assert m["n_cold_users"] > 10
    assert m["cold_precision_at_10"] > 2 * m["baseline_random_cold_precision_at_10"]
    assert "baseline_popularity_cold_precision_at_10" in m


def test_fast_path_equals_lightfm_predict(generated, settings) -> None:
    ds = generated
    inputs = prepare(ds.transactions, AS_OF, settings.features, settings.recommender,
                     ds.customers, ds.products)
    params = {**default_params(), **FAST, "epochs": 3}
    model = fit_lightfm(inputs.data, params, seed=1)
    reps = representations(model, inputs.data, params)
    items = np.arange(len(inputs.data.item_ids), dtype=np.int32)
    user_biases, _ = model.get_user_representations(inputs.data.user_features)
    for user in (0, 17, len(inputs.data.user_ids) - 1):
        slow = model.predict(np.full(len(items), user, dtype=np.int32), items,
                             user_features=inputs.data.user_features,
                             item_features=inputs.data.item_features, num_threads=1)
        fast = reps.scores(np.array([user]))[0]
        np.testing.assert_allclose(slow - user_biases[user], fast, rtol=1e-4, atol=1e-4)
        assert (np.argsort(-slow)[:10] == np.argsort(-fast)[:10]).all()


def test_recommend_shape_exclusion_and_unknown_ids(fitted, generated) -> None:
    model, _ = fitted
    ids = model.user_ids[:20]
    recs = model.recommend(ids, k=5)
    assert list(recs.columns) == ["customer_id", "rank", "product_id", "score"]
    assert len(recs) == 100 and recs.groupby("customer_id")["rank"].apply(list).map(
        lambda r: r == [1, 2, 3, 4, 5]).all()
    assert (recs.groupby("customer_id")["score"].diff().dropna() <= 0).all()
    bought = set(map(tuple, generated.transactions.loc[
        (generated.transactions.timestamp < AS_OF) & (generated.transactions.quantity > 0),
        ["customer_id", "product_id"]].to_numpy()))
    pairs = set(zip(recs.customer_id, recs.product_id, strict=True))
    assert pairs & bought, "repeat purchases are allowed by default"
    excluded = model.recommend(ids, k=5, exclude_purchased=True)
    assert not set(zip(excluded.customer_id, excluded.product_id, strict=True)) & bought
    with pytest.raises(KeyError, match="unseen"):
        model.recommend(["nobody"])


def test_predict_dispatches_known_and_cold(fitted, generated) -> None:
    model, _ = fitted
    cold = generated.customers.loc[~model.known(generated.customers.customer_id)].head(3)
    assert len(cold) == 3
    frame = pd.concat([pd.DataFrame({"customer_id": model.user_ids[:2]}), cold])
    out = model.predict(frame)
    assert set(out.customer_id) == set(frame.customer_id)
    assert len(out) == 5 * model.k
    cold_direct = model.recommend_cold(cold)
    pd.testing.assert_frame_equal(out.tail(3 * model.k).reset_index(drop=True), cold_direct)


def test_pickle_round_trip_in_a_fresh_process(fitted, generated, tmp_path) -> None:
    model, _ = fitted
    cold = generated.customers.loc[~model.known(generated.customers.customer_id)].head(2)
    frame = pd.concat([pd.DataFrame({"customer_id": model.user_ids[:3]}), cold])
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    frame.to_pickle(tmp_path / "frame.pkl")
    code = ("import pickle, sys, pandas as pd; d = sys.argv[1]; "
            "m = pickle.load(open(d + '/model.pkl', 'rb')); "
            "m.predict(pd.read_pickle(d + '/frame.pkl')).to_pickle(d + '/out.pkl')")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=ROOT)
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "out.pkl"), model.predict(frame))


def test_same_seed_same_metrics(fitted, generated, settings) -> None:
    _, first = fitted
    ds = generated
    again = fit_recommender(ds.transactions, AS_OF, settings.features, settings.recommender,
                            {**default_params(), **FAST}, ds.customers, ds.products)
    assert evaluate(again, ds.transactions, HORIZON, ds.customers) == first


def test_tuning_never_sees_the_test_window(generated, settings) -> None:
    """Tuning on all rows or only on rows before as_of gives the same study."""
    ds = generated
    rec = settings.recommender.model_copy(update={
        "max_epochs": 2, "losses": ["warp"], "blend_lightfm_weights": [0.0, 0.5],
        "blend_popularity_weights": [0.1], "repeat_half_lives_days": [None]})
    results = []
    for tx in (ds.transactions, ds.transactions.loc[ds.transactions.timestamp < AS_OF]):
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=3))
        best = tune(study, tx, AS_OF, settings.features, rec, ds.customers, ds.products,
                    n_trials=2)
        results.append((best, [t.value for t in study.trials]))
    assert results[0] == results[1]
    best = results[0][0]
    assert {"loss", "no_components", "epochs", "w_lightfm", "w_popularity",
            "cold_lightfm"} <= set(best)
    assert 0 < max(results[0][1]) <= 1


def test_precision_curve_and_figures(fitted, generated) -> None:
    from matplotlib.figure import Figure

    from tailor.models.recommender_plots import plot_precision_curve, precision_curve

    model, metrics = fitted
    curve = precision_curve(model, generated.transactions, HORIZON, ks=(1, 5, 10))
    assert curve.loc[10, "model precision"] == pytest.approx(metrics["precision_at_10"])
    assert curve["model recall"].is_monotonic_increasing
    figure = plot_precision_curve(curve)
    assert isinstance(figure, Figure)
    for ax in figure.axes:  # titled, and k is a count: whole-number ticks only
        assert "higher is better" in ax.get_title()
        assert all(float(t).is_integer() for t in ax.get_xticks())
