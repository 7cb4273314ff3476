"""The segmentation study's search space (sampled, or whole as a grid), the study and its trials."""

from __future__ import annotations

from typing import Any

import optuna
import pandas as pd

from tailor.configs.schema import SegmentationSettings


def suggest_params(trial: optuna.Trial, settings: SegmentationSettings, has_categories: bool
                   ) -> dict[str, Any]:
    """The search space: k, log on/off, category mix on/off, clipping quantile."""
    params: dict[str, Any] = {
        "k": trial.suggest_int("k", settings.k_min, settings.k_max),
        "log": trial.suggest_categorical("log", list(settings.log_choices)),
        "clip_quantile": trial.suggest_categorical(
            "clip_quantile", list(settings.clip_quantile_choices)),
    }
    if has_categories:
        params["category_mix"] = trial.suggest_categorical(
            "category_mix", list(settings.category_mix_choices))
    return params


def new_study(settings: SegmentationSettings, **kwargs: Any) -> optuna.Study:
    """A maximising study with a seeded TPE sampler (pass storage/study_name to persist)."""
    kwargs.setdefault("sampler", optuna.samplers.TPESampler(seed=settings.seed))
    return optuna.create_study(direction="maximize", **kwargs)


def search_grid(settings: SegmentationSettings, has_categories: bool) -> list[dict[str, Any]]:
    """Every point of the (all-categorical) search space of :func:`suggest_params`."""
    axes: dict[str, list[Any]] = {
        "k": list(range(settings.k_min, settings.k_max + 1)),
        "log": list(settings.log_choices),
        "clip_quantile": list(settings.clip_quantile_choices),
    }
    if has_categories:
        axes["category_mix"] = list(settings.category_mix_choices)
    points: list[dict[str, Any]] = [{}]
    for name, values in axes.items():
        points = [{**p, name: v} for p in points for v in values]
    return points


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """Completed trials with params and metrics, one row per trial (for plots and tables)."""
    rows = []
    for t in study.trials:
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        row = {"number": t.number, "value": t.value} | dict(t.params)
        row |= {k: v for k, v in t.user_attrs.items()
                if isinstance(v, int | float) and k not in row}
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = [
    "new_study",
    "search_grid",
    "suggest_params",
    "trials_frame",
]
