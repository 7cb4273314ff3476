"""The operator's log lines: rows per rule, tuning, holdout beside baselines, the gate."""

from __future__ import annotations

import optuna
import pandas as pd

from tailor.adapters.gate import Decision
from tailor.adapters.training import TrackedTraining, tuning_summary
from tailor.tasks.run_log import (
    alias_line,
    decision_line,
    holdout_lines,
    tuning_line,
    validation_lines,
)


def test_validation_lines_count_rows_read_accepted_and_quarantined_per_rule() -> None:
    summary = pd.DataFrame({"table": ["transactions"] * 3 + ["products"],
                            "rule": ["accepted", "duplicate_line", "zero_quantity", "accepted"],
                            "rows": [900, 70, 30, 50]})
    lines = validation_lines(summary, {"transactions": "d/transactions.csv"}, "out/q")
    assert lines[0] == ("transactions: 1,000 rows read from d/transactions.csv, 900 accepted, "
                        "100 quarantined (2 rule(s))")
    assert "transactions: quarantined 70 row(s) by rule duplicate_line" in lines
    assert "transactions: quarantined 30 row(s) by rule zero_quantity" in lines
    assert "products: 50 rows read from products, 50 accepted, 0 quarantined" in lines
    assert lines[-1].endswith("out/q")


def test_a_clean_data_set_points_at_no_quarantine() -> None:
    summary = pd.DataFrame({"table": ["transactions"], "rule": ["accepted"], "rows": [5]})
    assert not any("quarantined rows" in line for line in validation_lines(summary, {}, "q"))


def test_the_tuning_summary_counts_trials_by_state() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number % 3 == 1:
            raise optuna.TrialPruned
        if trial.number % 3 == 2:
            raise ValueError("a failed trial")
        return x

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=7, catch=(ValueError,))
    summary = tuning_summary(study, "validation precision@k")
    assert (summary.trials, summary.complete, summary.pruned, summary.failed) == (7, 3, 2, 2)
    assert summary.best_value == max(t.value for t in study.trials if t.value is not None)
    assert summary.direction == "maximize" and summary.seconds >= 0

    trained = TrackedTraining("recommender", "run1", "0", "models:/m", "4", {}, tuning=summary)
    line = tuning_line(trained, 12.34)
    assert "7 trial(s)" in line and "2 pruned" in line and "2 failed" in line
    assert f"best validation precision@k {summary.best_value:.4f} (maximize)" in line
    assert "whole training 12.3 s" in line and "tailor-recommender v4" in line


def test_holdout_lines_put_the_gate_metric_first_beside_its_baselines() -> None:
    metrics = {"holdout_recall_at_10": 0.5, "holdout_precision_at_10": 0.3,
               "holdout_n_users": 100.0, "holdout_lightfm_auc": 0.7,
               "baseline_popularity_holdout_precision_at_10": 0.2,
               "baseline_repeat_holdout_precision_at_10": 0.25,
               "baseline_repeat_holdout_recall_at_10": 0.4,
               "validation_precision_at_10": 0.9}
    lines = holdout_lines("recommender", metrics, "precision_at_10", "run9")
    assert lines == [
        "recommender holdout precision_at_10 (the gate metric): 0.3000 vs baselines "
        "popularity 0.2000, repeat 0.2500",
        "recommender holdout recall_at_10: 0.5000 vs baselines repeat 0.4000",
        "recommender: 2 more holdout metric(s) in MLflow run run9",
    ]


def test_decision_lines_say_both_scores_and_why() -> None:
    won = Decision("churn", "holdout_roc_auc", "3", "2", 0.81, 0.78, True, "beats by 0.03")
    assert decision_line(won) == ("gate churn: challenger v3 holdout_roc_auc 0.8100 vs "
                                  "champion v2 0.7800 -> PROMOTE: beats by 0.03")
    assert alias_line(won) == "tailor-churn@champion -> v3 (was v2)"
    first = Decision("churn", "holdout_roc_auc", "1", None, 0.8, None, True, "first version")
    assert "vs no champion -> PROMOTE" in decision_line(first)
    assert alias_line(first) == "tailor-churn@champion -> v1"
    lost = Decision("churn", "holdout_roc_auc", "4", "3", 0.7, 0.8, False, "worse")
    assert decision_line(lost).endswith("-> KEEP champion: worse")
    assert alias_line(lost) == ("tailor-churn@champion stays v3; v4 is recorded as not "
                                "promoted")
