"""Finding a model or a customer in a :class:`ServingState`, and the errors (with their OpenAPI
descriptions) when it is not there: shared by the routers so every endpoint words a 404 or a
503 alike.
"""

# no `from __future__ import annotations`: CustomerId is used in route signatures

from typing import Annotated, Any

import pandas as pd
from fastapi import HTTPException, Path

from tailor.deployments.api import schemas
from tailor.deployments.api.state import Failure, LoadedModel, ServingState

ERROR = {"model": schemas.ErrorDetail}
NOT_FOUND = {404: {**ERROR, "description": "Customer unknown to the model and the snapshot"}}
UNAVAILABLE = {503: {**ERROR, "description": "The model or snapshot needed is not loaded"}}
UNPARSABLE = {400: {**ERROR, "description": "The body is not JSON (unparsable, or not sent "
                                           "as application/json)"}}
TOO_LARGE = {413: {**ERROR, "description": "The body is larger than serving.max_body_bytes"}}
ADMIN_ERRORS = {401: {**ERROR, "description": "No bearer token"},
                403: {**ERROR, "description": "Wrong token, or admin endpoints disabled"}}

CustomerId = Annotated[str, Path(min_length=1, max_length=200,
                                 description="customer_id as in the transactions")]


def unavailable(what: str, failure: Failure | None) -> HTTPException:
    """A 503 saying what is missing and, when a load failed, why."""
    why = f"; last load error: {failure.error}" if failure else ""
    return HTTPException(503, f"{what} is not loaded yet (see GET /models){why}")


def served_model(state: ServingState, kind: str) -> LoadedModel:
    """The champion of ``kind`` the state serves, or a 503."""
    loaded = state.models.get(kind)
    if loaded is None:
        raise unavailable(f"the {kind} champion", state.failures.get(kind))
    return loaded


def row(table: pd.DataFrame | pd.Series | None, customer_id: str) -> int | None:
    """The customer's position in a table indexed by customer_id (None: not there)."""
    if table is None:
        return None
    try:
        position = table.index.get_loc(customer_id)
    except KeyError:
        return None
    return position if isinstance(position, int) else None


def not_in_snapshot(state: ServingState, customer_id: str) -> HTTPException:
    snap = state.snapshot
    when = f" (as of {snap.as_of})" if snap is not None and snap.as_of else ""
    return HTTPException(404, f"customer {customer_id!r} is not in the feature snapshot{when}: "
                              "unknown id, or no purchase before the snapshot date")


def snapshot_position(state: ServingState, table: pd.DataFrame | pd.Series | None,
                      customer_id: str) -> int:
    """The customer's row in a table precomputed from the snapshot: 503 while the snapshot is
    not loaded, 404 when the customer is not in it."""
    if state.snapshot is None or table is None:
        raise unavailable("the feature snapshot", state.failures.get("snapshot"))
    pos = row(table, customer_id)
    if pos is None:
        raise not_in_snapshot(state, customer_id)
    return pos


def snapshot_attributes(state: ServingState, customer_id: str) -> dict[str, Any] | None:
    """A snapshot customer's cold-start input (attributes, rfm features, segment), or None."""
    pos = row(state.cold, customer_id)
    if pos is None:
        return None
    assert state.cold is not None
    return state.cold.iloc[pos].to_dict()
