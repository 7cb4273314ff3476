"""What the service knows of one snapshot customer: segment, churn risk, next best action.

All three are lookups in tables precomputed when the state was built (see ``precompute.py``), so
they run on the event loop.
"""

# no `from __future__ import annotations`: FastAPI resolves the route annotations

from fastapi import APIRouter

from tailor.configs.schema import ScoringSettings
from tailor.deployments.api import schemas
from tailor.deployments.api.dependencies import AppSettings, State
from tailor.deployments.api.lookups import (
    NOT_FOUND,
    UNAVAILABLE,
    CustomerId,
    row,
    served_model,
    snapshot_attributes,
    snapshot_position,
    unavailable,
)
from tailor.deployments.api.recommend import recommend_cold, recommend_one
from tailor.deployments.api.state import ACTIONS

router = APIRouter(tags=["customers"])
ERRORS = {**NOT_FOUND, **UNAVAILABLE}


def carries_recommendations(rules: ScoringSettings, action: str) -> bool:
    """Whether ``action`` comes with the customer's top products (as in ``tailor score``)."""
    carries = {rule.name: rule.with_recommendations for rule in rules.actions}
    carries.setdefault(rules.default_action, rules.default_with_recommendations)
    return carries.get(action, False)


@router.get("/customers/{customer_id}/segment", response_model=schemas.Segment,
            responses=ERRORS)
async def customer_segment(customer_id: CustomerId, state: State) -> schemas.Segment:
    """The customer's segment from the segmentation champion and the snapshot features."""
    model = served_model(state, "segmentation")
    pos = snapshot_position(state, state.segments, customer_id)
    assert state.segments is not None and state.snapshot is not None
    return schemas.Segment(
        customer_id=customer_id, segment=int(state.segments["segment"].iat[pos]),
        segment_name=str(state.segments["segment_name"].iat[pos]),
        model_version=model.version, snapshot_as_of=state.snapshot.as_of)


@router.get("/customers/{customer_id}/churn", response_model=schemas.Churn,
            responses=ERRORS)
async def customer_churn(customer_id: CustomerId, state: State) -> schemas.Churn:
    """Probability that the customer does not buy within the horizon (churn champion)."""
    model = served_model(state, "churn")
    pos = snapshot_position(state, state.churn, customer_id)
    assert state.churn is not None and state.snapshot is not None
    p = float(state.churn["churn_probability"].iat[pos])
    threshold = getattr(model.predictor, "threshold", None)
    return schemas.Churn(
        customer_id=customer_id, churn_probability=p,
        at_risk=threshold is not None and p >= threshold,
        threshold=None if threshold is None else float(threshold),
        model_version=model.version, snapshot_as_of=state.snapshot.as_of)


@router.get("/customers/{customer_id}/next-best-action",
            response_model=schemas.NextBestAction, responses=ERRORS)
async def customer_next_best_action(customer_id: CustomerId, state: State,
                                    settings: AppSettings) -> schemas.NextBestAction:
    """The first ``scoring.actions`` rule the customer matches, with their top products when
    the action carries them (same rules and percentiles as ``tailor score``)."""
    rules = settings.scoring
    if state.snapshot is None:
        raise unavailable("the feature snapshot", state.failures.get("snapshot"))
    if state.actions is None:
        raise unavailable("next best action", state.failures.get(ACTIONS))
    pos = snapshot_position(state, state.actions, customer_id)
    action = str(state.actions.iat[pos])
    seg = row(state.segments, customer_id)
    churn = row(state.churn, customer_id)
    recommendations = None
    rec = state.models.get("recommender")
    if carries_recommendations(rules, action) and rec is not None:
        recommendations = recommend_one(rec.predictor, customer_id, rules.k, None)
        attributes = None if recommendations else snapshot_attributes(state, customer_id)
        if attributes is not None:
            recommendations = recommend_cold(rec.predictor, [attributes], rules.k)[0]
    return schemas.NextBestAction(
        customer_id=customer_id, action=action,
        segment_name=None if seg is None else str(state.segments["segment_name"].iat[seg]),
        churn_probability=None if churn is None else float(
            state.churn["churn_probability"].iat[churn]),
        recommendations=recommendations,
        model_versions={k: m.version for k, m in state.models.items()},
        snapshot_as_of=state.snapshot.as_of)
