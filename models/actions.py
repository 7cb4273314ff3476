"""Next best action: a rule table a marketer edits in the config, applied to scored customers.

Rules (``scoring.actions``, validated by :class:`schema.ScoringSettings`) are tried in
order and the first whose conditions all hold wins; customers no rule matches get
``default_action``. A condition compares one column with ``lt le gt ge eq in``; a null cell never
matches, so a model without a champion (its columns null) simply lets later rules decide.

Besides the scored and feature columns, rules may name derived columns:

- ``<column>_pct``: the percentile (0, 1] of ``<column>`` within a reference population (the
  scored customers by default), e.g. ``monetary_pct >= 0.7`` is the top 30% by spend. Serving
  one customer at a time passes the batch's features as ``reference`` so the percentile means the
  same thing as in the batch.
- ``segment_group``: ``segment_name`` without the ``_2``/``_3`` suffix that tells apart two
  segments given the same name, so a rule on ``loyal`` also covers ``loyal_2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tailor.configs.schema import ActionCondition, ActionRule, ScoringSettings

ACTION_COLUMN = "next_best_action"
PCT_SUFFIX = "_pct"
SEGMENT_GROUP = "segment_group"


class ActionRuleError(ValueError):
    """A rule that cannot be evaluated on the frame; the message names the rule and column."""


def _percentile(values: pd.Series, reference: pd.Series) -> np.ndarray:
    """Share of the reference population at or below each value (NaN stays NaN)."""
    ref = np.sort(pd.to_numeric(reference, errors="coerce").to_numpy(dtype=float,
                                                                       na_value=np.nan))
    ref = ref[~np.isnan(ref)]
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if ref.size == 0:
        return np.full(len(x), np.nan)
    pct = np.searchsorted(ref, x, side="right") / ref.size
    return np.where(np.isnan(x), np.nan, pct)


def _column(frame: pd.DataFrame, name: str, rule: str,
            reference: pd.DataFrame | None) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    if name == SEGMENT_GROUP and "segment_name" in frame.columns:
        names = frame["segment_name"].astype("string")
        return names.str.replace(r"_\d+$", "", regex=True)
    base = name.removesuffix(PCT_SUFFIX)
    if name.endswith(PCT_SUFFIX) and base in frame.columns:
        population = reference[base] if reference is not None and base in reference.columns \
            else frame[base]
        return pd.Series(_percentile(frame[base], population), index=frame.index)
    raise ActionRuleError(
        f"action rule {rule!r}: column {name!r} is not in the scored frame; available: "
        f"{sorted(map(str, frame.columns))}, plus <column>{PCT_SUFFIX} and {SEGMENT_GROUP}"
    )


def _numbers(values: pd.Series, cond: ActionCondition, rule: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values) or not (
            pd.api.types.is_numeric_dtype(values) or values.isna().all()):
        raise ActionRuleError(
            f"action rule {rule!r}: op {cond.op!r} needs a numeric column, but "
            f"{cond.column!r} is {values.dtype}")
    return values.to_numpy(dtype=float, na_value=np.nan)


def _holds(values: pd.Series, cond: ActionCondition, rule: str) -> np.ndarray:
    """Boolean mask of rows where ``values op value`` holds; null cells are False."""
    notna = values.notna().to_numpy()
    if cond.op == "in":
        assert isinstance(cond.value, list)  # guaranteed by ActionCondition's validator
        return values.isin(cond.value).to_numpy() & notna
    if cond.op == "eq":
        if isinstance(cond.value, int | float) and not isinstance(cond.value, bool):
            return _numbers(values, cond, rule) == float(cond.value)
        return (values == cond.value).fillna(False).to_numpy(dtype=bool) & notna
    x = _numbers(values, cond, rule)
    threshold = float(cond.value)  # type: ignore[arg-type]
    with np.errstate(invalid="ignore"):
        if cond.op == "lt":
            return x < threshold
        if cond.op == "le":
            return x <= threshold
        if cond.op == "gt":
            return x > threshold
        return x >= threshold


def next_best_action(frame: pd.DataFrame, rules: ScoringSettings,
                     reference: pd.DataFrame | None = None) -> pd.Series:
    """The action per row of ``frame`` (same index): first matching rule, else the default.

    Works on any number of rows, one included; ``reference`` is the population that
    ``<column>_pct`` columns are computed against (default: ``frame`` itself).
    """
    result = np.full(len(frame), rules.default_action, dtype=object)
    undecided = np.ones(len(frame), dtype=bool)
    cache: dict[str, pd.Series] = {}
    for rule in rules.actions:
        mask = undecided.copy()
        for cond in rule.conditions:
            if cond.column not in cache:
                cache[cond.column] = _column(frame, cond.column, rule.name, reference)
            mask &= _holds(cache[cond.column], cond, rule.name)
        result[mask] = rule.name
        undecided &= ~mask
    return pd.Series(result, index=frame.index, name=ACTION_COLUMN, dtype=object)


def with_recommendations(actions: pd.Series, rules: ScoringSettings) -> pd.Series:
    """Whether each action carries the customer's top recommendations (per rule config)."""
    table = {rule.name: rule.with_recommendations for rule in rules.actions}
    table.setdefault(rules.default_action, rules.default_with_recommendations)
    return actions.map(table).fillna(False).astype(bool)


def action_names(rules: ScoringSettings) -> list[str]:
    """Every action the rules can produce, in rule order, the default last."""
    names: Sequence[ActionRule] = rules.actions
    return [*dict.fromkeys([r.name for r in names] + [rules.default_action])]


__all__ = ["ACTION_COLUMN", "ActionRuleError", "action_names", "next_best_action",
           "with_recommendations"]
