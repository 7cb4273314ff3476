"""The pins a logged model carries: the fallback to ``__version__`` gives the same pins."""

from __future__ import annotations

import importlib
from importlib import metadata

import pytest

from tailor.adapters.pyfunc import _IMPORT_NAMES, INFERENCE_REQUIREMENTS, inference_requirements


@pytest.mark.parametrize("distribution", INFERENCE_REQUIREMENTS)
def test_the_module_version_is_the_distribution_version(distribution: str) -> None:
    module = importlib.import_module(_IMPORT_NAMES.get(distribution, distribution))
    assert module.__version__ == metadata.version(distribution)


def test_every_requirement_is_pinned_exactly() -> None:
    pins = inference_requirements()
    assert [p.split("==")[0] for p in pins] == list(INFERENCE_REQUIREMENTS)
    assert all(p.split("==")[1] for p in pins)
