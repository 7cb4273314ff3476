"""Benchmark: end-to-end retrain and score through the `tailor` CLI at 1M, 3M and 10M lines.

For each size: generate a retailer (or reuse ``--data-cache``), then in a fresh working
directory (so MLflow's ./mlruns/mlflow.db and Optuna's ./mlruns/optuna.db start empty and the
repository's own mlruns/ is never written) run, with the product's default settings,

    tailor train --data DATA --out OUT
    tailor score --data DATA --out OUT/scores.parquet

each under ``/usr/bin/time -v`` (when present) while a sampler sums the RSS of the command's
whole process tree every 0.5 s (Prefect starts its temporary API as a child process, so the
tree sum is the honest peak; the largest single process is reported too). Per-model training
times come from the MLflow store afterwards (experiment ``tailor-retrain``: the parent run's
span is the retrain, each child run tagged ``tailor.model`` is one model; the models train
concurrently, so their spans overlap). Read, validate, customer features and interactions are
also timed on their own, in a child process, as benchmarks/validate_features.py does.

Usage:
    .venv/bin/python benchmarks/scale.py [--sizes 1m,3m,10m] [--keep DIR] [--data-cache DIR]
        [--results FILE]
    .venv/bin/python benchmarks/scale.py --from-results FILE   # table of finished sizes

Sizes: tiny (2,000 customers), 1m, 3m, 10m. Prints one markdown table and one JSON line at
the end; ``--results`` also appends one JSON line per finished size as it goes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
TAILOR = str(BIN / "tailor")
PYTHON = str(BIN / "python")
GNU_TIME = "/usr/bin/time"
MODELS = ("segmentation", "recommender", "churn")

# size -> (customers, products); lines are what the generator makes of them (printed).
SIZES: dict[str, tuple[int, int]] = {
    "tiny": (2_000, 400),
    "1m": (18_000, 3_000),
    "3m": (54_000, 5_000),
    "10m": (180_000, 10_000),
}
SEED = 7


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_TRACKING_URI", "PREFECT_API_URL"))}
    env.update({
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "MLFLOW_ENABLE_TELEMETRY": "false",
        "DO_NOT_TRACK": "true",
        # Prefect's temporary API keeps its database under PREFECT_HOME: one per size, so
        # concurrent users of ~/.prefect on this machine neither see nor slow these runs.
        "PREFECT_HOME": str(workdir / "prefect-home"),
    })
    return env


class TreeSampler(threading.Thread):
    """Every ``interval`` s: the RSS of ``pid`` and all its descendants (sum and largest)."""

    def __init__(self, pid: int, interval: float = 0.5, progress: Path | None = None) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.progress = pid, interval, progress
        self.peak_tree = 0
        self.peak_single = 0
        self.peak_processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        ticks, t0 = 0, time.perf_counter()
        while not self._halt.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            rss = []
            for proc in procs:
                try:
                    if proc.name() == "time":  # /usr/bin/time itself (~2 MB): not the product
                        continue
                    rss.append(proc.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            if rss:
                self.peak_tree = max(self.peak_tree, sum(rss))
                self.peak_single = max(self.peak_single, max(rss))
                self.peak_processes = max(self.peak_processes, len(rss))
            ticks += 1
            if self.progress and ticks % 20 == 0:  # a timeline: when the peak came
                with open(self.progress, "a") as fh:
                    fh.write(json.dumps({
                        "at": datetime.now(UTC).isoformat(timespec="seconds"),
                        "elapsed_s": round(time.perf_counter() - t0),
                        "peak_tree_rss_gb": round(self.peak_tree / 1024**3, 3),
                        "peak_single_rss_gb": round(self.peak_single / 1024**3, 3),
                        "tree_rss_now_gb": round(sum(rss) / 1024**3, 3),
                        "load": os.getloadavg()}) + "\n")
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd`` (under /usr/bin/time -v when present), sampling its process tree's RSS."""
    timed = Path(GNU_TIME).exists()
    time_file = log.with_suffix(".time")
    full = ([GNU_TIME, "-v", "-o", str(time_file)] if timed else []) + cmd
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(full, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid, progress=log.with_suffix(".rss.jsonl"))
        sampler.start()
        rc = proc.wait()
        sampler.stop()
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {
        "cmd": " ".join(cmd), "rc": rc, "wall_s": round(wall, 1),
        "peak_tree_rss_gb": round(sampler.peak_tree / 1024**3, 3),
        "peak_single_rss_gb": round(sampler.peak_single / 1024**3, 3),
        "max_processes": sampler.peak_processes,
        "load_start": round(load0, 2), "load_end": round(os.getloadavg()[0], 2),
        "log": str(log),
    }
    if timed and time_file.exists():
        text = time_file.read_text()
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        if found:  # the largest single process among the waited-for tree (not a sum)
            result["time_v_max_rss_gb"] = round(int(found.group(1)) / 1024**2, 3)
        cpu = [re.search(rf"{name} time \(seconds\): ([\d.]+)", text)
               for name in ("User", "System")]
        if all(cpu):
            result["cpu_s"] = round(sum(float(m.group(1)) for m in cpu if m), 1)
        if "Command terminated by signal" in text:
            result["signal"] = text.split("Command terminated by signal", 1)[1].split()[0]
    lines = log.read_text(errors="replace").splitlines()
    result["skipped"] = [line.strip() for line in lines if "skipped" in line.lower()]
    if rc != 0:
        result["tail"] = lines[-30:]
    return result


def data_shape(data_dir: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    tx = pq.read_table(data_dir / "transactions.parquet", columns=["customer_id", "product_id"])
    shape = {"lines": tx.num_rows,
             "customers_buying": len(tx.column("customer_id").unique()),
             "products_sold": len(tx.column("product_id").unique())}
    for name in ("customers", "products"):
        path = data_dir / f"{name}.parquet"
        if path.exists():
            shape[f"{name}_table"] = pq.read_metadata(path).num_rows
    return shape


def generate(size: str, data_dir: Path, env: dict[str, str]) -> float | None:
    """Generate ``size`` into ``data_dir`` unless a complete set is already there."""
    if (data_dir / "transactions.parquet").exists():
        return None
    customers, products = SIZES[size]
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = data_dir.with_name(data_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([TAILOR, "data", "generate", "--customers", str(customers), "--products",
                    str(products), "--seed", str(SEED), "--out", str(tmp)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    tmp.rename(data_dir)
    return round(time.perf_counter() - t0, 1)


def stages_child(data_dir: str) -> None:
    """In a child process: read, validate, customer features, interactions (one JSON line)."""
    import resource

    import pandas as pd

    from tailor.configs import load_settings
    from tailor.data.io import read_dataset
    from tailor.data.validate import validate_dataset
    from tailor.models.features import customer_features, default_as_of
    from tailor.models.interactions import build_interactions

    settings = load_settings()
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    raw = read_dataset(data_dir)
    out["read_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = validate_dataset(raw, settings.data)
    out["validate_s"] = time.perf_counter() - t0
    clean = result.dataset
    as_of = default_as_of(clean.transactions) - pd.Timedelta(days=settings.features.horizon_days)
    t0 = time.perf_counter()
    features = customer_features(clean.transactions, as_of, settings.features,
                                 customers=clean.customers, products=clean.products)
    out["features_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_interactions(clean.transactions, as_of, settings.features, customer_features=features,
                       customers=clean.customers, products=clean.products)
    out["interactions_s"] = time.perf_counter() - t0
    out = {k: round(v, 2) for k, v in out.items()}
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3)
    print(json.dumps(out))


def time_stages(data_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([PYTHON, __file__, "--_stages", str(data_dir)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-5:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mlflow_times(workdir: Path) -> dict[str, Any]:
    """The retrain's parent-run span and each model's child-run span, from the MLflow store."""
    import mlflow

    uri = f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tailor-retrain")
    if experiment is None:
        return {"error": "no tailor-retrain experiment"}
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    if not parents:
        return {"error": "no parent run"}
    parent = max(parents, key=lambda r: r.info.start_time)
    # model runs may live in other experiments (tailor-<kind>): search all by parent id
    exps = [e.experiment_id for e in client.search_experiments()]
    children = client.search_runs(
        exps, filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        max_results=1000)

    def span(run: Any) -> float | None:
        if run.info.end_time is None:
            return None
        return round((run.info.end_time - run.info.start_time) / 1000, 1)

    out: dict[str, Any] = {"parent_status": parent.info.status, "retrain_s": span(parent),
                           "models": {}}
    ends = []
    for child in children:
        kind = child.data.tags.get("tailor.model")
        if not kind:
            continue
        out["models"][kind] = {"s": span(child), "status": child.info.status,
                               "start_offset_s": round(
                                   (child.info.start_time - parent.info.start_time) / 1000, 1)}
        if child.info.end_time:
            ends.append(child.info.end_time)
    if ends and parent.info.end_time:  # the gate, alias moves and summary after the last model
        out["after_models_s"] = round((parent.info.end_time - max(ends)) / 1000, 1)
    return out


def optuna_times(workdir: Path) -> dict[str, Any]:
    """Each model's tuning span (first trial start to last trial end) and trial count, from the
    Optuna store: the rest of a model's run is its twin and served fits, evaluation, logging."""
    import sqlite3

    path = workdir / "mlruns" / "optuna.db"
    if not path.exists():
        return {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "select s.study_name, count(*), sum(t.state = 'PRUNED'),"
            " (julianday(max(t.datetime_complete)) - julianday(min(t.datetime_start))) * 86400"
            " from trials t join studies s using (study_id) group by s.study_name").fetchall()
    finally:
        con.close()
    out: dict[str, Any] = {}
    for name, n, pruned, span in rows:
        kind = next((m for m in MODELS if name.startswith(f"tailor-{m}")), name)
        out[kind] = {"tuning_s": round(span, 1) if span is not None else None,
                     "trials": n, "pruned": pruned}
    return out


def bench_size(size: str, base: Path, cache: Path | None) -> dict[str, Any]:
    customers, products = SIZES[size]
    workdir = base / f"work-{size}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    env = _env(workdir)
    data_dir = (cache if cache else base) / f"data-{size}"
    res: dict[str, Any] = {"size": size, "customers_arg": customers, "products_arg": products,
                           "started": datetime.now(UTC).isoformat(timespec="seconds"),
                           "load_start": [round(x, 2) for x in os.getloadavg()],
                           "data_dir": str(data_dir), "workdir": str(workdir)}
    print(f"[{size}] generate -> {data_dir}", flush=True)
    res["generate_s"] = generate(size, data_dir, env)
    res.update(data_shape(data_dir))
    print(f"[{size}] {res['lines']:,} lines, {res['customers_buying']:,} customers, "
          f"{res['products_sold']:,} products", flush=True)

    print(f"[{size}] read/validate/features/interactions (child process)", flush=True)
    res["stages"] = time_stages(data_dir, env)
    print(f"[{size}]   {res['stages']}", flush=True)

    out = workdir / "out"
    print(f"[{size}] tailor train", flush=True)
    res["train"] = run_measured([TAILOR, "train", "--data", str(data_dir), "--out", str(out)],
                                workdir, env, workdir / "train.log")
    print(f"[{size}]   {res['train']}", flush=True)
    res["mlflow"] = mlflow_times(workdir)
    res["optuna"] = optuna_times(workdir)
    print(f"[{size}]   {res['mlflow']}", flush=True)

    if res["train"]["rc"] == 0:
        print(f"[{size}] tailor score", flush=True)
        res["score"] = run_measured(
            [TAILOR, "score", "--data", str(data_dir), "--out", str(out / "scores.parquet")],
            workdir, env, workdir / "score.log")
        print(f"[{size}]   {res['score']}", flush=True)
        scores = out / "scores.parquet"
        if scores.exists():
            import pyarrow.parquet as pq
            res["score"]["rows"] = pq.read_metadata(scores).num_rows
    else:
        res["score"] = {"rc": None, "note": "not run: train failed"}
    res["load_end"] = [round(x, 2) for x in os.getloadavg()]
    res["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    if res["train"].get("wall_s"):
        res["train_lines_per_s"] = round(res["lines"] / res["train"]["wall_s"])
    return res


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _model_cell(run: dict[str, Any] | None, tuning: dict[str, Any] | None) -> str:
    if run is None:
        return "skipped/failed"
    if run.get("s") is None:
        return f"{run.get('status', '?')} (unfinished)"
    cell = _fmt(run["s"])
    if tuning and tuning.get("tuning_s") is not None:
        cell += f" ({_fmt(tuning['tuning_s'], 0)} tuning)"
    return cell


def table(results: list[dict[str, Any]]) -> str:
    head = ["size", "lines", "customers", "products (catalogue)", "read+validate+features+inter. s",
            "train wall s", "retrain (parent run) s", *(f"{m} s (of it tuning)" for m in MODELS),
            "after models (gate) s", "train peak RSS tree / single GB", "train CPU s",
            "score wall s", "score peak RSS tree / single GB", "lines/s (train)", "load start-end"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        st, tr, sc, ml = r.get("stages", {}), r.get("train", {}), r.get("score", {}), r.get(
            "mlflow", {})
        pre = (sum(st.get(k, 0) for k in ("read_s", "validate_s", "features_s",
                                          "interactions_s")) if "error" not in st else None)
        models = ml.get("models", {})
        cells = [
            r["size"], r.get("lines"),
            f"{_fmt(r.get('customers_table'))} ({_fmt(r.get('customers_buying'))} buying)",
            r.get("products_table"),
            pre, tr.get("wall_s"), ml.get("retrain_s"),
            *(_model_cell(models.get(m), r.get("optuna", {}).get(m)) for m in MODELS),
            ml.get("after_models_s"),
            f"{_fmt(tr.get('peak_tree_rss_gb'), 2)} / {_fmt(tr.get('peak_single_rss_gb'), 2)}",
            tr.get("cpu_s"), sc.get("wall_s"),
            f"{_fmt(sc.get('peak_tree_rss_gb'), 2)} / {_fmt(sc.get('peak_single_rss_gb'), 2)}",
            r.get("train_lines_per_s"),
            f"{r['load_start'][0]:.1f}-{r['load_end'][0]:.1f}" if "load_end" in r else "-",
        ]
        rows.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return "\n".join(rows)


def slopes(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """log-log slope of each stage's time against lines between consecutive sizes."""
    def metrics(r: dict[str, Any]) -> dict[str, float | None]:
        ml = r.get("mlflow", {}).get("models", {})
        st = r.get("stages", {})
        return {"train_wall": r.get("train", {}).get("wall_s"),
                "retrain": r.get("mlflow", {}).get("retrain_s"),
                **{m: (ml.get(m) or {}).get("s") for m in MODELS},
                **{f"{m}_tuning": (r.get("optuna", {}).get(m) or {}).get("tuning_s")
                   for m in MODELS},
                **{k: st.get(k) for k in ("read_s", "validate_s", "features_s",
                                           "interactions_s")},
                "score_wall": r.get("score", {}).get("wall_s"),
                "train_peak_tree_rss": r.get("train", {}).get("peak_tree_rss_gb")}
    out: dict[str, dict[str, float]] = {}
    for a, b in itertools.pairwise(results):
        ma, mb = metrics(a), metrics(b)
        pair = f"{a['size']}->{b['size']}"
        out[pair] = {}
        for key in ma:
            if ma[key] and mb[key] and a.get("lines") and b.get("lines"):
                out[pair][key] = round(math.log(mb[key] / ma[key])
                                       / math.log(b["lines"] / a["lines"]), 2)
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--_stages":
        stages_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1m,3m,10m",
                        help=f"comma-separated, of {','.join(SIZES)}")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep working directories (MLflow store, logs, scores) here")
    parser.add_argument("--data-cache", type=Path, default=None,
                        help="reuse generated data sets here (data-<size>/), generating missing")
    parser.add_argument("--results", type=Path, default=None,
                        help="append one JSON line per finished size")
    parser.add_argument("--from-results", type=Path, default=None,
                        help="run nothing: print the table and slopes of a --results file")
    args = parser.parse_args()
    if args.from_results:
        done = [json.loads(line) for line in args.from_results.read_text().splitlines()
                if line.strip()]
        done.sort(key=lambda r: r.get("lines") or 0)
        for r in done:  # results written before optuna_times existed
            if "optuna" not in r and Path(r["workdir"]).exists():
                r["optuna"] = optuna_times(Path(r["workdir"]))
        print(table(done))
        print()
        print(json.dumps({"results": done, "loglog_slopes": slopes(done)}))
        return
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}; choose from {list(SIZES)}")

    tmp = None
    if args.keep:
        base = args.keep.resolve()
        base.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="tailor-scale-")
        base = Path(tmp.name)
    cache = args.data_cache.resolve() if args.data_cache else None
    print(f"machine: {os.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 1024**3:.1f} GB RAM; base {base}", flush=True)
    results = []
    try:
        for size in sizes:
            res = bench_size(size, base, cache)
            results.append(res)
            if args.results:
                with open(args.results, "a") as fh:
                    fh.write(json.dumps(res) + "\n")
    finally:
        if results:
            print()
            print(table(results))
            print()
            print(json.dumps({"results": results, "loglog_slopes": slopes(results)}))
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
