"""Batch scoring on a hand-made customer frame: columns, missing models, known vs cold
customers, uneven recommendation lists and the next best action from the scored columns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pytest

from tailor.configs import load_settings
from tailor.configs.schema import ScoringSettings
from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW
from tailor.models.features import BASE_COLUMNS
from tailor.models.scoring import SCORE_COLUMNS, cold_attributes, recommendations, score_customers

IDS = ["c1", "c2", "c3", "c4", "c5", "c6"]


def feature_frame(ids: Sequence[str], **columns: Sequence[float]) -> pd.DataFrame:
    """A frame of the features contract: ``columns`` as given, every other base column a
    constant that meets its rules (score_customers checks its input)."""
    base = {c: np.full(len(ids), 0.0 if c == "trend" else 1.0) for c in BASE_COLUMNS}
    return pd.DataFrame({**base, **columns}, index=pd.Index(ids, name="customer_id",
                                                            dtype=object))


@pytest.fixture(scope="module")
def scoring() -> ScoringSettings:
    return load_settings([], []).scoring


@pytest.fixture
def features() -> pd.DataFrame:
    """c1 is the biggest spender; c3 is new; everybody else has long tenure."""
    return feature_frame(
        IDS,
        monetary=[1000.0, 10.0, 20.0, 30.0, 40.0, 50.0],
        frequency=[9.0, 1.0, 1.0, 3.0, 4.0, 2.0],
        tenure_days=[400.0, 400.0, 30.0, 400.0, 400.0, 400.0],
        cat_share_toys=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    )


class FakeSegmentation:
    def __init__(self, names: Mapping[str, tuple[int, str]]) -> None:
        self.names = dict(names)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"segment": [self.names[i][0] for i in frame.index],
                             "segment_name": [self.names[i][1] for i in frame.index]},
                            index=frame.index)


class FakeChurn:
    def __init__(self, p: Mapping[str, float]) -> None:
        self.p = dict(p)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.array([self.p[i] for i in frame.index])


class FakeRecommender:
    """known() / recommend() / recommend_cold() over fixed lists, recording every call."""

    def __init__(self, known: Mapping[str, Sequence[str]],
                 cold: Mapping[str, Sequence[str]] | None = None,
                 shuffle: bool = False) -> None:
        self.known_lists = dict(known)
        self.cold_lists = dict(cold or {})
        self.shuffle = shuffle
        self.recommend_calls: list[list[str]] = []
        self.cold_frames: list[pd.DataFrame] = []

    def known(self, ids: Iterable[object]) -> np.ndarray:
        return np.array([i in self.known_lists for i in ids], dtype=bool)

    def _frame(self, ids: Sequence[str], lists: Mapping[str, Sequence[str]], k: int
               ) -> pd.DataFrame:
        rows = [(cid, rank, p) for cid in ids
                for rank, p in enumerate(lists[cid][:k], start=1)]
        frame = pd.DataFrame(rows, columns=["customer_id", "rank", "product_id"])
        return frame.iloc[::-1].reset_index(drop=True) if self.shuffle else frame

    def recommend(self, ids: Iterable[object], k: int) -> pd.DataFrame:
        ids = list(ids)
        unknown = [i for i in ids if i not in self.known_lists]
        if unknown:
            raise KeyError(f"unseen customers {unknown}")
        self.recommend_calls.append(ids)
        return self._frame(ids, self.known_lists, k)

    def recommend_cold(self, attributes: pd.DataFrame, k: int) -> pd.DataFrame:
        self.cold_frames.append(attributes.copy())
        return self._frame(list(attributes.index), self.cold_lists, k)


SEGMENTS = {"c1": (0, "loyal"), "c2": (1, "at_risk"), "c3": (2, "new"),
            "c4": (3, "champions_2"), "c5": (0, "loyal"), "c6": (1, "at_risk")}
CHURN = {"c1": 0.9, "c2": 0.8, "c3": 0.1, "c4": 0.2, "c5": 0.3, "c6": 0.4}
KNOWN = {cid: [f"{cid}-p1", f"{cid}-p2"] for cid in ("c1", "c2", "c3", "c4")}
COLD = {"c5": ["pop1", "pop2"], "c6": ["pop1", "pop2"]}


def all_models(recommender: FakeRecommender | None = None
               ) -> dict[str, tuple[object, object] | None]:
    return {"segmentation": ("4", FakeSegmentation(SEGMENTS)),
            "recommender": ("7", recommender or FakeRecommender(KNOWN, COLD)),
            "churn": (2, FakeChurn(CHURN))}


# --------------------------------------------------------------------- score_customers


def test_one_row_per_customer_with_exactly_the_score_columns(
        features: pd.DataFrame, scoring: ScoringSettings) -> None:
    out = score_customers(features, all_models(), scoring)
    assert tuple(out.columns) == SCORE_COLUMNS
    assert out["customer_id"].tolist() == IDS
    assert pd.api.types.is_integer_dtype(out["segment"])
    assert out["segment"].tolist() == [SEGMENTS[i][0] for i in IDS]
    assert out["segment_name"].tolist() == [SEGMENTS[i][1] for i in IDS]
    assert out["churn_probability"].tolist() == pytest.approx([CHURN[i] for i in IDS])
    assert out["segmentation_version"].tolist() == ["4"] * 6
    assert out["recommender_version"].tolist() == ["7"] * 6
    assert out["churn_version"].tolist() == ["2"] * 6  # always a string


def test_next_best_action_follows_the_default_rules_on_the_scored_columns(
        features: pd.DataFrame, scoring: ScoringSettings) -> None:
    out = score_customers(features, all_models(), scoring).set_index("customer_id")
    assert out["next_best_action"].to_dict() == {
        "c1": "retention_offer",  # churn 0.9 and the top spender (monetary_pct 1.0)
        "c2": "win_back",         # churn 0.8, small spender
        "c3": "onboarding",       # tenure 30 days
        "c4": "upsell",           # champions_2 is in the champions group
        "c5": "cross_sell",       # loyal
        "c6": "nurture",          # no rule matches: the default
    }


def test_a_missing_model_leaves_its_columns_null_and_its_version_none(
        features: pd.DataFrame, scoring: ScoringSettings) -> None:
    models = {"recommender": ("7", FakeRecommender(KNOWN, COLD)), "churn": None}
    out = score_customers(features, models, scoring)
    assert tuple(out.columns) == SCORE_COLUMNS
    assert out["segment"].isna().all() and out["segment_name"].isna().all()
    assert out["churn_probability"].isna().all()
    assert out["segmentation_version"].tolist() == [None] * 6
    assert out["churn_version"].tolist() == [None] * 6
    assert out["recommender_version"].tolist() == ["7"] * 6
    assert out["recommendations"].notna().all()
    assert pd.api.types.is_integer_dtype(out["segment"])  # nullable integers, all null
    # null churn and segment never match: only the tenure rule and the default remain
    assert out["next_best_action"].tolist() == ["nurture", "nurture", "onboarding", "nurture",
                                                "nurture", "nurture"]


def test_no_customers_gives_an_empty_frame_with_the_score_columns(
        scoring: ScoringSettings) -> None:
    empty = feature_frame([])
    out = score_customers(empty, all_models(), scoring)
    assert tuple(out.columns) == SCORE_COLUMNS and len(out) == 0


def test_without_a_recommender_every_list_is_null(features: pd.DataFrame,
                                                  scoring: ScoringSettings) -> None:
    models = all_models()
    models["recommender"] = None
    out = score_customers(features, models, scoring)
    assert out["recommendations"].isna().all()
    assert out["recommender_version"].tolist() == [None] * 6
    assert out["next_best_action"].iloc[0] == "retention_offer"  # churn still drives actions


def test_known_customers_get_recommend_and_new_ones_recommend_cold(
        features: pd.DataFrame, scoring: ScoringSettings) -> None:
    recommender = FakeRecommender(KNOWN, COLD)
    out = score_customers(features, all_models(recommender), scoring).set_index("customer_id")
    assert recommender.recommend_calls == [["c1", "c2", "c3", "c4"]]
    assert len(recommender.cold_frames) == 1
    cold = recommender.cold_frames[0]
    assert cold.index.tolist() == ["c5", "c6"]
    assert cold.index.name == "customer_id"
    # the cold path sees the segment the segmentation model just gave them
    assert cold["segment"].tolist() == [SEGMENTS["c5"][0], SEGMENTS["c6"][0]]
    assert out.loc["c1", "recommendations"] == ["c1-p1", "c1-p2"]
    assert out.loc["c6", "recommendations"] == ["pop1", "pop2"]


def test_scoring_k_is_the_k_asked_of_the_recommender(features: pd.DataFrame) -> None:
    long = {cid: [f"{cid}-p{r}" for r in range(1, 6)] for cid in IDS}
    settings = load_settings([], ["scoring.k=3"]).scoring
    out = score_customers(features, all_models(FakeRecommender(long)), settings)
    assert [len(r) for r in out["recommendations"]] == [3] * 6


# ---------------------------------------------------------------------- recommendations


def test_uneven_lists_are_grouped_per_customer_in_rank_order(features: pd.DataFrame) -> None:
    lists = {"c1": ["a", "b", "c"], "c2": ["d"], "c3": [], "c4": ["e", "f"],
             "c5": ["g"], "c6": ["h", "i", "j"]}
    recommender = FakeRecommender(lists, shuffle=True)  # rows come back in reverse order
    out = recommendations(recommender, features, None, k=3)
    assert out.name == "recommendations"
    assert out.index.tolist() == IDS
    assert out.to_dict() == {"c1": ["a", "b", "c"], "c2": ["d"], "c3": [], "c4": ["e", "f"],
                             "c5": ["g"], "c6": ["h", "i", "j"]}


def test_even_lists_keep_the_order_recommend_returns(features: pd.DataFrame) -> None:
    lists = {cid: [f"{cid}-x", f"{cid}-y"] for cid in IDS}
    out = recommendations(FakeRecommender(lists), features, None, k=2)
    assert out.tolist() == [[f"{cid}-x", f"{cid}-y"] for cid in IDS]
    assert all(isinstance(p, str) for rec in out for p in rec)


def test_product_ids_come_back_as_strings(features: pd.DataFrame) -> None:
    class IntProducts(FakeRecommender):
        def recommend(self, ids: Iterable[object], k: int) -> pd.DataFrame:
            frame = super().recommend(ids, k)
            return frame.assign(product_id=frame["product_id"].astype(int))

    lists = {cid: ["10", "20"] for cid in IDS}
    out = recommendations(IntProducts(lists), features, None, k=2)
    assert out.tolist() == [["10", "20"]] * 6


def test_a_model_that_knows_nobody_sends_everybody_down_the_cold_path(
        features: pd.DataFrame) -> None:
    recommender = FakeRecommender({}, cold={cid: ["pop"] for cid in IDS})
    out = recommendations(recommender, features, None, k=5)
    assert recommender.recommend_calls == []
    assert recommender.cold_frames[0].index.tolist() == IDS
    assert out.tolist() == [["pop"]] * 6


def test_no_model_gives_null_lists(features: pd.DataFrame) -> None:
    out = recommendations(None, features, None, k=5)
    assert out.index.tolist() == IDS and out.isna().all()


def test_a_recommender_with_nothing_to_recommend_gives_empty_lists(
        features: pd.DataFrame) -> None:
    recommender = FakeRecommender({cid: [] for cid in IDS})
    out = recommendations(recommender, features, None, k=3)
    assert out.tolist() == [[]] * 6


# ---------------------------------------------------------------------- cold_attributes


def test_cold_attributes_join_base_features_customer_attributes_and_segment(
        features: pd.DataFrame) -> None:
    customers = pd.DataFrame({
        "customer_id": [5, 6, 5, 99],             # integers: joined as strings
        "attr_region": ["north", "south", "dup", "nowhere"],
        "monetary": [-1.0, -1.0, -1.0, -1.0],     # clashes with a feature: the feature wins
        SOURCE_FILE: ["a.csv"] * 4, SOURCE_ROW: [1, 2, 3, 4],
    })
    frame = features.rename(index={"c5": "5", "c6": "6"}).loc[["5", "6", "c1"]]
    segments = pd.Series([3, 1, 0], index=frame.index)
    got = cold_attributes(frame, customers, segments)
    assert got.index.name == "customer_id"
    assert got.index.tolist() == ["5", "6", "c1"]
    assert "cat_share_toys" not in got.columns  # only base RFM columns are kept
    assert SOURCE_FILE not in got.columns and SOURCE_ROW not in got.columns
    assert got["monetary"].tolist() == [40.0, 50.0, 1000.0]
    assert got["frequency"].tolist() == [4.0, 2.0, 9.0]
    assert got["attr_region"].iloc[:2].tolist() == ["north", "south"]  # first row per id
    assert pd.isna(got.loc["c1", "attr_region"])
    assert got["segment"].tolist() == [3, 1, 0]


def test_cold_attributes_without_customers_or_segments(features: pd.DataFrame) -> None:
    got = cold_attributes(features, None)
    assert list(got.columns) == list(BASE_COLUMNS)  # the base columns, no shares
    no_segments = cold_attributes(features, None, pd.Series([pd.NA] * 6, index=features.index))
    assert "segment" not in no_segments.columns
