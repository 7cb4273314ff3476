"""Churn model: no leakage across cutoffs, beats recency on known truth, calibrated, portable."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from configs import load_settings
from configs.schema import ChurnSettings, FeatureSettings
from models.churn import (
    BASELINE_RATE_PREFIX,
    BASELINE_RECENCY_PREFIX,
    METRIC_NAMES,
    PROBABILITY,
    ChurnFit,
    ChurnModelError,
    choose_threshold,
    default_params,
    evaluate,
    fit_churn_model,
    new_study,
    permutation_importance_table,
    trials_frame,
    tune,
    validate_and_refit,
)
from models.churn_data import (
    ChurnData,
    ChurnDataError,
    cutoff_frame,
    plan_cutoffs,
    prepare_churn_data,
)
from models.churn_plots import importance_figure, reliability_figure, reliability_table
from models.features import churn_labels
from tailor.data.dataset import Dataset
from tailor.data.generate import generate
from tailor.data.validate import validate_dataset

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parents[2]
DAY = pd.Timedelta(days=1)


def _settings(**churn: object) -> tuple[FeatureSettings, ChurnSettings]:
    settings = load_settings()
    return settings.features, settings.churn.model_copy(update=churn)


@pytest.fixture(scope="module")
def generated() -> tuple[Dataset, pd.DataFrame]:
    """1,500 generated customers over two years, validated; plus the truth per customer."""
    settings = load_settings()
    data = generate(settings.generate.model_copy(update={"customers": 1500, "seed": 11}))
    clean = validate_dataset(data.dataset, settings.data).dataset
    return clean, data.truth["customers"]


@pytest.fixture(scope="module")
def churn_data(generated: tuple[Dataset, pd.DataFrame]) -> ChurnData:
    clean, _ = generated
    features, churn = _settings(n_cutoffs=3, step_days=60)
    return prepare_churn_data(clean.transactions, None, features, churn, clean.customers,
                              clean.products)


@pytest.fixture(scope="module")
def fits(churn_data: ChurnData) -> dict[str, ChurnFit]:
    _, churn = _settings(n_cutoffs=3, step_days=60)
    return {family: validate_and_refit(default_params(family), churn_data, churn)
            for family in ("logistic", "hist_gradient_boosting")}


def _toy_transactions(start: str, days: int, customers: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = customers * 12
    stamps = pd.Timestamp(start) + pd.to_timedelta(rng.uniform(0, days, n), unit="D")
    return pd.DataFrame({
        "order_id": [f"o{i}" for i in range(n)],
        "customer_id": [f"c{i % customers}" for i in range(n)],
        "product_id": [f"p{i % 7}" for i in range(n)],
        "quantity": rng.integers(1, 5, n),
        "unit_price": rng.uniform(1, 10, n),
        "timestamp": stamps.astype("datetime64[ns]"),
    })


# ---------------------------------------------------------------------------- cutoff planning


def test_plan_keeps_training_labels_before_the_validation_window() -> None:
    tx = _toy_transactions("2023-01-01", 700)
    _, churn = _settings(n_cutoffs=4, step_days=30, min_history_days=60)
    plan = plan_cutoffs(tx, "2024-11-01", 90, churn)
    assert plan.validation == pd.Timestamp("2024-11-01") - 90 * DAY
    assert plan.train and all(c + 90 * DAY <= plan.validation for c in plan.train)
    assert plan.refit[0] == plan.validation
    assert all(c + 90 * DAY <= plan.as_of for c in plan.refit)
    assert list(plan.train) == sorted(plan.train, reverse=True)
    # seasonal cutoffs: around the validation date a year earlier (train), as_of (refit)
    assert plan.validation - 364 * DAY in plan.train
    assert plan.as_of - 364 * DAY in plan.refit


def test_plan_skips_cutoffs_with_short_history_and_explains_when_none_remain() -> None:
    tx = _toy_transactions("2024-01-01", 330)
    _, churn = _settings(n_cutoffs=6, step_days=30, min_history_days=60)
    plan = plan_cutoffs(tx, None, 90, churn)
    first = tx["timestamp"].min()
    assert plan.skipped
    assert all(c - first >= 60 * DAY for c in plan.train + plan.refit)
    assert len(plan.train) < 6
    with pytest.raises(ChurnDataError, match="min_history_days"):
        plan_cutoffs(tx, None, 150, churn)
    with pytest.raises(ChurnDataError, match="not observable"):
        plan_cutoffs(tx, "2030-01-01", 90, churn)


def test_prepared_frames_ignore_everything_from_as_of_on() -> None:
    """Rewriting all transactions at/after as_of changes no training or validation row."""
    tx = _toy_transactions("2023-01-01", 700, customers=60)
    features, churn = _settings(n_cutoffs=3, step_days=30, min_history_days=60)
    as_of = pd.Timestamp("2024-09-01")
    before = prepare_churn_data(tx, as_of, features, churn)
    future = tx["timestamp"] >= as_of
    changed = tx.copy()
    changed.loc[future, "quantity"] = 99
    changed.loc[future, "customer_id"] = "c0"
    after = prepare_churn_data(changed, as_of, features, churn)
    pd.testing.assert_frame_equal(before.refit.features, after.refit.features)
    pd.testing.assert_series_equal(before.refit.labels, after.refit.labels)
    pd.testing.assert_frame_equal(before.train.features, after.train.features)
    # validation labels are the real ones (the window [as_of - H, as_of) is fully observed)
    expected = churn_labels(tx, before.plan.validation, 90)
    got = before.validation.labels.droplevel("cutoff")
    pd.testing.assert_series_equal(got, expected.loc[got.index], check_names=False)


# ---------------------------------------------------------------------------------- threshold


def test_threshold_minimises_cost_like_brute_force() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.round(np.clip(0.3 * y + rng.uniform(0, 0.7, 300), 0, 1), 2)  # ties on purpose
    for ratio in (0.2, 1.0, 3.0, 10.0):
        t = choose_threshold(y, p, ratio)
        candidates = np.concatenate([np.unique(p), [np.nextafter(p.max(), np.inf)]])
        costs = [ratio * ((p < c) & (y == 1)).sum() + ((p >= c) & (y == 0)).sum()
                 for c in candidates]
        flagged = p >= t
        cost = ratio * (~flagged & (y == 1)).sum() + (flagged & (y == 0)).sum()
        assert cost == pytest.approx(min(costs))
    assert choose_threshold(y, p, 10.0) <= choose_threshold(y, p, 0.2)


# ----------------------------------------------------------------------------- known truth


def test_beats_recency_on_generated_data(churn_data: ChurnData,
                                         fits: dict[str, ChurnFit]) -> None:
    val = churn_data.validation
    y = val.labels.to_numpy()
    recency = val.features["recency_days"].to_numpy()
    active = recency <= 60  # among recent buyers recency decides least: rate and rhythm matter
    assert 0.05 < y[active].mean() < 0.5
    boosted = fits["hist_gradient_boosting"].validation_metrics
    # recency alone is already ~0.94 here (long-gone customers are easy): the margin is small
    assert boosted["roc_auc"] >= boosted["baseline_recency_roc_auc"] + 0.005
    for family, fit in fits.items():
        p = fit.validated.predict_proba(val.features)
        model_auc = roc_auc_score(y[active], p[active])
        recency_auc = roc_auc_score(y[active], recency[active])
        assert model_auc >= recency_auc + 0.04, (family, model_auc, recency_auc)


def test_probabilities_track_latent_churn(churn_data: ChurnData, fits: dict[str, ChurnFit],
                                          generated: tuple[Dataset, pd.DataFrame]) -> None:
    """Customers whose latent churn time is before the window score far higher than others."""
    _, truth = generated
    val = churn_data.validation
    ids = val.features.index.get_level_values("customer_id")
    churn_time = truth.set_index("customer_id")["churn_time"].reindex(ids).to_numpy()
    gone = ~pd.isna(churn_time) & (churn_time < np.datetime64(churn_data.plan.validation))
    p = fits["logistic"].validated.predict_proba(val.features)
    assert gone.sum() > 50 and (~gone).sum() > 50
    assert roc_auc_score(gone, p) > 0.85
    assert p[gone].mean() > p[~gone].mean() + 0.3


def test_calibration_and_metric_names(fits: dict[str, ChurnFit]) -> None:
    for family, fit in fits.items():
        metrics = fit.validation_metrics
        assert set(METRIC_NAMES) <= set(metrics)
        assert {BASELINE_RECENCY_PREFIX + "roc_auc", BASELINE_RECENCY_PREFIX + "brier",
                BASELINE_RATE_PREFIX + "brier", BASELINE_RATE_PREFIX + "log_loss"} <= set(metrics)
        assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values()), family
        assert metrics["brier"] < 0.5 * metrics[BASELINE_RATE_PREFIX + "brier"], family
        assert metrics["brier"] < metrics[BASELINE_RECENCY_PREFIX + "brier"] + 0.01, family
        assert metrics["log_loss"] < metrics[BASELINE_RATE_PREFIX + "log_loss"], family
        assert metrics["lift_top_decile"] > 1.5
        assert 0 < metrics["threshold"] < 1
        assert fit.final.threshold == fit.validated.threshold
        assert max(fit.final.trained_cutoffs) > max(fit.validated.trained_cutoffs)


def test_scores_an_out_of_time_window(generated: tuple[Dataset, pd.DataFrame],
                                      churn_data: ChurnData,
                                      fits: dict[str, ChurnFit]) -> None:
    """The served model scores a later, unseen window with the same metric names."""
    clean, _ = generated
    features, churn = _settings(n_cutoffs=3, step_days=60)
    early = prepare_churn_data(clean.transactions, churn_data.plan.validation, features, churn,
                               clean.customers, clean.products)
    fit = validate_and_refit(default_params("hist_gradient_boosting"), early, churn)
    test = cutoff_frame(clean.transactions, churn_data.plan.validation, 90, features, churn,
                        clean.customers, clean.products)
    metrics = evaluate(fit.final, test, churn)
    assert set(metrics) == set(fits["hist_gradient_boosting"].validation_metrics)
    assert metrics["roc_auc"] > metrics["baseline_recency_roc_auc"]
    assert max(early.refit.cutoffs) < churn_data.plan.validation


# ------------------------------------------------------------------------------------ tuning


def test_tune_is_deterministic_and_searches_both_families(churn_data: ChurnData) -> None:
    _, churn = _settings(n_cutoffs=3, step_days=60)
    results = []
    for _ in range(2):
        study = new_study(churn)
        best = tune(study, churn_data, churn, n_trials=5)
        results.append((best, trials_frame(study)))
    (best, table), (best2, table2) = results
    assert best == best2
    pd.testing.assert_frame_equal(table, table2)
    assert set(table["family"]) == {"logistic", "hist_gradient_boosting"}
    assert {"log_loss", "roc_auc", "calibration"} <= set(table.columns)
    # conditional space: a trial only carries its own family's parameters
    for _, row in table.iterrows():
        own = "logistic_c" if row["family"] == "logistic" else "hgb_max_iter"
        other = "hgb_max_iter" if row["family"] == "logistic" else "logistic_c"
        assert pd.notna(row[own]) and pd.isna(row[other])
    with pytest.raises(ValueError, match="minimise"):
        tune(optuna.create_study(direction="maximize"), churn_data, churn, n_trials=1)


# --------------------------------------------------------------------- predictor, importance


def test_predictor_pickles_and_predicts_identically_in_a_fresh_process(
        tmp_path: Path, churn_data: ChurnData, fits: dict[str, ChurnFit]) -> None:
    model = fits["hist_gradient_boosting"].final
    frame = churn_data.validation.features.droplevel("cutoff")
    expected = model.predict(frame)
    assert list(expected.columns) == [PROBABILITY]
    assert expected.index.equals(frame.index)
    assert expected[PROBABILITY].between(0, 1).all()
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    frame.to_pickle(tmp_path / "frame.pkl")
    script = textwrap.dedent(f"""
        import pickle, pandas as pd
        model = pickle.loads(open({str(tmp_path / 'model.pkl')!r}, 'rb').read())
        frame = pd.read_pickle({str(tmp_path / 'frame.pkl')!r})
        model.predict(frame).to_pickle({str(tmp_path / 'out.pkl')!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "out.pkl"), expected)


def test_refit_is_deterministic(churn_data: ChurnData, fits: dict[str, ChurnFit]) -> None:
    _, churn = _settings(n_cutoffs=3, step_days=60)
    again = validate_and_refit(default_params("hist_gradient_boosting"), churn_data, churn)
    assert again.validation_metrics == fits["hist_gradient_boosting"].validation_metrics
    frame = churn_data.validation.features
    np.testing.assert_array_equal(again.final.predict_proba(frame),
                                  fits["hist_gradient_boosting"].final.predict_proba(frame))


def test_predict_names_missing_columns_and_bad_values(churn_data: ChurnData,
                                                      fits: dict[str, ChurnFit]) -> None:
    model = fits["logistic"].final
    frame = churn_data.validation.features.droplevel("cutoff").head(20).copy()
    with pytest.raises(ChurnModelError, match="recency_days"):
        model.predict(frame.drop(columns="recency_days"))
    broken = frame.copy()
    broken.iloc[3, broken.columns.get_loc("frequency")] = np.nan
    with pytest.raises(ChurnModelError, match=f"'frequency'.*{frame.index[3]}"):
        model.predict(broken)
    # an attribute level never seen in training is scored, not rejected
    unseen = frame.assign(attr_region="atlantis")
    assert unseen.shape[0] == model.predict(unseen)[PROBABILITY].notna().sum()
    assert model.predict(frame.iloc[:0]).empty


def test_fit_refuses_a_single_class(churn_data: ChurnData) -> None:
    _, churn = _settings()
    train = churn_data.train
    mask = (train.labels == 1).to_numpy()
    from models.churn_data import ChurnFrame

    with pytest.raises(ChurnModelError, match="all have label"):
        fit_churn_model(default_params(), ChurnFrame(train.features[mask], train.labels[mask]),
                        churn)


def test_importance_and_figures(churn_data: ChurnData, fits: dict[str, ChurnFit]) -> None:
    _, churn = _settings(importance_repeats=2)
    model = fits["hist_gradient_boosting"].validated
    table = permutation_importance_table(model, churn_data.validation, churn)
    assert list(table.columns) == ["feature", "importance_mean", "importance_std"]
    assert set(table["feature"]) == set(model.columns)
    assert table["importance_mean"].is_monotonic_decreasing
    assert "recency_days" in set(table["feature"].head(3))
    assert isinstance(importance_figure(table), Figure)
    y = churn_data.validation.labels.to_numpy()
    p = model.predict_proba(churn_data.validation.features)
    rel = reliability_table(y, p, 10)
    assert rel["rows"].sum() == len(y)
    # roughly calibrated in the large (measured: 0.55 predicted vs 0.45 observed). The gap is
    # the validation window's season (Christmas brings gift buyers back), which calibration on
    # earlier windows cannot fully know; Brier is still far below the base rate's (see above).
    assert abs(p.mean() - y.mean()) < 0.15
    assert rel["observed_rate"].iloc[-1] > 0.8 > 0.1 > rel["observed_rate"].iloc[0]
    fig = reliability_figure(y, {"model": p, "recency": model.baseline_proba(
        churn_data.validation.features)})
    assert isinstance(fig, Figure)


# ---------------------------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_online_retail_beats_recency_out_of_time(online_retail_file: Path) -> None:
    """Train before 2011-09-10, score customers on 2011-09-10..2011-12-08 (see benchmarks)."""
    from tailor.data.importers.online_retail import import_online_retail

    settings = load_settings()
    raw = import_online_retail(online_retail_file)
    data_settings = settings.data.model_copy(update={"max_rejected_share": 0.5})  # guests
    clean = validate_dataset(raw, data_settings).dataset
    cutoff = pd.Timestamp("2011-09-10")
    data = prepare_churn_data(clean.transactions, cutoff, settings.features, settings.churn,
                              clean.customers, clean.products)
    fit = validate_and_refit(default_params("logistic"), data, settings.churn)
    test = cutoff_frame(clean.transactions, cutoff, 90, settings.features, settings.churn,
                        clean.customers, clean.products)
    metrics = evaluate(fit.final, test, settings.churn)
    assert metrics["n_customers"] > 3000
    assert metrics["baseline_recency_roc_auc"] == pytest.approx(0.683, abs=0.01)
    assert metrics["roc_auc"] > metrics["baseline_recency_roc_auc"] + 0.04
