"""Buy-till-you-die models: our closed forms agree with PyMC-Marketing, and their P(alive) and
P(no purchase) separate customers the generator knows are alive from those it knows have
left."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tailor.configs import load_settings
from tailor.data.generate import generate
from tailor.models import btyd
from tailor.models.features import customer_features

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def cohort() -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """One product, 2,000 customers acquired in 12 weeks; 9 months observed."""
    settings = load_settings(overrides=["generate.kind=repeat_buying", "generate.customers=2000",
                                        "generate.seed=3"]).generate
    data = generate(settings)
    tx = data.dataset.transactions
    as_of = tx["timestamp"].min().normalize() + 270 * DAY
    features = customer_features(tx, as_of, load_settings().features)
    return features, data.truth["customers"], as_of


def test_summary_counts_repeat_purchase_days(cohort) -> None:
    features, _, _ = cohort
    summary = btyd.summary(features)
    assert (summary["frequency"] == features["purchase_days"] - 1).all()
    assert (summary["recency"] <= summary["T"] + 1e-9).all()
    assert (summary.loc[summary["frequency"] == 0, "recency"] == 0).all()
    assert summary.index.equals(features.index)


def test_closed_forms_equal_pymc_marketing(cohort) -> None:
    from pymc_marketing import clv

    features, _, _ = cohort
    summary = btyd.summary(features)
    fitted = btyd.fit_bgnbd(summary)
    model = clv.BetaGeoModel(data=summary.reset_index(drop=True))
    model.fit(method="map", progressbar=False)
    data = summary.reset_index(drop=True)
    theirs_alive = np.asarray(model.expected_probability_alive(data=data)).ravel()
    theirs_none = np.asarray(model.expected_probability_no_purchase(90, data=data)).ravel()
    np.testing.assert_allclose(fitted.p_alive(summary), theirs_alive, atol=1e-8)
    repeat = summary["frequency"].to_numpy() > 0
    np.testing.assert_allclose(fitted.p_no_purchase(summary, 90)[repeat], theirs_none[repeat],
                               atol=1e-8)
    # x = 0: alive for sure under BG/NBD, so P(no purchase) is the NBD part alone
    alone = ((fitted.alpha + summary["T"]) / (fitted.alpha + summary["T"] + 90)) ** fitted.r
    np.testing.assert_allclose(fitted.p_no_purchase(summary, 90)[~repeat],
                               alone.to_numpy()[~repeat], atol=1e-12)


def test_p_alive_separates_known_alive_from_known_gone(cohort) -> None:
    features, truth, as_of = cohort
    summary = btyd.summary(features)
    churn = truth.set_index("customer_id")["churn_time"].reindex(summary.index)
    gone = (churn.notna() & (churn < as_of)).to_numpy()
    assert 200 < gone.sum() < len(gone) - 200
    fitted = btyd.fit_bgnbd(summary)
    alive = fitted.p_alive(summary)
    # BG/NBD can only lose a customer after a repeat purchase: among repeat buyers P(alive)
    # ranks the truth; a one-time buyer is "alive" to it, whatever happened since
    repeat = summary["frequency"].to_numpy() > 0
    assert roc_auc_score(~gone[repeat], alive[repeat]) > 0.8
    assert alive[repeat & ~gone].mean() > alive[repeat & gone].mean() + 0.2
    assert (alive[~repeat] == 1).all()
    baselines = btyd.baseline_probabilities(summary, summary, 90)
    for name, p in baselines.items():
        assert roc_auc_score(gone, p) > 0.8, name  # P(no purchase) is high for those gone
        assert ((p >= 0) & (p <= 1)).all(), name
    # a BG/NBD already fitted on the same summaries is reused, not fitted again: same figures
    reused = btyd.baseline_probabilities(summary, summary, 90, bgnbd=fitted)
    np.testing.assert_allclose(reused[btyd.BGNBD], baselines[btyd.BGNBD])
