"""Reading the customer feature snapshot the service answers from.

The snapshot is read from the directory ``snapshot_dir/CURRENT`` names, resolved once per load
(:mod:`tailor.adapters.snapshot`): ``tailor score`` publishes a complete snapshot by replacing that
pointer, so a load never mixes files of two snapshots, and a write killed halfway is never read.

The features are checked against :class:`tailor.contracts.CustomerFeatures` (the frame
``tailor score`` wrote them from) when they are read: a corrupt or foreign file is refused with
an error naming the file, the column and the rule, and the previous snapshot keeps serving,
instead of every model scoring garbage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd
from pandera.errors import SchemaErrors

from tailor.adapters.snapshot import (
    CUSTOMERS_FILE,
    FEATURES_FILE,
    FILES,
    MANIFEST_FILE,
    VERSIONS_DIR,
    read_pointer,
    require_published,
)
from tailor.configs.schema import Settings
from tailor.contracts import CustomerFeatures, first_failure

#: what is published: the pointer's text ("" for an old-layout snapshot) and the
#: (file, mtime_ns, size) of the files it names; it changes with every publish or rewrite
Stamp = tuple[str, tuple[tuple[str, int, int], ...]]


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The customer feature snapshot written by the score flow (features, attributes, manifest)."""

    path: Path  # the published directory read (snapshot_dir itself for the old layout)
    stamp: Stamp
    manifest: Mapping[str, Any]
    features: pd.DataFrame  # CustomerFeatures: index customer_id (str)
    customers: pd.DataFrame | None  # index customer_id (str), attribute columns
    loaded_at: datetime

    @property
    def as_of(self) -> str | None:
        value = self.manifest.get("as_of")
        return None if value is None else str(value)


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


def check_features(features: pd.DataFrame, what: Path) -> pd.DataFrame:
    """``features`` if it meets the features contract, else a ``ValueError`` naming ``what``,
    the column and the rule (checked in place: the snapshot is not copied)."""
    try:
        return CustomerFeatures.validate(features, lazy=True, inplace=True)
    except SchemaErrors as exc:
        raise ValueError(f"{what}: not customer features as `tailor score` writes them: "
                         f"{first_failure(exc)}") from exc


def load_snapshot(directory: Path) -> Snapshot:
    """Read the published snapshot: resolve ``CURRENT`` once, then read only that directory
    (``customer_features.parquet``, + ``customers.parquet``, ``manifest.json``)."""
    target = require_published(directory)
    stamp: Stamp = ("" if target == directory else target.name, _file_stats(target))
    features = check_features(
        _by_customer(pd.read_parquet(target / FEATURES_FILE), target / FEATURES_FILE),
        target / FEATURES_FILE)
    customers = None
    if (target / CUSTOMERS_FILE).exists():
        customers = _by_customer(pd.read_parquet(target / CUSTOMERS_FILE),
                                 target / CUSTOMERS_FILE, keep_first=True)
    manifest: dict[str, Any] = {}
    if (target / MANIFEST_FILE).exists():
        manifest = json.loads((target / MANIFEST_FILE).read_text())
        if not isinstance(manifest, dict):
            raise ValueError(f"{target / MANIFEST_FILE}: expected a JSON object")
    return Snapshot(target, stamp, MappingProxyType(manifest), features, customers,
                    datetime.now(UTC))


__all__ = ["Snapshot", "Stamp", "check_features", "load_snapshot", "snapshot_dir",
           "snapshot_stamp"]
