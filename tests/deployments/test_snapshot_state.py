"""The serving snapshot as the API reads it: the features contract is checked on load (a bad
file is refused naming the file, column and rule), and the next best action precomputed over it
is batch scoring's, built by the same function.

No registry here (fake predictors, files written with the snapshot writer): the end-to-end
equality against real champions is in ``test_api.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import pytest

from tailor import kinds
from tailor.adapters import snapshot
from tailor.configs import load_settings
from tailor.configs.schema import ScoringSettings
from tailor.deployments.api.precompute import compute_actions
from tailor.deployments.api.snapshot_state import Snapshot, load_snapshot
from tailor.models.scoring import score_customers


@pytest.fixture(scope="module")
def features(retailer_features: pd.DataFrame) -> pd.DataFrame:
    return retailer_features


@pytest.fixture(scope="module")
def scoring() -> ScoringSettings:
    return load_settings([], []).scoring


def publish(directory: Path, features: pd.DataFrame) -> Path:
    """Write ``features`` as the snapshot writer does (customer_id as a column)."""
    return snapshot.write(directory, {snapshot.FEATURES_FILE: features.reset_index()},
                          {"as_of": "2024-01-01"}, keep=3)


def test_a_snapshot_of_real_features_loads(tmp_path: Path, features: pd.DataFrame) -> None:
    publish(tmp_path, features)
    loaded = load_snapshot(tmp_path)
    pd.testing.assert_frame_equal(loaded.features, features)


@pytest.mark.parametrize(("change", "column", "rule"), [
    (lambda f: f.assign(frequency=-f["frequency"]), "frequency", "greater_than_or_equal_to(1)"),
    (lambda f: f.assign(frequency=f["frequency"].astype("int64")), "frequency",
     "dtype('float64')"),
    (lambda f: f.assign(return_rate=1.5), "return_rate", "in_range(0.0, 1.0)"),
    (lambda f: f.drop(columns="monetary"), "monetary", "column_in_dataframe"),
], ids=["negative-frequency", "integer-frequency", "return-rate", "missing-column"])
def test_a_snapshot_breaking_the_features_contract_is_refused(
        tmp_path: Path, features: pd.DataFrame,
        change: Callable[[pd.DataFrame], pd.DataFrame], column: str, rule: str) -> None:
    published = publish(tmp_path, change(features))
    with pytest.raises(ValueError) as caught:
        load_snapshot(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{published / snapshot.FEATURES_FILE}: ")
    assert f"'{column}'" in message and rule in message
    assert len(message) < 400  # one line, not pandera's whole report


class Segments:
    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        labels = np.minimum(frame["frequency"].to_numpy().astype(int) - 1, 3)
        names = np.array(["new", "loyal", "champions", "champions_2"], dtype=object)[labels]
        return pd.DataFrame({"segment": labels, "segment_name": names}, index=frame.index)


class Churn:
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return 1.0 - np.exp(-frame["recency_days"].to_numpy() / 60.0)


@pytest.mark.parametrize("served", [("segmentation", "churn"), ("churn",), ("segmentation",),
                                    ()])
def test_precomputed_actions_are_the_batch_actions(features: pd.DataFrame,
                                                   scoring: ScoringSettings,
                                                   served: tuple[str, ...]) -> None:
    predictors = {"segmentation": Segments(), "churn": Churn()}
    models = {kind: ("1", predictors[kind]) for kind in served}
    batch = score_customers(features, models, scoring, steps=kinds.score_steps())
    # what the serving runtime keeps per kind: its step's columns over the snapshot
    scored = {kind: kinds.get(kind).score_step.score(predictors[kind], features, None, scoring)
              for kind in served}
    snap = Snapshot(Path("."), ("", ()), MappingProxyType({}), features, None,
                    datetime.now(UTC))
    actions = compute_actions(scoring, snap, scored)
    assert actions is not None and actions.index.equals(features.index)
    assert actions.tolist() == batch["next_best_action"].tolist()
    assert batch["next_best_action"].nunique() > (2 if served else 1)  # the rules really decide
