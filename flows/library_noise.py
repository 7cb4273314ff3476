"""Library output an operator cannot act on: silenced where it is known, summarised once.

A flow runs in whatever process executes it (``tailor train``, a ``serve-flows`` child, a
worker's), so the flows quiet the libraries themselves instead of relying on the command that
started them. Known noise is silenced: Optuna's line per trial (the run's log summarises the
study), MLflow's INFO lines and its hint about integer columns in inferred signatures (ours are
never null), PyMC's import notices. Any other warning raised while a flow runs is counted and
written to the run's log once per distinct message, at the end, instead of once per call on a
terminal nobody reads.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

SILENCED_WARNINGS = (
    "Hint: Inferred schema contains integer",
    r"\s*ArviZ is undergoing a major refactor",
    "PyTensor could not link to a BLAS",
)
"""Warning messages (regular expressions, matched at the start) that say nothing to act on."""


def quiet_libraries() -> None:
    """Silence the known noise in this process (idempotent)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    for message in SILENCED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def warning_summary(caught: list[warnings.WarningMessage]) -> list[str]:
    """One line per distinct warning: its category, the first line of it, and from how many
    places it was raised."""
    counts = Counter((w.category.__name__, (str(w.message).strip().splitlines() or [""])[0])
                     for w in caught)
    return [f"library warning: {category}: {message}"
            + (f" (raised from {n} places)" if n > 1 else "")
            for (category, message), n in counts.most_common()]


@contextmanager
def summarised_warnings(logger: logging.Logger | logging.LoggerAdapter) -> Iterator[None]:
    """Collect the warnings raised in the block (from any thread) and log each distinct one
    once when the block ends, successfully or not."""
    quiet_libraries()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # once per place it is raised from, not per call
        quiet_libraries()  # again: simplefilter put "default" in front of the silenced ones
        try:
            yield
        finally:
            for line in warning_summary(caught):
                logger.warning(line)
