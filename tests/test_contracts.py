"""The contracts of the frames that cross task boundaries: CustomerFeatures and CustomerScores.

Each model accepts a frame really produced by the code it describes (``customer_features`` on a
generated retailer, ``score_customers`` on those features) and rejects a frame breaking each of
its rules, with an error naming the column and the rule. The functions carry the types, so a
frame breaking them never leaves (or enters) them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.errors import SchemaError, SchemaErrors

from tailor.configs import load_settings
from tailor.configs.schema import ScoringSettings
from tailor.contracts import CustomerFeatures, CustomerScores, first_failure
from tailor.models.features import BASE_COLUMNS, customer_features
from tailor.models.scoring import SCORE_COLUMNS, score_customers

Change = Callable[[pd.DataFrame], pd.DataFrame]


@pytest.fixture(scope="module")
def produced(retailer_features: pd.DataFrame) -> pd.DataFrame:
    """customer_features on a small generated retailer, with category shares and attributes."""
    return retailer_features


@pytest.fixture(scope="module")
def scoring() -> ScoringSettings:
    return load_settings([], []).scoring


class Segments:
    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        labels = (frame["frequency"].to_numpy() > 2).astype(int)
        return pd.DataFrame({"segment": labels,
                             "segment_name": np.where(labels == 1, "loyal", "new")},
                            index=frame.index)


class Churn:
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return 1.0 - np.exp(-frame["recency_days"].to_numpy() / 100.0)


class Recommender:
    def known(self, ids: np.ndarray) -> np.ndarray:
        return np.ones(len(ids), dtype=bool)

    def recommend(self, ids: np.ndarray, k: int) -> pd.DataFrame:
        return pd.DataFrame({"customer_id": np.repeat(ids, 2), "rank": [1, 2] * len(ids),
                             "product_id": ["p1", "p2"] * len(ids)})


MODELS = {"segmentation": ("3", Segments()), "recommender": ("5", Recommender()),
          "churn": ("2", Churn())}


@pytest.fixture(scope="module")
def scores(produced: pd.DataFrame, scoring: ScoringSettings) -> pd.DataFrame:
    return score_customers(produced, MODELS, scoring)


def rejected(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> str:
    """The one-line failure of validating ``frame`` (the test fails if it is accepted)."""
    with pytest.raises(SchemaErrors) as caught:
        model.validate(frame, lazy=True)
    return first_failure(caught.value)


# --- CustomerFeatures ---------------------------------------------------------------------------

def test_features_accept_what_customer_features_builds(produced: pd.DataFrame) -> None:
    assert len(produced) > 100
    assert any(c.startswith("cat_share_") for c in produced.columns)
    assert any(c.startswith("attr_") for c in produced.columns)  # dynamic columns allowed
    CustomerFeatures.validate(produced, lazy=True)


def test_features_contract_names_exactly_the_base_columns() -> None:
    columns = [c for c, col in CustomerFeatures.to_schema().columns.items() if not col.regex]
    assert columns == list(BASE_COLUMNS)


def test_empty_features_are_accepted(produced: pd.DataFrame) -> None:
    settings = load_settings([], [])
    tx = pd.DataFrame({"order_id": ["o"], "customer_id": ["c"], "product_id": ["p"],
                       "quantity": [1], "unit_price": [1.0],
                       "timestamp": pd.to_datetime(["2024-01-02"])})
    empty = customer_features(tx, "2024-01-01", settings.features)  # nothing before as_of
    assert empty.empty
    CustomerFeatures.validate(empty)


def _first_row(column: str, value: object) -> Change:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        if isinstance(value, list):  # a list cell: rebuild the (object) column around it
            cells = out[column].tolist()
            out[column] = pd.Series([value, *cells[1:]], index=out.index, dtype=object)
        else:
            out.iloc[0, out.columns.get_loc(column)] = value
        return out
    return change


@pytest.mark.parametrize(("change", "expected"), [
    (lambda f: f.assign(frequency=f["frequency"].astype("int64")),
     "column 'frequency', rule dtype('float64'), found int64"),
    (_first_row("frequency", -1.0), "column 'frequency', rule greater_than_or_equal_to(1)"),
    (_first_row("frequency", 0.0), "column 'frequency', rule greater_than_or_equal_to(1)"),
    (_first_row("recency_days", -0.5), "column 'recency_days', rule greater_than_or_equal_to(0)"),
    (_first_row("monetary", -3.0), "column 'monetary', rule greater_than_or_equal_to(0)"),
    (_first_row("monetary", np.nan), "column 'monetary', rule not_nullable"),
    (_first_row("return_rate", 1.5), "column 'return_rate', rule in_range(0.0, 1.0)"),
    (_first_row("trend", 1.0), "column 'trend', rule less_than(1.0)"),
    (_first_row("cat_share_other", 1.5), "column 'cat_share_other', rule in_range(0.0, 1.0)"),
    (_first_row("tenure_days", 0.0), "rule tenure_days >= recency_days"),
    (lambda f: pd.concat([f, f.iloc[:1]]), "index 'customer_id', rule field_uniqueness"),
    (lambda f: f.rename_axis("client"), "index 'customer_id', rule field_name('customer_id')"),
    (lambda f: f.drop(columns="purchase_days"), "column 'purchase_days' missing"),
], ids=["dtype", "negative-frequency", "zero-frequency", "negative-recency",
        "negative-monetary", "null", "return-rate", "trend", "share", "tenure-before-recency",
        "duplicate-customer", "index-name", "missing-column"])
def test_features_reject_a_frame_breaking_a_rule(produced: pd.DataFrame, change: Change,
                                                 expected: str) -> None:
    assert rejected(CustomerFeatures, change(produced)).startswith(expected)


def test_a_failure_names_the_customer_and_the_value(produced: pd.DataFrame) -> None:
    message = rejected(CustomerFeatures, _first_row("frequency", -1.0)(produced))
    assert f"e.g. customer {produced.index[0]!r} (value -1.0), 1 failure cases" in message


def test_customer_features_refuses_to_return_a_frame_breaking_its_contract() -> None:
    # a negative price is not contract data (the validator quarantines it): the averages it
    # yields break avg_order_value >= 0, and the function says so instead of returning them
    tx = pd.DataFrame({"order_id": ["o1", "o2"], "customer_id": ["a", "b"],
                       "product_id": ["p", "p"], "quantity": [1, 1], "unit_price": [2.0, -5.0],
                       "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    with pytest.raises(SchemaError, match="avg_order_value"):
        customer_features(tx, "2024-02-01", load_settings([], []).features)


# --- CustomerScores -----------------------------------------------------------------------------

def test_scores_accept_what_score_customers_builds(scores: pd.DataFrame,
                                                   produced: pd.DataFrame) -> None:
    assert tuple(scores.columns) == SCORE_COLUMNS and len(scores) == len(produced)
    assert scores["churn_probability"].between(0, 1).all()
    CustomerScores.validate(scores, lazy=True)


def test_scores_without_any_champion_are_accepted(produced: pd.DataFrame,
                                                  scoring: ScoringSettings) -> None:
    empty = score_customers(produced, {}, scoring)  # every model column null, every version None
    assert empty["segment"].isna().all() and empty["recommendations"].isna().all()
    CustomerScores.validate(empty, lazy=True)


def test_scores_allow_the_columns_of_extra_kinds(scores: pd.DataFrame) -> None:
    extra = scores.assign(popular_products=[["p9"]] * len(scores), popularity_version="1")
    CustomerScores.validate(extra, lazy=True)


@pytest.mark.parametrize(("change", "expected"), [
    (_first_row("churn_probability", 1.5), "column 'churn_probability', rule in_range(0.0, 1.0)"),
    (_first_row("churn_probability", -0.1), "column 'churn_probability', rule in_range"),
    (lambda f: f.assign(segment=f["segment"].astype("float64")),
     "column 'segment', rule dtype('Int64'), found float64"),
    (lambda f: f.assign(segment=pd.array([-1] * len(f), dtype="Int64")),
     "column 'segment', rule greater_than_or_equal_to(0)"),
    (lambda f: pd.concat([f, f.iloc[:1]], ignore_index=True),
     "column 'customer_id', rule field_uniqueness"),
    (_first_row("recommendations", "p1,p2"), "column 'recommendations', rule list of product ids"),
    (_first_row("recommendations", [1, 2]), "column 'recommendations', rule list of product ids"),
    (_first_row("next_best_action", None), "column 'next_best_action', rule not_nullable"),
    (lambda f: f.drop(columns="churn_version"), "column 'churn_version' missing"),
], ids=["probability-1.5", "negative-probability", "segment-dtype", "negative-segment",
        "duplicate-customer", "list-as-text", "list-of-ints", "no-action", "missing-version"])
def test_scores_reject_a_frame_breaking_a_rule(scores: pd.DataFrame, change: Change,
                                               expected: str) -> None:
    assert rejected(CustomerScores, change(scores)).startswith(expected)


def test_score_customers_checks_the_features_it_is_given(produced: pd.DataFrame,
                                                         scoring: ScoringSettings) -> None:
    with pytest.raises(SchemaError, match="frequency"):
        score_customers(produced.drop(columns="frequency"), MODELS, scoring)
