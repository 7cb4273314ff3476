"""The retrain's summary artifact: the decision first, run ids below, counts on the card."""

from __future__ import annotations

import pandas as pd

from tailor.flows.reporting import decision_lines, training_report

RUN_IDS = ["a" * 32, "b" * 32, None]


def _table() -> pd.DataFrame:
    return pd.DataFrame([
        {"model": "segmentation", "version": "2", "run_id": RUN_IDS[0], "trials": 20,
         "pruned": 5, "best_validation": 1.25,
         "gate_metric": "holdout_objective", "challenger": 1.2, "champion_version": "1",
         "champion": 1.1, "promoted": True, "reason": "holdout_objective 1.2000 beats by 0.1"},
        {"model": "recommender", "version": "5", "run_id": RUN_IDS[1], "trials": 8,
         "pruned": 0, "best_validation": 0.3,
         "gate_metric": "holdout_precision_at_10", "challenger": 0.30, "champion_version": "4",
         "champion": 0.31, "promoted": False, "reason": "does not beat the champion"},
        {"model": "churn", "version": None, "run_id": None, "trials": None, "pruned": None,
         "best_validation": None, "gate_metric": None,
         "challenger": None, "champion_version": None, "champion": None, "promoted": False,
         "reason": "skipped: 40 days of history, 180 needed"},
    ])


def test_the_decision_table_comes_first_and_holds_no_run_id() -> None:
    markdown, card = training_report("2011-09-10", _table(), "c" * 32)
    decision_part, runs_part = markdown.split("## Tuning and MLflow runs")
    header = next(line for line in decision_part.splitlines() if line.startswith("| model"))
    assert header == ("| model | version | decision | holdout metric | challenger | champion | "
                      "reason |")
    assert ("| segmentation | v2 | PROMOTED | objective | 1.2000 | v1: 1.1000 | beats by 0.1 |"
            in decision_part)
    assert "| recommender | v5 | kept champion |" in decision_part
    assert "| churn |  | skipped |  |  | none | skipped: 40 days" in decision_part
    assert not any(run_id in decision_part for run_id in ["a" * 32, "b" * 32, "c" * 32])
    assert "a" * 32 in runs_part and "b" * 32 in runs_part and "c" * 32 in runs_part
    assert f"| segmentation | v2 | 20 (5) | 1.2500 | {'a' * 32} |" in runs_part
    assert "| churn |  |  |  |  |" in runs_part
    assert card == "2 trained, 1 promoted, 1 kept the champion, 1 skipped (as of 2011-09-10)"
    assert markdown.startswith("# Retrain as of 2011-09-10: 2 trained, 1 promoted")


def test_each_model_gets_one_log_line_with_its_decision() -> None:
    lines = decision_lines(_table())
    assert lines[0] == ("segmentation v2: PROMOTED (holdout_objective 1.2000 vs champion "
                        "v1: 1.1000): holdout_objective 1.2000 beats by 0.1")
    assert lines[1].startswith("recommender v5: kept champion")
    assert lines[2] == "churn: skipped: skipped: 40 days of history, 180 needed"
