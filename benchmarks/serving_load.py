"""Serving under load: `tailor serve` in its own process, 8 concurrent clients in this one.

1. Generates a retailer with a realistic catalogue (``--products``, default 10,000), trains the
   recommender (one Optuna trial: the speed of serving does not depend on tuning), promotes it
   in a temporary MLflow store and writes the feature snapshot.
2. Starts ``tailor serve`` (uvicorn, one process) on loopback and waits for ``/ready``.
3. ``--clients`` threads, each with its own keep-alive connection, request
   ``GET /customers/{id}/recommendations?k=10`` for random known customers for ``--seconds``
   (after a short warm-up); prints p50/p90/p99 latency and requests per second.
4. Beside it, the raw in-process cost of the same answer: ``RecommenderModel.recommend`` for one
   id, and the dot product + argpartition alone.

Usage: .venv/bin/python benchmarks/serving_load.py [--products 10000] [--customers 5000]
       [--clients 8] [--seconds 20]
Run it on an otherwise idle machine: the load average is printed first.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentiles(ms: np.ndarray) -> str:
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return f"p50 {p50:.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms, max {ms.max():.2f} ms"


def build_world(root: Path, customers: int, products: int) -> tuple[list[str], object]:
    """Train + promote a recommender in ``root``; write the snapshot; return known ids."""
    from tailor import kinds
    from tailor.adapters import registry
    from tailor.adapters.champions import load_champion
    from tailor.adapters.score_output import write_snapshot
    from tailor.adapters.tracking import client_for
    from tailor.adapters.training import train_model
    from tailor.configs import load_settings
    from tailor.data.generate import generate
    from tailor.models.features import customer_features, default_as_of

    settings = load_settings(overrides=[
        *_overrides(root), f"generate.customers={customers}", f"generate.products={products}",
        "generate.messy_share=0", "recommender.n_trials=1", "recommender.max_epochs=5",
        "recommender.max_eval_users=300"])
    start = time.perf_counter()
    data = generate(settings.generate).dataset
    as_of = default_as_of(data.transactions)
    features = customer_features(data.transactions, as_of, settings.features,
                                 customers=data.customers, products=data.products)
    result = train_model(kinds.get("recommender"),
                         settings, data, as_of, "serving-benchmark", "benchmark")
    client = client_for(settings.tracking)
    registry.promote(client, "recommender", result.version, actor="benchmark", reason="load")
    write_snapshot(root / "snapshot", features, data.customers, {"as_of": str(as_of.date())})
    champion = load_champion(client, "recommender")
    assert champion is not None
    predictor = champion.predictor
    print(f"world: {len(data.transactions):,} order lines, {len(predictor.user_ids):,} known "
          f"customers x {len(predictor.item_ids):,} products, "
          f"{predictor.item_embeddings.shape[1]} factors (built in "
          f"{time.perf_counter() - start:.0f} s)")
    return [str(u) for u in predictor.user_ids], predictor


def _overrides(root: Path) -> list[str]:
    return [f"tracking.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}",
            f"tracking.optuna_storage=sqlite:///{root / 'optuna.db'}",
            f"serving.snapshot_dir={root / 'snapshot'}", "serving.models=[recommender]",
            "serving.reload_interval_s=60"]


def start_server(root: Path, port: int) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "tailor"), "serve", "--host", "127.0.0.1",
               "--port", str(port)]
    for item in _overrides(root):
        command += ["--set", item]
    log = (root / "serve.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                               start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"tailor serve exited:\n{(root / 'serve.log').read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("tailor serve was not ready within 180 s")


def load(port: int, ids: list[str], clients: int, seconds: float,
         warmup: float = 2.0) -> tuple[np.ndarray, int, float]:
    """Closed-loop load: each client sends its next request when the last one answered."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    begin = time.perf_counter() + warmup
    end = begin + seconds

    def client(slot: int) -> None:
        rng = random.Random(slot)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while (now := time.perf_counter()) < end:
            conn.request("GET", f"/customers/{rng.choice(ids)}/recommendations?k=10")
            response = conn.getresponse()
            body = response.read()
            done = time.perf_counter()
            if response.status != 200 or len(json.loads(body)["items"]) != 10:
                failures[slot] += 1
            if now >= begin:
                latencies[slot].append((done - now) * 1000)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.concatenate([np.asarray(x) for x in latencies]), sum(failures), seconds


def in_process(predictor: object, ids: list[str], repeats: int = 2000) -> None:
    from tailor.models.ranking_metrics import top_k

    rng = random.Random(0)
    sample = [rng.choice(ids) for _ in range(repeats)]
    rows = predictor._index.get_indexer(np.asarray(sample, dtype=object))  # type: ignore[attr-defined]
    full, raw = [], []
    for customer, row in zip(sample, rows, strict=True):
        t = time.perf_counter()
        predictor.recommend([customer], k=10)  # type: ignore[attr-defined]
        full.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        top_k(predictor.score_known(np.array([row])), 10)  # type: ignore[attr-defined]
        raw.append((time.perf_counter() - t) * 1000)
    print(f"in-process recommend(one id, k=10): {_percentiles(np.asarray(full))}")
    print(f"in-process scores + argpartition:   {_percentiles(np.asarray(raw))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    print(f"load average before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
          f" on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="tailor-serving-") as tmp:
        root = Path(tmp)
        ids, predictor = build_world(root, args.customers, args.products)
        port = _free_port()
        server = start_server(root, port)
        try:
            print(f"load average at start: "
                  f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
            ms, failed, seconds = load(port, ids, args.clients, args.seconds)
        finally:
            server.terminate()
            server.wait(30)
        print(f"\nHTTP GET /customers/{{id}}/recommendations?k=10, {args.clients} clients, "
              f"{seconds:.0f} s: {len(ms):,} requests, {failed} failed, "
              f"{len(ms) / seconds:.0f} req/s")
        print(f"  latency {_percentiles(ms)}")
        in_process(predictor, ids)
        print(f"load average after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    main()
