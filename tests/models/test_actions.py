"""Next-best-action rules on hand-made frames: each op, first match wins, default, one row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from tailor.configs import ConfigError, load_settings
from tailor.configs.schema import ActionCondition, ActionRule, ScoringSettings
from tailor.models.actions import ActionRuleError, next_best_action, with_recommendations


def rules(*rule_list: tuple[str, list[tuple[str, str, object]]],
          default: str = "nurture") -> ScoringSettings:
    return ScoringSettings(default_action=default, actions=[
        ActionRule(name=name, conditions=[ActionCondition(column=c, op=op, value=v)
                                          for c, op, v in conds])
        for name, conds in rule_list])


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "churn_probability": [0.9, 0.5, 0.2, np.nan],
        "monetary": [100.0, 10.0, 50.0, 70.0],
        "tenure_days": [400.0, 30.0, 60.0, 10.0],
        "segment_name": ["loyal_2", "new", "champions", None],
    }, index=pd.Index(["a", "b", "c", "d"], name="customer_id"))


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("lt", 60, [False, True, False, True]),
    ("le", 60, [False, True, True, True]),
    ("gt", 60, [True, False, False, False]),
    ("ge", 60, [True, False, True, False]),
    ("eq", 60, [False, False, True, False]),
])
def test_each_numeric_op(frame: pd.DataFrame, op: str, value: float,
                         expected: list[bool]) -> None:
    out = next_best_action(frame, rules(("hit", [("tenure_days", op, value)])))
    assert (out == "hit").tolist() == expected
    assert out.index.equals(frame.index)


def test_in_and_eq_on_text_and_null_never_matches(frame: pd.DataFrame) -> None:
    out = next_best_action(frame, rules(("in", [("segment_name", "in", ["new", "champions"])]),
                                        ("eq", [("segment_name", "eq", "loyal_2")])))
    assert out.tolist() == ["eq", "in", "in", "nurture"]
    # a null churn probability (no churn champion) never matches, even "not high"
    out = next_best_action(frame, rules(("low", [("churn_probability", "lt", 0.95)])))
    assert out.tolist() == ["low", "low", "low", "nurture"]


def test_first_matching_rule_wins_and_conditions_are_anded(frame: pd.DataFrame) -> None:
    table = rules(("retention_offer", [("churn_probability", "ge", 0.6),
                                       ("monetary_pct", "ge", 0.7)]),
                  ("onboarding", [("tenure_days", "lt", 60)]),
                  ("young", [("tenure_days", "lt", 100)]),  # shadowed for b and d
                  default="keep_in_touch")
    assert next_best_action(frame, table).tolist() == [
        "retention_offer", "onboarding", "young", "onboarding"]
    reordered = rules(("young", [("tenure_days", "lt", 100)]),
                      ("onboarding", [("tenure_days", "lt", 60)]))
    assert next_best_action(frame, reordered).tolist() == ["nurture", "young", "young", "young"]


def test_percentile_and_segment_group(frame: pd.DataFrame) -> None:
    # monetary 100 is the top of the population (pct 1.0), 70 at 0.75, 10 at 0.25
    out = next_best_action(frame, rules(("top", [("monetary_pct", "gt", 0.75)]),
                                        ("bottom", [("monetary_pct", "le", 0.25)])))
    assert out.tolist() == ["top", "bottom", "nurture", "nurture"]
    out = next_best_action(frame, rules(("loyal", [("segment_group", "in", ["loyal"])])))
    assert out.tolist() == ["loyal", "nurture", "nurture", "nurture"]


def test_one_row_frame_uses_the_reference_population(frame: pd.DataFrame) -> None:
    table = rules(("top", [("monetary_pct", "ge", 0.75)]))
    one = frame.loc[["c"]]  # monetary 50: top of a population of one, 2nd of 4 in the batch
    assert next_best_action(one, table).tolist() == ["top"]
    assert next_best_action(one, table, reference=frame).tolist() == ["nurture"]
    assert next_best_action(frame.iloc[:0], table).tolist() == []


def test_default_rules_from_config(frame: pd.DataFrame) -> None:
    scoring = load_settings().scoring
    out = next_best_action(frame.assign(frequency=[9.0, 1.0, 5.0, 1.0]), scoring)
    assert out.tolist() == ["retention_offer", "onboarding", "upsell", "onboarding"]
    assert with_recommendations(out, scoring).all()


def test_unknown_or_mistyped_column_names_the_rule(frame: pd.DataFrame) -> None:
    with pytest.raises(ActionRuleError, match=r"'vip'.*'lifetime_value'"):
        next_best_action(frame, rules(("vip", [("lifetime_value", "gt", 5)])))
    with pytest.raises(ActionRuleError, match=r"'odd'.*numeric.*'segment_name'"):
        next_best_action(frame, rules(("odd", [("segment_name", "lt", 5)])))


def test_rule_config_is_validated() -> None:
    with pytest.raises(ValidationError, match="needs a non-empty list"):
        ActionCondition(column="x", op="in", value=3)
    with pytest.raises(ValidationError, match="needs a number"):
        ActionCondition(column="x", op="ge", value="high")
    with pytest.raises(ValidationError, match="unique"):
        rules(("a", [("x", "eq", 1)]), ("a", [("x", "eq", 2)]))
    with pytest.raises(ConfigError, match=r"scoring\.actions\.0\.conditions\.0\.op"):
        load_settings(overrides=[
            "scoring.actions=[{name: a, conditions: [{column: x, op: between, value: 1}]}]"])
