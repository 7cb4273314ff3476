"""Benchmark: `tailor score` wall time against a running stack vs Prefect's temporary API.

Brings up a real stack (`tailor stack up`, PostgreSQL databases under a throwaway prefix),
generates the sample data set (the `make run` defaults), trains it once on the stack with small
tuning budgets (scoring time does not depend on them), then times `tailor score` on the sample,
interleaving two set-ups that differ only in Prefect:

- **server**: the stack's variables (`tailor stack env`), so the flow reports to the running
  Prefect server and no temporary API is started;
- **temporary API**: the same MLflow server and Optuna storage, PREFECT_API_URL unset, so the
  command starts (and stops) Prefect's temporary local API as it does on a laptop.

Also times `tailor --help` (imports only) for the floor. Prints medians and the ratio.
Usage:
    .venv/bin/python benchmarks/startup.py \
        --database-url postgresql://postgres@127.0.0.1:5432/postgres [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tailor.deployments.stack import drop_databases

TAILOR = str(Path(sys.executable).with_name("tailor"))
SMALL = ["segmentation.n_trials=2", "recommender.n_trials=2", "churn.n_trials=2"]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([TAILOR, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"tailor {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "MLFLOW_TRACKING", "TAILOR_"))}
    base.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="true",
                MLFLOW_ENABLE_TELEMETRY="false")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stack_dir = root / "stack"
        _run(["stack", "up", "--database-url", args.database_url, "--dir", str(stack_dir),
              "--database-prefix", prefix], base, root)
        try:
            printed = subprocess.run([TAILOR, "stack", "env", "--dir", str(stack_dir)],
                                     env=base, capture_output=True, text=True, check=True)
            exports = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1)
                           for line in printed.stdout.splitlines())
            server = {**base, **exports}
            temporary = {k: v for k, v in server.items() if k != "PREFECT_API_URL"}
            _run(["data", "generate", "--out", "data"], base, root)
            sets = [a for item in SMALL for a in ("--set", item)]
            t_train = _run(["train", "--data", "data", "--out", "out", *sets], server, root)
            print(f"trained the sample on the stack in {t_train:.1f} s", flush=True)
            score = ["score", "--data", "data", "--out", "out/scores.parquet"]
            times: dict[str, list[float]] = {"server": [], "temporary API": [], "--help": []}
            for _ in range(args.repeats):
                times["server"].append(_run(score, server, root))
                times["temporary API"].append(_run(score, temporary, root))
                times["--help"].append(_run(["--help"], server, root))
            load = os.getloadavg()[0]
        finally:
            _run(["stack", "down", "--dir", str(stack_dir)], base, root)
            drop_databases(args.database_url, prefix)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n`tailor score` on the sample, median of {args.repeats} interleaved runs "
          f"(load average {load:.1f} at the end):")
    for name, value in medians.items():
        runs = ", ".join(f"{v:.1f}" for v in times[name])
        print(f"  {name:14} {value:6.2f} s   ({runs})")
    print(f"  temporary API / server: {medians['temporary API'] / medians['server']:.2f}x; "
          f"saved {medians['temporary API'] - medians['server']:.1f} s per command")


if __name__ == "__main__":
    main()
