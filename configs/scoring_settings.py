"""Batch-scoring settings: list length, next-best-action rules, the serving snapshot."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tailor.configs.base import Section

ScalarValue = bool | int | float | str


class ActionCondition(Section):
    """One test on a scored column: ``column op value`` (a null cell never matches)."""

    column: str = Field(min_length=1, description="a scored/feature column, or <column>_pct")
    op: Literal["lt", "le", "gt", "ge", "eq", "in"]
    value: ScalarValue | list[ScalarValue]

    @model_validator(mode="after")
    def _value_fits_op(self) -> ActionCondition:
        if self.op == "in":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op 'in' on {self.column!r} needs a non-empty list value")
        elif isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} on {self.column!r} needs one value, not a list")
        elif self.op != "eq" and (isinstance(self.value, bool | str)):
            raise ValueError(f"op {self.op!r} on {self.column!r} needs a number")
        return self


class ActionRule(Section):
    """A next-best-action rule: every condition must hold (AND); the first matching rule wins."""

    name: str = Field(min_length=1)
    conditions: list[ActionCondition] = Field(min_length=1)
    with_recommendations: bool = Field(
        True, description="the action carries the customer's top recommendations")


def _default_actions() -> list[ActionRule]:
    def cond(column: str, op: str, value: ScalarValue | list[ScalarValue]) -> ActionCondition:
        return ActionCondition(column=column, op=op, value=value)  # type: ignore[arg-type]

    return [
        ActionRule(name="retention_offer", conditions=[cond("churn_probability", "ge", 0.6),
                                                       cond("monetary_pct", "ge", 0.7)]),
        ActionRule(name="win_back", conditions=[cond("churn_probability", "ge", 0.6)]),
        ActionRule(name="onboarding", conditions=[cond("tenure_days", "lt", 60)]),
        ActionRule(name="upsell", conditions=[cond("segment_group", "in", ["champions"])]),
        ActionRule(name="cross_sell", conditions=[
            cond("segment_group", "in", ["loyal", "big_spenders"])]),
    ]


class ScoringSettings(Section):
    """Batch scoring (``tailor score``): list length, next-best-action rules, serving snapshot."""

    k: int = Field(10, ge=1, description="recommendations per customer")
    default_action: str = Field("nurture", min_length=1, description="when no rule matches")
    default_with_recommendations: bool = Field(
        True, description="the default action carries the customer's top recommendations")
    actions: list[ActionRule] = Field(
        default_factory=_default_actions,
        description="first matching rule wins; all conditions of a rule must hold; a null "
                    "cell never matches (e.g. churn_probability without a churn champion). "
                    "ops: lt le gt ge eq in. Columns: any scored or feature column, "
                    "<column>_pct (percentile within the scored population, 0-1], "
                    "segment_group (segment_name without a _2/_3 suffix)",
    )
    snapshot_dir: str = Field("out/snapshot", min_length=1,
                              description="customer features + attributes for the serving API")
    keep_snapshots: int = Field(
        3, ge=1, description="snapshot directories kept after a publish (newest first; the "
                             "published one is always kept), so a rollback or a slow reader "
                             "still finds the previous ones")

    @model_validator(mode="after")
    def _unique_names(self) -> ScoringSettings:
        names = [rule.name for rule in self.actions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"action names must be unique: {dupes} repeated")
        return self
