"""The operator's view, on a REAL Prefect server with its UI: a small `tailor train` against it
shows in the flow run page (rendered by headless Chromium) what came in, what was trained and
what was decided; and `tailor deploy --notify` fires a webhook when a run fails or is late.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from mlflow import MlflowClient

from tailor.deployments.notify import RUNNER_AUTOMATION, RUNS_AUTOMATION
from tailor.deployments.schedules import RETRAIN_DEPLOYMENT, RETRAIN_FLOW
from tailor.flows.train import SUMMARY_ARTIFACT

from .headless_browser import chromium_or_skip, headless_chromium
from .prefect_server import (
    TAILOR,
    clean_env,
    client_of,
    running_server,
    start,
    stop,
    tiny_world,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ops-view")]

KINDS = ("segmentation", "recommender", "churn")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_server(tmp_path_factory.mktemp("prefect-ui"), ui=True) as running:
        yield running


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Generated data (with its planted messy rows) and tiny tuning budgets; the deployments
    of the notification test read a data set that is not there."""
    return tiny_world(tmp_path_factory.mktemp("ops"),
                      deployments={"data_dir": "no-such-data", "out_dir": "out/retrain",
                                   "score_out": "out/scores.parquet"})


@pytest.fixture(scope="module")
def retrain(server: dict[str, Any], world: dict[str, Any]) -> dict[str, Any]:
    """`tailor train` with PREFECT_API_URL at the server: its flow runs land there."""
    env = clean_env(server["root"] / "home", PREFECT_API_URL=server["url"])
    done = subprocess.run([TAILOR, "train", "--data", "data", "--out", "out", "--config",
                           str(world["config"])], env=env, cwd=world["root"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr + done.stdout
    parent = re.search(r"MLflow parent run ([0-9a-f]{32})", done.stdout)
    assert parent, done.stdout
    mlflow = MlflowClient(tracking_uri=f"sqlite:///{world['store'] / 'mlflow.db'}")
    stamp = mlflow.get_run(parent[1]).info.run_name.removeprefix("train-")
    with client_of(server["url"]) as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

        (top,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[f"retrain-{stamp}"])))
        (sub,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[f"train-challengers-{stamp}"])))
    return {"top": top, "sub": sub, "stamp": stamp, "stdout": done.stdout}


def _logs(client: Any, run_id: Any) -> list[str]:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    return [log.message for log in client.read_logs(
        LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), sort=LogSort.TIMESTAMP_ASC)]


def _has(lines: list[str], pattern: str) -> bool:
    return any(re.search(pattern, line) for line in lines)


def test_flow_runs_are_named_from_the_scoring_date_and_the_data(
        retrain: dict[str, Any]) -> None:
    # the same stamp as the MLflow parent run (train-<as_of>-<fingerprint[:8]>)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d-[0-9a-f]{8}", retrain["stamp"]), retrain["stamp"]
    assert retrain["top"].state.type.value == "COMPLETED"
    assert retrain["sub"].parent_task_run_id is not None


def test_the_run_log_says_what_came_in_what_was_trained_and_what_was_decided(
        server: dict[str, Any], retrain: dict[str, Any]) -> None:
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    with client_of(server["url"]) as client:
        top, sub = _logs(client, retrain["top"].id), _logs(client, retrain["sub"].id)
        tasks = {t.name for t in client.read_task_runs(task_run_filter=TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=[retrain["sub"].id])))}
    # what came in: the generator plants bad rows, quarantined by rule
    assert _has(top, r"^transactions: [\d,]+ rows read from .*transactions.*, [\d,]+ accepted, "
                     r"[1-9][\d,]* quarantined")
    assert _has(top, r"^transactions: quarantined [\d,]+ row\(s\) by rule \w+")
    # what was trained: per model, the study and the holdout beside the baselines
    for kind in KINDS:
        assert f"gate-{kind}" in tasks and f"train-{kind}" in tasks, tasks
        assert _has(sub, rf"^{kind}: 2 trial\(s\) in this study \(\d+ complete, \d+ pruned, "
                         rf"\d+ failed\), best .* [\d.]+ \((maximize|minimize)\); tuning "), kind
        assert _has(sub, rf"^{kind} holdout \w+ \(the gate metric\): [\d.]+"), kind
        # what was decided and why: the first version of each passes its guardrails
        assert _has(sub, rf"^gate {kind}: challenger v1 .* vs no champion -> PROMOTE: "), kind
        assert _has(top, rf"^{kind} v1: PROMOTED .*: first version"), kind
    assert _has(sub, r"^recommender holdout precision_at_10 \(the gate metric\): [\d.]+ vs "
                     r"baselines .*popularity [\d.]+")
    assert "retrain: 3 trained, 3 promoted, 0 kept the champion (as of " + (
        retrain["stamp"][:10] + ")") in top


def test_the_decision_artifact_puts_the_decision_first(
        server: dict[str, Any], retrain: dict[str, Any]) -> None:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with client_of(server["url"]) as client:
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[retrain["top"].id])))
    assert artifact.key == SUMMARY_ARTIFACT
    assert artifact.description == (
        f"3 trained, 3 promoted, 0 kept the champion (as of {retrain['stamp'][:10]})")
    decisions, runs = artifact.data.split("## Tuning and MLflow runs")
    for kind in KINDS:
        assert re.search(rf"\| {kind} \| v1 \| PROMOTED \|", decisions), decisions
    assert not re.search(r"[0-9a-f]{32}", decisions)
    assert len(re.findall(r"[0-9a-f]{32}", runs)) == 4  # the parent run and one per model
    for kind in KINDS:
        assert re.search(rf"\| {kind} \| v1 \| 2 \(\d\) \| [\d.]+ \| [0-9a-f]{{32}} \|", runs), runs


def test_the_flow_run_page_renders_the_story_in_chromium(
        server: dict[str, Any], retrain: dict[str, Any], tmp_path: Path) -> None:
    chromium_or_skip()
    top = retrain["top"]
    with headless_chromium(tmp_path / "profile") as browser:
        browser.open(f"{server['ui']}/runs/flow-run/{top.id}")
        page = browser.text_when(top.name, "Completed", "rows read", "quarantined",
                                 "3 trained, 3 promoted", "recommender v1: PROMOTED")
        assert "Subflow Runs" in page and "Artifacts" in page
        browser.click("Artifacts")
        browser.text_when(SUMMARY_ARTIFACT, "3 trained, 3 promoted, 0 kept the champion")

        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        with client_of(server["url"]) as client:
            (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[top.id])))
        browser.open(f"{server['ui']}/artifacts/artifact/{artifact.id}")
        browser.text_when("decision", "PROMOTED", "reason", "first version")
        # at 1600 px the decision table needs no horizontal scroll: reason included
        widths = browser.call("Runtime.evaluate", returnByValue=True, expression=(
            "[...document.querySelectorAll('table')].map(t => "
            "[t.scrollWidth, t.parentElement.clientWidth])"))["result"]["value"]
        assert widths and widths[0][0] <= widths[0][1], widths
        browser.screenshot(tmp_path / "artifact.png")


class _Hooks(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on loopback: its URL and the JSON bodies it received."""
    received: list[dict[str, Any]] = []
    handler = type("Hooks", (_Hooks,), {"received": received})
    httpd = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", received
    finally:
        httpd.shutdown()


def _notified(received: list[dict[str, Any]], *expected: str, timeout_s: float = 90) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for body in received:
            if all(e in body["text"] for e in expected):
                return body["text"]
        time.sleep(0.5)
    pytest.fail(f"no notification with {expected} in {timeout_s} s; received {received}")


def test_a_failed_and_a_late_run_notify_through_the_automation(
        server: dict[str, Any], world: dict[str, Any],
        webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    env = clean_env(server["root"] / "home", PREFECT_API_URL=server["url"],
                    PREFECT_RUNNER_POLL_FREQUENCY="1")
    deployed = subprocess.run([TAILOR, "deploy", "--config", str(world["config"]),
                               "--notify", url], env=env, cwd=world["root"],
                              capture_output=True, text=True, timeout=120)
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    assert f"automation {RUNS_AUTOMATION!r}" in deployed.stdout
    assert "calls the API at" not in deployed.stderr  # PREFECT_SERVER_API_PORT is set: no trap
    with client_of(server["url"]) as client:
        automations = {a.name: a for a in client.read_automations()}
        assert {RUNS_AUTOMATION, RUNNER_AUTOMATION} <= set(automations)
        assert automations[RUNS_AUTOMATION].enabled
        retrain = client.read_deployment_by_name(f"{RETRAIN_FLOW}/{RETRAIN_DEPLOYMENT}")

    log = world["root"] / "serve-notify.log"
    serve = start([TAILOR, "serve-flows", "--config", str(world["config"])], env, log,
                  world["root"])
    try:
        with client_of(server["url"]) as client:
            run = client.create_flow_run_from_deployment(retrain.id)
            run = wait_for(client, run.id, serve, log, timeout_s=180)
        assert run.state.type.value == "FAILED", run.state
    finally:
        stop(serve)
    text = _notified(received, run.name, "is Failed", "no-such-data")
    assert f"/runs/flow-run/{run.id}" in text  # a link to the run page

    # nothing serves the deployment now: a run due a minute ago goes Late, and says so
    from prefect.states import Scheduled

    with client_of(server["url"]) as client:
        late = client.create_flow_run_from_deployment(
            retrain.id, state=Scheduled(scheduled_time=datetime.now(UTC) - timedelta(minutes=1)))
        wait_for(client, late.id, None, server["log"], timeout_s=90, states={"Late"})
    _notified(received, late.name, "is Late")
    # a second deploy replaces the automations instead of adding a second pair
    again = subprocess.run([TAILOR, "deploy", "--config", str(world["config"]),
                            "--notify", url], env=env, cwd=world["root"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    with client_of(server["url"]) as client:
        names = [a.name for a in client.read_automations()]
    assert names.count(RUNS_AUTOMATION) == names.count(RUNNER_AUTOMATION) == 1
