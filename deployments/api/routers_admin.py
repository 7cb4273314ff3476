"""Operator endpoints, behind the bearer token of :func:`~.dependencies.require_admin`."""

# no `from __future__ import annotations`: FastAPI resolves the route annotations

from fastapi import APIRouter, Depends

from tailor.deployments.api import schemas
from tailor.deployments.api.dependencies import Runtime, require_admin
from tailor.deployments.api.lookups import ADMIN_ERRORS

router = APIRouter(tags=["admin"])


@router.post("/admin/reload", response_model=schemas.ReloadReport, responses=ADMIN_ERRORS,
             dependencies=[Depends(require_admin)])
def admin_reload(runtime: Runtime) -> schemas.ReloadReport:
    """Check the registry and the snapshot now and swap in what changed (failed versions
    are retried). Requests keep being answered by the old state until the swap."""
    outcome = runtime.reload(force=True)
    return schemas.ReloadReport(
        changed=dict(outcome.changed),
        failed={k: schemas.LoadFailure(version=f.version, error=f.error, at=f.at)
                for k, f in outcome.failed.items()},
        snapshot_reloaded=outcome.snapshot_reloaded,
        models={k: outcome.state.version(k) for k in runtime.kinds})
