"""Closed sets of names: each defined once, beside the code that uses it, with one check."""

from __future__ import annotations

import typing
from types import SimpleNamespace

import pytest

from persona_vaccine import choices
from persona_vaccine.data import levels, loading, screening_config
from persona_vaccine.steering import options
from persona_vaccine.training import config

v = SimpleNamespace(
    **{k: getattr(m, k) for m in (choices, options) for k in dir(m) if not k.startswith("_")},
    LEVELS=levels.LEVELS,
    Level=levels.Level,
    LEVEL_ALIASES=levels.LEVEL_ALIASES,
    normalize_level=levels.normalize_level,
    BUILDER_ALIASES=loading.BUILDER_ALIASES,
    SCREEN_METHODS=screening_config.SCREEN_METHODS,
    ScreenMethod=screening_config.ScreenMethod,
    SCHEDULES=config.SCHEDULES,
    Schedule=config.Schedule,
)


def test_tuples_are_the_literals():
    pairs = {
        v.LEVELS: v.Level,
        v.MODES: v.SteeringMode,
        v.POSITIONS: v.SteeringPositions,
        v.COEF_UNITS: v.CoefUnit,
        v.SCHEDULES: v.Schedule,
        v.VECTOR_POSITIONS: v.VectorPosition,
        v.SCREEN_METHODS: v.ScreenMethod,
    }
    for values, literal in pairs.items():
        assert values == typing.get_args(literal)
    assert v.LEVELS == ("normal", "level1", "level2")
    assert set(v.LEVEL_ALIASES.values()) <= set(v.LEVELS)


def test_check_choice_names_field_and_choices():
    assert v.check_choice("steering_mode", "add", v.MODES) == "add"
    with pytest.raises(
        ValueError, match=r"^steering_positions='middle': expected one of all, prompt, response$"
    ):
        v.check_choice("steering_positions", "middle", v.POSITIONS)


def test_levels_and_their_deprecated_aliases():
    assert v.normalize_level(" Level2 ") == "level2"
    with pytest.warns(FutureWarning, match="bad_math: level 'ii' is deprecated: use 'level2'"):
        assert v.normalize_level("II", "bad_math") == "level2"
    with pytest.raises(ValueError, match=r"bad_math: unknown level 'evil'"):
        v.normalize_level("evil", "bad_math")  # the evil builder's own old name only
    with pytest.warns(FutureWarning):
        assert v.normalize_level("evil", "evil", extra={"evil": "level2"}) == "level2"


def test_config_and_screening_use_the_vocabulary():
    from persona_vaccine.data.screening import ScreenConfig
    from persona_vaccine.training.config import DataArguments, PreventativeSFTConfig

    hints = typing.get_type_hints(PreventativeSFTConfig)
    assert hints["steering_mode"] == v.SteeringMode and hints["steering_positions"] == v.SteeringPositions
    assert hints["steering_coef_unit"] == v.CoefUnit and hints["steering_schedule"] == v.Schedule
    assert typing.get_type_hints(ScreenConfig)["method"] == v.ScreenMethod
    assert typing.get_type_hints(DataArguments)["screen_method"] == v.ScreenMethod
    with pytest.raises(ValueError, match=r"steering_mode='subtract': expected one of add, ablate"):
        PreventativeSFTConfig(output_dir="/tmp/unused", steering_mode="subtract", report_to="none")
