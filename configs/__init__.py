"""Load settings: the schema's defaults, then each --config file, then each --set override.

The pydantic models in :mod:`tailor.configs.schema` hold the only defaults; ``tailor config
defaults`` prints them as an annotated YAML file to start from. Errors name where the offending
value came from (file or ``--set``), the key and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tailor.configs.schema import Settings

DEFAULTS = "defaults (tailor config defaults)"
"""Where a value came from when no file or ``--set`` gave it."""

__all__ = ["ConfigError", "Settings", "load_settings"]


class ConfigError(ValueError):
    """A configuration problem, with the source, key and expectation in its message."""


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def _merge(base: dict[str, Any], extra: Mapping[str, Any], source: str,
           origin: dict[str, str], prefix: str = "") -> None:
    for key, value in extra.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, source, origin, dotted + ".")
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
            origin[dotted] = source


def _parse_override(item: str) -> dict[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    tree: dict[str, Any] = {}
    node = tree
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return tree


def _source_of(loc: str, origin: Mapping[str, str]) -> str:
    parts = loc.split(".")
    for end in range(len(parts), 0, -1):
        found = origin.get(".".join(parts[:end]))
        if found:
            return found
    return DEFAULTS


def load_settings(
    config_files: Iterable[str | Path] = (), overrides: Iterable[str] = ()
) -> Settings:
    """Merge files and ``section.key=value`` overrides over the defaults into validated settings."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for file in config_files:
        _merge(merged, _read_yaml(Path(file)), str(file), origin)
    for item in overrides:
        _merge(merged, _parse_override(item), f"--set {item}", origin)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            given = err.get("input")
            lines.append(
                f"{_source_of(loc, origin)}: key '{loc}': {err['msg']} (got {given!r})"
            )
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
