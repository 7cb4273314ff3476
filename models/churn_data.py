"""Churn training data: which cutoffs to stack and the point-in-time (features, label) frames.

Cutoffs for a scoring point ``as_of`` ("now": labels are observable only before it) and
horizon H:

- validation cutoff ``v = as_of - H``: the latest window whose labels ``[v, as_of)`` are known;
- training cutoffs ``v - H - i * step_days`` (i = 0..n_cutoffs-1): their label windows end on or
  before ``v``, so no training label looks into the validation window;
- refit cutoffs ``v - i * step_days``: after tuning, the served model is refit on the newest
  windows, validation included;
- seasonal cutoffs (``seasonal_cutoffs`` of them, ``step_days`` apart, centred on the target
  cutoff minus ``season_days``) join both sets when their label windows end in time: the
  window being predicted has a season (a Christmas window brings back once-a-year gift buyers
  who would be "churners" in a spring window), and the same dates a year earlier teach it.
  Measured on generated data with a Christmas peak: validation ROC-AUC 0.935 -> 0.955 (gradient
  boosting), and a recency-beating model instead of one worse than recency.

Cutoffs with less than ``min_history_days`` of purchase history before them are skipped: on a
short export (Online Retail starts 2010-12-01) an early cutoff's customers all look new.
Every frame is built from ``history(transactions, as_of)``, so nothing at or after ``as_of``
can leak into training, whatever the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from configs.schema import ChurnSettings, FeatureSettings
from models.features import (
    ATTRIBUTE_PREFIX,
    BASE_COLUMNS,
    CATEGORY_PREFIX,
    churn_labels,
    customer_features,
    default_as_of,
    history,
)

CUTOFF = "cutoff"
CUSTOMER_ID = "customer_id"


class ChurnDataError(ValueError):
    """Not enough data to train or score the churn model; the message says what is missing."""


@dataclass(frozen=True)
class CutoffPlan:
    """Cutoffs for one ``as_of``: train (tuning), validation and refit (serving)."""

    as_of: pd.Timestamp
    horizon_days: int
    validation: pd.Timestamp
    train: tuple[pd.Timestamp, ...]
    refit: tuple[pd.Timestamp, ...]
    skipped: tuple[pd.Timestamp, ...]


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


@dataclass(frozen=True)
class ChurnData:
    """Everything tuning needs: the plan, the training and validation frames, all refit rows."""

    plan: CutoffPlan
    train: ChurnFrame
    validation: ChurnFrame
    refit: ChurnFrame


def _seasonal(target: pd.Timestamp, label_end: pd.Timestamp, horizon: pd.Timedelta,
              settings: ChurnSettings) -> list[pd.Timestamp]:
    """Cutoffs around ``target - season_days`` whose label windows end by ``label_end``."""
    n = settings.seasonal_cutoffs
    offsets = [(j - (n - 1) // 2) * settings.step_days for j in range(n)]
    lagged = [target - pd.Timedelta(days=settings.season_days - o) for o in offsets]
    return [c for c in lagged if c + horizon <= label_end]


def plan_cutoffs(transactions: pd.DataFrame, as_of: pd.Timestamp | str | None,
                 horizon_days: int, settings: ChurnSettings) -> CutoffPlan:
    """Cutoffs as in the module docstring; raises when no training cutoff has enough history."""
    if transactions.empty:
        raise ChurnDataError("transactions is empty: no churn cutoffs can be planned")
    covered = default_as_of(transactions)
    as_of = covered if as_of is None else pd.Timestamp(as_of)
    if as_of > covered:
        raise ChurnDataError(
            f"as_of {as_of} is after the data's end (covered until {covered}): the validation "
            f"window [{as_of - pd.Timedelta(days=horizon_days)}, {as_of}) is not observable")
    horizon = pd.Timedelta(days=horizon_days)
    step = pd.Timedelta(days=settings.step_days)
    start = transactions.loc[transactions["quantity"] > 0, "timestamp"].min()
    earliest = start + pd.Timedelta(days=settings.min_history_days)
    validation = as_of - horizon
    train = [validation - horizon - i * step for i in range(settings.n_cutoffs)]
    train += _seasonal(validation, validation, horizon, settings)
    refit = [validation - i * step for i in range(settings.n_cutoffs)]
    refit += _seasonal(validation + horizon, as_of, horizon, settings)
    train, refit = sorted(set(train), reverse=True), sorted(set(refit), reverse=True)
    skipped = sorted({c for c in train + refit if c < earliest})
    plan = CutoffPlan(
        as_of=as_of, horizon_days=horizon_days, validation=validation,
        train=tuple(c for c in train if c >= earliest),
        refit=tuple(c for c in refit if c >= earliest), skipped=tuple(skipped))
    if validation < earliest or not plan.train:
        raise ChurnDataError(
            f"not enough history for churn training at as_of {as_of.date()} with horizon "
            f"{horizon_days} days: purchases start {start.date()}, a cutoff needs "
            f"{settings.min_history_days} days of history before it (churn.min_history_days), "
            f"the validation cutoff is {validation.date()} and the latest training cutoff "
            f"{train[0].date()}; use a later as_of, a shorter horizon or fewer history days")
    return plan


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
    :func:`models.features.churn_labels`). Use it for an out-of-time test window too.
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


def prepare_churn_data(transactions: pd.DataFrame, as_of: pd.Timestamp | str | None,
                       feature_settings: FeatureSettings, settings: ChurnSettings,
                       customers: pd.DataFrame | None = None,
                       products: pd.DataFrame | None = None) -> ChurnData:
    """Plan cutoffs and build the frames from the history strictly before ``as_of``."""
    horizon = feature_settings.horizon_days
    plan = plan_cutoffs(transactions, as_of, horizon, settings)
    past = history(transactions, plan.as_of)
    frames: dict[pd.Timestamp, ChurnFrame] = {}
    for cutoff in sorted(set(plan.train) | set(plan.refit)):
        # label windows end on or before as_of by construction (checked by plan_cutoffs);
        # `past` stops before as_of, so churn_labels' own end-of-data check would misfire.
        frames[cutoff] = cutoff_frame(past, cutoff, horizon, feature_settings, settings,
                                      customers, products, allow_partial=True)
    empty = [c.date().isoformat() for c, f in frames.items() if f.labels.empty]
    if empty:
        raise ChurnDataError(f"no customers with purchases before cutoff(s) {empty}")
    refit = stack_frames([frames[c] for c in plan.refit])
    train = stack_frames([frames[c] for c in plan.train])
    columns = [c for c in train.features.columns if c in refit.features.columns]
    train = ChurnFrame(train.features[columns], train.labels)
    refit = ChurnFrame(refit.features[columns], refit.labels)
    return ChurnData(plan=plan, train=train, validation=refit.select([plan.validation]),
                     refit=refit)


__all__ = [
    "ChurnData",
    "ChurnDataError",
    "ChurnFrame",
    "CutoffPlan",
    "cutoff_frame",
    "plan_cutoffs",
    "prepare_churn_data",
    "stack_frames",
]
