"""`tailor run`'s flow: one flow run whose subflows share one data set, validated once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import pandas as pd
import pytest

from tailor.configs import load_settings
from tailor.data.generate import generate, write_generated
from tailor.flows.run import SCORES_FILE, run_main_job


async def _runs_below(flow_run_id: UUID) -> tuple[list[str], list[str]]:
    """Names of the subflow runs under a flow run, and of every task run in that tree."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    async with get_client() as client:
        children = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
        flows = {run.id: run for run in children}
        names = {f.id: f.name for f in await client.read_flows()}
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(
            id={"any_": [flow_run_id, *flows]}))
    return ([names[run.flow_id] for run in children],
            [run.name.rsplit("-", 1)[0] for run in tasks])


@pytest.mark.usefixtures("prefect_harness")
def test_run_is_one_flow_validating_the_data_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    settings = load_settings(overrides=[
        f"tracking.mlflow_tracking_uri=sqlite:///{store / 'mlflow.db'}",
        f"tracking.optuna_storage=sqlite:///{store / 'optuna.db'}",
        f"scoring.snapshot_dir={tmp_path / 'snapshot'}",
        "generate.customers=300", "generate.products=80", "generate.days=420",
        "segmentation.exhaustive_limit=0", "segmentation.n_trials=2",
        "recommender.n_trials=2", "recommender.max_epochs=3", "churn.n_trials=2",
    ])
    generated = generate(settings.generate)
    write_generated(generated, tmp_path / "data")
    out = tmp_path / "out"

    state = run_main_job(str(tmp_path / "data"), str(out), settings, return_state=True)
    summary = state.result()

    subflows, tasks = asyncio.run(_runs_below(state.state_details.flow_run_id))
    assert sorted(subflows) == ["build-features", "score-validated-customers",
                                "train-challengers"]
    assert tasks.count("load-data") == 1 and tasks.count("validate-data") == 1
    # the one quarantine is the one every step reports; train wrote none of its own
    quarantine = str(out / "quarantine")
    assert summary["prepare"]["quarantine_dir"] == quarantine
    assert sorted(p.name for p in out.rglob("summary.csv")) == ["summary.csv"]
    messy = int(generated.truth["messy"]["rule"].value_counts().sum())
    assert summary["prepare"]["rows_read"] == summary["prepare"]["rows_accepted"] + messy
    # the three steps saw the same data: same as-of date, every model trained and promoted
    assert summary["train"]["as_of"] == summary["prepare"]["as_of"] == summary["score"]["as_of"]
    assert all(row["promoted"] for row in summary["train"]["models"])
    scores = pd.read_parquet(out / SCORES_FILE)
    assert len(scores) == summary["prepare"]["customers"] == summary["score"]["rows"]
    assert summary["score"]["model_versions"] == {
        row["model"]: row["version"] for row in summary["train"]["models"]}
