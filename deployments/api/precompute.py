"""What the service computes once per state from the served models and the snapshot.

Segments, churn probabilities (every kind not answered per request) and next best actions are
computed for every snapshot customer when a state is built, so their endpoints are lookups.
They are built with batch scoring's own functions (:mod:`tailor.models.scoring`): each kind's
``ScoreStep`` gives its columns, and :func:`~tailor.models.scoring.scored_frame` puts them and
the features together for the action rules exactly as ``tailor score`` does, so the API's next
best action is the batch's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from tailor import kinds
from tailor.configs.schema import ScoringSettings
from tailor.deployments.api.snapshot_state import Snapshot
from tailor.models.actions import ACTION_COLUMN
from tailor.models.scoring import cold_attributes, scored_frame


def _check_type(kind: str, predictor: Any) -> None:
    expected = kinds.get(kind).predictor_type
    if not isinstance(predictor, expected):
        raise TypeError(f"the {kind} artifact holds a {type(predictor).__name__}, "
                        f"not a {expected.__name__}")


def derive(kind: str, predictor: Any, snapshot: Snapshot | None,
           scoring: ScoringSettings) -> pd.DataFrame | None:
    """What the service precomputes from one model and the snapshot; raising rejects the model.

    A kind scored once per snapshot (segmentation, churn) gets its batch-scoring columns
    (:class:`~tailor.models.scoring.ScoreStep`) for every snapshot customer, so its endpoints
    are lookups; a kind answered per request (the recommender) runs its smoke test instead.
    """
    _check_type(kind, predictor)
    spec = kinds.get(kind)
    spec.serve_check(predictor)
    if spec.per_request or snapshot is None:
        return None
    return spec.score_step.score(predictor, snapshot.features, None, scoring)


def compute_actions(scoring: ScoringSettings, snapshot: Snapshot | None,
                    scored: Mapping[str, pd.DataFrame]) -> pd.Series | None:
    """Next best action per snapshot customer, by the ``scoring.actions`` rules.

    ``scored`` holds each served kind's precomputed step columns (:func:`derive`); every
    registered kind's step runs in batch order, and a kind with nothing precomputed (not
    served, or answered per request) leaves its columns null, which no condition matches.
    The frame is :func:`~tailor.models.scoring.scored_frame`'s, over the whole snapshot, so
    ``<column>_pct`` percentiles and the answer are the batch's.
    """
    if snapshot is None:
        return None
    frame = scored_frame(snapshot.features, scored, scoring, kinds.score_steps())
    return frame[ACTION_COLUMN]


def compute_cold(snapshot: Snapshot | None, segments: pd.DataFrame | None) -> pd.DataFrame | None:
    """Cold-start input per snapshot customer (attributes, rfm features, segment), for those
    the recommender was not trained on: the same columns batch scoring uses."""
    if snapshot is None:
        return None
    customers = None if snapshot.customers is None else snapshot.customers.reset_index()
    seg = None if segments is None else segments["segment"].reindex(snapshot.features.index)
    return cold_attributes(snapshot.features, customers, seg)


__all__ = ["compute_actions", "compute_cold", "derive"]
