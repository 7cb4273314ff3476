"""What every settings section shares: frozen, strict, unknown keys rejected; model kinds
checked against the registry of kinds."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def _registered_kind(kind: str) -> str:
    """A model kind must be registered (:mod:`tailor.kinds`): checked when settings load."""
    from tailor import kinds

    kinds.get(kind)  # raises ValueError naming the known kinds
    return kind


def all_kinds() -> list[str]:
    """Every registered model kind: the default of the settings that list kinds."""
    from tailor import kinds

    return list(kinds.kinds())


ModelKind = Annotated[str, AfterValidator(_registered_kind)]
"""The name of a registered model kind (``segmentation``, ``recommender``, ``churn``, ...)."""


class Section(BaseModel):
    """A settings section: immutable once loaded, no type coercion, no unknown keys."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")
