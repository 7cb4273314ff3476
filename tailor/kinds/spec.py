"""What a model kind is: one :class:`ModelSpec` says how to plan, train, gate and score it.

Flows, the gate, the CLI and the serving app loop over the registered specs
(:mod:`tailor.kinds`) instead of naming kinds, so a new kind is one module and one entry.
Plain Python and Optuna: no Prefect, no MLflow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
import pandas as pd

from tailor.configs.schema import Settings
from tailor.data.dataset import Dataset
from tailor.models.scoring import ScoreStep
from tailor.models.windows import Windows

NAME_PREFIX = "tailor-"

Fit = Callable[..., "TrainedModel"]
"""``fit(settings, clean, windows, study, callbacks, **options) -> TrainedModel``."""


@dataclass
class TrainedModel:
    """What a kind's fit hands to tracking after tuning, fitting and evaluating.

    ``predictor`` is the served model (fit before ``windows.as_of``) and is registered;
    ``twin`` is the same configuration fit before ``windows.holdout_start``, which produced the
    ``holdout_*`` metrics and which the gate compares (kept in memory, not logged).
    """

    predictor: Any
    twin: Any
    windows: Windows
    params: dict[str, Any]
    metrics: dict[str, float]
    input_example: pd.DataFrame
    figures: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    datasets: dict[str, pd.DataFrame] = field(default_factory=dict)
    params_example: dict[str, Any] | None = None


@dataclass(frozen=True)
class TrialMetrics:
    """How a kind's Optuna trials are logged: every trial metric is ``validation_<name>``
    (trials see only the tuning data), named as the model's run names the same figure.

    - ``objective``: the name of the trial's value (``log_loss``, ``precision_at_10``): the
      value means something else in each kind, so it is named, never a bare ``objective``;
    - ``intermediate``: the name of the values reported per step to the pruner, if any;
    - ``params``: user attributes that are parameters the trial chose (e.g. blend weights),
      logged as params as in the model's run;
    - ``baselines``: baseline names among the user attributes (``baseline_<name>_<metric>``).
    """

    objective: str = "objective"
    intermediate: str | None = None
    params: tuple[str, ...] = ()
    baselines: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """One model kind, end to end.

    - ``plan``: the windows (holdout start, scoring date) of one training as of a date;
    - ``fit``: tune in the study, fit the twin and the served model, evaluate (a
      :class:`TrainedModel`);
    - ``refit_twin``: a registered predictor's configuration fit before the holdout (how the
      gate scores a champion on a window it has not seen);
    - ``holdout_scores``: each twin's gate metric on ``[holdout_start, as_of)``;
    - ``gate_metric``: that metric's name (logged by ``fit`` as ``holdout_<name>``), higher
      better unless ``higher_is_better`` is False;
    - ``score_step``: the columns it adds to the campaign table and the serving snapshot;
    - ``serve_check``: a smoke test run when serving loads a version (raise to refuse it).
    """

    kind: str
    predictor_type: type
    plan: Callable[[Settings, Dataset, pd.Timestamp], Windows]
    fit: Fit
    refit_twin: Callable[[Settings, Dataset, Windows, Any], Any]
    holdout_scores: Callable[[Mapping[str, Any], Dataset, Windows, Settings], dict[str, float]]
    gate_metric: Callable[[Settings], str]
    score_step: ScoreStep
    seed: Callable[[Settings], int] = lambda settings: 42
    study_direction: str = "maximize"
    description: str = ""
    """What the registered model is and how to use it, shown on its registry page."""
    study_objective: str = "validation objective"
    """What the Optuna study optimises, as the tuning plots name it."""
    trial_metrics: Callable[[Settings], TrialMetrics] = lambda settings: TrialMetrics()
    """The names its trials' metrics and params are logged under."""
    higher_is_better: bool = True
    per_request: bool = False
    """Serving answers it per request (the recommender) instead of precomputing the snapshot."""
    serve_check: Callable[[Any], None] = lambda predictor: None
    prepare: Callable[[Settings, Dataset, Windows], Any] | None = None
    """Data built before the run opens (its problems surface without a failed run); handed to
    ``fit`` as ``prepared=``."""

    @property
    def registered_name(self) -> str:
        return f"{NAME_PREFIX}{self.kind}"


def remaining_trials(study: optuna.Study, n_trials: int) -> int:
    """Trials still owed to a resumed study: a re-run continues, it does not start over."""
    finished = sum(t.state.is_finished() for t in study.trials)
    return max(0, n_trials - finished)

