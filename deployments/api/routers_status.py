"""Liveness, readiness and what is served (``/health``, ``/ready``, ``/models``)."""

# no `from __future__ import annotations`: FastAPI resolves the route annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tailor.deployments.api import schemas
from tailor.deployments.api.dependencies import Runtime
from tailor.deployments.api.state import ACTIONS, COLD, Failure, ServingRuntime

router = APIRouter(tags=["status"])


def _failure(failure: Failure | None) -> schemas.LoadFailure | None:
    if failure is None:
        return None
    return schemas.LoadFailure(version=failure.version, error=failure.error, at=failure.at)


def models_report(runtime: ServingRuntime) -> schemas.ModelsReport:
    """Served versions, the snapshot, and the last load error of each, from one state."""
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


@router.get("/health", response_model=schemas.Health)
async def health() -> schemas.Health:
    """Liveness: the process answers (models may still be loading)."""
    return schemas.Health()


@router.get("/ready", response_model=schemas.Readiness,
            responses={503: {"model": schemas.Readiness, "description": "Not ready yet"}})
async def ready(runtime: Runtime) -> Any:
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


@router.get("/models", response_model=schemas.ModelsReport)
async def models(runtime: Runtime) -> schemas.ModelsReport:
    """Served versions, when they were loaded, and the last load error of each."""
    return models_report(runtime)
