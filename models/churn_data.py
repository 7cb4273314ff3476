"""Churn training data: which cutoffs each fit stacks, and the point-in-time (features, label)
frames.

A churn fit "before T" stacks labelled cutoffs whose label windows ``[c, c + H)`` end by T:

- regular cutoffs ``T - H - i * step_days`` (i = 0..n_cutoffs-1), newest first;
- seasonal cutoffs (``seasonal_cutoffs`` of them, ``step_days`` apart, centred on
  ``T - season_days``) when their label windows end by T: the window being predicted has a
  season (a Christmas window brings back once-a-year gift buyers who would be "churners" in a
  spring window), and the same dates a year earlier teach it. Measured on generated data with a
  Christmas peak: validation ROC-AUC 0.935 -> 0.955 (gradient boosting).

Cutoffs with less than ``min_history_days`` of purchases before them are skipped: on a short
export an early cutoff's customers all look new.

A training run (see :mod:`tailor.models.windows`) makes three such plans from one history:

- **served**: the fit before the scoring date D, trained on cutoffs up to D - H (the latest
  whose label window is complete) and applied to features at D;
- **twin**: the fit before the holdout start S, judged on the customers active before S with
  labels from ``[S, D)``;
- **tuning**, inside the twin's history: out of time when it allows (train before S - H,
  validate on the cutoff S - H), otherwise customer-grouped folds over the twin's cutoffs
  (logged as a reduction).

Every frame is built from ``history(transactions, D)``, so nothing at or after D can leak in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tailor.configs.schema import ChurnSettings, FeatureSettings
from tailor.models.customer_sample import sample_ids
from tailor.models.features import (
    ATTRIBUTE_PREFIX,
    BASE_COLUMNS,
    CATEGORY_PREFIX,
    churn_labels,
    customer_features,
    history,
)
from tailor.models.windows import InsufficientHistoryError, Windows, plan_windows

CUTOFF = "cutoff"
CUSTOMER_ID = "customer_id"
OUT_OF_TIME = "out_of_time"
GROUPED_CV = "grouped_cv"


class ChurnDataError(InsufficientHistoryError):
    """Not enough data to train or score the churn model; the message says what is missing."""


@dataclass(frozen=True)
class CutoffPlan:
    """The labelled cutoffs of one fit: every label window ``[c, c + H)`` ends by ``fit_until``."""

    fit_until: pd.Timestamp
    horizon_days: int
    cutoffs: tuple[pd.Timestamp, ...]  # newest first
    skipped: tuple[pd.Timestamp, ...]

    def describe(self) -> str:
        return ",".join(c.date().isoformat() for c in self.cutoffs)


@dataclass(frozen=True)
class ChurnFrame:
    """Stacked rows indexed by (cutoff, customer_id): feature columns and the churn label."""

    features: pd.DataFrame
    labels: pd.Series

    @property
    def cutoffs(self) -> tuple[pd.Timestamp, ...]:
        return tuple(pd.Index(self.features.index.get_level_values(CUTOFF)).unique())

    def select(self, cutoffs: Sequence[pd.Timestamp]) -> ChurnFrame:
        mask = self.features.index.get_level_values(CUTOFF).isin(list(cutoffs))
        return ChurnFrame(self.features.loc[mask], self.labels.loc[mask])

    def columns(self, names: Sequence[str]) -> ChurnFrame:
        return ChurnFrame(self.features[list(names)], self.labels)

    @property
    def customer_ids(self) -> pd.Index:
        return self.features.index.get_level_values(CUSTOMER_ID)

    def of_customers(self, ids: np.ndarray) -> ChurnFrame:
        """The rows of these customers (every cutoff of each)."""
        mask = self.customer_ids.isin(ids)
        return ChurnFrame(self.features.loc[mask], self.labels.loc[mask])


@dataclass(frozen=True)
class TuningSplit:
    """How Optuna validates a configuration inside the twin's history.

    ``out_of_time``: fit on ``train``, validate on ``validation`` (the latest complete window).
    ``grouped_cv``: ``folds`` customer-grouped folds over ``train`` (one customer's cutoffs never
    straddle folds); ``validation`` is None.
    """

    method: Literal["out_of_time", "grouped_cv"]
    train: ChurnFrame
    validation: ChurnFrame | None
    folds: int

    def customer_ids(self) -> np.ndarray:
        frames = [self.train] + ([] if self.validation is None else [self.validation])
        return pd.unique(np.concatenate([f.customer_ids.to_numpy() for f in frames]))

    def of_customers(self, ids: np.ndarray) -> TuningSplit:
        validation = None if self.validation is None else self.validation.of_customers(ids)
        return TuningSplit(self.method, self.train.of_customers(ids), validation, self.folds)


@dataclass(frozen=True)
class ChurnData:
    """Everything a churn training run needs, from the history before ``windows.as_of``."""

    windows: Windows
    plans: dict[str, CutoffPlan]  # "served", "twin", "tuning"
    served: ChurnFrame
    twin: ChurnFrame
    holdout: ChurnFrame  # features at the holdout start, labels on [holdout start, as_of)
    tuning: TuningSplit
    current: pd.DataFrame  # features at as_of (what the served model scores), same columns


def _seasonal(target: pd.Timestamp, label_end: pd.Timestamp, horizon: pd.Timedelta,
              settings: ChurnSettings) -> list[pd.Timestamp]:
    """Cutoffs around ``target - season_days`` whose label windows end by ``label_end``."""
    n = settings.seasonal_cutoffs
    offsets = [(j - (n - 1) // 2) * settings.step_days for j in range(n)]
    lagged = [target - pd.Timedelta(days=settings.season_days - o) for o in offsets]
    return [c for c in lagged if c + horizon <= label_end]


def plan_cutoffs(first_purchase: pd.Timestamp, fit_until: pd.Timestamp, horizon_days: int,
                 settings: ChurnSettings) -> CutoffPlan:
    """Labelled cutoffs of a fit before ``fit_until`` (see the module docstring); may be empty."""
    horizon = pd.Timedelta(days=horizon_days)
    step = pd.Timedelta(days=settings.step_days)
    latest = fit_until - horizon
    candidates = [latest - i * step for i in range(settings.n_cutoffs)]
    candidates += _seasonal(fit_until, fit_until, horizon, settings)
    candidates = sorted(set(candidates), reverse=True)
    earliest = first_purchase + pd.Timedelta(days=settings.min_history_days)
    return CutoffPlan(fit_until, horizon_days,
                      tuple(c for c in candidates if c >= earliest),
                      tuple(c for c in candidates if c < earliest))


def plan_windows_for_churn(transactions: pd.DataFrame, as_of: pd.Timestamp | str,
                           feature_settings: FeatureSettings,
                           settings: ChurnSettings) -> Windows:
    """Windows of a churn run: the twin needs one labelled cutoff before the holdout."""
    horizon = feature_settings.horizon_days
    return plan_windows(
        transactions, as_of, horizon, model="churn",
        needs_days=settings.min_history_days + horizon,
        needs_rule=(f"one complete label window needs churn.min_history_days "
                    f"({settings.min_history_days}) of purchases before its cutoff and "
                    f"features.horizon_days ({horizon}) after it"),
        min_holdout_days=feature_settings.min_holdout_days)


def _keep_columns(frame: pd.DataFrame, settings: ChurnSettings) -> list[str]:
    keep = list(BASE_COLUMNS)
    if settings.use_category_shares:
        keep += [c for c in frame.columns if c.startswith(CATEGORY_PREFIX)]
    if settings.use_attributes:
        keep += [c for c in frame.columns if c.startswith(ATTRIBUTE_PREFIX)]
    return keep


def cutoff_frame(transactions: pd.DataFrame, cutoff: pd.Timestamp, horizon_days: int,
                 feature_settings: FeatureSettings, settings: ChurnSettings,
                 customers: pd.DataFrame | None = None,
                 products: pd.DataFrame | None = None, *,
                 allow_partial: bool = False) -> ChurnFrame:
    """Features before ``cutoff`` and labels from ``[cutoff, cutoff + H)`` for one cutoff.

    ``transactions`` must cover the label window unless ``allow_partial`` (see
    :func:`tailor.models.features.churn_labels`).
    """
    features = customer_features(transactions, cutoff, feature_settings, customers=customers,
                                 products=products)
    features = features[_keep_columns(features, settings)]
    labels = churn_labels(transactions, cutoff, horizon_days, features.index,
                          allow_partial=allow_partial)
    index = pd.MultiIndex.from_arrays(
        [np.full(len(features), np.datetime64(cutoff, "ns")), features.index.to_numpy()],
        names=[CUTOFF, CUSTOMER_ID])
    return ChurnFrame(features.set_axis(index), labels.set_axis(index))


def stack_frames(frames: Sequence[ChurnFrame]) -> ChurnFrame:
    """Rows of several cutoffs; only columns every cutoff has (category shares can differ)."""
    if not frames:
        raise ChurnDataError("no cutoff frames to stack")
    features = pd.concat([f.features for f in frames], join="inner")
    labels = pd.concat([f.labels for f in frames])
    return ChurnFrame(features, labels)


def _no_cutoff_error(plan: CutoffPlan, first: pd.Timestamp, settings: ChurnSettings,
                     what: str) -> ChurnDataError:
    latest = plan.fit_until - pd.Timedelta(days=plan.horizon_days)
    return ChurnDataError(
        f"churn: no labelled cutoff for the {what} before {plan.fit_until.date()}: the latest "
        f"complete label window starts {latest.date()}, but a cutoff needs "
        f"churn.min_history_days ({settings.min_history_days}) of purchases before it "
        f"(purchases start {first.date()}); use a later --as-of, a shorter "
        f"features.horizon_days or a smaller churn.min_history_days")


def tuning_plan(windows: Windows, settings: ChurnSettings) -> tuple[str, CutoffPlan, CutoffPlan]:
    """(method, twin plan, tuning-train plan): out of time when a cutoff fits before S - H."""
    twin = plan_cutoffs(windows.first_purchase, windows.holdout_start, windows.horizon_days,
                        settings)
    validation = windows.holdout_start - pd.Timedelta(days=windows.horizon_days)
    inner = plan_cutoffs(windows.first_purchase, validation, windows.horizon_days, settings)
    return (OUT_OF_TIME if inner.cutoffs else GROUPED_CV), twin, inner


def prepare_churn_data(transactions: pd.DataFrame, windows: Windows,
                       feature_settings: FeatureSettings, settings: ChurnSettings,
                       customers: pd.DataFrame | None = None,
                       products: pd.DataFrame | None = None) -> ChurnData:
    """The served, twin, holdout and tuning frames of one run (history before ``as_of``)."""
    horizon = windows.horizon_days
    first = windows.first_purchase
    served = plan_cutoffs(first, windows.as_of, horizon, settings)
    method, twin, inner = tuning_plan(windows, settings)
    for plan, what in ((served, "served model"), (twin, "holdout twin")):
        if not plan.cutoffs:
            raise _no_cutoff_error(plan, first, settings, what)
    validation = windows.holdout_start - pd.Timedelta(days=horizon)
    needed = set(served.cutoffs) | set(twin.cutoffs) | set(inner.cutoffs)
    if method == OUT_OF_TIME:
        needed.add(validation)
    past = history(transactions, windows.as_of)
    frames: dict[pd.Timestamp, ChurnFrame] = {}
    for cutoff in sorted(needed):
        # every label window ends by as_of (plan_cutoffs); `past` stops before as_of, so
        # churn_labels' own end-of-data check would misfire on the last one.
        frames[cutoff] = cutoff_frame(past, cutoff, horizon, feature_settings, settings,
                                      customers, products, allow_partial=True)
    holdout = cutoff_frame(past, windows.holdout_start, windows.holdout_days, feature_settings,
                           settings, customers, products, allow_partial=True)
    empty = [c.date().isoformat() for c, f in frames.items() if f.labels.empty]
    if empty or holdout.labels.empty:
        raise ChurnDataError(f"churn: no customers with purchases before cutoff(s) "
                             f"{empty or [windows.holdout_start.date().isoformat()]}")

    def stacked(cutoffs: Sequence[pd.Timestamp]) -> ChurnFrame:
        return stack_frames([frames[c] for c in cutoffs])

    parts = {"served": stacked(served.cutoffs), "twin": stacked(twin.cutoffs),
             "holdout": holdout}
    if method == OUT_OF_TIME:
        parts["tuning_train"] = stacked(inner.cutoffs)
        parts["validation"] = frames[validation]
    current = customer_features(past, windows.as_of, feature_settings, customers=customers,
                                products=products)
    columns = [c for c in parts["twin"].features.columns
               if c in current.columns and all(c in p.features.columns for p in parts.values())]
    parts = {k: v.columns(columns) for k, v in parts.items()}
    if method == OUT_OF_TIME:
        split = TuningSplit(OUT_OF_TIME, parts["tuning_train"], parts["validation"],
                            settings.validation_folds)
        notes = windows
    else:
        split = TuningSplit(GROUPED_CV, parts["twin"], None, settings.validation_folds)
        notes = windows.reduced(
            f"churn tuning by {settings.validation_folds} customer-grouped folds over the "
            f"twin's cutoffs: no labelled cutoff fits before {validation.date()} (out-of-time "
            f"validation needs {settings.min_history_days + 2 * horizon} days before the "
            f"holdout)")
    everyone = split.customer_ids()
    chosen = sample_ids(everyone, settings.tuning_max_customers, settings.seed)
    if chosen is not None:
        split = split.of_customers(chosen)
        notes = notes.reduced(
            f"churn tuning on {len(chosen):,} of {len(everyone):,} seeded customers "
            f"(churn.tuning_max_customers); the twin and the served model fit on all")
    return ChurnData(windows=notes, plans={"served": served, "twin": twin, "tuning": inner},
                     served=parts["served"], twin=parts["twin"], holdout=parts["holdout"],
                     tuning=split, current=current[columns])


__all__ = [
    "GROUPED_CV",
    "OUT_OF_TIME",
    "ChurnData",
    "ChurnDataError",
    "ChurnFrame",
    "CutoffPlan",
    "TuningSplit",
    "cutoff_frame",
    "plan_cutoffs",
    "plan_windows_for_churn",
    "prepare_churn_data",
    "stack_frames",
    "tuning_plan",
]
