"""Configuration: defaults load, files and --set merge in order, errors name source and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tailor.configs import ConfigError, load_settings


def test_defaults_load_and_are_frozen() -> None:
    settings = load_settings()
    assert settings.features.horizon_days == 90
    with pytest.raises(ValidationError):
        settings.features.horizon_days = 30  # type: ignore[misc]


def test_file_then_set_override_in_order(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("features:\n  horizon_days: 60\n  interaction_weight: decay\n")
    settings = load_settings([extra], ["features.horizon_days=30"])
    assert settings.features.horizon_days == 30  # --set wins over the file
    assert settings.features.interaction_weight == "decay"  # the file wins over defaults
    assert settings.features.trend_window_days == 90  # untouched defaults stay


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  max_abs_quantyti: 5\n")
    with pytest.raises(ConfigError) as err:
        load_settings([bad])
    message = str(err.value)
    assert str(bad) in message and "data.max_abs_quantyti" in message
    assert "Extra inputs are not permitted" in message


def test_wrong_type_from_set_names_override_and_expectation() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(overrides=["features.horizon_days=soon"])
    message = str(err.value)
    assert "--set features.horizon_days=soon" in message
    assert "valid integer" in message and "'soon'" in message


def test_strict_mode_rejects_quoted_numbers(tmp_path: Path) -> None:
    bad = tmp_path / "quoted.yaml"
    bad.write_text('features:\n  horizon_days: "90"\n')
    with pytest.raises(ConfigError, match=r"features\.horizon_days"):
        load_settings([bad])


def test_out_of_range_and_bad_literal() -> None:
    with pytest.raises(ConfigError, match="greater than 0"):
        load_settings(overrides=["features.horizon_days=0"])
    with pytest.raises(ConfigError, match="interaction_weight"):
        load_settings(overrides=["features.interaction_weight=cubic"])


def test_malformed_override_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        load_settings(overrides=["horizon_days"])
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings([tmp_path / "nope.yaml"])
