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

from tailor.configs import load_settings
from tailor.configs.schema import ChurnSettings, FeatureSettings
from tailor.data.dataset import Dataset
from tailor.data.generate import generate
from tailor.data.validate import validate_dataset
from tailor.models import btyd
from tailor.models.churn import (
    BASELINE_RATE_PREFIX,
    BASELINE_RECENCY_PREFIX,
    METRIC_NAMES,
    PROBABILITY,
    ChurnFit,
    ChurnModelError,
    choose_model_weight,
    choose_threshold,
    default_params,
    evaluate,
    fit_churn_model,
    fit_twin_and_served,
    new_study,
    permutation_importance_table,
    trials_frame,
    tune,
    with_btyd,
)
from tailor.models.churn_data import (
    GROUPED_CV,
    OUT_OF_TIME,
    ChurnData,
    ChurnDataError,
    ChurnFrame,
    cutoff_frame,
    plan_cutoffs,
    plan_windows_for_churn,
    prepare_churn_data,
)
from tailor.models.churn_plots import importance_figure, reliability_figure, reliability_table
from tailor.models.customer_sample import sample_ids
from tailor.models.features import churn_labels, default_as_of
from tailor.models.windows import InsufficientHistoryError

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parents[2]
DAY = pd.Timedelta(days=1)


def _settings(**churn: object) -> tuple[FeatureSettings, ChurnSettings]:
    settings = load_settings()
    return settings.features, settings.churn.model_copy(update=churn)


def _prepare(tx: pd.DataFrame, as_of: pd.Timestamp | str, features: FeatureSettings,
             churn: ChurnSettings, customers: pd.DataFrame | None = None,
             products: pd.DataFrame | None = None) -> ChurnData:
    windows = plan_windows_for_churn(tx, as_of, features, churn)
    return prepare_churn_data(tx, windows, features, churn, customers, products)


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
    return _prepare(clean.transactions, default_as_of(clean.transactions), features, churn,
                    clean.customers, clean.products)


@pytest.fixture(scope="module")
def fits(churn_data: ChurnData) -> dict[str, ChurnFit]:
    _, churn = _settings(n_cutoffs=3, step_days=60)
    return {family: fit_twin_and_served(default_params(family), churn_data, churn)
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


def test_every_label_window_of_a_fit_ends_by_its_date() -> None:
    _, churn = _settings(n_cutoffs=4, step_days=30, min_history_days=60)
    first, until = pd.Timestamp("2023-01-01"), pd.Timestamp("2024-11-01")
    plan = plan_cutoffs(first, until, 90, churn)
    assert plan.cutoffs[0] == until - 90 * DAY  # the latest complete window
    assert all(c + 90 * DAY <= until for c in plan.cutoffs)
    assert list(plan.cutoffs) == sorted(plan.cutoffs, reverse=True)
    # seasonal cutoffs: around the predicted window's start a year earlier
    assert until - 364 * DAY in plan.cutoffs
    assert not plan.skipped


def test_layout_served_twin_and_tuning_with_two_years() -> None:
    """Served: cutoffs up to as_of - H; twin: up to S - H; tuning out of time before S - H."""
    tx = _toy_transactions("2023-01-01", 700, customers=60)
    features, churn = _settings(n_cutoffs=3, step_days=30, min_history_days=60)
    as_of = pd.Timestamp("2024-11-01")
    data = _prepare(tx, as_of, features, churn)
    start = data.windows.holdout_start
    assert start == as_of - 90 * DAY and not data.windows.notes
    assert data.plans["served"].cutoffs[0] == as_of - 90 * DAY
    assert data.plans["twin"].cutoffs[0] == start - 90 * DAY
    assert data.tuning.method == OUT_OF_TIME
    assert max(data.tuning.train.cutoffs) + 90 * DAY <= start - 90 * DAY
    assert data.tuning.validation.cutoffs == (start - 90 * DAY,)
    assert data.holdout.cutoffs == (start,)


def test_nine_months_tune_by_grouped_folds_and_six_months_shorten_the_holdout() -> None:
    features, churn = _settings()  # the defaults: H = 90, 60 days of history per cutoff
    nine = _toy_transactions("2024-01-01", 273)
    data = _prepare(nine, default_as_of(nine), features, churn)
    assert data.windows.holdout_days == 90
    assert data.tuning.method == GROUPED_CV and data.tuning.validation is None
    assert any("customer-grouped folds" in note for note in data.windows.notes)
    assert len(data.plans["served"].cutoffs) > len(data.plans["twin"].cutoffs) >= 1

    six = _toy_transactions("2024-01-01", 182)
    data = _prepare(six, default_as_of(six), features, churn)
    assert 14 <= data.windows.holdout_days < 90
    assert any("holdout shortened" in note for note in data.windows.notes)
    labels = churn_labels(six, data.windows.holdout_start, data.windows.holdout_days)
    got = data.holdout.labels.droplevel("cutoff")
    pd.testing.assert_series_equal(got, labels.loc[got.index], check_names=False)


def test_below_one_label_window_the_error_names_rule_dates_and_settings() -> None:
    features, churn = _settings()
    short = _toy_transactions("2024-01-01", 140)
    with pytest.raises(InsufficientHistoryError) as info:
        plan_windows_for_churn(short, default_as_of(short), features, churn)
    message = str(info.value)
    assert "\n" not in message
    for needed in ("churn.min_history_days", "features.horizon_days",
                   "features.min_holdout_days", "2024-01-01", "--as-of"):
        assert needed in message, needed
    with pytest.raises(InsufficientHistoryError, match="after the data's end"):
        plan_windows_for_churn(short, "2030-01-01", features, churn)
    assert issubclass(ChurnDataError, InsufficientHistoryError)


def test_prepared_frames_ignore_everything_from_as_of_on() -> None:
    """Rewriting all transactions at/after as_of changes no row of any frame."""
    tx = _toy_transactions("2023-01-01", 700, customers=60)
    features, churn = _settings(n_cutoffs=3, step_days=30, min_history_days=60)
    as_of = pd.Timestamp("2024-09-01")
    before = _prepare(tx, as_of, features, churn)
    future = tx["timestamp"] >= as_of
    changed = tx.copy()
    changed.loc[future, "quantity"] = 99
    changed.loc[future, "customer_id"] = "c0"
    after = _prepare(changed, as_of, features, churn)
    for part in ("served", "twin", "holdout"):
        pd.testing.assert_frame_equal(getattr(before, part).features,
                                      getattr(after, part).features)
        pd.testing.assert_series_equal(getattr(before, part).labels,
                                       getattr(after, part).labels)
    # the served model's newest labels are the real ones ([as_of - H, as_of) is observed)
    newest = as_of - 90 * DAY
    expected = churn_labels(tx, newest, 90)
    got = before.served.select([newest]).labels.droplevel("cutoff")
    pd.testing.assert_series_equal(got, expected.loc[got.index], check_names=False)


# ---------------------------------------------------------------------------------- threshold


def test_capped_tuning_keeps_every_cutoff_of_the_seeded_customers_only(
        generated: tuple[Dataset, pd.DataFrame], churn_data: ChurnData) -> None:
    """The study and the threshold learn on a customer sample; the twin, the served model and
    the holdout keep everyone."""
    clean, _ = generated
    features, churn = _settings(n_cutoffs=3, step_days=60, tuning_max_customers=300)
    data = _prepare(clean.transactions, default_as_of(clean.transactions), features, churn,
                    clean.customers, clean.products)
    full = churn_data.tuning
    chosen = sample_ids(full.customer_ids(), 300, churn.seed)
    assert chosen is not None and len(chosen) == 300
    for got, every in ((data.tuning.train, full.train),
                       (data.tuning.validation, full.validation)):
        assert set(got.customer_ids) <= set(chosen)
        expected = every.of_customers(chosen)
        pd.testing.assert_frame_equal(got.features, expected.features)
        pd.testing.assert_series_equal(got.labels, expected.labels)
        assert got.cutoffs == every.cutoffs
    assert len(set(data.tuning.customer_ids())) == 300 < len(set(full.customer_ids()))
    for name in ("twin", "served", "holdout"):
        pd.testing.assert_frame_equal(getattr(data, name).features,
                                      getattr(churn_data, name).features)
    assert any("churn.tuning_max_customers" in note for note in data.windows.notes)
    assert not any("tuning_max_customers" in note for note in churn_data.windows.notes)


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
    """The twin, judged on its holdout, beats recency alone (most among recent buyers)."""
    _, churn = _settings(n_cutoffs=3, step_days=60)
    holdout = churn_data.holdout
    y = holdout.labels.to_numpy()
    recency = holdout.features["recency_days"].to_numpy()
    active = recency <= 60  # among recent buyers recency decides least: rate and rhythm matter
    assert 0.05 < y[active].mean() < 0.5
    boosted = evaluate(fits["hist_gradient_boosting"].twin, holdout, churn)
    # recency alone is already ~0.94 here (long-gone customers are easy): the margin is small
    assert boosted["roc_auc"] >= boosted["baseline_recency_roc_auc"] + 0.005
    for family, fit in fits.items():
        p = fit.twin.predict_proba(holdout.features)
        model_auc = roc_auc_score(y[active], p[active])
        recency_auc = roc_auc_score(y[active], recency[active])
        assert model_auc >= recency_auc + 0.04, (family, model_auc, recency_auc)


def test_probabilities_track_latent_churn(churn_data: ChurnData, fits: dict[str, ChurnFit],
                                          generated: tuple[Dataset, pd.DataFrame]) -> None:
    """Customers whose latent churn time is before the window score far higher than others."""
    _, truth = generated
    holdout = churn_data.holdout
    ids = holdout.features.index.get_level_values("customer_id")
    churn_time = truth.set_index("customer_id")["churn_time"].reindex(ids).to_numpy()
    start = np.datetime64(churn_data.windows.holdout_start)
    gone = ~pd.isna(churn_time) & (churn_time < start)
    p = fits["logistic"].twin.predict_proba(holdout.features)
    assert gone.sum() > 50 and (~gone).sum() > 50
    assert roc_auc_score(gone, p) > 0.85
    assert p[gone].mean() > p[~gone].mean() + 0.3


def test_calibration_and_metric_names(churn_data: ChurnData, fits: dict[str, ChurnFit]) -> None:
    _, churn = _settings(n_cutoffs=3, step_days=60)
    for family, fit in fits.items():
        metrics = evaluate(fit.twin, churn_data.holdout, churn)
        assert set(METRIC_NAMES) <= set(metrics)
        assert {BASELINE_RECENCY_PREFIX + "roc_auc", BASELINE_RECENCY_PREFIX + "brier",
                BASELINE_RATE_PREFIX + "brier", BASELINE_RATE_PREFIX + "log_loss"} <= set(metrics)
        assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values()), family
        assert metrics["brier"] < 0.5 * metrics[BASELINE_RATE_PREFIX + "brier"], family
        assert metrics["brier"] < metrics[BASELINE_RECENCY_PREFIX + "brier"] + 0.01, family
        assert metrics["log_loss"] < metrics[BASELINE_RATE_PREFIX + "log_loss"], family
        assert metrics["lift_top_decile"] > 1.5
        assert 0 < fit.validation_metrics["threshold"] < 1
        assert fit.served.threshold == fit.twin.threshold == fit.validation_metrics["threshold"]
        assert fit.twin.as_of == churn_data.windows.holdout_start
        assert fit.served.as_of == churn_data.windows.as_of
        assert max(fit.twin.trained_cutoffs) + 90 * DAY <= fit.twin.as_of
        assert max(fit.served.trained_cutoffs) + 90 * DAY == fit.served.as_of


def test_served_model_scores_the_next_window_it_never_saw(
        generated: tuple[Dataset, pd.DataFrame]) -> None:
    """Fit on the history before D only; judged on what customers really did after D."""
    clean, _ = generated
    features, churn = _settings(n_cutoffs=3, step_days=60)
    tx = clean.transactions
    as_of = default_as_of(tx) - 90 * DAY
    data = _prepare(tx[tx["timestamp"] < as_of], as_of, features, churn, clean.customers,
                    clean.products)
    fit = fit_twin_and_served(default_params("hist_gradient_boosting"), data, churn)
    test = cutoff_frame(tx, as_of, 90, features, churn, clean.customers, clean.products)
    metrics = evaluate(fit.served, test, churn)
    assert metrics["roc_auc"] > metrics["baseline_recency_roc_auc"]
    assert fit.served.as_of == as_of


# ------------------------------------------------------------------------------------ tuning


def test_tune_is_deterministic_and_searches_both_families(churn_data: ChurnData) -> None:
    assert churn_data.tuning.method == OUT_OF_TIME
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
    model = fits["hist_gradient_boosting"].served
    frame = churn_data.holdout.features.droplevel("cutoff")
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
    again = fit_twin_and_served(default_params("hist_gradient_boosting"), churn_data, churn)
    assert again.validation_metrics == fits["hist_gradient_boosting"].validation_metrics
    frame = churn_data.holdout.features
    for part in ("twin", "served"):
        np.testing.assert_array_equal(
            getattr(again, part).predict_proba(frame),
            getattr(fits["hist_gradient_boosting"], part).predict_proba(frame))


def test_predict_names_missing_columns_and_bad_values(churn_data: ChurnData,
                                                      fits: dict[str, ChurnFit]) -> None:
    model = fits["logistic"].served
    frame = churn_data.holdout.features.droplevel("cutoff").head(20).copy()
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


def test_a_bgnbd_blend_scores_any_frame_and_lies_between_its_parts(
        churn_data: ChurnData, fits: dict[str, ChurnFit]) -> None:
    model = fits["logistic"].twin
    blended = with_btyd(model, churn_data.holdout.features, 0.5, 90)
    frame = churn_data.holdout.features.droplevel("cutoff")
    assert blended.btyd is not None and blended.model_weight == 0.5
    p = blended.predict_proba(frame)
    np.testing.assert_allclose(p, blended.predict_proba(frame.reset_index(drop=True)))
    q = blended.btyd.p_no_purchase(btyd.summary(frame), 90)
    np.testing.assert_allclose(p, 0.5 * model.model_proba(frame) + 0.5 * q)
    assert with_btyd(model, frame, 1.0, 90).btyd is None
    y = churn_data.holdout.labels.to_numpy()
    assert choose_model_weight(y, model.predict_proba(frame), q, [1.0, 0.5, 0.0]) in (1.0, 0.5,
                                                                                         0.0)
    # a useless model gets no weight against BG/NBD
    noise = np.random.default_rng(0).uniform(size=len(y))
    assert choose_model_weight(y, noise, q, [1.0, 0.5, 0.0]) == 0.0


def test_fit_refuses_a_single_class(churn_data: ChurnData) -> None:
    _, churn = _settings()
    train = churn_data.twin
    mask = (train.labels == 1).to_numpy()
    with pytest.raises(ChurnModelError, match="all have label"):
        fit_churn_model(default_params(), ChurnFrame(train.features[mask], train.labels[mask]),
                        churn)


def test_importance_and_figures(churn_data: ChurnData, fits: dict[str, ChurnFit]) -> None:
    _, churn = _settings(importance_repeats=2)
    model = fits["hist_gradient_boosting"].twin
    holdout = churn_data.holdout
    table = permutation_importance_table(model, holdout, churn)
    assert list(table.columns) == ["feature", "importance_mean", "importance_std"]
    assert set(table["feature"]) == set(model.columns)
    assert table["importance_mean"].is_monotonic_decreasing
    assert "recency_days" in set(table["feature"].head(3))
    assert isinstance(importance_figure(table), Figure)
    y = holdout.labels.to_numpy()
    p = model.predict_proba(holdout.features)
    rel = reliability_table(y, p, 10)
    assert rel["rows"].sum() == len(y)
    # roughly calibrated in the large (measured: 0.55 predicted vs 0.45 observed). The gap is
    # the validation window's season (Christmas brings gift buyers back), which calibration on
    # earlier windows cannot fully know; Brier is still far below the base rate's (see above).
    assert abs(p.mean() - y.mean()) < 0.15
    assert rel["observed_rate"].iloc[-1] > 0.8 > 0.1 > rel["observed_rate"].iloc[0]
    fig = reliability_figure(y, {"model": p, "recency": model.baseline_proba(holdout.features)})
    assert isinstance(fig, Figure)


def test_capped_importance_is_the_importance_of_the_seeded_holdout_customers(
        churn_data: ChurnData, fits: dict[str, ChurnFit]) -> None:
    model = fits["logistic"].twin
    holdout = churn_data.holdout
    _, capped = _settings(importance_repeats=2, importance_max_customers=250)
    chosen = sample_ids(holdout.customer_ids, 250, capped.seed)
    assert chosen is not None and len(holdout.labels) > 250
    on_sample = permutation_importance_table(model, holdout, capped)
    everyone = capped.model_copy(update={"importance_max_customers": None})
    pd.testing.assert_frame_equal(
        on_sample, permutation_importance_table(model, holdout.of_customers(chosen), everyone))
    assert not on_sample.equals(permutation_importance_table(model, holdout, everyone))


# ---------------------------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_online_retail_trains_on_nine_months_and_beats_recency(online_retail_file: Path) -> None:
    """History before 2011-09-10 only (9 months), the defaults; judged on the next 90 days."""
    from tailor.data.importers.online_retail import import_online_retail

    settings = load_settings()
    raw = import_online_retail(online_retail_file)
    clean = validate_dataset(raw, settings.data).dataset
    as_of = pd.Timestamp("2011-09-10")
    tx = clean.transactions
    data = _prepare(tx[tx["timestamp"] < as_of], as_of, settings.features, settings.churn,
                    clean.customers, clean.products)
    assert data.tuning.method == GROUPED_CV and data.windows.holdout_days == 90
    fit = fit_twin_and_served(default_params("logistic"), data, settings.churn)
    holdout = evaluate(fit.twin, data.holdout, settings.churn)
    assert holdout["roc_auc"] > holdout["baseline_recency_roc_auc"] + 0.02
    test = cutoff_frame(tx, as_of, 90, settings.features, settings.churn, clean.customers,
                        clean.products)
    metrics = evaluate(fit.served, test, settings.churn)
    assert metrics["n_customers"] > 3000
    assert metrics["baseline_recency_roc_auc"] == pytest.approx(0.683, abs=0.01)
    assert metrics["roc_auc"] > metrics["baseline_recency_roc_auc"] + 0.04
