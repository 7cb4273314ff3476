"""What the service serves, and how it changes without a request ever seeing half of it.

Everything a request needs (the champion predictors, the customer feature snapshot, the
segment / churn / next-best-action tables precomputed from them, and the load errors shown by
``/models``) lives in one frozen :class:`ServingState`. A request reads ``runtime.state`` once
and uses that object to the end, so it answers from one consistent set of models even while a
reload runs. A reload builds a complete new state beside the old one (download, unpickle,
score the snapshot with it) and then replaces the reference in one assignment: readers see the
old state or the new one, never a mixture, and need no lock.

Anything that fails to load (a broken artifact, a model that cannot score the snapshot, an
unreadable or contract-breaking snapshot) is recorded as a :class:`Failure` and the previous
object keeps serving. A champion version that failed is not retried by the periodic check, only
by an explicit reload (``POST /admin/reload``), so a broken version is not downloaded every
interval. Reading the snapshot is :mod:`.snapshot_state`; the tables computed over it are
:mod:`.precompute`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pandas as pd

from tailor import kinds
from tailor.adapters.snapshot import CURRENT_FILE, FEATURES_FILE
from tailor.configs.schema import Settings
from tailor.deployments.api.precompute import compute_actions, compute_cold, derive
from tailor.deployments.api.snapshot_state import (
    Snapshot,
    Stamp,
    load_snapshot,
    snapshot_dir,
    snapshot_stamp,
)

log = logging.getLogger("tailor.serving")

ACTIONS = "next_best_action"
COLD = "cold_start"


def _now() -> datetime:
    return datetime.now(UTC)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 2000 else text[:2000] + "..."


@dataclass(frozen=True)
class Failure:
    """A load that failed; ``version`` is the model version (None for the snapshot)."""

    version: str | None
    error: str
    at: datetime


@dataclass(frozen=True, eq=False)
class LoadedModel:
    kind: str
    name: str
    version: str
    loaded_at: datetime
    predictor: Any


@dataclass(frozen=True, eq=False)
class ServingState:
    """One immutable view of everything served; replaced whole, never modified."""

    models: Mapping[str, LoadedModel] = field(default_factory=lambda: MappingProxyType({}))
    snapshot: Snapshot | None = None
    #: kind -> its score step's columns over the snapshot (index customer_id), for each served
    #: kind not answered per request (segmentation, churn)
    scored: Mapping[str, pd.DataFrame] = field(default_factory=lambda: MappingProxyType({}))
    #: index customer_id: the action name
    actions: pd.Series | None = None
    #: index customer_id: cold-start input (attributes, rfm columns, segment)
    cold: pd.DataFrame | None = None
    champions: Mapping[str, str | None] = field(default_factory=lambda: MappingProxyType({}))
    failures: Mapping[str, Failure] = field(default_factory=lambda: MappingProxyType({}))
    last_check_at: datetime | None = None

    def version(self, kind: str) -> str | None:
        loaded = self.models.get(kind)
        return None if loaded is None else loaded.version

    @property
    def segments(self) -> pd.DataFrame | None:
        """Index customer_id: segment, segment_name (segmentation model x snapshot)."""
        return self.scored.get("segmentation")

    @property
    def churn(self) -> pd.DataFrame | None:
        """Index customer_id: churn_probability (churn model x snapshot)."""
        return self.scored.get("churn")


@dataclass(frozen=True)
class ReloadOutcome:
    changed: Mapping[str, str]
    failed: Mapping[str, Failure]
    snapshot_reloaded: bool
    state: ServingState


# --- the runtime: loading, swapping, polling ------------------------------------------------

class ServingRuntime:
    """Owns the current :class:`ServingState`, reloads it, and polls the registry.

    Champions are resolved and loaded with :mod:`tailor.adapters.champions` on an explicit
    client for ``settings.tracking`` (no global tracking URI), created on first use.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kinds = tuple(settings.serving.models)
        self.snapshot_dir = snapshot_dir(settings)
        self._client: Any = None
        self._state = ServingState()
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._failed_stamp: Stamp | None = None  # reload lock held

    @property
    def state(self) -> ServingState:
        """The current state: read it once per request and use only that object."""
        return self._state

    def _registry(self) -> Any:
        if self._client is None:
            from tailor.adapters.tracking import client_for

            self._client = client_for(self.settings.tracking)
        return self._client

    def champion_version(self, kind: str) -> str | None:
        """Where ``tailor-<kind>@champion`` points now (None: unregistered or no champion)."""
        from tailor.adapters.champions import champion_version

        return champion_version(self._registry(), kind)

    def load_predictor(self, kind: str, version: str) -> Any:
        from tailor.adapters.champions import load_version

        return load_version(self._registry(), kind, version)

    # -- reload -----------------------------------------------------------------------------
    def reload(self, force: bool = True) -> ReloadOutcome:
        """Check the registry and the snapshot; load what changed; swap in one assignment.

        ``force`` retries versions that failed before (the periodic check does not).
        Reloads are serialised; requests keep reading the old state throughout.
        """
        with self._reload_lock:
            outcome = self._build(self._state, force)
            self._state = outcome.state
        for kind, version in outcome.changed.items():
            log.info("serving %s version %s", kind, version)
        for what, failure in outcome.failed.items():
            log.warning("kept the previous %s: loading %s failed: %s", what,
                        failure.version or "it", failure.error)
        return outcome

    def _build(self, old: ServingState, force: bool) -> ReloadOutcome:
        failures = dict(old.failures)
        failed: dict[str, Failure] = {}

        def fail(what: str, version: str | None, exc: BaseException) -> None:
            failed[what] = failures[what] = Failure(version, _describe(exc), _now())

        models = dict(old.models)
        scored = dict(old.scored)

        # 1. the snapshot: a new one must work with the models already served
        snapshot = old.snapshot
        snapshot_reloaded = False
        stamp = snapshot_stamp(self.snapshot_dir)
        seen = old.snapshot.stamp if old.snapshot else None
        if stamp is not None and stamp != seen and (force or stamp != self._failed_stamp):
            try:
                candidate = load_snapshot(self.snapshot_dir)
                fresh = {k: derive(k, m.predictor, candidate, self.settings.scoring)
                         for k, m in models.items()}
            except Exception as exc:  # noqa: BLE001 - any failure keeps the old snapshot
                self._failed_stamp = stamp
                fail("snapshot", None, exc)
            else:
                snapshot, snapshot_reloaded = candidate, True
                scored = {k: v for k, v in fresh.items() if v is not None}
                failures.pop("snapshot", None)
                self._failed_stamp = None
        elif stamp is None and snapshot is None and "snapshot" not in failures:
            fail("snapshot", None, FileNotFoundError(
                f"no snapshot in {self.snapshot_dir}: neither {CURRENT_FILE} nor "
                f"{FEATURES_FILE} (run `tailor score`, or point serving.snapshot_dir at one)"))

        # 2. each model: load the champion if it is not the one served
        champions: dict[str, str | None] = {}
        changed: dict[str, str] = {}
        for kind in self.kinds:
            try:
                version = self.champion_version(kind)
            except Exception as exc:  # noqa: BLE001 - registry down: keep serving
                fail(kind, None, exc)
                champions[kind] = old.champions.get(kind)
                continue
            champions[kind] = version
            current = models.get(kind)
            if version is None or (current is not None and current.version == version):
                if current is not None and current.version == version:
                    failures.pop(kind, None)  # e.g. the alias went back to the served version
                continue
            previous = failures.get(kind)
            if not force and previous is not None and previous.version == version:
                continue  # failed before: only an explicit reload tries again
            try:
                predictor = self.load_predictor(kind, version)
                table = derive(kind, predictor, snapshot, self.settings.scoring)
            except Exception as exc:  # noqa: BLE001 - a broken version never replaces a good one
                fail(kind, version, exc)
                continue
            models[kind] = LoadedModel(kind, f"tailor-{kind}", version, _now(), predictor)
            if table is None:
                scored.pop(kind, None)
            else:
                scored[kind] = table
            changed[kind] = version
            failures.pop(kind, None)

        # 3. tables over the snapshot from whatever is now served
        actions, cold = old.actions, old.cold
        if changed.keys() & {"segmentation"} or snapshot_reloaded or (
                cold is None and COLD not in failures):
            try:
                cold = compute_cold(snapshot, scored.get("segmentation"))
                failures.pop(COLD, None)
            except Exception as exc:  # noqa: BLE001 - known customers are still served
                cold = None
                fail(COLD, None, exc)
        rescored = any(not kinds.get(kind).per_request for kind in changed)
        if rescored or snapshot_reloaded or (actions is None and ACTIONS not in failures):
            try:
                actions = compute_actions(self.settings.scoring, snapshot, scored)
                failures.pop(ACTIONS, None)
            except Exception as exc:  # noqa: BLE001 - the other endpoints keep working
                actions = None
                fail(ACTIONS, None, exc)

        state = ServingState(
            models=MappingProxyType(models), snapshot=snapshot,
            scored=MappingProxyType(scored), actions=actions,
            cold=cold, champions=MappingProxyType(champions), failures=MappingProxyType(failures),
            last_check_at=_now())
        return ReloadOutcome(MappingProxyType(changed), MappingProxyType(failed),
                             snapshot_reloaded, state)

    # -- periodic check ---------------------------------------------------------------------
    def start_polling(self) -> None:
        """Check the registry every ``serving.reload_interval_s`` in a daemon thread."""
        interval = self.settings.serving.reload_interval_s
        if interval is None or self._poller is not None:
            return
        self._stop.clear()

        def poll() -> None:
            while not self._stop.wait(interval):
                try:
                    self.reload(force=False)
                except Exception:
                    log.exception("registry check failed")

        self._poller = threading.Thread(target=poll, name="tailor-reload", daemon=True)
        self._poller.start()

    def stop_polling(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout)
            self._poller = None
