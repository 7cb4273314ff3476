"""What every router gets through ``Depends``: the runtime, the state a request answers from,
the settings and the admin check, read from ``request.app.state`` (set by ``create_app``).

Reading them per request, not from closures, lets the routers be plain modules, and lets a test
build an app around its own runtime. The dependencies are ``async`` so FastAPI runs them on the
event loop: a sync dependency would cost every cheap per-customer request a thread hop.
"""

# no `from __future__ import annotations`: FastAPI resolves these annotations at route build

import hmac
import os
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tailor.configs.schema import Settings
from tailor.deployments.api.state import ServingRuntime, ServingState

ADMIN_TOKEN_ENV = "TAILOR_ADMIN_TOKEN"

bearer = HTTPBearer(auto_error=False, description="serving.admin_token")


async def get_runtime(request: Request) -> ServingRuntime:
    """The app's runtime (owner of the current state and of reloads)."""
    return request.app.state.runtime


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


async def current_state(runtime: Annotated[ServingRuntime, Depends(get_runtime)]
                        ) -> ServingState:
    """The state this request answers from. FastAPI caches a dependency per request, so the
    endpoint and every other dependency see this one object even if a reload swaps it."""
    return runtime.state


Runtime = Annotated[ServingRuntime, Depends(get_runtime)]
AppSettings = Annotated[Settings, Depends(get_settings)]
State = Annotated[ServingState, Depends(current_state)]


def admin_token(settings: Settings) -> str | None:
    """``serving.admin_token``, else $TAILOR_ADMIN_TOKEN; None disables the admin endpoints.

    Read per request, so a token set in the environment after start-up takes effect."""
    return settings.serving.admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None


async def require_admin(
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """403 when admin is disabled or the token is wrong, 401 when no bearer token is sent."""
    token = admin_token(settings)
    if token is None:
        raise HTTPException(403, "admin endpoints are disabled: set serving.admin_token "
                                 f"or ${ADMIN_TOKEN_ENV}")
    if credentials is None:
        raise HTTPException(401, "admin endpoints need 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise HTTPException(403, "wrong admin token")
