"""What a run tells its operator: the lines the tasks write to Prefect's run logger.

An operator reads the flow run page in the Prefect UI, not the worker's terminal, so each fact
that explains a run is one INFO line there: rows read, accepted and quarantined per rule; per
model the trials run and pruned, the best value and the time taken; the holdout figures beside
the baselines; and the gate's decision with its reason. Plain functions from results to
strings, so the wording is tested without a flow.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import pandas as pd

from tailor.adapters.gate import Decision
from tailor.adapters.training import TrackedTraining
from tailor.models.windows import HOLDOUT_PREFIX


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run's logger; a task function called directly (``task.fn``, as tests do)
    logs to the ``tailor`` logger instead of failing for want of a run."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("tailor")
_BASELINE = re.compile(r"^baseline_(?P<name>.+?)_holdout_(?P<metric>.+)$")


def validation_lines(summary: pd.DataFrame, sources: Mapping[str, str],
                     quarantine_dir: str) -> list[str]:
    """Per table: rows read, accepted and quarantined, then one line per quarantine rule."""
    lines = []
    for table, rows in summary.groupby("table", sort=False):
        source = sources.get(str(table), str(table))
        read = int(rows["rows"].sum())
        accepted = int(rows.loc[rows["rule"] == "accepted", "rows"].sum())
        rules = rows[rows["rule"] != "accepted"]
        lines.append(f"{table}: {read:,} rows read from {source}, {accepted:,} accepted, "
                     f"{read - accepted:,} quarantined"
                     + (f" ({len(rules)} rule(s))" if len(rules) else ""))
        lines.extend(f"{table}: quarantined {int(n):,} row(s) by rule {rule}"
                     for rule, n in zip(rules["rule"], rules["rows"], strict=True))
    if (summary["rule"] != "accepted").any():
        lines.append(f"quarantined rows, each with its rule and source row: {quarantine_dir}")
    return lines


def _num(value: float | None) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.4f}"


def tuning_line(result: TrackedTraining, seconds: float) -> str:
    """Trials run, pruned and failed, the best validation value, and the time taken."""
    t = result.tuning
    if t is None:
        return f"{result.kind}: trained in {seconds:.1f} s (no tuning study)"
    return (f"{result.kind}: {t.trials} trial(s) in this study ({t.complete} complete, "
            f"{t.pruned} pruned, {t.failed} failed), best {t.objective} "
            f"{_num(t.best_value)} ({t.direction}); tuning {t.seconds:.1f} s, whole training "
            f"{seconds:.1f} s; registered tailor-{result.kind} v{result.version}")


def holdout_lines(kind: str, metrics: Mapping[str, float], gate_metric: str,
                  run_id: str) -> list[str]:
    """The holdout metrics that have baselines, each beside them, the gate's metric first;
    the others are counted and left to the model's MLflow run."""
    baselines: dict[str, dict[str, float]] = {}
    for name, value in metrics.items():
        match = _BASELINE.match(name)
        if match:
            baselines.setdefault(match["metric"], {})[match["name"]] = value
    gate = gate_metric.removeprefix(HOLDOUT_PREFIX)
    holdout = sorted((name.removeprefix(HOLDOUT_PREFIX) for name in metrics
                      if name.startswith(HOLDOUT_PREFIX)), key=lambda m: (m != gate, m))
    lines, rest = [], 0
    for metric in holdout:
        beside = baselines.get(metric, {})
        if not beside and metric != gate:
            rest += 1
            continue
        others = ", ".join(f"{b} {_num(v)}" for b, v in sorted(beside.items()))
        lines.append(f"{kind} holdout {metric}{' (the gate metric)' if metric == gate else ''}:"
                     f" {_num(metrics[HOLDOUT_PREFIX + metric])}"
                     + (f" vs baselines {others}" if others else ""))
    if rest:
        lines.append(f"{kind}: {rest} more holdout metric(s) in MLflow run {run_id}")
    return lines


def decision_line(d: Decision) -> str:
    """The gate's verdict for one model: both scores and the reason."""
    champion = ("no champion" if d.champion_version is None
                else f"champion v{d.champion_version} {_num(d.champion_score)}")
    verdict = "PROMOTE" if d.promote else "KEEP champion"
    return (f"gate {d.kind}: challenger v{d.challenger_version} {d.metric} "
            f"{_num(d.challenger_score)} vs {champion} -> {verdict}: {d.reason}")


def alias_line(d: Decision) -> str:
    """Where the champion alias points after the decision was applied."""
    if d.promote:
        moved = "" if d.champion_version is None else f" (was v{d.champion_version})"
        return f"tailor-{d.kind}@champion -> v{d.challenger_version}{moved}"
    return (f"tailor-{d.kind}@champion stays v{d.champion_version}; v{d.challenger_version} "
            f"is recorded as not promoted")
