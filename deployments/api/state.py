"""What the service serves, and how it changes without a request ever seeing half of it.

Everything a request needs (the champion predictors, the customer feature snapshot, the
segment / churn / next-best-action tables precomputed from them, and the load errors shown by
``/models``) lives in one frozen :class:`ServingState`. A request reads ``runtime.state`` once
and uses that object to the end, so it answers from one consistent set of models even while a
reload runs. A reload builds a complete new state beside the old one (download, unpickle,
score the snapshot with it) and then replaces the reference in one assignment: readers see the
old state or the new one, never a mixture, and need no lock.

Anything that fails to load (a broken artifact, a model that cannot score the snapshot, an
unreadable snapshot) is recorded as a :class:`Failure` and the previous object keeps serving.
A champion version that failed is not retried by the periodic check, only by an explicit
reload (``POST /admin/reload``), so a broken version is not downloaded every interval.

The snapshot is read from the directory ``snapshot_dir/CURRENT`` names, resolved once per load
(:mod:`tailor.adapters.snapshot`): ``tailor score`` publishes a complete snapshot by replacing that
pointer, so a load never mixes files of two snapshots, and a write killed halfway is never read.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from tailor import kinds
from tailor.adapters.snapshot import (
    CURRENT_FILE,
    CUSTOMERS_FILE,
    FEATURES_FILE,
    FILES,
    MANIFEST_FILE,
    VERSIONS_DIR,
    read_pointer,
    require_published,
)
from tailor.configs.schema import ScoringSettings, Settings

log = logging.getLogger("tailor.serving")

#: what is published: the pointer's text ("" for an old-layout snapshot) and the
#: (file, mtime_ns, size) of the files it names; it changes with every publish or rewrite
Stamp = tuple[str, tuple[tuple[str, int, int], ...]]
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
class Snapshot:
    """The customer feature snapshot written by the score flow (features, attributes, manifest)."""

    path: Path  # the published directory read (snapshot_dir itself for the old layout)
    stamp: Stamp
    manifest: Mapping[str, Any]
    features: pd.DataFrame  # index customer_id (str)
    customers: pd.DataFrame | None  # index customer_id (str), attribute columns
    loaded_at: datetime

    @property
    def as_of(self) -> str | None:
        value = self.manifest.get("as_of")
        return None if value is None else str(value)


@dataclass(frozen=True, eq=False)
class ServingState:
    """One immutable view of everything served; replaced whole, never modified."""

    models: Mapping[str, LoadedModel] = field(default_factory=lambda: MappingProxyType({}))
    snapshot: Snapshot | None = None
    #: index customer_id: segment, segment_name (segmentation model x snapshot)
    segments: pd.DataFrame | None = None
    #: index customer_id: churn_probability (churn model x snapshot)
    churn: pd.DataFrame | None = None
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


@dataclass(frozen=True)
class ReloadOutcome:
    changed: Mapping[str, str]
    failed: Mapping[str, Failure]
    snapshot_reloaded: bool
    state: ServingState


# --- the snapshot ---------------------------------------------------------------------------

def snapshot_dir(settings: Settings) -> Path:
    """``serving.snapshot_dir``, else ``scoring.snapshot_dir`` (where ``tailor score`` writes)."""
    return Path(settings.serving.snapshot_dir or settings.scoring.snapshot_dir)


def _file_stats(directory: Path) -> tuple[tuple[str, int, int], ...]:
    stats = []
    for name in FILES:
        try:
            info = (directory / name).stat()
        except FileNotFoundError:
            continue
        stats.append((name, info.st_mtime_ns, info.st_size))
    return tuple(stats)


def snapshot_stamp(directory: Path) -> Stamp | None:
    """Identity of the published snapshot, None when nothing is published. Cheap (one small
    read and a few stats), so the periodic check can call it every interval."""
    name = read_pointer(directory)
    if name is None:
        return ("", _file_stats(directory)) if (directory / FEATURES_FILE).is_file() else None
    return (name, _file_stats(directory / VERSIONS_DIR / name))


def _by_customer(frame: pd.DataFrame, what: Path, keep_first: bool = False
                 ) -> pd.DataFrame:
    if "customer_id" in frame.columns:
        frame = frame.set_index("customer_id")
    elif frame.index.name != "customer_id":
        raise ValueError(f"{what}: expected a customer_id column or index "
                         f"(index is {frame.index.name!r})")
    frame = frame.drop(columns=[c for c in frame.columns if str(c).startswith("_")])
    frame.index = frame.index.astype(str)
    if frame.index.has_duplicates:
        if not keep_first:
            dup = frame.index[frame.index.duplicated()][:5].tolist()
            raise ValueError(f"{what}: customer_id repeated (e.g. {dup})")
        frame = frame[~frame.index.duplicated()]
    return frame


def load_snapshot(directory: Path) -> Snapshot:
    """Read the published snapshot: resolve ``CURRENT`` once, then read only that directory
    (``customer_features.parquet``, + ``customers.parquet``, ``manifest.json``)."""
    target = require_published(directory)
    stamp: Stamp = ("" if target == directory else target.name, _file_stats(target))
    features = _by_customer(pd.read_parquet(target / FEATURES_FILE), target / FEATURES_FILE)
    customers = None
    if (target / CUSTOMERS_FILE).exists():
        customers = _by_customer(pd.read_parquet(target / CUSTOMERS_FILE),
                                 target / CUSTOMERS_FILE, keep_first=True)
    manifest: dict[str, Any] = {}
    if (target / MANIFEST_FILE).exists():
        manifest = json.loads((target / MANIFEST_FILE).read_text())
        if not isinstance(manifest, dict):
            raise ValueError(f"{target / MANIFEST_FILE}: expected a JSON object")
    return Snapshot(target, stamp, MappingProxyType(manifest), features, customers, _now())


# --- checking a model against the snapshot ------------------------------------------------------

def _check_type(kind: str, predictor: Any) -> None:
    expected = kinds.get(kind).predictor_type
    if not isinstance(predictor, expected):
        raise TypeError(f"the {kind} artifact holds a {type(predictor).__name__}, "
                        f"not a {expected.__name__}")


def derive(kind: str, predictor: Any, snapshot: Snapshot | None,
           scoring: ScoringSettings) -> pd.DataFrame | None:
    """What the service precomputes from one model and the snapshot; raising rejects the model.

    A kind scored once per snapshot (segmentation, churn) gets its batch-scoring columns
    (:class:`~tailor.models.scoring.ScoreStep`) for every snapshot customer, so its endpoints
    are lookups; a kind answered per request (the recommender) runs its smoke test instead.
    """
    _check_type(kind, predictor)
    spec = kinds.get(kind)
    spec.serve_check(predictor)
    if spec.per_request or snapshot is None:
        return None
    return spec.score_step.score(predictor, snapshot.features, None, scoring)


def compute_actions(settings: Settings, snapshot: Snapshot | None, segments: pd.DataFrame | None,
                    churn: pd.DataFrame | None) -> pd.Series | None:
    """Next best action per snapshot customer, by the ``scoring.actions`` rules.

    Built like :func:`tailor.models.scoring.score_customers` builds it (features + segment +
    churn_probability, once over the whole snapshot), so ``<column>_pct`` percentiles and the
    answer are the same as in ``tailor score``'s batch; a model that is not served leaves its
    columns null, which no condition matches.
    """
    if snapshot is None:
        return None
    from tailor.models.actions import next_best_action

    index = snapshot.features.index
    if segments is not None:
        seg = segments.reindex(index)
        segment = seg["segment"].astype("Int64").to_numpy()
        names = seg["segment_name"].astype(object).to_numpy()
    else:
        segment = pd.array([pd.NA] * len(index), dtype="Int64")
        names = np.full(len(index), None, dtype=object)
    probability = (churn["churn_probability"].reindex(index).to_numpy(dtype=np.float64)
                   if churn is not None else np.full(len(index), np.nan))
    frame = snapshot.features.assign(segment=segment, segment_name=names,
                                     churn_probability=probability)
    return next_best_action(frame, settings.scoring)


def compute_cold(snapshot: Snapshot | None, segments: pd.DataFrame | None) -> pd.DataFrame | None:
    """Cold-start input per snapshot customer (attributes, rfm features, segment), for those
    the recommender was not trained on: the same columns batch scoring uses."""
    if snapshot is None:
        return None
    from tailor.models.scoring import cold_attributes

    customers = None if snapshot.customers is None else snapshot.customers.reset_index()
    seg = None if segments is None else segments["segment"].reindex(snapshot.features.index)
    return cold_attributes(snapshot.features, customers, seg)


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
        derived: dict[str, pd.DataFrame | None] = {"segmentation": old.segments,
                                                   "churn": old.churn}

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
                derived.update({k: v for k, v in fresh.items() if k in derived})
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
            if kind in derived:
                derived[kind] = table
            changed[kind] = version
            failures.pop(kind, None)

        # 3. tables over the snapshot from whatever is now served
        actions, cold = old.actions, old.cold
        if changed.keys() & {"segmentation"} or snapshot_reloaded or (
                cold is None and COLD not in failures):
            try:
                cold = compute_cold(snapshot, derived["segmentation"])
                failures.pop(COLD, None)
            except Exception as exc:  # noqa: BLE001 - known customers are still served
                cold = None
                fail(COLD, None, exc)
        if changed.keys() & {"segmentation", "churn"} or snapshot_reloaded or (
                actions is None and ACTIONS not in failures):
            try:
                actions = compute_actions(self.settings, snapshot, derived["segmentation"],
                                          derived["churn"])
                failures.pop(ACTIONS, None)
            except Exception as exc:  # noqa: BLE001 - the other endpoints keep working
                actions = None
                fail(ACTIONS, None, exc)

        state = ServingState(
            models=MappingProxyType(models), snapshot=snapshot,
            segments=derived["segmentation"], churn=derived["churn"], actions=actions,
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
