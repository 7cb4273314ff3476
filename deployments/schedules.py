"""Weekly retraining and daily scoring as Prefect deployments with cron schedules.

Built from the ``deployments`` settings and registered on a Prefect server by ``tailor deploy``.
Two ways to execute them: one long-running process, ``tailor serve-flows`` (Prefect's
``serve()``), which needs no work pool and no worker; or ``tailor deploy --work-pool NAME``,
which puts them on a Prefect process work pool where any number of ``prefect worker start
--pool NAME`` processes (on machines with tailor installed) pick their runs up. Deployments use
module entrypoints (``tailor.flows.train.train_models``), so a run starts the same code whatever
directory the serving process was started in; paths and config files are made absolute when
deployments are built.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from tailor.configs.schema import Settings

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

RETRAIN_FLOW, RETRAIN_DEPLOYMENT = "train-models", "weekly-retrain"
SCORE_FLOW, SCORE_DEPLOYMENT = "score-customers", "daily-score"
TAGS = ["tailor"]

NO_SERVER = (
    "PREFECT_API_URL is not set: deployments live on a Prefect server. Start one with\n"
    "  prefect server start\n"
    "then point tailor at it with\n"
    "  export PREFECT_API_URL=http://127.0.0.1:4200/api\n"
    "(or `prefect config set PREFECT_API_URL=...`). See docs/deployments.md."
)


class DeploymentError(RuntimeError):
    """A deployment cannot be built or registered; the message says what to do."""


@dataclass(frozen=True)
class BuiltDeployments:
    """The deployments to register or serve, and why any were left out."""

    deployments: list[RunnerDeployment]
    skipped: list[str] = field(default_factory=list)


def require_server(timeout_s: float = 5.0) -> str:
    """The configured Prefect API URL, after checking a server answers there.

    Without a server Prefect would start a throwaway local API that forgets the deployments
    and never runs their schedules, so this refuses instead.
    """
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise DeploymentError(NO_SERVER)
    url = str(url).rstrip("/")
    try:
        response = httpx.get(f"{url}/health", timeout=timeout_s)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DeploymentError(
            f"no Prefect server answers at PREFECT_API_URL={url} ({exc.__class__.__name__}: "
            f"{exc}). Start one with `prefect server start` (or fix the URL)."
        ) from None
    return url


def ui_api_mismatch(api_url: str, timeout_s: float = 5.0) -> str | None:
    """A warning when the server's UI calls another API than ``api_url``, else None.

    ``prefect server start --port P`` serves the API on P, but its UI still calls
    ``PREFECT_UI_API_URL``, by default built from PREFECT_SERVER_API_HOST/PORT (4200): the
    pages load and stay blank. A server without a UI (or an older one) is not checked.
    """
    import httpx

    root = api_url.rstrip("/").removesuffix("/api")
    try:
        response = httpx.get(f"{root}/ui-settings", timeout=timeout_s)
        response.raise_for_status()
        ui = response.json()
        ui_calls = str(ui.get("api_url") or "").rstrip("/")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    # a server without its UI (PREFECT_UI_ENABLED=false) lists no UI and has nothing to break
    if not ui.get("available_uis", True) or not ui_calls or ui_calls == api_url.rstrip("/"):
        return None
    return (f"the Prefect UI at {root} calls the API at {ui_calls}, not {api_url}: its pages "
            "will stay blank. Restart the server with PREFECT_SERVER_API_PORT (and _HOST) set "
            "to where it listens, or PREFECT_UI_API_URL (docs/operations.md, 'Ports').")


def _absolute(where: str | Path, base: Path) -> str:
    """A path made absolute against ``base``; URLs (``scheme://...``) are left as they are."""
    if "://" in str(where):
        return str(where)
    path = Path(where).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _find_flow(module_name: str, flow_name: str) -> Flow | None:
    """The flow called ``flow_name`` in ``module_name``; None when that module does not exist."""
    from prefect import Flow

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    for value in vars(module).values():
        if isinstance(value, Flow) and value.name == flow_name:
            return value
    raise DeploymentError(f"{module_name} defines no flow named {flow_name!r}")


def _parameters(flow: Flow, wanted: dict[str, Any]) -> dict[str, Any]:
    """The wanted parameters the flow accepts; a required one it gets no value for is an error."""
    signature = inspect.signature(flow.fn)
    missing = [name for name, p in signature.parameters.items()
               if p.default is inspect.Parameter.empty and name not in wanted]
    if missing:
        raise DeploymentError(f"flow {flow.name!r} needs parameter(s) {missing} that the "
                              "deployments settings do not provide")
    return {k: v for k, v in wanted.items() if k in signature.parameters}


def _to_deployment(flow: Flow, name: str, cron: str, settings: Settings,
                   parameters: dict[str, Any], description: str,
                   work_pool: str | None = None) -> RunnerDeployment:
    """One scheduled deployment; at most one of its runs executes at a time (a run due while
    the previous one is still going waits for it: two retrains gating at once could each
    replace a champion the other never compared with)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.types.entrypoint import EntrypointType

    zone = settings.deployments.timezone
    try:
        schedule = CronSchedule(cron=cron, timezone=zone)
    except ValueError as exc:
        raise DeploymentError(f"deployments: cron {cron!r} for {flow.name}/{name} is not "
                              f"valid: {exc}") from None
    return flow.to_deployment(
        name=name,
        schedule=schedule,
        paused=settings.deployments.paused,
        parameters=_parameters(flow, parameters),
        # the UI shows a schedule without its zone, and upcoming runs in the browser's zone
        description=f"{description} Schedule: cron `{cron}` in {zone}.",
        tags=[*TAGS, name],
        entrypoint_type=EntrypointType.MODULE_PATH,
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        **({"work_pool_name": work_pool, "job_variables": {"env": store_environment(settings)}}
           if work_pool else {}),
    )


def store_environment(settings: Settings) -> dict[str, str]:
    """The stores this process resolves, as the variables a worker's flow run reads: a run
    on any worker writes where ``tailor deploy`` would have (settings still win over them)."""
    import os

    from tailor.adapters import tracking
    from tailor.adapters.registry_lock import REGISTRY_LOCK_ENV

    env = {"MLFLOW_TRACKING_URI": tracking.tracking_uri(settings.tracking),
           tracking.OPTUNA_STORAGE_ENV: tracking.optuna_storage(settings.tracking)}
    if os.environ.get(REGISTRY_LOCK_ENV):
        env[REGISTRY_LOCK_ENV] = os.environ[REGISTRY_LOCK_ENV]
    return env


def build_deployments(
    settings: Settings,
    config_files: Iterable[str | Path] = (),
    overrides: Sequence[str] = (),
    base: Path | None = None,
    work_pool: str | None = None,
) -> BuiltDeployments:
    """The retrain and scoring deployments for ``settings``.

    Runs load their settings the same way the CLI did: every scheduled run gets the same
    ``config_files`` (made absolute) and ``overrides``, so it sees what ``tailor deploy`` saw.
    The scoring deployment is left out (with a note) if flows/score.py is absent.
    """
    from tailor.flows.train import train_models

    base = (base or Path.cwd()).resolve()
    cfg = settings.deployments
    common = {
        "data_dir": _absolute(cfg.data_dir, base),
        "config_files": [_absolute(c, base) for c in config_files],
        "overrides": list(overrides),
    }
    built = [_to_deployment(
        train_models, RETRAIN_DEPLOYMENT, cfg.retrain_cron, settings,
        {**common, "out_dir": _absolute(cfg.out_dir, base), "models": list(cfg.retrain_models)},
        "Weekly retraining: validate, tune, evaluate, register; promote past the gate.",
        work_pool,
    )]
    skipped = []
    score_flow = _find_flow("tailor.flows.score", SCORE_FLOW)
    if score_flow is None:
        skipped.append(f"{SCORE_FLOW}/{SCORE_DEPLOYMENT}: flows/score.py does not exist yet")
    else:
        from tailor.adapters.score_output import ScoreTargetError, parse_target

        try:
            parse_target(cfg.score_out)
        except ScoreTargetError as exc:
            raise DeploymentError(f"deployments.score_out: {exc}") from None
        built.append(_to_deployment(
            score_flow, SCORE_DEPLOYMENT, cfg.score_cron, settings,
            {**common, "out": _absolute(cfg.score_out, base),
             "snapshot_dir": _absolute(settings.scoring.snapshot_dir, base)},
            "Daily scoring with the champions: segment, recommendations, churn, next action.",
            work_pool,
        ))
    return BuiltDeployments(built, skipped)


def ensure_work_pool(name: str) -> bool:
    """Create the process work pool ``name`` if the server has none; True if created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            except ObjectAlreadyExists:  # a worker created it meanwhile
                return False
            return True
    if pool.type != "process":
        raise DeploymentError(f"work pool {name!r} is of type {pool.type!r}; tailor's "
                              "deployments run from the installed package on a 'process' pool")
    return False


def register(deployments: Iterable[RunnerDeployment]) -> dict[str, UUID]:
    """Create or update each deployment on the server; ``flow/deployment`` name -> id."""
    ids = {}
    for deployment in deployments:
        try:
            ids[deployment.full_name] = deployment.apply()
        except Exception as exc:  # httpx and Prefect raise many types: report them all
            raise DeploymentError(f"cannot register {deployment.full_name}: {exc}") from exc
    return ids


def _schedules(items: Iterable[Any]) -> list[tuple[str, str | None, bool]]:
    return [(i.schedule.cron, i.schedule.timezone, bool(i.active)) for i in items or []]


def changes_on_server(deployments: Iterable[RunnerDeployment]) -> list[str]:
    """What registering ``deployments`` would change on the server, one line per change.

    ``tailor deploy`` and ``tailor serve-flows`` both register; relative paths resolve against
    each one's working directory, so a difference here is usually a different cwd or config.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    lines = []
    with get_client(sync_client=True) as client:
        for new in deployments:
            try:
                old = client.read_deployment_by_name(new.full_name)
            except ObjectNotFound:
                continue
            for key in sorted(set(old.parameters) | set(new.parameters)):
                before, after = old.parameters.get(key), new.parameters.get(key)
                if before != after:
                    lines.append(f"{new.full_name}: parameter {key}: {before!r} -> {after!r}")
            if _schedules(old.schedules) != _schedules(new.schedules):
                lines.append(f"{new.full_name}: schedule {_schedules(old.schedules)} -> "
                             f"{_schedules(new.schedules)}")
            if bool(old.paused) != bool(new.paused):
                lines.append(f"{new.full_name}: paused {old.paused} -> {new.paused}")
    return lines


def describe(deployment: RunnerDeployment) -> str:
    """One line: name, cron, timezone and whether the schedule is active."""
    lines = []
    for item in deployment.schedules or []:
        schedule = item.schedule
        state = "active" if item.active and not deployment.paused else "paused"
        lines.append(f"cron '{schedule.cron}' ({schedule.timezone}, {state})")
    return f"{deployment.full_name}: " + ("; ".join(lines) or "no schedule")


def serve_deployments(deployments: Sequence[RunnerDeployment], limit: int | None = None) -> None:
    """Register the deployments and run their scheduled (and manually triggered) runs here,
    each in a child process, until interrupted.

    Schedules are left active on shutdown: while nothing serves them, runs show as Late in
    the UI, which is the signal that the serving process is down.
    """
    from prefect import serve

    serve(*deployments, limit=limit, pause_on_shutdown=False)
