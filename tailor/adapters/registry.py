"""Model-registry adapter: aliases decide what is served, and every alias move is audited.

Services load ``models:/tailor-<kind>@champion`` as a pyfunc, so they never depend on a model's
flavour or version number; flows and people change what is served only through this module.
Reading the trail back (what was served when, the ``tailor models`` overview) is
:mod:`tailor.adapters.registry_audit`.

Audit design
------------
The audit lives in the MLflow store itself, so it works unchanged on a tracking server backed by
PostgreSQL and is visible in the MLflow UI:

* Every alias move is one small run in the experiment ``tailor-registry-audit``. Its tags
  ``audit.model``, ``audit.alias``, ``audit.from_version``, ``audit.to_version`` (``""`` = no
  alias), ``audit.kind`` (challenger, promote, rollback, revert, move), ``audit.actor``,
  ``audit.reason`` and ``audit.at`` (UTC, microseconds) hold the move; metrics given with a
  promotion are logged on it. The run's status says whether the move counts: only FINISHED runs
  do. Nothing here ever edits a finished audit run, so the trail is append-only.
* A move is all-or-nothing: the audit run is created (RUNNING), then the alias is moved, then
  the run is FINISHED. If moving the alias fails the run is marked FAILED (with ``audit.error``);
  if finishing the run fails the alias is put back. A crash between the two leaves a RUNNING run,
  which does not count and shows with ``include_failed=True``.
* The model version also gets convenience tags after a successful move, the ones tools read
  (:mod:`~tailor.adapters.registry_audit`, ``tailor models``): ``champion_since`` /
  ``challenger_since`` and ``metric.<name>`` for the metrics given with the move. Who moved it
  and why are on the audit run only; the gate's verdict is in the version's description.

Moves planned together are applied with :func:`apply_moves`: every planned ``from_version`` is
checked against the registry before anything moves (a stale plan moves nothing), and if a move
fails midway the moves already applied are reverted in reverse order, each revert audited as a
``revert`` move. "As they were" means every alias points where it pointed when the batch began.

Everything takes an explicit :class:`mlflow.MlflowClient` (no fluent API, no active run), so flows
may call it from concurrent tasks. Aliases moved outside this module (UI, raw API) are not in the
trail: :func:`~tailor.adapters.registry_audit.champion_at` cannot see them, and :func:`rollback`
treats the current champion as the newest entry of the history.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from mlflow import MlflowClient
from mlflow.entities import Metric, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE, MLFLOW_USER

from tailor.adapters import tracking
from tailor.adapters.owner import owner_tags
from tailor.configs.schema import TrackingSettings


def model_kinds() -> tuple[str, ...]:
    """The registered model kinds (:mod:`tailor.kinds`), imported when first asked for."""
    from tailor import kinds

    return kinds.kinds()

NAME_PREFIX = "tailor-"
CHAMPION = "champion"
CHALLENGER = "challenger"
AUDIT_EXPERIMENT = "tailor-registry-audit"

KIND_MOVE = "move"
KIND_CHALLENGER = "challenger"
KIND_PROMOTE = "promote"
KIND_ROLLBACK = "rollback"
KIND_REVERT = "revert"

AUDIT_TAG = "audit."  # prefix of the tags that hold a move on its audit run
_MAX_TAG = 5000

log = logging.getLogger(__name__)


class RegistryError(RuntimeError):
    """A registry operation that cannot be done as asked; the message says why and what to do."""


class StaleMoveError(RegistryError):
    """A planned move whose alias was moved by someone else after it was planned."""


@dataclass(frozen=True)
class AliasMove:
    """One alias change: planned (``at`` None) or applied (``at`` and ``run_id`` set).

    ``run_id`` is the audit run; it stays None for a no-op (the alias already pointed there).
    """

    model: str
    alias: str
    from_version: str | None
    to_version: str | None
    actor: str
    reason: str
    at: datetime | None = None
    kind: str = KIND_MOVE
    run_id: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict, hash=False)
    intent: str | None = None  # the promotion record this move belongs to


# --- names and clients ------------------------------------------------------------------------

def registered_name(kind: str) -> str:
    """``"churn"`` -> ``"tailor-churn"``; unknown kinds are an error naming the known ones."""
    known = model_kinds()
    if kind not in known:
        raise ValueError(f"unknown model kind {kind!r}: expected one of {', '.join(known)}")
    return f"{NAME_PREFIX}{kind}"


def resolve_name(name: str) -> str:
    """Accept a registered name or a bare kind (``churn``) wherever a model name is asked for."""
    return registered_name(name) if name in model_kinds() else name


def model_uri(name: str, alias: str = CHAMPION) -> str:
    """``models:/tailor-churn@champion`` (a bare kind such as ``churn`` is accepted too)."""
    return f"models:/{resolve_name(name)}@{alias}"


def make_client(tracking_uri: str | None = None) -> MlflowClient:
    """A client whose tracking and registry stores are both ``tracking_uri``.

    None: $MLFLOW_TRACKING_URI, else the repository's sqlite store; for the URI of a loaded
    configuration use ``tailor.adapters.tracking.client_for(settings.tracking)``.
    """
    if tracking_uri is None:
        return tracking.client_for(TrackingSettings())
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


# --- reading aliases ----------------------------------------------------------------------------

def current_aliases(client: MlflowClient, name: str) -> dict[str, str]:
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(
                f"registered model {name!r} does not exist in {client.tracking_uri}: "
                "train and register it first"
            ) from exc
        raise
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version ``alias`` points to, or None when the alias is not set."""
    return current_aliases(client, resolve_name(name)).get(alias)


# --- moving one alias -----------------------------------------------------------------------------

_clock_lock = threading.Lock()
_last_at = datetime.min.replace(tzinfo=UTC)


def _now() -> datetime:
    """UTC now, strictly increasing within this process so moves never tie in the trail."""
    global _last_at
    with _clock_lock:
        now = datetime.now(UTC)
        if now <= _last_at:
            now = _last_at + timedelta(microseconds=1)
        _last_at = now
        return now


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _set_alias(client: MlflowClient, name: str, alias: str, version: str | None) -> None:
    if version is None:
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)


def _check_text(what: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string (who moved the alias, and why)")
    return value[:_MAX_TAG]


def plan_move(
    client: MlflowClient, name: str, alias: str, to_version: str | int | None, *, actor: str,
    reason: str, kind: str = KIND_MOVE, metrics: Mapping[str, float] | None = None,
) -> AliasMove:
    """A move of ``alias`` from where it points now to ``to_version`` (None removes the alias)."""
    name = resolve_name(name)
    return AliasMove(
        model=name, alias=alias, from_version=alias_version(client, name, alias),
        to_version=None if to_version is None else str(to_version),
        actor=_check_text("actor", actor), reason=_check_text("reason", reason), kind=kind,
        metrics=dict(metrics or {}),
    )


def _apply_one(client: MlflowClient, move: AliasMove) -> AliasMove:
    """Audit, then move one alias; the audit run counts (FINISHED) only if the alias moved."""
    current = alias_version(client, move.model, move.alias)
    if current != move.from_version:
        raise StaleMoveError(
            f"{move.model}@{move.alias} points to version {current}, but the move to "
            f"{move.to_version} was planned from version {move.from_version}: someone moved it "
            "meanwhile; plan again"
        )
    at = _now()
    if current == move.to_version:
        return replace(move, at=at)
    experiment_id = tracking.ensure_experiment(client, AUDIT_EXPERIMENT)
    tags = {
        f"{AUDIT_TAG}model": move.model, f"{AUDIT_TAG}alias": move.alias,
        f"{AUDIT_TAG}from_version": move.from_version or "",
        f"{AUDIT_TAG}to_version": move.to_version or "",
        f"{AUDIT_TAG}kind": move.kind, f"{AUDIT_TAG}actor": move.actor,
        f"{AUDIT_TAG}reason": move.reason, f"{AUDIT_TAG}at": at.isoformat(timespec="microseconds"),
        MLFLOW_USER: move.actor, MLFLOW_RUN_NOTE: move.reason, **owner_tags(),
    }
    if move.intent:
        tags[f"{AUDIT_TAG}intent"] = move.intent
    run_name = f"{move.model}@{move.alias} {move.from_version or '-'}->{move.to_version or '-'}"
    run_id = client.create_run(experiment_id, start_time=_ms(at), tags=tags,
                               run_name=run_name).info.run_id
    try:
        if move.metrics:
            client.log_batch(run_id, metrics=[Metric(k, float(v), _ms(at), 0)
                                              for k, v in move.metrics.items()])
        _set_alias(client, move.model, move.alias, move.to_version)
    except BaseException as exc:
        _mark_failed(client, run_id, exc)
        raise
    try:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED), end_time=_ms(at))
    except BaseException as exc:  # the move would be unaudited: put the alias back
        _set_alias(client, move.model, move.alias, current)
        _mark_failed(client, run_id, exc)
        raise
    return replace(move, at=at, run_id=run_id)


def _mark_failed(client: MlflowClient, run_id: str, exc: BaseException) -> None:
    try:
        client.set_tag(run_id, f"{AUDIT_TAG}error", f"{type(exc).__name__}: {exc}"[:_MAX_TAG])
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
    except MlflowException:
        pass  # the run stays RUNNING, which does not count either


def tag_version(client: MlflowClient, move: AliasMove) -> None:
    """Convenience tags on the version now behind the alias, for ``tailor models``: since when,
    and the metrics given with the move (the audit runs are the truth, with actor and reason)."""
    if move.to_version is None or move.run_id is None or move.at is None:
        return
    tags = {f"{move.alias}_since": move.at.isoformat(timespec="seconds"),
            **{f"metric.{k}": repr(float(v)) for k, v in move.metrics.items()}}
    try:
        for key, value in tags.items():
            client.set_model_version_tag(move.model, move.to_version, key, value)
    except MlflowException as exc:  # the move itself is done and audited
        log.warning("could not tag %s version %s after moving %s: %s", move.model,
                    move.to_version, move.alias, exc)


def _move(client: MlflowClient, name: str, alias: str, version: str | int | None, *,
          actor: str, reason: str, kind: str,
          metrics: Mapping[str, float] | None = None) -> AliasMove:
    move = _apply_one(client, plan_move(client, name, alias, version, actor=actor,
                                        reason=reason, kind=kind, metrics=metrics))
    tag_version(client, move)
    return move


def set_challenger(client: MlflowClient, name: str, version: str | int, *, actor: str,
                   reason: str, metrics: Mapping[str, float] | None = None) -> AliasMove:
    """Point ``challenger`` at the newest candidate ``version``."""
    return _move(client, name, CHALLENGER, version, actor=actor, reason=reason,
                 kind=KIND_CHALLENGER, metrics=metrics)


def promote(client: MlflowClient, name: str, version: str | int, *, actor: str, reason: str,
            metrics: Mapping[str, float] | None = None) -> AliasMove:
    """Serve ``version``: move ``champion`` to it, recording the metrics that justified it.

    A version marked as having no gate decision (its training run died before the gate, see
    :mod:`tailor.adapters.reconcile`) is refused: nothing reaches ``champion`` without a decision.
    """
    check_decided(client, resolve_name(name), str(version))
    return _move(client, name, CHAMPION, version, actor=actor, reason=reason,
                 kind=KIND_PROMOTE, metrics=metrics)


# Version tags of the gate: ``promote`` on every gated version (True/False); ``state`` =
# ``none`` and ``reason`` only on a version whose run died before the gate (reconcile).
GATE_STATE = "tailor.gate.state"
GATE_PROMOTE = "tailor.gate.promote"
GATE_REASON = "tailor.gate.reason"
UNGATED = "none"


def check_decided(client: MlflowClient, name: str, version: str) -> None:
    """Raise unless ``version`` may be promoted: not marked as never gated."""
    current_aliases(client, name)  # a clear error when the model itself is not registered
    try:
        tags = client.get_model_version(name, version).tags or {}
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(f"{name} has no version {version} in {client.tracking_uri}; "
                                "`tailor models` lists the versions") from exc
        raise
    if tags.get(GATE_STATE) == UNGATED and GATE_PROMOTE not in tags:
        why = tags.get(GATE_REASON, "its training run ended before the gate")
        raise RegistryError(f"{name} v{version} has no gate decision ({why}); it cannot be "
                            "promoted: retrain to get a gated version")


def rollback(client: MlflowClient, name: str, *, actor: str, reason: str = "rollback",
             alias: str = CHAMPION) -> AliasMove:
    """Move ``champion`` back to the champion before the current one, per the audit trail.

    Rollbacks (and reverts) go down the history, so two rollbacks after promoting v1, v2, v3
    serve v1, not v3 again.
    """
    name = resolve_name(name)
    current = alias_version(client, name, alias)
    if current is None:
        raise RegistryError(f"{name}@{alias} is not set: there is nothing to roll back")
    # imported here: the read side imports this module for names and aliases
    from tailor.adapters.registry_audit import alias_history, audit_trail

    trail = audit_trail(client, name)
    history = alias_history(trail[trail["alias"] == alias], current)
    if len(history) < 2:
        raise RegistryError(
            f"cannot roll back {name}@{alias} (version {current}): the audit trail in "
            f"{client.tracking_uri} records no earlier {alias}; promote a version explicitly"
        )
    return _move(client, name, alias, history[-2], actor=actor, reason=reason,
                 kind=KIND_ROLLBACK)


# --- applying a plan ------------------------------------------------------------------------------

def apply_moves(client: MlflowClient, moves: Sequence[AliasMove], *,
                tag_versions: bool = True,
                after_each: Callable[[], None] | None = None) -> list[AliasMove]:
    """Apply planned moves all-or-nothing: on a failure, revert those applied and re-raise.

    Nothing moves unless every planned ``from_version`` still matches the registry. Version tags
    are written only once every move has succeeded (``tag_versions`` False: by the caller, with
    :func:`tag_version`). ``after_each`` runs after every applied move.
    """
    targets = [(m.model, m.alias) for m in moves]
    if len(set(targets)) != len(targets):
        raise ValueError(f"one plan moves the same alias twice: {targets}")
    for move in moves:
        current = alias_version(client, move.model, move.alias)
        if current != move.from_version:
            raise StaleMoveError(
                f"{move.model}@{move.alias} points to version {current}, not "
                f"{move.from_version} as planned: someone moved it meanwhile; nothing was moved"
            )
    applied: list[AliasMove] = []
    for move in moves:
        try:
            applied.append(_apply_one(client, move))
        except BaseException as exc:
            _revert(client, applied, failed=move, exc=exc)
            raise
        if after_each is not None:
            after_each()
    if tag_versions:
        for move in applied:
            tag_version(client, move)
    return applied


def _revert(client: MlflowClient, applied: list[AliasMove], failed: AliasMove,
            exc: BaseException) -> None:
    why = f"{failed.model}@{failed.alias} -> {failed.to_version} failed ({type(exc).__name__})"
    stuck: list[str] = []
    for move in reversed(applied):
        if move.run_id is None:
            continue  # a no-op changed nothing
        undo = replace(move, from_version=move.to_version, to_version=move.from_version,
                       kind=KIND_REVERT, reason=f"revert: {why}; was: {move.reason}"[:_MAX_TAG],
                       at=None, run_id=None, metrics={})
        try:
            _apply_one(client, undo)
        except Exception as undo_exc:  # noqa: BLE001 - keep reverting the others, report all
            stuck.append(f"{move.model}@{move.alias} left at {move.to_version} "
                         f"(should be {move.from_version}): {undo_exc}")
    if stuck:
        raise RegistryError(
            f"{why}, and reverting the moves already applied failed: " + "; ".join(stuck)
        ) from exc
