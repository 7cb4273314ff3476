"""The serving API: champions and the customer feature snapshot behind a small FastAPI app.

``create_app(settings)`` builds the app; ``tailor serve`` runs it with uvicorn. Requests read the
runtime's current :class:`~tailor.deployments.api.state.ServingState` once and answer from it, so a
reload swapping models underneath never breaks or mixes a response (see ``state.py``).

Per-customer answers are cheap: segments, churn probabilities and next best actions are
precomputed for every snapshot customer when a state is built, and a recommendation is one
dot product of precomputed representations plus ``argpartition`` in the recommender predictor
(well under a millisecond), so those endpoints run on the event loop instead of paying a
thread hop. The batch endpoint and the admin reload, which can take longer, run in threads.

Request limits (:mod:`.limits`): a body over ``serving.max_body_bytes`` is a 413 before it is
read, a validation error echoes at most a short excerpt of its input, and a body that is not
JSON is a 400.
"""

# no `from __future__ import annotations`: FastAPI must resolve the route annotations, some of
# which are built inside create_app from the settings (k and batch limits)

import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field, create_model

from tailor.configs.schema import Settings
from tailor.deployments.api import schemas
from tailor.deployments.api.limits import BodyLimit, validation_error
from tailor.deployments.api.state import (
    ACTIONS,
    COLD,
    Failure,
    LoadedModel,
    ServingRuntime,
    ServingState,
)
from tailor.models.ranking_metrics import mask_rows, top_k

log = logging.getLogger("tailor.serving")
access_log = logging.getLogger("tailor.serving.access")

ADMIN_TOKEN_ENV = "TAILOR_ADMIN_TOKEN"
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


def admin_token(settings: Settings) -> str | None:
    """``serving.admin_token``, else $TAILOR_ADMIN_TOKEN; None disables the admin endpoints."""
    return settings.serving.admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None


class RequestLog:
    """Pure ASGI middleware: one log line per request with its latency, and the latency as a
    ``Server-Timing`` header (cheaper than a BaseHTTPMiddleware on every request)."""

    def __init__(self, app: Any, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def timed_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                ms = (time.perf_counter() - start) * 1000
                message["headers"] = [*message.get("headers", []),
                                      (b"server-timing", f"app;dur={ms:.2f}".encode())]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if self.enabled:
                access_log.info("%s %s %d %.2fms", scope["method"], scope["path"], status,
                                (time.perf_counter() - start) * 1000)


# --- helpers shared by the endpoints ------------------------------------------------------------

def _unavailable(what: str, failure: Failure | None) -> HTTPException:
    why = f"; last load error: {failure.error}" if failure else ""
    return HTTPException(503, f"{what} is not loaded yet (see GET /models){why}")


def _model(state: ServingState, kind: str) -> LoadedModel:
    loaded = state.models.get(kind)
    if loaded is None:
        raise _unavailable(f"the {kind} champion", state.failures.get(kind))
    return loaded


def _row(table: pd.DataFrame | pd.Series | None, customer_id: str) -> int | None:
    if table is None:
        return None
    try:
        position = table.index.get_loc(customer_id)
    except KeyError:
        return None
    return position if isinstance(position, int) else None


def _not_in_snapshot(state: ServingState, customer_id: str) -> HTTPException:
    snap = state.snapshot
    when = f" (as of {snap.as_of})" if snap is not None and snap.as_of else ""
    return HTTPException(404, f"customer {customer_id!r} is not in the feature snapshot{when}: "
                              "unknown id, or no purchase before the snapshot date")


def _snapshot_position(state: ServingState, table: pd.DataFrame | pd.Series | None,
                       customer_id: str) -> int:
    """The customer's row in a table precomputed from the snapshot: 503 while the snapshot is
    not loaded, 404 when the customer is not in it."""
    if state.snapshot is None or table is None:
        raise _unavailable("the feature snapshot", state.failures.get("snapshot"))
    pos = _row(table, customer_id)
    if pos is None:
        raise _not_in_snapshot(state, customer_id)
    return pos


def _items(frame: pd.DataFrame, start: int, stop: int) -> list[schemas.Recommendation]:
    ranks = frame["rank"].to_numpy()[start:stop]
    products = frame["product_id"].to_numpy()[start:stop]
    scores = frame["score"].to_numpy()[start:stop]
    return [schemas.Recommendation(rank=int(r), product_id=str(p), score=float(s))
            for r, p, s in zip(ranks, products, scores, strict=True)]


def _used_columns(predictor: Any) -> set[str]:
    return {enc.column for enc in predictor.user_encodings}


def _snapshot_attributes(state: ServingState, customer_id: str) -> dict[str, Any] | None:
    """A snapshot customer's cold-start input (attributes, rfm features, segment), or None."""
    pos = _row(state.cold, customer_id)
    if pos is None:
        return None
    return state.cold.iloc[pos].to_dict()


def recommend_one(model: LoadedModel, customer_id: str, k: int,
                  exclude: bool | None) -> list[schemas.Recommendation] | None:
    """Top-k for one known customer (None if unknown), without building a DataFrame.

    The predictor's own scoring (blend of precomputed representations) and ``top_k``
    (argpartition); the same answer as ``predictor.recommend`` (tested), a third of the cost.
    """
    assert model.users is not None
    try:
        row = model.users.get_loc(customer_id)
    except KeyError:
        return None
    if not isinstance(row, int):
        return None
    predictor = model.predictor
    rows = np.array([row])
    scores = predictor.score_known(rows)
    exclude = predictor.exclude_purchased if exclude is None else exclude
    mask_rows(scores, predictor.repeat if exclude else None, rows)
    top = top_k(scores, k)[0]
    values = scores[0, top]
    products = predictor.item_ids[top]
    return [schemas.Recommendation(rank=rank, product_id=str(p), score=float(v))
            for rank, (p, v) in enumerate(zip(products, values, strict=True), start=1)]


def recommend_known(model: LoadedModel, ids: list[str], k: int,
                    exclude: bool | None) -> list[list[schemas.Recommendation]]:
    """Top-k for customers the recommender was trained on, one list per id (in order)."""
    frame = model.predictor.recommend(np.asarray(ids, dtype=object), k=k,
                                      exclude_purchased=exclude)
    per = len(frame) // max(len(ids), 1)
    return [_items(frame, i * per, (i + 1) * per) for i in range(len(ids))]


def _one_type(values: pd.Series) -> pd.Series:
    """A JSON column as one type: numbers when every value is one (ints and floats mixed),
    else text, so the recommender encodes each value as it encoded the training table."""
    if values.dtype != object:
        return values
    present = values[values.notna()]
    if present.empty:
        return values
    kinds = {type(v) for v in present}
    if kinds <= {int, float, np.int64, np.float64}:
        return pd.to_numeric(values, errors="coerce")
    if len(kinds) == 1:
        return values
    return values.map(lambda v: None if pd.isna(v) else str(v))


def recommend_cold(model: LoadedModel, rows: list[dict[str, Any]],
                   k: int) -> list[list[schemas.Recommendation]]:
    """Top-k for customers described by attributes, one list per row (in order)."""
    frame = pd.DataFrame(rows, index=pd.RangeIndex(len(rows), name="customer_id"))
    frame = frame.drop(columns=[c for c in frame.columns if c == "customer_id"])
    for column in frame.columns:
        frame[column] = _one_type(frame[column])
    answer = model.predictor.recommend_cold(frame.reset_index(), k=k)
    per = len(answer) // max(len(rows), 1)
    return [_items(answer, i * per, (i + 1) * per) for i in range(len(rows))]


def _failure(failure: Failure | None) -> schemas.LoadFailure | None:
    if failure is None:
        return None
    return schemas.LoadFailure(version=failure.version, error=failure.error, at=failure.at)


def models_report(runtime: ServingRuntime) -> schemas.ModelsReport:
    state = runtime.state
    served = []
    for kind in runtime.kinds:
        loaded = state.models.get(kind)
        served.append(schemas.ServedModel(
            kind=kind, name=f"tailor-{kind}",
            version=loaded.version if loaded else None,
            loaded_at=loaded.loaded_at if loaded else None,
            champion_version=state.champions.get(kind),
            last_error=_failure(state.failures.get(kind))))
    snap = state.snapshot
    snapshot = schemas.SnapshotInfo(
        path=str(runtime.snapshot_dir), loaded=snap is not None,
        directory=str(snap.path) if snap else None,
        loaded_at=snap.loaded_at if snap else None,
        customers=len(snap.features) if snap else 0,
        manifest=dict(snap.manifest) if snap else {},
        last_error=_failure(state.failures.get("snapshot")))
    return schemas.ModelsReport(
        models=served, snapshot=snapshot,
        errors={k: _failure(f) for k, f in state.failures.items() if k in (ACTIONS, COLD)},
        last_check_at=state.last_check_at,
        reload_interval_s=runtime.settings.serving.reload_interval_s)


# --- the app --------------------------------------------------------------------------------

def create_app(settings: Settings, runtime: ServingRuntime | None = None) -> FastAPI:
    """The serving app; its lifespan loads the champions and the snapshot, then polls.

    ``runtime`` may be given to share one between apps (tests); by default one is built from
    ``settings`` (MLflow registry of ``settings.tracking``, ``serving.snapshot_dir``).
    """
    serving = settings.serving
    runtime = runtime or ServingRuntime(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(runtime.reload)
        runtime.start_polling()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(runtime.stop_polling)

    app = FastAPI(
        title="tailor serving API",
        version="1.0",
        description="Recommendations, segments, churn probability and next best action for a "
                    "retailer's customers, from the MLflow champions and the latest customer "
                    "feature snapshot. Errors: 400 a body that is not JSON, 404 unknown "
                    "customer, 413 a body over serving.max_body_bytes, 422 malformed input "
                    "(the `loc` names the field; the input is echoed as a short excerpt), 503 "
                    "model or snapshot not loaded.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.add_middleware(BodyLimit, max_bytes=serving.max_body_bytes)
    app.add_middleware(RequestLog, enabled=serving.log_requests)  # outermost: logs 413s too
    app.add_exception_handler(RequestValidationError, validation_error)
    bearer = HTTPBearer(auto_error=False, description="serving.admin_token")
    rules = settings.scoring
    carries = {rule.name: rule.with_recommendations for rule in rules.actions}
    carries.setdefault(rules.default_action, rules.default_with_recommendations)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={
            "detail": f"internal error ({type(exc).__name__}); the server log has the trace"})

    def require_admin(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        token = admin_token(settings)
        if token is None:
            raise HTTPException(403, "admin endpoints are disabled: set serving.admin_token "
                                     f"or ${ADMIN_TOKEN_ENV}")
        if credentials is None:
            raise HTTPException(401, "admin endpoints need 'Authorization: Bearer <token>'",
                                headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(403, "wrong admin token")

    K = Annotated[int | None, Query(ge=1, le=serving.max_k,
                                    description="items (default: serving.default_k)")]
    Exclude = Annotated[bool | None, Query(
        description="drop items the customer already bought (default: the model's setting)")]
    Batch = create_model(
        "BatchRequest", __base__=schemas.BatchRequest,
        customers=(list[schemas.BatchCustomer],
                   Field(min_length=1, max_length=serving.max_batch)),
        k=(int | None, Field(None, ge=1, le=serving.max_k,
                             description="items per customer (default: serving.default_k)")),
    )

    @app.get("/health", response_model=schemas.Health, tags=["status"])
    async def health() -> schemas.Health:
        """Liveness: the process answers (models may still be loading)."""
        return schemas.Health()

    @app.get("/ready", response_model=schemas.Readiness, tags=["status"],
             responses={503: {"model": schemas.Readiness, "description": "Not ready yet"}})
    async def ready() -> Any:
        """Readiness: every served champion and the snapshot are loaded (else 503)."""
        state = runtime.state
        missing = [f"model {k}" for k in runtime.kinds if k not in state.models]
        if state.snapshot is None:
            missing.append("snapshot")
        body = schemas.Readiness(ready=not missing, models={k: state.version(k)
                                                             for k in runtime.kinds},
                                 snapshot_loaded=state.snapshot is not None, missing=missing)
        if missing:
            return JSONResponse(status_code=503, content=body.model_dump(mode="json"))
        return body

    @app.get("/models", response_model=schemas.ModelsReport, tags=["status"])
    async def models() -> schemas.ModelsReport:
        """Served versions, when they were loaded, and the last load error of each."""
        return models_report(runtime)

    @app.get("/customers/{customer_id}/recommendations",
             response_model=schemas.CustomerRecommendations, tags=["customers"],
             responses={**NOT_FOUND, **UNAVAILABLE})
    async def customer_recommendations(customer_id: CustomerId, k: K = None,
                                       exclude_purchased: Exclude = None
                                       ) -> schemas.CustomerRecommendations:
        """Top-k products for one customer: from purchase history when the model knows the
        customer, else a cold start from the snapshot's attributes of the customer."""
        state = runtime.state
        model = _model(state, "recommender")
        k = k or serving.default_k
        items = recommend_one(model, customer_id, k, exclude_purchased)
        if items is not None:
            return schemas.CustomerRecommendations(
                customer_id=customer_id, source="history", model_version=model.version,
                items=items)
        attributes = _snapshot_attributes(state, customer_id)
        if attributes is None and state.cold is None and COLD in state.failures:
            raise _unavailable("cold start from the snapshot", state.failures[COLD])
        if attributes is None:
            raise HTTPException(404, (
                f"customer {customer_id!r} is unknown: the recommender (v{model.version}) was "
                "not trained on them and the feature snapshot does not have them; for a new "
                "customer, POST /recommendations with their attributes"))
        items = recommend_cold(model, [attributes], k)[0]
        return schemas.CustomerRecommendations(
            customer_id=customer_id, source="attributes", model_version=model.version,
            items=items)

    @app.post("/recommendations", response_model=schemas.BatchResponse, tags=["customers"],
              responses={**NOT_FOUND, **UNAVAILABLE, **UNPARSABLE, **TOO_LARGE})
    def batch_recommendations(request: Batch) -> schemas.BatchResponse:  # type: ignore[valid-type]
        """Top-k for many customers: known ids from history, others from their attributes
        (cold start). An id the model does not know and that has no attributes (given or in
        the snapshot) is a 404 naming it."""
        state = runtime.state
        model = _model(state, "recommender")
        body: schemas.BatchRequest = request
        k = body.k or serving.default_k
        ids = [c.customer_id for c in body.customers]
        known = model.predictor.known(ids)
        cold_rows: list[dict[str, Any]] = []
        cold_at: list[int] = []
        missing = []
        used = _used_columns(model.predictor)
        ignored: dict[int, list[str]] = {}
        for i, customer in enumerate(body.customers):
            if known[i]:
                continue
            attributes = customer.attributes
            if attributes is None:
                attributes = _snapshot_attributes(state, customer.customer_id)
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
            lists = recommend_known(model, [ids[i] for i in known_at], k, body.exclude_purchased)
            for i, items in zip(known_at, lists, strict=True):
                answers[i] = items
        if cold_rows:
            for i, items in zip(cold_at, recommend_cold(model, cold_rows, k), strict=True):
                answers[i] = items
        results = [schemas.CustomerRecommendations(
            customer_id=ids[i], source="history" if known[i] else "attributes",
            model_version=model.version, items=answers[i], ignored_attributes=ignored.get(i, []))
            for i in range(len(ids))]
        return schemas.BatchResponse(model_version=model.version, results=results)

    @app.get("/customers/{customer_id}/segment", response_model=schemas.Segment,
             tags=["customers"], responses={**NOT_FOUND, **UNAVAILABLE})
    async def customer_segment(customer_id: CustomerId) -> schemas.Segment:
        """The customer's segment from the segmentation champion and the snapshot features."""
        state = runtime.state
        model = _model(state, "segmentation")
        pos = _snapshot_position(state, state.segments, customer_id)
        return schemas.Segment(
            customer_id=customer_id, segment=int(state.segments["segment"].iat[pos]),
            segment_name=str(state.segments["segment_name"].iat[pos]),
            model_version=model.version, snapshot_as_of=state.snapshot.as_of)

    @app.get("/customers/{customer_id}/churn", response_model=schemas.Churn,
             tags=["customers"], responses={**NOT_FOUND, **UNAVAILABLE})
    async def customer_churn(customer_id: CustomerId) -> schemas.Churn:
        """Probability that the customer does not buy within the horizon (churn champion)."""
        state = runtime.state
        model = _model(state, "churn")
        pos = _snapshot_position(state, state.churn, customer_id)
        p = float(state.churn["churn_probability"].iat[pos])
        threshold = getattr(model.predictor, "threshold", None)
        return schemas.Churn(
            customer_id=customer_id, churn_probability=p,
            at_risk=threshold is not None and p >= threshold,
            threshold=None if threshold is None else float(threshold),
            model_version=model.version, snapshot_as_of=state.snapshot.as_of)

    @app.get("/customers/{customer_id}/next-best-action", response_model=schemas.NextBestAction,
             tags=["customers"], responses={**NOT_FOUND, **UNAVAILABLE})
    async def customer_next_best_action(customer_id: CustomerId) -> schemas.NextBestAction:
        """The first ``scoring.actions`` rule the customer matches, with their top products when
        the action carries them (same rules and percentiles as ``tailor score``)."""
        state = runtime.state
        if state.snapshot is None:
            raise _unavailable("the feature snapshot", state.failures.get("snapshot"))
        if state.actions is None:
            raise _unavailable("next best action", state.failures.get("next_best_action"))
        pos = _snapshot_position(state, state.actions, customer_id)
        action = str(state.actions.iat[pos])
        seg = _row(state.segments, customer_id)
        churn = _row(state.churn, customer_id)
        recommendations = None
        rec = state.models.get("recommender")
        if carries.get(action, False) and rec is not None:
            recommendations = recommend_one(rec, customer_id, rules.k, None)
            attributes = None if recommendations else _snapshot_attributes(state, customer_id)
            if attributes is not None:
                recommendations = recommend_cold(rec, [attributes], rules.k)[0]
        return schemas.NextBestAction(
            customer_id=customer_id, action=action,
            segment_name=None if seg is None else str(state.segments["segment_name"].iat[seg]),
            churn_probability=None if churn is None else float(
                state.churn["churn_probability"].iat[churn]),
            recommendations=recommendations,
            model_versions={k: m.version for k, m in state.models.items()},
            snapshot_as_of=state.snapshot.as_of)

    @app.post("/admin/reload", response_model=schemas.ReloadReport, tags=["admin"],
              responses=ADMIN_ERRORS, dependencies=[Depends(require_admin)])
    def admin_reload() -> schemas.ReloadReport:
        """Check the registry and the snapshot now and swap in what changed (failed versions
        are retried). Requests keep being answered by the old state until the swap."""
        outcome = runtime.reload(force=True)
        return schemas.ReloadReport(
            changed=dict(outcome.changed),
            failed={k: schemas.LoadFailure(version=f.version, error=f.error, at=f.at)
                    for k, f in outcome.failed.items()},
            snapshot_reloaded=outcome.snapshot_reloaded,
            models={k: outcome.state.version(k) for k in runtime.kinds})

    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the app with uvicorn (one process; the models are loaded once, at startup)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s "
                                                   "%(message)s")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    app = create_app(settings)
    uvicorn.run(app, host=host or settings.serving.host, port=port or settings.serving.port,
                access_log=False, log_level="info")
