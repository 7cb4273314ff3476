"""Load the champion of each model kind as its plain predictor, with an explicit client.

Plain functions (no Prefect), shared by the batch scoring flow and the serving API. A kind with
no champion (never trained or promoted in this store) gives None and a warning, so callers can
score with the models they have. Predictors are cached per (store, name, version): a version's
artifacts never change, and the alias is resolved on every call, so a promotion is picked up
by the next call.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, NamedTuple

from mlflow import MlflowClient

from tailor.adapters.pyfunc import load_predictor
from tailor.adapters.registry import (
    CHAMPION,
    RegistryError,
    alias_version,
    model_kinds,
    registered_name,
)

log = logging.getLogger(__name__)

CACHE_SIZE = 6  # two versions of each kind: enough for a promotion while serving


class Champion(NamedTuple):
    """A champion's registered version and its plain predictor (``models/`` object)."""

    version: str
    predictor: Any


_cache: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
_lock = threading.Lock()


def champion_version(client: MlflowClient, kind: str, alias: str = CHAMPION) -> str | None:
    """The version behind ``tailor-<kind>@champion``; None if unregistered or no champion."""
    try:
        return alias_version(client, registered_name(kind), alias)
    except RegistryError:
        return None


def load_version(client: MlflowClient, kind: str, version: str) -> Any:
    """The plain predictor of ``tailor-<kind>`` ``version`` (cached)."""
    name = registered_name(kind)
    key = (client.tracking_uri, name, str(version))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    predictor = load_predictor(client, name, str(version))  # slow part outside the lock
    with _lock:
        _cache[key] = predictor
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return predictor


def load_champion(client: MlflowClient, kind: str, alias: str = CHAMPION) -> Champion | None:
    """``(version, predictor)`` of the kind's champion, or None (with a warning) if none."""
    version = champion_version(client, kind, alias)
    if version is None:
        log.warning("no %s@%s in %s: %s columns are left empty (train and promote it first)",
                    registered_name(kind), alias, client.tracking_uri, kind)
        return None
    return Champion(version, load_version(client, kind, version))


def load_champions(client: MlflowClient, kinds: Iterable[str] | None = None,
                   alias: str = CHAMPION) -> dict[str, Champion | None]:
    """:func:`load_champion` for each kind (default: every registered kind)."""
    return {kind: load_champion(client, kind, alias)
            for kind in (model_kinds() if kinds is None else kinds)}


def clear_cache() -> None:
    with _lock:
        _cache.clear()


__all__ = ["Champion", "champion_version", "clear_cache", "load_champion", "load_champions",
           "load_version"]
