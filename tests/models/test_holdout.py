"""Holdout scorers of the champion/challenger gate, on hand-built windows with known answers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from tailor.configs.schema import ChurnSettings, SegmentationSettings
from tailor.models import holdout
from tailor.models.churn import ChurnModel
from tailor.models.churn_data import ChurnFrame
from tailor.models.segmentation import Preprocessor, SegmentationModel

START = pd.Timestamp("2024-03-01")
HORIZON = 10  # window [2024-03-01, 2024-03-11)


def tx(rows: Sequence[tuple[object, object, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "timestamp", "quantity"]
                        ).assign(timestamp=lambda f: pd.to_datetime(f["timestamp"]))


@pytest.fixture
def transactions() -> pd.DataFrame:
    """Integer ids on purpose: the window compares them as strings."""
    return tx([
        (1, 1, "2024-03-01 00:00", 1),   # first instant of the window: in
        (1, 2, "2024-03-05 10:00", 2),   # in
        (1, 2, "2024-03-06 10:00", 1),   # same pair again: one row
        (1, 3, "2024-03-11 00:00", 1),   # first instant after the window: out
        (2, 1, "2024-03-02 09:00", 1),   # in
        (2, 4, "2024-03-03 09:00", -1),  # a return: out
        (3, 5, "2024-02-29 23:59", 1),   # before the window: out
        (4, 2, "2024-03-04 12:00", 3),   # in
    ])


class FakeRecommender:
    """known() + recommend() over a fixed table; like the real one, refuses unknown customers."""

    def __init__(self, lists: Mapping[str, Sequence[object]]) -> None:
        self.lists = dict(lists)
        self.asked: list[list[str]] = []

    def known(self, ids: Iterable[object]) -> np.ndarray:
        return np.array([str(i) in self.lists for i in ids], dtype=bool)

    def recommend(self, ids: Iterable[object], k: int) -> pd.DataFrame:
        ids = [str(i) for i in ids]
        self.asked.append(ids)
        rows = []
        for cid in ids:
            if cid not in self.lists:
                raise KeyError(cid)
            rows += [(cid, rank, p) for rank, p in enumerate(self.lists[cid][:k], start=1)]
        return pd.DataFrame(rows, columns=["customer_id", "rank", "product_id"])


# ------------------------------------------------------------------ window_purchases


def test_window_purchases_keeps_distinct_positive_pairs_inside_the_half_open_window(
        transactions: pd.DataFrame) -> None:
    got = holdout.window_purchases(transactions, START, HORIZON)
    assert list(got.columns) == ["customer_id", "product_id"]
    pairs = sorted(map(tuple, got.to_numpy().tolist()))
    assert pairs == [("1", "1"), ("1", "2"), ("2", "1"), ("4", "2")]
    assert all(isinstance(v, str) for v in got.to_numpy().ravel())


def test_window_purchases_is_empty_for_a_window_without_purchases(
        transactions: pd.DataFrame) -> None:
    got = holdout.window_purchases(transactions, pd.Timestamp("2025-01-01"), HORIZON)
    assert got.empty
    assert list(got.columns) == ["customer_id", "product_id"]


# -------------------------------------------------------------- recommender_precision


def test_precision_is_exact_and_restricted_to_customers_every_model_knows(
        transactions: pd.DataFrame) -> None:
    # buyers in the window: 1 {1, 2}, 2 {1}, 4 {2}; "b" has never seen customer 4
    a = FakeRecommender({"1": [1, 9], "2": [1, 2], "4": [2, 3]})
    b = FakeRecommender({"1": ["2", "1"], "2": ["7", "1"], "3": ["5", "6"]})
    scores, n = holdout.recommender_precision({"a": a, "b": b}, transactions, START, HORIZON,
                                              k=2)
    assert n == 2  # customers 1 and 2; 4 is unknown to b, 3 bought nothing in the window
    # a: customer 1 -> 1 hit (product 1), customer 2 -> 1 hit (product 1): 2 / (2 * 2)
    # b: customer 1 -> 2 hits, customer 2 -> 1 hit: 3 / (2 * 2)
    assert scores == {"a": pytest.approx(0.5), "b": pytest.approx(0.75)}
    for model in (a, b):
        assert [sorted(ids) for ids in model.asked] == [["1", "2"]]


def test_precision_divides_by_k_when_a_model_returns_fewer_items(
        transactions: pd.DataFrame) -> None:
    short = FakeRecommender({"1": [2], "2": [1], "4": [2]})  # every item a hit, but only one
    scores, n = holdout.recommender_precision({"short": short}, transactions, START, HORIZON,
                                              k=4)
    assert n == 3
    assert scores["short"] == pytest.approx(3 / (4 * 3))


def test_precision_only_counts_items_bought_in_the_window(transactions: pd.DataFrame) -> None:
    # product 3 (bought on the first instant after) and 4 (returned) are not hits for customer 1/2
    model = FakeRecommender({"1": [3, 5], "2": [4, 5]})
    scores, n = holdout.recommender_precision({"m": model}, transactions, START, HORIZON, k=2)
    assert n == 2
    assert scores["m"] == 0.0


def test_precision_is_nan_and_zero_customers_when_nobody_is_common(
        transactions: pd.DataFrame) -> None:
    a = FakeRecommender({"1": [1]})
    b = FakeRecommender({"2": [1]})
    scores, n = holdout.recommender_precision({"a": a, "b": b}, transactions, START, HORIZON,
                                              k=1)
    assert n == 0
    assert set(scores) == {"a", "b"}
    assert all(np.isnan(v) for v in scores.values())
    assert a.asked == [] and b.asked == []


def test_precision_is_nan_when_nobody_bought_in_the_window(transactions: pd.DataFrame) -> None:
    model = FakeRecommender({"1": [1], "2": [1]})
    scores, n = holdout.recommender_precision({"m": model}, transactions,
                                              pd.Timestamp("2030-01-01"), HORIZON, k=1)
    assert n == 0 and np.isnan(scores["m"])


# -------------------------------------------------------------------- churn_roc_auc


def churn_model(labels_follow_recency: bool, columns: tuple[str, ...] = ("recency_days",)
                ) -> ChurnModel:
    """A real ChurnModel whose probability is monotone in recency (up, or down)."""
    x = pd.DataFrame({"recency_days": [10.0, 20.0, 30.0, 100.0, 110.0, 120.0]})
    y = np.array([0, 0, 0, 1, 1, 1]) if labels_follow_recency else np.array([1, 1, 1, 0, 0, 0])
    estimator = LogisticRegression().fit(x, y)
    baseline = Pipeline([("model", LogisticRegression())]).fit(x, y)
    return ChurnModel(params={}, columns=columns, numeric_columns=columns, estimator=estimator,
                      baseline=baseline, base_rate=0.5, threshold=0.5, trained_cutoffs=())


def churn_frame(recency: Sequence[float], labels: Sequence[int]) -> ChurnFrame:
    index = pd.MultiIndex.from_arrays(
        [[START] * len(recency), [f"c{i}" for i in range(len(recency))]],
        names=["cutoff", "customer_id"])
    return ChurnFrame(pd.DataFrame({"recency_days": list(map(float, recency))}, index=index),
                      pd.Series(labels, index=index, name="churned"))


def test_churn_roc_auc_scores_every_model_on_the_same_frame() -> None:
    # recency 1 2 3 4, labels 0 1 0 1: of the 4 (churner, returner) pairs, 3 are ordered right
    frame = churn_frame([1, 2, 3, 4], [0, 1, 0, 1])
    scores = holdout.churn_roc_auc({"up": churn_model(True), "down": churn_model(False)},
                                   frame, ChurnSettings())
    assert scores == {"up": pytest.approx(0.75), "down": pytest.approx(0.25)}


def test_churn_roc_auc_is_nan_for_a_model_that_cannot_score_the_frame() -> None:
    frame = churn_frame([1, 2, 3, 4], [0, 0, 1, 1])
    needs_more = churn_model(True, columns=("recency_days", "frequency"))
    scores = holdout.churn_roc_auc({"old": needs_more, "new": churn_model(True)}, frame,
                                   ChurnSettings())
    assert np.isnan(scores["old"])
    assert scores["new"] == pytest.approx(1.0)


def test_churn_roc_auc_is_nan_when_the_labels_are_all_the_same() -> None:
    frame = churn_frame([1, 2, 3, 4], [1, 1, 1, 1])
    scores = holdout.churn_roc_auc({"m": churn_model(True)}, frame, ChurnSettings())
    assert np.isnan(scores["m"])


# --------------------------------------------------------------- segmentation_score


def one_column_model(centers: Sequence[float], column: str = "x") -> SegmentationModel:
    """A real SegmentationModel on one column with an identity transform."""
    prep = Preprocessor(columns=(column,), log_mask=np.array([False]), fill=np.array([0.0]),
                        lower=np.array([-np.inf]), upper=np.array([np.inf]),
                        mean=np.array([0.0]), scale=np.array([1.0]))
    return SegmentationModel(prep, np.array(centers, dtype=float).reshape(-1, 1),
                             tuple(f"s{i}" for i in range(len(centers))))


def seg_settings(**kwargs: object) -> SegmentationSettings:
    return SegmentationSettings(features=["x"], log_columns=[], stability_resamples=2, n_init=1,
                                **kwargs)


def test_segmentation_score_is_the_silhouette_under_the_silhouette_objective() -> None:
    features = pd.DataFrame({"x": [0.0, 1.0, 2.0, 10.0, 11.0, 12.0]})
    good, bad = one_column_model([1.0, 11.0]), one_column_model([0.0, 2.0])
    scores = holdout.segmentation_score({"good": good, "bad": bad}, features,
                                        seg_settings(objective="silhouette"))
    # by hand, per point (b - a) / b with a = mean distance within, b = to the other cluster;
    # symmetric halves: points 0, 1, 2 have a = 1.5, 1, 1.5 and b = 11, 10, 9
    expected = (3 - 1.5 / 11 - 1 / 10 - 1.5 / 9) / 3
    assert scores["good"] == pytest.approx(expected)
    assert scores["bad"] < scores["good"]


def test_segmentation_score_adds_stability_under_the_default_objective() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 1, 20), rng.uniform(100, 101, 20)])
    features = pd.DataFrame({"x": x})
    model = one_column_model([0.5, 100.5])
    silhouette = holdout.segmentation_score({"m": model}, features,
                                            seg_settings(objective="silhouette"))["m"]
    combined = holdout.segmentation_score({"m": model}, features,
                                          seg_settings(objective="silhouette_plus_stability"))
    # two far-apart blobs: every bootstrap k-means finds the same split (ARI 1)
    assert silhouette > 0.95
    assert combined["m"] == pytest.approx(silhouette + 1.0)


def test_segmentation_score_penalises_a_tiny_cluster() -> None:
    features = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 100.0]})  # one outlier of six
    model = one_column_model([2.0, 100.0])
    loose = holdout.segmentation_score({"m": model}, features,
                                       seg_settings(objective="silhouette"))["m"]
    strict = holdout.segmentation_score({"m": model}, features,
                                        seg_settings(objective="silhouette",
                                                     min_cluster_share=0.2))["m"]
    assert -1.0 <= loose <= 1.0
    assert strict == pytest.approx(loose - 4.0)


def test_segmentation_score_is_nan_for_a_model_needing_a_missing_column() -> None:
    features = pd.DataFrame({"x": [0.0, 1.0, 10.0, 11.0]})
    scores = holdout.segmentation_score(
        {"old": one_column_model([0.5, 10.5], column="gone"), "new": one_column_model([0.5, 10.5])},
        features, seg_settings(objective="silhouette"))
    assert np.isnan(scores["old"])
    assert np.isfinite(scores["new"]) and scores["new"] > 0.8


# ------------------------------------------------------------------------ is_finite


@pytest.mark.parametrize(("value", "expected"), [
    (0.0, True), (1, True), (-3.5, True), (np.float64(0.2), True),
    (None, False), (float("nan"), False), (float("inf"), False), (-np.inf, False),
    (np.float64("nan"), False),
])
def test_is_finite(value: float | None, expected: bool) -> None:
    assert holdout.is_finite(value) is expected
