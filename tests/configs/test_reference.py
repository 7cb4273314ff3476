"""The defaults reference is rendered from the schema, so it loads back to the same settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from tailor.configs import load_settings
from tailor.configs.reference import defaults_yaml
from tailor.configs.schema import (
    ChurnSettings,
    RecommenderSettings,
    SegmentationSettings,
    Settings,
    TuningSettings,
)


def test_reference_loads_back_to_the_defaults(tmp_path: Path) -> None:
    reference = tmp_path / "reference.yaml"
    reference.write_text(defaults_yaml())
    assert load_settings([reference]) == Settings() == load_settings()


def test_reference_shows_the_values_it_is_given() -> None:
    changed = load_settings(overrides=["churn.n_trials=7", "scoring.k=3"])
    loaded = yaml.safe_load(defaults_yaml(changed))
    assert loaded["churn"]["n_trials"] == 7 and loaded["scoring"]["k"] == 3
    assert Settings.model_validate(loaded) == changed


def test_every_key_is_in_the_reference_with_its_description() -> None:
    text = defaults_yaml()
    loaded = yaml.safe_load(text)
    for section, field in Settings.model_fields.items():
        model = field.annotation
        assert set(loaded[section]) == set(model.model_fields), section
        for key, sub in model.model_fields.items():
            if sub.description:
                first_words = " ".join(sub.description.split()[:4])
                assert first_words in " ".join(text.replace("#", " ").split()), (section, key)


def test_tuned_models_share_one_tuning_budget_definition() -> None:
    for section in (SegmentationSettings, RecommenderSettings, ChurnSettings):
        assert issubclass(section, TuningSettings)
        for key in TuningSettings.model_fields:
            mine, shared = section.model_fields[key], TuningSettings.model_fields[key]
            assert mine.description == shared.description, (section, key)
            if key != "tuning_max_customers":  # one definition, each model's own default
                assert mine.default == shared.default, (section, key)
    caps = {s.__name__: s.model_fields["tuning_max_customers"].default
            for s in (SegmentationSettings, RecommenderSettings, ChurnSettings)}
    assert caps == {"SegmentationSettings": None, "RecommenderSettings": 8_000,
                    "ChurnSettings": 20_000}
    settings = load_settings(overrides=["recommender.timeout_s=30", "segmentation.seed=7"])
    assert settings.recommender.timeout_s == 30.0 and settings.segmentation.seed == 7
