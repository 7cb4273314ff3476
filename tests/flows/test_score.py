"""The score-customers flow against a real (small) trained and promoted registry."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tailor.adapters.champions import clear_cache, load_champions
from tailor.adapters.registry import GATE_PROMOTE, apply_moves, plan_move, promote, registered_name
from tailor.adapters.score_output import ScoreTargetError, parse_target, write_sql_atomic
from tailor.adapters.snapshot import published
from tailor.adapters.tracking import client_for
from tailor.cli import app
from tailor.configs import Settings, load_settings
from tailor.data.generate import generate, write_generated
from tailor.data.io import read_dataset
from tailor.data.validate import validate_dataset
from tailor.deployments.api.snapshot_state import load_snapshot
from tailor.flows.score import score_customers
from tailor.models.churn import ChurnModelError
from tailor.models.features import customer_features, default_as_of

K = 5


@dataclass(frozen=True)
class Trained:
    data: Path
    overrides: list[str]
    settings: Settings
    features: pd.DataFrame
    product_ids: set[str]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Generated data, all three models trained with a tiny budget and promoted (version 1)."""
    from tailor import kinds
    from tailor.adapters.training import train_model

    root = tmp_path_factory.mktemp("score")
    overrides = [
        f"tracking.mlflow_tracking_uri=sqlite:///{root / 'store' / 'mlflow.db'}",
        f"tracking.optuna_storage=sqlite:///{root / 'store' / 'optuna.db'}",
        "segmentation.n_trials=2", "recommender.n_trials=2", "recommender.max_epochs=3",
        "churn.n_trials=2", "churn.importance_repeats=1", "churn.n_cutoffs=2",
        "churn.seasonal_cutoffs=0", "churn.families=[logistic]",
        "segmentation.k_max=5", "segmentation.n_init=2", "segmentation.stability_resamples=2",
    ]
    settings = load_settings(overrides=[*overrides, "generate.customers=400",
                                        "generate.products=100"])
    write_generated(generate(settings.generate), root / "data")
    clean = validate_dataset(read_dataset(root / "data"), settings.data).dataset
    as_of = default_as_of(clean.transactions)
    features = customer_features(clean.transactions, as_of, settings.features,
                                 clean.customers, clean.products)
    train_model(kinds.get("segmentation"), settings, clean, as_of, "seg", "fp")
    train_model(kinds.get("recommender"), settings, clean, as_of, "rec", "fp")
    train_model(kinds.get("churn"), settings, clean, as_of, "churn", "fp")
    client = client_for(settings.tracking)
    for kind in ("segmentation", "recommender", "churn"):
        # trained without the gate: record a decision, as a gated retrain does, so the score
        # flow's store repair does not mark them never-gated (the fixtures re-promote them)
        client.set_model_version_tag(registered_name(kind), "1", GATE_PROMOTE, "True")
        promote(client, kind, "1", actor="test", reason="fixture")
    return Trained(root / "data", overrides, settings, features,
                   set(clean.products["product_id"].astype(str)))


@pytest.fixture
def only_churn(trained: Trained) -> Iterator[None]:
    """Take the champion alias off segmentation and recommender for one test."""
    client = client_for(trained.settings.tracking)
    moves = [plan_move(client, kind, "champion", None, actor="test", reason="no champion")
             for kind in ("segmentation", "recommender")]
    apply_moves(client, moves)
    try:
        yield
    finally:
        for kind in ("segmentation", "recommender"):
            promote(client, kind, "1", actor="test", reason="restore")


def _run(trained: Trained, out: str | Path, tmp_path: Path, **kwargs: object) -> dict:
    return score_customers(str(trained.data), str(out), overrides=trained.overrides,
                           snapshot_dir=str(tmp_path / "snapshot"),
                           quarantine_dir=str(tmp_path / "quarantine"), **kwargs)


@pytest.mark.usefixtures("prefect_harness")
def test_scores_every_customer_with_the_champions(trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    summary = _run(trained, out, tmp_path, k=K)
    scores = pd.read_parquet(out)

    assert sorted(scores["customer_id"]) == sorted(trained.features.index)
    assert scores["customer_id"].is_unique
    assert summary["rows"] == len(scores)
    for kind in ("segmentation", "recommender", "churn"):
        assert (scores[f"{kind}_version"] == "1").all()
    assert summary["model_versions"] == {"segmentation": "1", "recommender": "1",
                                         "churn": "1"}
    assert summary["missing_champions"] == []
    assert scores["churn_probability"].between(0, 1).all()
    assert scores["segment"].notna().all() and scores["segment_name"].notna().all()
    lists = scores["recommendations"].map(list)
    assert (lists.map(len) == K).all()
    assert lists.map(lambda ids: len(set(ids)) == K).all()  # no product twice
    assert set(np.concatenate(lists.to_numpy())) <= trained.product_ids
    # the action follows the configured rules, recomputed here from the written columns
    high = scores["churn_probability"] >= 0.6
    assert (scores.loc[high, "next_best_action"].isin(["retention_offer", "win_back"])).all()
    assert (scores.loc[~high, "next_best_action"] != "win_back").all()
    assert sum(summary["actions"].values()) == len(scores)

    # published as one new directory that CURRENT names, read by the serving API's loader
    snapshot = Path(summary["snapshot_dir"])
    assert published(tmp_path / "snapshot") == snapshot
    assert load_snapshot(tmp_path / "snapshot").path == snapshot
    manifest = json.loads((snapshot / "manifest.json").read_text())
    assert manifest["model_versions"] == summary["model_versions"]
    assert manifest["as_of"] == summary["as_of"] and manifest["written_at"]
    assert len(manifest["data_fingerprint"]) == 16
    feats = pd.read_parquet(snapshot / "customer_features.parquet")
    assert sorted(feats["customer_id"]) == sorted(scores["customer_id"])
    attrs = pd.read_parquet(snapshot / "customers.parquet")
    assert {"customer_id", "region"} <= set(attrs.columns)
    assert not any(c.startswith("_source") for c in attrs.columns)


@pytest.mark.usefixtures("prefect_harness")
def test_cli_writes_csv_with_json_lists(trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    args = ["score", "--data", str(trained.data), "--out", str(out), "--k", "3",
            "--snapshot-dir", str(tmp_path / "snap")]
    for item in trained.overrides:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "next best action" in result.output
    scores = pd.read_csv(out, dtype={"customer_id": str, "segmentation_version": str})
    assert len(scores) == len(trained.features)
    lists = scores["recommendations"].map(json.loads)
    assert (lists.map(len) == 3).all()
    assert set(np.concatenate(lists.to_numpy())) <= trained.product_ids


@pytest.mark.usefixtures("prefect_harness", "only_churn")
def test_missing_champions_leave_their_columns_empty(trained: Trained, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "scores.parquet"
    with caplog.at_level(logging.WARNING, logger="tailor.adapters.champions"):
        summary = _run(trained, out, tmp_path)
    scores = pd.read_parquet(out)
    assert summary["missing_champions"] == ["segmentation", "recommender"]
    assert any("tailor-segmentation@champion" in r.getMessage() for r in caplog.records)
    assert scores["segment"].isna().all() and scores["segment_name"].isna().all()
    assert scores["recommendations"].isna().all()
    assert scores["segmentation_version"].isna().all()
    assert scores["recommender_version"].isna().all()
    assert (scores["churn_version"] == "1").all()
    assert scores["churn_probability"].notna().all()
    # segment rules cannot match without segments: only churn, tenure and the default decide
    assert set(scores["next_best_action"]) <= {"retention_offer", "win_back", "onboarding",
                                               "nurture"}


@pytest.mark.usefixtures("prefect_harness")
def test_scoring_before_the_champions_fit_date_is_refused(trained: Trained,
                                                         tmp_path: Path) -> None:
    """Champions fit on history up to D have seen what happened after an earlier date."""
    out = tmp_path / "scores.parquet"
    args = ["score", "--data", str(trained.data), "--out", str(out), "--as-of", "2023-06-01",
            "--snapshot-dir", str(tmp_path / "snap")]
    for item in trained.overrides:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "cannot score as of 2023-06-01" in result.output
    assert "--as-of 2023-06-01" in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.usefixtures("prefect_harness")
def test_failure_midway_leaves_the_old_file(trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    _run(trained, out, tmp_path)
    before = out.read_bytes()
    # the same shop exported without the region column: the churn model (trained with
    # attr_region) fails after segmentation has already scored
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("transactions", "products"):
        shutil.copy(trained.data / f"{name}.parquet", broken / f"{name}.parquet")
    customers = pd.read_parquet(trained.data / "customers.parquet").drop(columns="region")
    customers.to_parquet(broken / "customers.parquet", index=False)
    with pytest.raises(ChurnModelError, match="attr_region"):
        score_customers(str(broken), str(out), overrides=trained.overrides,
                        snapshot_dir=str(tmp_path / "snapshot"),
                        quarantine_dir=str(tmp_path / "quarantine"))
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.usefixtures("prefect_harness")
def test_sql_output_replaces_the_table_atomically(trained: Trained, tmp_path: Path,
                                                  pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    summary = _run(trained, f"{url}#{schema}.customer_scores", tmp_path, k=K)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            scores = pd.read_sql_table("customer_scores", conn, schema=schema)
            array_type = conn.execute(sa.text(
                "select data_type from information_schema.columns where table_schema = :s "
                "and table_name = 'customer_scores' and column_name = 'recommendations'"),
                {"s": schema}).scalar_one()
        assert summary["scores"].endswith(f"#{schema}.customer_scores")
        assert len(scores) == len(trained.features)
        assert array_type == "ARRAY"
        assert (scores["recommendations"].map(len) == K).all()
        assert (scores["churn_version"] == "1").all()

        # a write that fails after some chunks are in leaves the old table whole
        bad = scores.head(30).assign(churn_version=["x"] * 29 + [{"not": "adaptable"}])
        with pytest.raises(Exception, match="adapt"):
            write_sql_atomic(bad, url, "customer_scores", schema, chunksize=10)
        with engine.connect() as conn:
            after = pd.read_sql_table("customer_scores", conn, schema=schema)
            tables = sa.inspect(conn).get_table_names(schema=schema)
        assert len(after) == len(scores)
        assert tables == ["customer_scores"]  # no staging table left behind
    finally:
        engine.dispose()


def test_targets_are_parsed_or_rejected_clearly() -> None:
    target = parse_target("postgresql+psycopg://u:secret@h/db#mk.scores")
    assert (target.schema, target.table) == ("mk", "scores")
    assert "secret" not in str(target)
    assert parse_target("sqlite:///x.db#scores").schema is None
    with pytest.raises(ScoreTargetError, match="table after '#'"):
        parse_target("postgresql+psycopg://h/db")
    with pytest.raises(ScoreTargetError, match=r"\.parquet or \.csv"):
        parse_target("scores.json")


def test_empty_registry_gives_no_champions(tmp_path: Path) -> None:
    clear_cache()
    settings = load_settings(overrides=[
        f"tracking.mlflow_tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}"])
    assert load_champions(client_for(settings.tracking)) == {
        "segmentation": None, "recommender": None, "churn": None}
