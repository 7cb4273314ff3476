"""``mlflow models serve`` answers invocations for the same champion pyfunc the API serves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from .conftest import World

# --- mlflow models serve answers for the same pyfunc -----------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mlflow_models_serve_answers_invocations(world: World, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{world.root / 'mlflow.db'}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_ENABLE_TELEMETRY": "false"}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m",
               "models:/tailor-recommender@champion", "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port)]
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow models serve did not start in 120 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        predictor = registry_predictor(world)  # the champion, loaded independently of the app
        customers = world.customers.astype(str)
        known = customers[predictor.known(customers["customer_id"])].head(2)
        cold = customers.head(1).assign(customer_id="never-seen")
        frame = pd.concat([known, cold], ignore_index=True)
        payload = {"dataframe_split": frame.to_dict(orient="split", index=False)}
        response = httpx.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=60)
        assert response.status_code == 200, response.text
        answer = pd.DataFrame(response.json()["predictions"])
        expected = predictor.predict(frame)
        assert answer["customer_id"].tolist() == expected["customer_id"].tolist()
        assert answer["product_id"].tolist() == expected["product_id"].tolist()
        np.testing.assert_allclose(answer["score"], expected["score"], rtol=1e-6)
        # the signature's params are honoured: k per request, purchased items allowed back
        payload["params"] = {"k": 3, "exclude_purchased": False}
        response = httpx.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=60)
        assert response.status_code == 200, response.text
        three = pd.DataFrame(response.json()["predictions"])
        expected = predictor.predict(frame, k=3, exclude_purchased=False)
        assert three.groupby("customer_id").size().eq(3).all()
        assert three["product_id"].tolist() == expected["product_id"].tolist()
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(20)
        log.close()


def registry_predictor(world: World) -> Any:
    from tailor.adapters.champions import load_champion

    found = load_champion(world.client, "recommender")
    assert found is not None
    return found.predictor
