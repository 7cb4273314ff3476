"""The serving API: champions and the customer feature snapshot behind a small FastAPI app.

``create_app(settings)`` builds the app; ``tailor serve`` runs it with uvicorn. Requests read the
runtime's current :class:`~tailor.deployments.api.state.ServingState` once (through the
``current_state`` dependency) and answer from it, so a reload swapping models underneath never
breaks or mixes a response (see ``state.py``).

The endpoints live in routers by concern, and get the state, the settings and the admin check
through ``Depends`` (:mod:`.dependencies`, reading ``app.state``):

- :mod:`.routers_status`: ``/health``, ``/ready``, ``/models``
- :mod:`.routers_recommendations`: ``/customers/{id}/recommendations``, ``POST /recommendations``
- :mod:`.routers_customers`: ``/customers/{id}/segment``, ``/churn``, ``/next-best-action``
- :mod:`.routers_admin`: ``POST /admin/reload``

Per-customer answers are cheap: segments, churn probabilities and next best actions are
precomputed for every snapshot customer when a state is built, and a recommendation is one
dot product of precomputed representations plus ``argpartition`` in the recommender predictor
(well under a millisecond), so those endpoints run on the event loop instead of paying a
thread hop. The batch endpoint and the admin reload, which can take longer, run in threads.

Request limits (:mod:`.limits`): a body over ``serving.max_body_bytes`` is a 413 before it is
read, a validation error echoes at most a short excerpt of its input, and a body that is not
JSON is a 400. The app imports no Prefect (tested), so serving starts without it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tailor.configs.schema import Settings
from tailor.deployments.api import routers_admin, routers_customers, routers_status
from tailor.deployments.api.limits import BodyLimit, validation_error
from tailor.deployments.api.routers_recommendations import build_router
from tailor.deployments.api.state import ServingRuntime

log = logging.getLogger("tailor.serving")
access_log = logging.getLogger("tailor.serving.access")

DESCRIPTION = (
    "Recommendations, segments, churn probability and next best action for a retailer's "
    "customers, from the MLflow champions and the latest customer feature snapshot. Errors: "
    "400 a body that is not JSON, 404 unknown customer, 413 a body over "
    "serving.max_body_bytes, 422 malformed input (the `loc` names the field; the input is "
    "echoed as a short excerpt), 503 model or snapshot not loaded.")


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


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A 500 that names the exception type only; the trace goes to the server log."""
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(status_code=500, content={
        "detail": f"internal error ({type(exc).__name__}); the server log has the trace"})


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

    app = FastAPI(title="tailor serving API", version="1.0", description=DESCRIPTION,
                  lifespan=lifespan)
    app.state.runtime = runtime  # read by the dependencies (.dependencies)
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=serving.max_body_bytes)
    app.add_middleware(RequestLog, enabled=serving.log_requests)  # outermost: logs 413s too
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
    # in this order, so the OpenAPI paths are listed as they always were
    app.include_router(routers_status.router)
    app.include_router(build_router(max_k=serving.max_k, max_batch=serving.max_batch))
    app.include_router(routers_customers.router)
    app.include_router(routers_admin.router)
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
