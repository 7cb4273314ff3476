"""Flow: the main job, one flow run on one data set validated once.

Reads as: load -> validate (quarantine beside the outputs) -> build features -> train, gate and
promote -> score everyone with the champions. Each step is the subflow its own command runs
after validating (``build_features``, ``train_challengers``, ``score_validated``), so
``tailor run`` and ``tailor prepare/train/score`` cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from tailor import kinds
from tailor.configs.schema import Settings
from tailor.flows.library_noise import summarised_warnings
from tailor.flows.prepare import build_features
from tailor.flows.score import score_validated
from tailor.flows.train import report_training, train_challengers
from tailor.flows.validated import load_validated

SCORES_FILE = "scores.parquet"
"""The score table ``tailor run`` writes under its output directory."""


@flow(name="tailor-run", log_prints=True)
def run_main_job(data_dir: str, out_dir: str, settings: Settings) -> dict[str, Any]:
    """Prepare, train and score ``data_dir``; every output under ``out_dir``."""
    out = Path(out_dir)
    with summarised_warnings(get_run_logger()):
        data = load_validated(data_dir, settings.data, str(out / "quarantine"))
        prepared = build_features(settings, data, out_dir)
        trained = train_challengers(settings, data, list(kinds.kinds()))
        report_training(trained)
        scored = score_validated(settings, data, str(out / SCORES_FILE))
    return {"prepare": prepared, "train": trained, "score": scored}
