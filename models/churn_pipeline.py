"""sklearn pipelines of the churn candidates: column roles, derived ratios, estimators.

Why a log for the linear model: frequency, monetary and interval columns are heavy-tailed (a
few wholesalers order 100x the median), so a linear score on raw values is decided by outliers.
Trees are invariant to monotone transforms and get the raw values. Both get two ratios the
linear model cannot form itself: how overdue a customer is against their usual interval and
their order rate over their tenure.

Everything here is module-level (no lambdas) so fitted pipelines pickle by reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

# The pipeline's own steps live in tailor.inference, so a logged pipeline loads without tailor.
from tailor.inference import (
    MISSING_LEVEL,
    RATE_PRIOR_DAYS,
    as_levels,
    clip_log1p,
    derive_ratios,
    fill_mean,
)
from tailor.models.features import ATTRIBUTE_PREFIX

LOGISTIC = "logistic"
GRADIENT_BOOSTING = "hist_gradient_boosting"
# Columns in [-1, 1] or [0, 1] already: scaled, not logged.
BOUNDED_COLUMNS = ("trend", "return_rate")
# Derived from base columns by derive_ratios (names are part of the importance table).
DERIVED_COLUMNS = ("overdue_ratio", "order_rate")
REQUIRED_FOR_RATIOS = ("recency_days", "ipi_median_days", "frequency", "tenure_days")


@dataclass(frozen=True)
class ColumnRoles:
    """Which input column goes through which transform; decided on the training frame."""

    heavy: tuple[str, ...]
    bounded: tuple[str, ...]
    categorical: tuple[str, ...]
    numeric_attributes: tuple[str, ...]

    @property
    def inputs(self) -> tuple[str, ...]:
        """Columns the predictor requires, in training order (ratios are derived from them)."""
        return self.heavy + self.bounded + self.categorical + self.numeric_attributes


def column_roles(features: pd.DataFrame) -> ColumnRoles:
    """Roles from dtypes and names: non-numeric ``attr_*`` columns are categorical.

    Date/time attributes (e.g. a signup date) are left out: as levels they are near-unique
    noise, and their meaning (age at the cutoff) is already ``tenure_days``.
    """
    heavy, bounded, categorical, numeric_attrs = [], [], [], []
    for col in features.columns:
        if col.startswith(ATTRIBUTE_PREFIX) and (
                pd.api.types.is_datetime64_any_dtype(features[col])
                or pd.api.types.is_timedelta64_dtype(features[col])):
            continue
        numeric = pd.api.types.is_numeric_dtype(features[col]) and not pd.api.types.is_bool_dtype(
            features[col])
        if col.startswith(ATTRIBUTE_PREFIX):
            (numeric_attrs if numeric else categorical).append(col)
        elif not numeric:
            raise TypeError(f"feature column {col!r} has dtype {features[col].dtype}; only "
                            f"{ATTRIBUTE_PREFIX}* columns may be non-numeric")
        elif col in BOUNDED_COLUMNS or col.startswith("cat_share_"):
            bounded.append(col)
        else:
            heavy.append(col)
    missing = [c for c in REQUIRED_FOR_RATIOS if c not in heavy]
    if missing:
        raise KeyError(f"feature frame lacks column(s) {missing} needed by the churn model")
    return ColumnRoles(tuple(heavy), tuple(bounded), tuple(categorical), tuple(numeric_attrs))


def _one_hot(max_levels: int) -> Pipeline:
    return Pipeline([
        ("levels", FunctionTransformer(as_levels, feature_names_out="one-to-one")),
        ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=max_levels,
                                 sparse_output=False)),
    ])


_fill_mean = fill_mean  # the name pickles of versions logged before the move refer to


def build_pipeline(params: Mapping[str, Any], roles: ColumnRoles, max_levels: int,
                   seed: int) -> Pipeline:
    """Unfitted pipeline for one parameter set (``family`` plus its ``logistic_*``/``hgb_*``)."""
    heavy = [*roles.heavy, *DERIVED_COLUMNS]
    family = params["family"]
    if family == LOGISTIC:
        numeric_attrs = Pipeline([("scale", StandardScaler()),
                                  ("fill", FunctionTransformer(fill_mean))])
        transformers: list[tuple[str, Any, Sequence[str]]] = [
            ("heavy", Pipeline([("log", FunctionTransformer(clip_log1p)),
                                ("scale", StandardScaler())]), heavy),
            ("bounded", StandardScaler(), list(roles.bounded)),
            ("categorical", _one_hot(max_levels), list(roles.categorical)),
            ("numeric_attributes", numeric_attrs, list(roles.numeric_attributes)),
        ]
        model: Any = LogisticRegression(C=float(params["logistic_c"]), max_iter=5000)
    elif family == GRADIENT_BOOSTING:
        transformers = [
            ("numeric", "passthrough", [*heavy, *roles.bounded, *roles.numeric_attributes]),
            ("categorical", _one_hot(max_levels), list(roles.categorical)),
        ]
        model = HistGradientBoostingClassifier(
            learning_rate=float(params["hgb_learning_rate"]),
            max_iter=int(params["hgb_max_iter"]),
            max_leaf_nodes=int(params["hgb_max_leaf_nodes"]),
            min_samples_leaf=int(params["hgb_min_samples_leaf"]),
            l2_regularization=float(params["hgb_l2_regularization"]),
            max_features=float(params["hgb_max_features"]),
            early_stopping=False, random_state=seed)
    else:
        raise ValueError(f"unknown churn model family {family!r}; expected {LOGISTIC!r} or "
                         f"{GRADIENT_BOOSTING!r}")
    transformers = [t for t in transformers if t[2]]
    columns = ColumnTransformer(transformers, remainder="drop")
    return Pipeline([("derive", FunctionTransformer(derive_ratios)), ("columns", columns),
                     ("model", model)])


__all__ = [
    "DERIVED_COLUMNS",
    "GRADIENT_BOOSTING",
    "LOGISTIC",
    "MISSING_LEVEL",
    "RATE_PRIOR_DAYS",
    "ColumnRoles",
    "as_levels",
    "build_pipeline",
    "clip_log1p",
    "column_roles",
    "derive_ratios",
    "fill_mean",
]
