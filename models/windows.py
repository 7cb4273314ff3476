"""Time windows of a training run: what each fit sees and what it is judged on.

For a scoring date D (``as_of``) and horizon H (``features.horizon_days``), every model kind
follows one layout (drawn in docs/windows.md):

- **served model**: fit on all history before D. This is the version that is registered and
  served for D, so a purchase made the day before D is in it.
- **holdout twin**: the same pipeline with the same parameters, fit on history before
  S = D - h and judged on [S, D) beside baselines computed from the same history. h is H, or
  shorter when the history is too short for a twin to train before D - H (logged as a
  reduction). The twin gives the run's honest out-of-time figures (``holdout_*`` metrics) and is
  what the champion/challenger gate compares.
- **tuning**: Optuna looks only at history before S, with its own validation inside it
  (``validation_*`` metrics, in the trials and in the model's run).

Every logged metric names the data it was measured on (:func:`scoped`): ``holdout_*``,
``validation_*``, ``served_*`` (the served model on its own fitting data), and a baseline's
``baseline_<name>_holdout_*`` beside the model's ``holdout_*``.

Nothing here reads a row at or after D: callers pass ``history(transactions, D)`` or the
planners cut it themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from tailor.models.features import default_as_of, history

DAY = pd.Timedelta(days=1)
#: metrics of the twin on [holdout start, as_of): the run's honest out-of-time figures
HOLDOUT_PREFIX = "holdout_"
#: metrics of the tuning validation inside the twin's history (Optuna trials log these too)
VALIDATION_PREFIX = "validation_"
#: metrics of the served model on the data it was fit on (in-sample: not a quality estimate)
SERVED_PREFIX = "served_"
BASELINE_PREFIX = "baseline_"


def prefixed(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{name}": value for name, value in metrics.items()}


def scoped(metrics: Mapping[str, float], prefix: str,
           baselines: Sequence[str] = ()) -> dict[str, float]:
    """Name metrics for the data they were measured on, one scheme for every model kind:
    ``<prefix><metric>`` for the model and ``baseline_<name>_<prefix><metric>`` for a baseline
    (``baseline_<name>_<metric>`` in ``metrics``, ``name`` one of ``baselines``), so that the
    same name means the same figure on the same data in every run and trial."""
    heads = sorted((f"{BASELINE_PREFIX}{name}_" for name in baselines), key=len, reverse=True)
    out = {}
    for name, value in metrics.items():
        head = next((h for h in heads if name.startswith(h)), "")
        out[f"{head}{prefix}{name[len(head):]}"] = value
    return out


class InsufficientHistoryError(ValueError):
    """The data cannot train a model: the message names the rule, the dates and the setting.

    A training run skips the model with this message (one line, no traceback) and trains the
    others.
    """


class ScoringDateError(ValueError):
    """A scoring date before a model's fit date: the model has seen what came after it."""


def _date(stamp: pd.Timestamp) -> str:
    return stamp.date().isoformat()


@dataclass(frozen=True)
class Windows:
    """The windows of one model's training run (see the module docstring)."""

    as_of: pd.Timestamp
    horizon_days: int
    first_purchase: pd.Timestamp
    holdout_start: pd.Timestamp
    notes: tuple[str, ...] = ()

    @property
    def holdout_days(self) -> int:
        return int((self.as_of - self.holdout_start) / DAY)

    @property
    def history_days(self) -> int:
        return int((self.as_of - self.first_purchase) / DAY)

    def reduced(self, note: str) -> Windows:
        return Windows(self.as_of, self.horizon_days, self.first_purchase, self.holdout_start,
                       (*self.notes, note))

    def params(self) -> dict[str, str | int]:
        """What a run logs about its windows."""
        return {"as_of": _date(self.as_of), "horizon_days": self.horizon_days,
                "holdout_start": _date(self.holdout_start), "holdout_days": self.holdout_days,
                "history_start": _date(self.first_purchase),
                "window_notes": " | ".join(self.notes) or "none"}


def fit_until(predictor: object) -> pd.Timestamp | None:
    """The date before which a predictor's training history ends (None: unknown)."""
    value = getattr(predictor, "as_of", None)
    return None if value is None else pd.Timestamp(value)


def check_scoring_date(predictors: Mapping[str, object], as_of: pd.Timestamp) -> None:
    """Refuse to score as of a date before a model's fit date: it has seen what came after."""
    late = {kind: until for kind, model in predictors.items()
            if model is not None and (until := fit_until(model)) is not None and until > as_of}
    if late:
        shown = ", ".join(f"{kind} (history before {_date(until)})"
                          for kind, until in late.items())
        raise ScoringDateError(
            f"cannot score as of {_date(as_of)}: the champion(s) {shown} were fit on purchases "
            f"made after that date; train with --as-of {_date(as_of)} first, or score as of "
            f"{_date(max(late.values()))} or later")


def first_purchase(transactions: pd.DataFrame) -> pd.Timestamp:
    """The first purchase line's day (returns alone do not start a history)."""
    bought = transactions.loc[transactions["quantity"] > 0, "timestamp"]
    if bought.empty:
        raise InsufficientHistoryError("transactions: no purchase line at all; nothing to learn")
    return bought.min().normalize()


def check_as_of(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.Timestamp:
    """``as_of`` itself, after checking that the data covers the days before it."""
    covered = default_as_of(transactions)
    if as_of > covered:
        raise InsufficientHistoryError(
            f"as_of {_date(as_of)} is after the data's end (last transaction "
            f"{transactions['timestamp'].max()}, covered until {_date(covered)}): the days "
            f"before it are not observed; use --as-of {_date(covered)} or earlier")
    return as_of


def plan_windows(transactions: pd.DataFrame, as_of: pd.Timestamp | str, horizon_days: int,
                 *, model: str, needs_days: int, needs_rule: str,
                 min_holdout_days: int) -> Windows:
    """Windows for one model: the holdout is H days, or shorter when the twin needs
    ``needs_days`` of history before its start (``needs_rule`` says why, with the settings).

    Raises :class:`InsufficientHistoryError` when not even ``min_holdout_days`` remain.
    """
    as_of = check_as_of(transactions, pd.Timestamp(as_of))
    start = first_purchase(history(transactions, as_of))
    available = int((as_of - start) / DAY)
    holdout = min(horizon_days, available - needs_days)
    if holdout < min_holdout_days:
        raise InsufficientHistoryError(
            f"{model}: not enough history before as_of {_date(as_of)}: purchases start "
            f"{_date(start)} ({available} days), and {needs_rule} ({needs_days} days) plus a "
            f"holdout of features.min_holdout_days ({min_holdout_days}) days needs "
            f"{needs_days + min_holdout_days} days; use a later --as-of or lower those settings")
    windows = Windows(as_of, horizon_days, start, as_of - pd.Timedelta(days=holdout))
    if holdout < horizon_days:
        windows = windows.reduced(
            f"holdout shortened to {holdout} days (from {horizon_days}): {available} days of "
            f"history, and {needs_rule} ({needs_days} days)")
    return windows


__all__ = ["BASELINE_PREFIX", "HOLDOUT_PREFIX", "SERVED_PREFIX", "VALIDATION_PREFIX",
           "InsufficientHistoryError", "ScoringDateError", "Windows",
           "check_as_of", "check_scoring_date", "first_purchase", "fit_until", "plan_windows",
           "prefixed", "scoped"]
