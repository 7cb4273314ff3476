"""What a request may cost the server, and what an error may send back.

- :class:`BodyLimit` refuses a body over ``serving.max_body_bytes`` with a 413 before reading
  it: a declared ``Content-Length`` is checked before one byte is read, a chunked body is
  counted as it arrives and refused at the first chunk past the limit. Nothing is buffered
  here, so big uploads cannot hold the event loop (JSON parsing and validation of a body run
  on it) or memory.
- :func:`validation_error` answers 422 with each error's ``loc``, ``msg`` and ``type`` and at
  most a short excerpt of the offending ``input`` (FastAPI's default echoes the input whole:
  10 MB in, 10 MB out), and 400 for a body that is not JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

#: characters of an input (or of a dict key in ``loc``) an error may echo
EXCERPT_CHARS = 80
#: errors listed in one 422 (the rest are counted in ``more_errors``)
MAX_ERRORS = 20
MAX_MESSAGE_CHARS = 200

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class BodyTooLarge(Exception):
    """Raised from ``receive`` when the streamed body passes the limit."""


def _declared_length(scope: Mapping[str, Any]) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """Pure ASGI middleware: a request body over ``max_bytes`` is a 413 (``Connection: close``,
    so the server stops reading the rest of it)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def refuse(self, scope: dict, receive: Receive, send: Send) -> None:
        response = JSONResponse(status_code=413, headers={"connection": "close"}, content={
            "detail": f"the request body is larger than {self.max_bytes:,} bytes "
                      "(serving.max_body_bytes)"})
        await response(scope, receive, send)

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self.refuse(scope, receive, send)
            return
        received = 0
        tripped = started = False

        async def counted() -> dict:
            nonlocal received, tripped
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    tripped = True
                    raise BodyTooLarge
            return message

        async def guarded(message: dict) -> None:
            nonlocal started
            if tripped and not started:
                return  # the app's answer to the cut stream; the 413 replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        with suppress(BodyTooLarge):  # when the app lets it through
            await self.app(scope, counted, guarded)
        if tripped and not started:
            await self.refuse(scope, receive, send)


# --- validation errors ---------------------------------------------------------------------

def _cut(text: str, limit: int = EXCERPT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> Any:
    """``value`` itself when its JSON is at most ``limit`` characters, else the start of that
    JSON text and "...". Encoded lazily, so a big input is never serialised whole."""
    if isinstance(value, bytes | bytearray):
        return _cut(bytes(value[:limit + 1]).decode("utf-8", "replace"), limit)
    if isinstance(value, str):
        return _cut(value, limit)
    encoder = json.JSONEncoder(allow_nan=False, default=lambda o: _cut(repr(o), limit))
    text = ""
    try:
        for chunk in encoder.iterencode(value):
            text += chunk
            if len(text) > limit:
                return text[:limit] + "..."
    except ValueError:  # NaN or infinity: not JSON
        return _cut(repr(value), limit)
    return json.loads(text)


def short_error(error: Mapping[str, Any]) -> dict[str, Any]:
    """One validation error as ``loc``, ``msg``, ``type`` and an ``input`` excerpt."""
    loc = [part if isinstance(part, int) else _cut(str(part)) for part in error.get("loc", ())]
    short = {"loc": loc, "msg": _cut(str(error.get("msg", "")), MAX_MESSAGE_CHARS),
             "type": str(error.get("type", ""))}
    if "input" in error:
        short["input"] = excerpt(error["input"])
    return short


def not_json(errors: list[Any]) -> str | None:
    """Why the body is not JSON (unparsable, or not sent as JSON), else None."""
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "unparsable")
            where = f" at character {loc[-1]}" if len(loc) > 1 else ""
            return f"the body is not valid JSON: {_cut(str(reason))}{where}"
        if loc == ("body",) and isinstance(error.get("input"), bytes | bytearray):
            return "the body must be JSON, sent with 'Content-Type: application/json'"
    return None


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    """400 for a body that is not JSON; else 422 listing short errors (``loc`` names the
    field), the first :data:`MAX_ERRORS` of them."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    reason = not_json(errors)
    if reason is not None:
        return JSONResponse(status_code=400, content={"detail": reason})
    content: dict[str, Any] = {"detail": [short_error(e) for e in errors[:MAX_ERRORS]]}
    if len(errors) > MAX_ERRORS:
        content["more_errors"] = len(errors) - MAX_ERRORS
    return JSONResponse(status_code=422, content=content)
