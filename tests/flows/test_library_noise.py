"""Library warnings: known noise silenced, anything else summarised once per message."""

from __future__ import annotations

import logging
import threading
import warnings

import pytest

from tailor.flows.library_noise import summarised_warnings


def _warn_here() -> None:
    warnings.warn("column x is deprecated", FutureWarning, stacklevel=1)


def _warn_there() -> None:
    warnings.warn("column x is deprecated", FutureWarning, stacklevel=1)


def test_warnings_are_summarised_once_at_the_end_even_from_threads(
        caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.noise")
    with caplog.at_level(logging.WARNING, "test.noise"), summarised_warnings(logger):
        for _ in range(50):
            _warn_here()
        worker = threading.Thread(target=_warn_there)
        worker.start()
        worker.join()
        warnings.warn("Hint: Inferred schema contains integer column(s)", UserWarning,
                      stacklevel=1)
        assert caplog.records == []  # nothing until the block ends
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["library warning: FutureWarning: column x is deprecated "
                        "(raised from 2 places)"]


def test_the_summary_is_written_when_the_block_fails(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.noise")
    with (caplog.at_level(logging.WARNING, "test.noise"), pytest.raises(KeyError),
          summarised_warnings(logger)):
        _warn_here()
        raise KeyError("boom")
    assert [r.getMessage() for r in caplog.records] == [
        "library warning: FutureWarning: column x is deprecated"]
