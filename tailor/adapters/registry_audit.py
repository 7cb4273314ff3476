"""Reading the registry's audit trail back: what each alias served and when, and the overview
behind ``tailor models``.

The trail is written, one audit run per alias move, by :mod:`tailor.adapters.registry`; this
module only reads it (and the model versions' tags), so every reader of history (``tailor
models``, :func:`tailor.adapters.registry.rollback`, "what was in production on date X") shares
one interpretation of it. Only FINISHED audit runs count as moves; runs deleted in the UI are
still read (view type ALL), so a UI deletion does not rewrite history.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from tailor.adapters.registry import (
    AUDIT_EXPERIMENT,
    AUDIT_TAG,
    CHALLENGER,
    CHAMPION,
    KIND_REVERT,
    KIND_ROLLBACK,
    NAME_PREFIX,
    RegistryError,
    current_aliases,
    model_kinds,
    registered_name,
    resolve_name,
)

_FIELDS = ("model", "alias", "from_version", "to_version", "kind", "actor", "reason", "at")
TRAIL_COLUMNS = [*_FIELDS, "run_id", "status"]
_RETURNING_KINDS = (KIND_ROLLBACK, KIND_REVERT)  # moves that go back down the alias history


# --- the trail ----------------------------------------------------------------------------------

def _empty_trail() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in TRAIL_COLUMNS})
    frame["at"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def audit_trail(client: MlflowClient, name: str | None = None, *,
                include_failed: bool = False) -> pd.DataFrame:
    """Every alias move (of one model, or all), oldest first; ``at`` is UTC.

    Columns: model, alias, from_version, to_version, kind, actor, reason, at, run_id (the audit
    run) and status. Failed or interrupted moves are left out unless ``include_failed``.
    """
    experiment = client.get_experiment_by_name(AUDIT_EXPERIMENT)
    if experiment is None:
        return _empty_trail()
    filters = []
    if name is not None:
        name = resolve_name(name)
        if "'" in name:
            raise ValueError(f"model name {name!r} must not contain a quote")
        filters.append(f"tags.`{AUDIT_TAG}model` = '{name}'")
    if not include_failed:
        filters.append("attributes.status = 'FINISHED'")
    rows: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = client.search_runs([experiment.experiment_id], " and ".join(filters),
                                  run_view_type=ViewType.ALL, max_results=1000,
                                  page_token=token)
        for run in page:
            tags = run.data.tags
            if f"{AUDIT_TAG}model" not in tags:
                continue  # not written by tailor.adapters.registry
            row: dict[str, Any] = {f: tags.get(f"{AUDIT_TAG}{f}") or None for f in _FIELDS}
            row["run_id"] = run.info.run_id
            row["status"] = run.info.status
            rows.append(row)
        token = page.token
        if not token:
            break
    if not rows:
        return _empty_trail()
    frame = pd.DataFrame(rows, columns=TRAIL_COLUMNS)
    frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
    return frame.sort_values(["at", "run_id"], kind="stable").reset_index(drop=True)


def champion_at(client: MlflowClient, name: str, when: datetime | str,
                alias: str = CHAMPION) -> str | None:
    """The version ``alias`` pointed to at ``when`` (naive times are UTC); None if unset or
    before the first audited move."""
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    trail = audit_trail(client, name)
    before = trail[(trail["alias"] == alias) & (trail["at"] <= stamp)]
    return None if before.empty else before["to_version"].iloc[-1]


def alias_history(trail: pd.DataFrame, current: str) -> list[str]:
    """Versions the alias served, oldest first, with rolled-back versions taken off the top."""
    stack: list[str] = []
    for row in trail.itertuples(index=False):  # a handful of moves per model, not big data
        if row.kind in _RETURNING_KINDS and stack and stack[-1] == row.from_version:
            stack.pop()
        if row.to_version is not None and (not stack or stack[-1] != row.to_version):
            stack.append(row.to_version)
    if not stack or stack[-1] != current:
        stack.append(current)  # moved outside this module: the current one is newest anyway
    return stack


# --- overview for `tailor models` ----------------------------------------------------------------

def _version_summary(client: MlflowClient, name: str, version: str | None, alias: str,
                     keep: Iterable[str] | None) -> dict[str, Any]:
    if version is None:
        return {f"{alias}_version": None, f"{alias}_since": None, f"{alias}_run_id": None,
                f"{alias}_metrics": {}}
    mv = client.get_model_version(name, version)
    metrics: dict[str, float] = {}
    if mv.run_id:
        # a deleted training run leaves only the version tags' metrics
        with contextlib.suppress(MlflowException):
            metrics.update(client.get_run(mv.run_id).data.metrics)
    for key, value in (mv.tags or {}).items():
        if key.startswith("metric."):
            metrics[key.removeprefix("metric.")] = float(value)
    if keep is not None:
        wanted = list(keep)
        metrics = {k: metrics[k] for k in wanted if k in metrics}
    return {f"{alias}_version": version, f"{alias}_since": (mv.tags or {}).get(f"{alias}_since"),
            f"{alias}_run_id": mv.run_id or None, f"{alias}_metrics": dict(sorted(metrics.items()))}


def describe_models(client: MlflowClient, names: Sequence[str] | None = None,
                    key_metrics: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """One row per model: champion and challenger versions, since when, and their metrics.

    Metrics are the training run's, overridden by the ``metric.*`` tags written at promotion;
    ``key_metrics`` (by kind or registered name, e.g. ``settings.registry.key_metrics``) keeps
    only the named ones. Models not registered yet get a row with ``registered`` False.
    """
    key_metrics = key_metrics or {}
    columns = ["model", "registered", "latest_version"] + [
        f"{alias}_{part}" for alias in (CHAMPION, CHALLENGER)
        for part in ("version", "since", "run_id", "metrics")]
    rows = []
    for raw in names or [registered_name(k) for k in model_kinds()]:
        name = resolve_name(raw)
        kind = name.removeprefix(NAME_PREFIX)
        keep = key_metrics.get(kind, key_metrics.get(name))
        try:
            aliases = current_aliases(client, name)
        except RegistryError:
            rows.append({**dict.fromkeys(columns), "model": name, "registered": False,
                         "champion_metrics": {}, "challenger_metrics": {}})
            continue
        latest = client.search_model_versions(f"name='{name}'", max_results=1,
                                              order_by=["version_number DESC"])
        row: dict[str, Any] = {"model": name, "registered": True,
                               "latest_version": str(latest[0].version) if latest else None}
        for alias in (CHAMPION, CHALLENGER):
            row.update(_version_summary(client, name, aliases.get(alias), alias, keep))
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
