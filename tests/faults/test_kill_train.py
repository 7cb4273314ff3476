"""A real `tailor train`, SIGKILLed at each fault point, then one normal run: the store must be
consistent again and no child process may survive the kill.

Each killed run is itself the "next start" of the one before (it repairs its predecessor's
leftovers before it trains), and `tailor doctor` is asked in between what it sees.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tailor.adapters.faults import FAULT_ENV

pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.xdist_group("fault")]

TAILOR = Path(sys.executable).with_name("tailor")
MARK = "TAILOR_TEST_PROCESS_MARK"


def _store_args(root: Path) -> list[str]:
    return ["--set", f"tracking.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}",
            "--set", f"tracking.optuna_storage=sqlite:///{root / 'optuna.db'}"]


def _train_args(root: Path, data: Path) -> list[str]:
    # segmentation only (about 30 s a run); a negative margin promotes every challenger, so
    # every run moves both aliases
    return ["train", "--data", str(data), "--out", str(root / "out"), "--models", "segmentation",
            *_store_args(root), "--set", "segmentation.n_trials=2",
            "--set", "promotion.margin.segmentation=-1"]


def _tailor(args: list[str], mark: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, MARK: mark}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.run([str(TAILOR), *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def _marked_processes(mark: str) -> list[int]:
    """Live processes started with our mark in their environment (children included)."""
    found = []
    needle = f"{MARK}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
                if state not in ("Z", "X"):
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _assert_consistent(client: MlflowClient) -> None:
    for experiment in client.search_experiments():
        running = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
        assert not running, f"{experiment.name}: left RUNNING {[r.info.run_id for r in running]}"
    model = client.get_registered_model("tailor-segmentation")
    aliases = model.aliases
    assert set(aliases) == {"champion", "challenger"}
    for alias, version in aliases.items():
        tags = client.get_model_version("tailor-segmentation", version).tags
        assert tags.get("tailor.gate.promote") == "True", (alias, version, tags)
        assert tags.get(f"{alias}_since"), (alias, version, tags)
    # the gate promoted the same version to both aliases: they are one decision's set
    assert aliases["champion"] == aliases["challenger"]
    for version in client.search_model_versions("name='tailor-segmentation'"):
        tags = version.tags
        assert "tailor.gate.promote" in tags or tags.get("tailor.gate.state") == "none", (
            f"v{version.version} has neither a gate decision nor the never-gated mark")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("fault-data")
    done = _tailor(["data", "generate", "--out", str(data), "--customers", "300",
                    "--products", "60"], mark="generate")
    assert done.returncode == 0, done.stderr
    return data


def test_kills_at_every_fault_point_leave_a_repairable_store(tmp_path: Path,
                                                             generated: Path) -> None:
    mark = uuid.uuid4().hex
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    first = _tailor(_train_args(tmp_path, generated), mark)
    assert first.returncode == 0, first.stderr[-3000:]

    expected_by_doctor = {
        "after-register": ["left RUNNING", "no gate decision"],
        "between-moves": ["interrupted (1 of 2 moves applied)", "roll it back"],
        "before-tags": ["interrupted (2 of 2 moves applied)", "complete it"],
    }
    for point, expected in expected_by_doctor.items():
        killed = _tailor(_train_args(tmp_path, generated), mark, fault=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-3000:])
        assert _marked_processes(mark) == [], f"{point}: a child outlived the killed train"
        doctor = _tailor(["doctor", *_store_args(tmp_path)], mark)
        assert doctor.returncode == 1, doctor.stdout
        for text in expected:
            assert text in doctor.stdout, f"{point}: {text!r} not in:\n{doctor.stdout}"

    last = _tailor(_train_args(tmp_path, generated), mark)
    assert last.returncode == 0, last.stderr[-3000:]
    assert "repaired promotion" in last.stderr and "complete it" in last.stderr
    _assert_consistent(client)
    versions = client.search_model_versions("name='tailor-segmentation'")
    never_gated = [str(v.version) for v in versions if v.tags.get("tailor.gate.state") == "none"]
    assert never_gated == ["2"]  # registered by the run killed right after registration
    doctor = _tailor(["doctor", *_store_args(tmp_path)], mark)
    assert doctor.returncode == 0 and "consistent" in doctor.stdout, doctor.stdout
    assert _marked_processes(mark) == []


def test_a_version_never_gated_cannot_be_promoted(tmp_path: Path, generated: Path) -> None:
    mark = uuid.uuid4().hex
    killed = _tailor(_train_args(tmp_path, generated), mark, fault="after-register")
    assert killed.returncode == -signal.SIGKILL
    fixed = _tailor(["doctor", "--fix", *_store_args(tmp_path)], mark)
    assert fixed.returncode == 0 and "no gate decision" in fixed.stdout, fixed.stdout
    promote = _tailor(["promote", "segmentation", "1", *_store_args(tmp_path)], mark)
    assert promote.returncode == 1
    assert "no gate decision" in promote.stderr and "Traceback" not in promote.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert "champion" not in client.get_registered_model("tailor-segmentation").aliases
