"""The summary printers the commands share: `tailor run` prints what the single steps print."""

from __future__ import annotations

import pytest

from tailor.cli._render import print_scoring, print_training

ROW = {"model": "churn", "version": "2", "gate_metric": "auc", "challenger": 0.71234,
       "champion": 0.7, "champion_version": "1", "promoted": True, "reason": "beats champion"}


def test_training_lines_put_skips_and_repairs_on_stderr(capsys: pytest.CaptureFixture) -> None:
    summary = {"as_of": "2024-12-31", "parent_run_id": "abc", "repaired": ["run r1"],
               "skipped": {"recommender": "recommender: one product"},
               "models": [ROW, {**ROW, "model": "recommender"}]}
    print_training(summary)
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "", "trained as of 2024-12-31 (MLflow parent run abc)",
        "  churn         v2   auc 0.7123 vs champion v1 0.7000: PROMOTED (beats champion)"]
    assert err.splitlines() == ["repaired run r1", "  recommender   skipped: one product"]


def test_training_says_which_task_runner_ran_the_models(capsys: pytest.CaptureFixture) -> None:
    print_training({"as_of": "2024-12-31", "parent_run_id": "abc", "skipped": {},
                    "models": [ROW], "task_runner": "dask (DaskTaskRunner on tcp://s:8786)"})
    assert capsys.readouterr().out.splitlines()[2] == (
        "  task runner: dask (DaskTaskRunner on tcp://s:8786)")


def test_scoring_lines_say_which_columns_have_no_champion(
        capsys: pytest.CaptureFixture) -> None:
    print_scoring({"rows": 1200, "as_of": "2024-12-31", "scores": "s.parquet",
                   "model_versions": {"segmentation": "3", "churn": None},
                   "actions": {"retain": 1000, "none": 200}, "snapshot_dir": "snap"})
    assert capsys.readouterr().out.splitlines() == [
        "scored 1,200 customers as of 2024-12-31 -> s.parquet",
        "  segmentation  v3", "  churn         no champion: columns left empty",
        "next best action:", "      1,000  retain", "        200  none",
        "serving snapshot -> snap"]
