"""The serving API's request limits: bodies over ``serving.max_body_bytes`` (declared, chunked or
streamed), small 422 answers for huge inputs, and 400 for bodies that are not JSON."""

from __future__ import annotations

import json

import anyio
import pytest
from fastapi.testclient import TestClient

from tailor.deployments.api.app import create_app

from .conftest import World, known_and_cold_ids

# --- request limits ----------------------------------------------------------------------------

def test_a_body_over_the_limit_is_a_413_with_or_without_a_length(api: TestClient,
                                                                world: World) -> None:
    limit = world.settings.serving.max_body_bytes
    big = b'{"customers": [' + b" " * limit + b"]}"
    declared = api.post("/recommendations", content=big,
                        headers={"content-type": "application/json"})
    assert declared.status_code == 413, declared.text
    assert "serving.max_body_bytes" in declared.json()["detail"]
    assert declared.headers["connection"] == "close"

    chunked = api.post("/recommendations", content=iter([big[:1000], big[1000:]]),
                       headers={"content-type": "application/json"})
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413 and "max_body_bytes" in chunked.json()["detail"]
    assert api.get("/health").status_code == 200

    known, _ = known_and_cold_ids(api, world)
    at_limit = json.dumps({"customers": [{"customer_id": known}], "k": 2}).encode()
    at_limit = at_limit[:-1] + b" " * (limit - len(at_limit)) + b"}"
    assert len(at_limit) == limit
    ok = api.post("/recommendations", content=at_limit,
                  headers={"content-type": "application/json"})
    assert ok.status_code == 200 and len(ok.json()["results"][0]["items"]) == 2


def test_a_streamed_body_is_refused_without_being_read_to_the_end(world: World) -> None:
    app = create_app(world.with_("serving.max_body_bytes=4096"))
    pulled = 0
    sent: list[dict] = []

    async def endless() -> dict:  # a client that would upload forever
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/recommendations", "raw_path": b"",
             "query_string": b"", "root_path": "", "server": ("test", 80),
             "client": ("test", 1), "headers": [(b"content-type", b"application/json"),
                                                (b"transfer-encoding", b"chunked")]}
    anyio.run(app, scope, endless, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert pulled == 5  # the first chunk past 4096 bytes, none after it
    assert b"max_body_bytes" in b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("body", [
    {"customers": "x" * 900_000},
    {"customers": [{"customer_id": "x", "attributes": {"k" * 500_000: {"nested": 1}}}]},
    {"customers": [{"customer_id": "x", "colour": ["red"] * 100_000}]},
    {"customers": [{} for _ in range(1000)]},
])
def test_a_422_for_a_huge_input_stays_small(api: TestClient, body: dict) -> None:
    response = api.post("/recommendations", json=body)
    assert response.status_code == 422
    assert len(response.content) < 5_000, len(response.content)
    errors = response.json()["detail"]
    assert all({"loc", "msg", "type"} <= set(e) for e in errors)
    shown = [e.get("input") for e in errors]
    assert all(len(v if isinstance(v, str) else json.dumps(v)) <= 83 for v in shown), shown
    assert errors[0]["loc"][:2] == ["body", "customers"]


def test_a_422_keeps_the_field_and_small_inputs_as_they_were(api: TestClient) -> None:
    response = api.post("/recommendations", json={"customers": [{"customer_id": "x"}],
                                                  "k": -1})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "k"] and error["input"] == -1
    assert error["type"] == "greater_than_equal" and "1" in error["msg"]

    many = api.post("/recommendations", json={"customers": [{} for _ in range(30)]}).json()
    assert len(many["detail"]) == 20 and many["more_errors"] == 10


@pytest.mark.parametrize(("content", "headers", "says"), [
    (b'{"customers": [{"customer_id": "C1"}', {"content-type": "application/json"},
     "not valid JSON"),
    (b"customers=C1", {"content-type": "application/json"}, "not valid JSON"),
    (b'{"customers": [{"customer_id": "C1"}]}', {"content-type": "text/plain"},
     "Content-Type: application/json"),
    (b'{"customers": [{"customer_id": "C1"}]}', {}, "Content-Type: application/json"),
])
def test_a_body_that_is_not_json_is_a_400(api: TestClient, content: bytes,
                                          headers: dict, says: str) -> None:
    response = api.post("/recommendations", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"]
