"""The ``tailor`` command line: every subcommand answers --help; errors are one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tailor.cli import app

runner = CliRunner()

COMMANDS = [[], ["data"], ["data", "generate"], ["data", "validate"], ["data", "import"],
            ["data", "import", "online-retail"], ["data", "import", "movielens"],
            ["prepare"], ["train"], ["score"], ["run"], ["models"], ["promote"], ["rollback"],
            ["ui"], ["serve"], ["deploy"], ["serve-flows"], ["config"], ["config", "show"],
            ["doctor"], ["audit"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "tailor")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_generate_then_validate(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = runner.invoke(app, ["data", "generate", "--customers", "200", "--products", "80",
                                 "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "transactions.parquet").exists() and (out / "truth").is_dir()
    result = runner.invoke(app, ["data", "validate", "--data", str(out)])
    assert result.exit_code == 0, result.output
    messy = pd.read_parquet(out / "truth" / "messy.parquet")
    for rule, count in messy["rule"].value_counts().items():
        assert rule in result.output and f"{count:,}" in result.output
    quarantined = pd.read_parquet(out / "_quarantine" / "transactions.parquet")
    assert len(quarantined) == len(messy)


def test_validate_missing_column_is_one_clear_error(tmp_path: Path) -> None:
    pd.DataFrame({"order_id": ["1"], "customer_id": ["c"], "product_id": ["p"],
                  "quantity": ["1"], "timestamp": ["2024-01-01"]}).to_csv(
        tmp_path / "transactions.csv", index=False)
    result = runner.invoke(app, ["data", "validate", "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert "transactions.csv" in result.output and "unit_price" in result.output
    assert "Traceback" not in result.output


def test_missing_data_dir_and_bad_config_fail_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "validate", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "no such data directory" in result.output
    result = runner.invoke(app, ["config", "show", "--set", "features.horizon_days=-1"])
    assert result.exit_code == 2 and "features.horizon_days" in result.output


def test_config_show_applies_overrides(tmp_path: Path) -> None:
    extra = tmp_path / "c.yaml"
    extra.write_text("features:\n  horizon_days: 45\n")
    result = runner.invoke(app, ["config", "show", "--config", str(extra),
                                 "--set", "generate.seed=9"])
    assert result.exit_code == 0
    assert '"horizon_days": 45' in result.output and '"seed": 9' in result.output


def test_import_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "import", "online-retail", str(tmp_path / "x.parquet"),
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 1, result.output
    assert "x.parquet" in result.output and "Traceback" not in result.output


def test_import_online_retail_real_file(online_retail_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "retail"
    result = runner.invoke(app, ["data", "import", "online-retail", str(online_retail_file),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["data", "validate", "--data", str(out)])
    assert result.exit_code == 0, result.output
    assert "missing_customer" in result.output and "133,358" in result.output


def test_registry_commands_on_an_empty_store_fail_clearly(tmp_path: Path) -> None:
    store = ["--set", f"tracking.mlflow_tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}"]
    result = runner.invoke(app, ["models", *store])
    assert result.exit_code == 0, result.output
    assert "tailor-churn: not registered yet" in result.output
    result = runner.invoke(app, ["promote", "churn", "3", *store])
    assert result.exit_code == 1 and "tailor-churn' does not exist" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["rollback", "churn", *store])
    assert result.exit_code == 1 and "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "score"])
def test_a_fatal_input_is_one_line_without_traceback(tmp_path: Path, command: str) -> None:
    """The real command in a process of its own: a missing transactions table is one clear
    line and exit code 1."""
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [str(Path(sys.executable).with_name("tailor")), command, "--data", str(empty),
            "--out", str(tmp_path / ("out" if command == "train" else "scores.parquet")),
            "--set", f"tracking.mlflow_tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1] == f"tailor {command}: {empty}: no transactions.parquet or transactions.csv"
    assert all("WARNING" in line for line in lines[:-1]), lines  # e.g. "no champion yet"
