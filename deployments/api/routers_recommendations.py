"""Recommendations: one customer (``GET /customers/{id}/recommendations``) and a batch of known
and new customers (``POST /recommendations``).

The largest ``k`` and batch are part of the published schema (schemathesis and clients read
them there), so :func:`build_router` bakes ``serving.max_k`` and ``serving.max_batch`` into the
route types; everything else (state, ``default_k``) comes per request through ``Depends``.
"""

# no `from __future__ import annotations`: the route types are built inside build_router

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field, create_model

from tailor.deployments.api import schemas
from tailor.deployments.api.dependencies import AppSettings, State
from tailor.deployments.api.lookups import (
    NOT_FOUND,
    TOO_LARGE,
    UNAVAILABLE,
    UNPARSABLE,
    CustomerId,
    served_model,
    snapshot_attributes,
    unavailable,
)
from tailor.deployments.api.recommend import (
    recommend_cold,
    recommend_known,
    recommend_one,
    used_columns,
)
from tailor.deployments.api.state import COLD, ServingState

Exclude = Annotated[bool | None, Query(
    description="drop items the customer already bought (default: the model's setting)")]


def batch_request(max_k: int, max_batch: int) -> type[schemas.BatchRequest]:
    """:class:`~.schemas.BatchRequest` with the configured limits (a 422 past them)."""
    model: type[BaseModel] = create_model(
        "BatchRequest", __base__=schemas.BatchRequest,
        customers=(list[schemas.BatchCustomer], Field(min_length=1, max_length=max_batch)),
        k=(int | None, Field(None, ge=1, le=max_k,
                             description="items per customer (default: serving.default_k)")),
    )
    return model  # type: ignore[return-value]


def batch_answer(state: ServingState, body: schemas.BatchRequest,
                 default_k: int) -> schemas.BatchResponse:
    """Known ids from history, others from their attributes (given, else the snapshot's);
    a 404 naming the ids that have neither."""
    model = served_model(state, "recommender")
    predictor = model.predictor
    k = body.k or default_k
    ids = [c.customer_id for c in body.customers]
    known = predictor.known(ids)
    cold_rows: list[dict[str, Any]] = []
    cold_at: list[int] = []
    missing = []
    used = used_columns(predictor)
    ignored: dict[int, list[str]] = {}
    for i, customer in enumerate(body.customers):
        if known[i]:
            continue
        attributes = customer.attributes
        if attributes is None:
            attributes = snapshot_attributes(state, customer.customer_id)
            if attributes is None:
                missing.append(customer.customer_id)
                continue
        else:
            ignored[i] = sorted(set(attributes) - used)
        cold_rows.append(attributes)
        cold_at.append(i)
    if missing:
        raise HTTPException(404, (
            f"{len(missing)} customer(s) unknown to the recommender (v{model.version}) "
            f"and the snapshot, with no attributes given: {missing[:10]}; send "
            "'attributes' for new customers"))
    answers: list[list[schemas.Recommendation]] = [[] for _ in ids]
    known_at = np.flatnonzero(known)
    if len(known_at):
        lists = recommend_known(predictor, [ids[i] for i in known_at], k, body.exclude_purchased)
        for i, items in zip(known_at, lists, strict=True):
            answers[i] = items
    if cold_rows:
        for i, items in zip(cold_at, recommend_cold(predictor, cold_rows, k), strict=True):
            answers[i] = items
    results = [schemas.CustomerRecommendations(
        customer_id=ids[i], source="history" if known[i] else "attributes",
        model_version=model.version, items=answers[i], ignored_attributes=ignored.get(i, []))
        for i in range(len(ids))]
    return schemas.BatchResponse(model_version=model.version, results=results)


def build_router(max_k: int, max_batch: int) -> APIRouter:
    """The recommendation routes, refusing ``k`` over ``max_k`` and batches over ``max_batch``
    with a 422 (and saying so in the OpenAPI schema)."""
    router = APIRouter(tags=["customers"])
    K = Annotated[int | None, Query(ge=1, le=max_k,
                                    description="items (default: serving.default_k)")]
    Batch = batch_request(max_k, max_batch)

    @router.get("/customers/{customer_id}/recommendations",
                response_model=schemas.CustomerRecommendations,
                responses={**NOT_FOUND, **UNAVAILABLE})
    async def customer_recommendations(customer_id: CustomerId, state: State,
                                       settings: AppSettings, k: K = None,
                                       exclude_purchased: Exclude = None
                                       ) -> schemas.CustomerRecommendations:
        """Top-k products for one customer: from purchase history when the model knows the
        customer, else a cold start from the snapshot's attributes of the customer."""
        model = served_model(state, "recommender")
        k = k or settings.serving.default_k
        items = recommend_one(model.predictor, customer_id, k, exclude_purchased)
        if items is not None:
            return schemas.CustomerRecommendations(
                customer_id=customer_id, source="history", model_version=model.version,
                items=items)
        attributes = snapshot_attributes(state, customer_id)
        if attributes is None and state.cold is None and COLD in state.failures:
            raise unavailable("cold start from the snapshot", state.failures[COLD])
        if attributes is None:
            raise HTTPException(404, (
                f"customer {customer_id!r} is unknown: the recommender (v{model.version}) was "
                "not trained on them and the feature snapshot does not have them; for a new "
                "customer, POST /recommendations with their attributes"))
        items = recommend_cold(model.predictor, [attributes], k)[0]
        return schemas.CustomerRecommendations(
            customer_id=customer_id, source="attributes", model_version=model.version,
            items=items)

    @router.post("/recommendations", response_model=schemas.BatchResponse,
                 responses={**NOT_FOUND, **UNAVAILABLE, **UNPARSABLE, **TOO_LARGE})
    def batch_recommendations(request: Batch, state: State,  # type: ignore[valid-type]
                              settings: AppSettings) -> schemas.BatchResponse:
        """Top-k for many customers: known ids from history, others from their attributes
        (cold start). An id the model does not know and that has no attributes (given or in
        the snapshot) is a 404 naming it."""
        return batch_answer(state, request, settings.serving.default_k)

    return router
