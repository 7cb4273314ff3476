"""The serving API's OpenAPI contract: every response documented, and fuzzed with schemathesis
(never a 500, always the schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from tailor.deployments.api.app import create_app
from tailor.deployments.api.state import ServingRuntime

from .conftest import World, settings_for

# --- the OpenAPI contract, fuzzed ------------------------------------------------------------

def test_openapi_documents_every_response(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            ok = op["responses"].get("200", {})
            assert "schema" in ok.get("content", {}).get("application/json", {}), (path, method)
            if path.startswith("/customers/"):
                assert {"404", "422", "503"} <= set(op["responses"]), (path, method)
    assert {"401", "403"} <= set(spec["paths"]["/admin/reload"]["post"]["responses"])


class LateApp:
    """An ASGI app whose target a fixture sets later.

    schemathesis's ``from_fixture`` fails on pytest 9 (it reads ``request.node._nodeid``), so
    the schema is loaded at import time from an app with the same serving limits, and requests
    go to the world's app once the ``fuzzed`` fixture has built it (its runtime loaded up
    front, so the lifespan is answered here).
    """

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.target: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if self.target is None:  # only the schema, while collecting
            from starlette.responses import JSONResponse

            await JSONResponse(self.spec)(scope, receive, send)
            return
        await self.target(scope, receive, send)


LATE = LateApp(create_app(settings_for(Path("unused"))).openapi())
schema = schemathesis.openapi.from_asgi("/openapi.json", LATE)


@pytest.fixture(scope="module")
def fuzzed(world: World) -> Iterator[None]:
    runtime = ServingRuntime(world.settings)
    runtime.reload()
    LATE.target = create_app(world.settings, runtime)
    yield
    LATE.target = None


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api_never_answers_500_and_follows_its_schema(case: Any, fuzzed: None) -> None:
    case.call_and_validate()
