"""Short histories through the command line: what trains, what shrinks, what is skipped and why.

With the default windows (H = 90 days): 9 months of history train all three models; 6 months
train them with a logged reduction; one product trains segmentation and churn and skips the
recommender with a one-line reason; below one complete label window churn is skipped with a
one-line error that names the rule, the dates and the settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from prefect.settings import PREFECT_API_URL

from tailor.configs import load_settings
from tailor.data.generate import generate, write_generated

TAILOR = Path(sys.executable).with_name("tailor")

TINY = ["segmentation.n_trials=2", "segmentation.k_max=5", "recommender.n_trials=2",
        "recommender.max_epochs=3", "recommender.max_eval_users=200", "churn.n_trials=2",
        "churn.families=[logistic]", "churn.importance_repeats=1"]


def _train(tmp_path: Path, *generate_overrides: str, cli_args: tuple[str, ...] = ()
           ) -> tuple[subprocess.CompletedProcess[str], MlflowClient]:
    """`tailor train` in its own process, as a user runs it (on the test session's Prefect
    API, so it does not start a server of its own)."""
    settings = load_settings(overrides=["generate.customers=500", "generate.products=60",
                                        "generate.messy_share=0", *generate_overrides])
    write_generated(generate(settings.generate), tmp_path / "data")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [str(TAILOR), "train", "--data", str(tmp_path / "data"),
            "--out", str(tmp_path / "out"), *cli_args]
    for item in [f"tracking.mlflow_tracking_uri={store}",
                 f"tracking.optuna_storage=sqlite:///{tmp_path / 'optuna.db'}", *TINY]:
        args += ["--set", item]
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600,
                            check=False)
    result.output = result.stdout + result.stderr  # type: ignore[attr-defined]
    return result, MlflowClient(tracking_uri=store, registry_uri=store)


def _params(client: MlflowClient, kind: str) -> dict[str, str]:
    version = client.get_model_version(f"tailor-{kind}", "1")
    return client.get_run(version.run_id).data.params


@pytest.mark.usefixtures("prefect_harness")
def test_nine_months_train_all_three_with_the_defaults(tmp_path: Path) -> None:
    result, client = _train(tmp_path, "generate.days=273")
    assert result.returncode == 0, result.output
    assert "skipped" not in result.output
    for kind in ("segmentation", "recommender", "churn"):
        params = _params(client, kind)
        assert params["holdout_days"] == "90", kind
    assert _params(client, "churn")["tuning"] == "grouped_cv"


@pytest.mark.usefixtures("prefect_harness")
def test_six_months_train_all_three_with_a_logged_reduction(tmp_path: Path) -> None:
    result, client = _train(tmp_path, "generate.days=182")
    assert result.returncode == 0, result.output
    churn = _params(client, "churn")
    assert int(churn["holdout_days"]) < 90
    assert "holdout shortened" in churn["window_notes"]
    recommender = _params(client, "recommender")
    assert recommender["holdout_days"] == "90"
    assert "validation shortened" in recommender["window_notes"]


@pytest.mark.usefixtures("prefect_harness")
def test_one_product_skips_the_recommender_with_a_reason(tmp_path: Path) -> None:
    result, client = _train(tmp_path, "generate.kind=repeat_buying", "generate.days=273")
    assert result.returncode == 0, result.output
    assert "recommender   skipped: the history before" in result.output
    assert "Traceback" not in result.output
    assert client.get_model_version("tailor-churn", "1").status == "READY"
    assert client.get_model_version("tailor-segmentation", "1").status == "READY"
    assert client.search_registered_models("name = 'tailor-recommender'") == []


@pytest.mark.usefixtures("prefect_harness")
def test_below_one_label_window_churn_says_which_rule_and_setting(tmp_path: Path) -> None:
    result, _ = _train(tmp_path, "generate.days=140")
    assert result.returncode == 0, result.output  # segmentation and the recommender trained
    (line,) = [x for x in result.output.splitlines() if x.startswith("  churn  ")]
    assert "skipped: not enough history before as_of" in line
    for needed in ("churn.min_history_days (60)", "features.horizon_days (90)",
                   "features.min_holdout_days (14)", "2023-01-01", "--as-of"):
        assert needed in line, needed


@pytest.mark.usefixtures("prefect_harness")
def test_a_retrain_that_trains_nothing_fails_saying_why(tmp_path: Path) -> None:
    """A scheduled retrain that skips every model must be a Failed run (the operator is told),
    not a Completed one that changed nothing."""
    result, client = _train(tmp_path, "generate.days=140", cli_args=("--models", "churn"))
    assert result.returncode == 1, result.output
    assert ("tailor train: no model could be trained on this data: churn: not enough history "
            "before as_of") in result.output
    assert "Traceback" not in result.output
    assert client.search_registered_models("name = 'tailor-churn'") == []
