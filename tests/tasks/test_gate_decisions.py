"""The gate's decision rule: every branch of ``decide`` on a hand-made training record."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest

from tailor.adapters.gate import Decision, decide, gate_metrics
from tailor.adapters.registry import CHALLENGER, CHAMPION
from tailor.adapters.training import TrackedTraining
from tailor.configs.schema import PromotionSettings

NAN = float("nan")
METRIC = "holdout_roc_auc"
#: margins exact in binary, so "by more than the margin" has a sharp edge
PROMOTION = PromotionSettings(
    margin={"churn": 0.25, "recommender": 0.125},
    floors={"churn": {"holdout_roc_auc": 0.5},
            "segmentation": {"served_silhouette": 0.05,
                             "served_smallest_cluster_share": 0.01}},
)


def trained(metrics: Mapping[str, float] | None = None, version: object = 12,
            kind: str = "churn") -> TrackedTraining:
    return TrackedTraining(kind=kind, run_id="run-abc", experiment_id="3",
                           model_uri=f"models:/tailor-{kind}/{version}",
                           version=version,  # type: ignore[arg-type]
                           metrics={"holdout_roc_auc": 0.8, "brier": 0.2}
                           if metrics is None else dict(metrics))


def churn_decision(ours: float | None, theirs: float | None, champion: str | None = "11",
                   metrics: Mapping[str, float] | None = None,
                   promotion: PromotionSettings = PROMOTION) -> Decision:
    scores = {}
    if ours is not None:
        scores[CHALLENGER] = ours
    if theirs is not None:
        scores[CHAMPION] = theirs
    return decide("churn", METRIC, trained(metrics), scores, champion, promotion)


# ------------------------------------------------------------------- no champion yet


def test_the_first_version_passing_the_guardrails_is_promoted() -> None:
    d = churn_decision(0.6, None, champion=None)
    assert d.promote is True
    assert "first version" in d.reason
    assert (d.kind, d.metric, d.challenger_version) == ("churn", METRIC, "12")
    assert d.champion_version is None and d.champion_score is None
    assert d.challenger_score == 0.6


def test_without_a_champion_a_stray_champion_score_is_ignored() -> None:
    d = churn_decision(0.6, 0.99, champion=None)
    assert d.promote is True and d.champion_score is None
    assert "first version" in d.reason


# --------------------------------------------------------- challenger against champion


@pytest.mark.parametrize(("ours", "theirs", "promote"), [
    (0.875, 0.5, True),    # beats by 0.375 > 0.25
    (0.75, 0.5, False),    # beats by exactly the margin: not "more than"
    (0.625, 0.5, False),   # within the margin
    (0.5, 0.5, False),     # a tie
    (0.25, 0.5, False),    # worse
])
def test_the_challenger_must_beat_the_champion_by_more_than_the_margin(
        ours: float, theirs: float, promote: bool) -> None:
    d = churn_decision(ours, theirs, metrics={"holdout_roc_auc": 0.9})
    assert d.promote is promote
    assert d.champion_version == "11"
    assert (d.challenger_score, d.champion_score) == (ours, theirs)
    expected = "beats champion" if promote else "does not beat champion"
    assert expected in d.reason and "0.25" in d.reason
    assert f"{ours:.4f}" in d.reason and f"{theirs:.4f}" in d.reason


def test_each_kind_uses_its_own_margin() -> None:
    # recommender margin 0.125: +0.1875 is enough for it, not for churn (0.25)
    rec = decide("recommender", "holdout_precision_at_10", trained({"x": 1.0}, kind="recommender"),
                 {CHALLENGER: 0.3125, CHAMPION: 0.125}, "5", PROMOTION)
    churn = churn_decision(0.6875, 0.5)
    assert rec.promote is True
    assert churn.promote is False


def test_a_kind_without_a_margin_needs_only_to_be_strictly_better() -> None:
    promotion = PromotionSettings(margin={"churn": 0.25}, floors={})
    scores_equal = {CHALLENGER: 0.5, CHAMPION: 0.5}
    scores_better = {CHALLENGER: 0.5000001, CHAMPION: 0.5}
    seg = trained({"served_silhouette": 0.3}, kind="segmentation")
    assert decide("segmentation", "holdout_objective", seg, scores_equal, "2",
                  promotion).promote is False
    assert decide("segmentation", "holdout_objective", seg, scores_better, "2",
                  promotion).promote is True


# ------------------------------------------------------------------------ NaN scores


@pytest.mark.parametrize("ours", [NAN, float("inf"), None])
@pytest.mark.parametrize("champion", ["11", None])
def test_a_challenger_that_could_not_be_scored_is_never_promoted(
        ours: float | None, champion: str | None) -> None:
    d = churn_decision(ours, 0.1, champion=champion)
    assert d.promote is False
    assert "could not be scored" in d.reason and METRIC in d.reason
    if ours is None:  # missing from the scores: recorded as NaN
        assert math.isnan(d.challenger_score)


@pytest.mark.parametrize("theirs", [NAN, None])
def test_a_champion_that_cannot_be_scored_lets_a_passing_challenger_through(
        theirs: float | None) -> None:
    d = churn_decision(0.6, theirs)
    assert d.promote is True
    assert "v11" in d.reason and "cannot be refit" in d.reason
    if theirs is None:
        assert d.champion_score is None
    else:
        assert math.isnan(d.champion_score)


def test_a_champion_that_cannot_be_scored_does_not_bypass_the_guardrails() -> None:
    d = churn_decision(0.6, NAN, metrics={"holdout_roc_auc": 0.4})
    assert d.promote is False and "guardrail" in d.reason


# ------------------------------------------------------------- logged-metric guardrails


def test_non_finite_logged_metrics_block_promotion_and_are_named_in_order() -> None:
    d = churn_decision(0.99, 0.1, metrics={"holdout_roc_auc": 0.9, "z_loss": NAN,
                                            "a_lift": float("-inf"), "brier": 0.1})
    assert d.promote is False
    assert d.reason == "non-finite metrics: a_lift, z_loss"


def test_non_finite_metrics_block_even_the_first_version() -> None:
    d = churn_decision(0.9, None, champion=None,
                       metrics={"holdout_roc_auc": 0.9, "brier": float("inf")})
    assert d.promote is False and "brier" in d.reason


def test_a_challenger_below_a_floor_is_not_promoted_however_good_its_score() -> None:
    d = churn_decision(0.99, 0.1, metrics={"holdout_roc_auc": 0.45})
    assert d.promote is False
    assert d.reason == "guardrail: holdout_roc_auc = 0.45 below floor 0.5"


def test_a_floor_metric_the_challenger_did_not_log_fails_the_guardrail() -> None:
    d = churn_decision(0.9, None, champion=None, metrics={"brier": 0.1})
    assert d.promote is False
    assert d.reason == "guardrail: holdout_roc_auc = None below floor 0.5"


def test_a_metric_exactly_at_its_floor_passes() -> None:
    d = churn_decision(0.9, None, champion=None, metrics={"holdout_roc_auc": 0.5})
    assert d.promote is True


def test_every_floor_of_the_kind_must_hold() -> None:
    good = {"served_silhouette": 0.3, "served_smallest_cluster_share": 0.2}
    tiny = {"served_silhouette": 0.3, "served_smallest_cluster_share": 0.005}
    scores = {CHALLENGER: 1.0}
    ok = decide("segmentation", "holdout_objective", trained(good, kind="segmentation"), scores,
                None, PROMOTION)
    blocked = decide("segmentation", "holdout_objective", trained(tiny, kind="segmentation"),
                     scores, None, PROMOTION)
    assert ok.promote is True
    assert blocked.promote is False and "smallest_cluster_share" in blocked.reason


def test_floors_of_other_kinds_do_not_apply() -> None:
    # the recommender has no floors in PROMOTION; churn's holdout_roc_auc floor is not its own
    d = decide("recommender", "holdout_precision_at_10", trained({"x": 0.0}, kind="recommender"),
               {CHALLENGER: 0.01}, None, PROMOTION)
    assert d.promote is True


def test_the_default_settings_floor_a_weak_churn_model() -> None:
    d = churn_decision(0.9, 0.5, metrics={"holdout_roc_auc": 0.54},
                       promotion=PromotionSettings())
    assert d.promote is False and "0.55" in d.reason


# ----------------------------------------------------------------------------- record


def test_decision_tags_carry_the_verdict_as_text_and_the_scores_as_metrics() -> None:
    d = churn_decision(0.875, 0.5)
    tags = d.tags()
    assert tags["tailor.gate.promote"] == "True"
    assert tags["tailor.gate.champion_version"] == "11"
    assert tags["tailor.gate.metric"] == METRIC
    assert set(tags) == {"tailor.gate.metric", "tailor.gate.champion_version",
                         "tailor.gate.promote", "tailor.gate.reason"}
    assert all(isinstance(v, str) for v in tags.values())
    assert gate_metrics(d) == {"gate_challenger_score": 0.875, "gate_champion_score": 0.5}
    assert gate_metrics(d, "gate_churn_") == {"gate_churn_challenger_score": 0.875,
                                              "gate_churn_champion_score": 0.5}


def test_without_a_champion_only_the_challenger_score_is_a_metric() -> None:
    d = churn_decision(0.6, None, champion=None)
    assert gate_metrics(d) == {"gate_challenger_score": 0.6}
