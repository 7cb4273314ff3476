"""The registered model kinds, in scoring order (a later kind may read an earlier one's
columns: the recommender's cold start reads the segment).

Built-in kinds are listed in ``_BUILT_IN``; adding a kind is one module with a
:class:`ModelSpec` and one entry there (or :func:`register` from an extension).
"""

from __future__ import annotations

from collections.abc import Iterable

from tailor.kinds.spec import ModelSpec, TrainedModel
from tailor.models.scoring import ScoreStep

_SPECS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a kind (after the built-in ones); registering a kind twice is an error."""
    if spec.kind in _SPECS:
        raise ValueError(f"model kind {spec.kind!r} is already registered")
    _SPECS[spec.kind] = spec
    return spec


def unregister(kind: str) -> None:
    _SPECS.pop(kind, None)


def kinds() -> tuple[str, ...]:
    return tuple(_SPECS)


def get(kind: str) -> ModelSpec:
    """The spec of ``kind``; an unknown kind is an error naming the known ones."""
    try:
        return _SPECS[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}: expected one of "
                         f"{', '.join(_SPECS)}") from None


def specs(chosen: Iterable[str] | None = None) -> tuple[ModelSpec, ...]:
    """The specs of ``chosen`` (default: all), in registration order."""
    if chosen is None:
        return tuple(_SPECS.values())
    wanted = list(chosen)
    for kind in wanted:
        get(kind)
    return tuple(spec for kind, spec in _SPECS.items() if kind in wanted)


def score_steps(chosen: Iterable[str] | None = None) -> tuple[ScoreStep, ...]:
    """The score steps of :func:`specs`, in the order batch scoring and serving apply them."""
    return tuple(spec.score_step for spec in specs(chosen))


def _register_built_in() -> None:
    from tailor.kinds import churn, recommender, segmentation

    for module in (segmentation, recommender, churn):
        register(module.SPEC)


_register_built_in()

__all__ = ["ModelSpec", "TrainedModel", "get", "kinds", "register", "score_steps", "specs",
           "unregister"]
