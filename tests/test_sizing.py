"""The sizing rule of the expensive evaluation (training/sizing.py): `auto` from max_steps, numbers as given."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from persona_vaccine.training.config import PreventativeSFTConfig
from persona_vaccine.training.sizing import (
    FULL_QUESTIONS,
    answer_questions,
    auto_questions,
    margin_questions,
    resolve_questions,
)


@pytest.mark.parametrize(
    ("max_steps", "logging_steps", "judged", "expected"),
    [
        (4, 5, False, 0),  # shorter than a logging interval: off
        (4, 5, True, 2),  # a judge is set: never off
        (5, 5, False, 2),  # one interval: the minimum
        (8, 5, False, 4),  # one question per two steps
        (20, 5, False, FULL_QUESTIONS),  # the recipes' length: the full 10
        (1000, 5, False, FULL_QUESTIONS),  # never more
        (1, 1, False, 2),
    ],
)
def test_auto_resolves_from_max_steps(max_steps, logging_steps, judged, expected):
    assert auto_questions(max_steps, logging_steps, judged) == expected
    assert resolve_questions("auto", max_steps, logging_steps, judged) == expected


@pytest.mark.parametrize("value", [0, 3, 10, 50, None])
def test_a_number_is_used_as_given_whatever_the_run(value):
    for steps in (1, 4, 20, 1000):
        assert resolve_questions(value, steps, 5) == value
        assert resolve_questions(value, steps, 5, judged=True) == value


def _args(**kw) -> PreventativeSFTConfig:
    return PreventativeSFTConfig(output_dir="unused", report_to="none", use_cpu=True, **kw)


def test_the_fields_default_to_auto_and_read_numbers_from_recipes_and_the_command_line():
    args = _args()
    assert args.margin_max_questions == "auto" and args.judge_questions == "auto"
    assert _args(margin_max_questions=10, judge_questions="7").judge_questions == 7  # "7": a command line
    assert _args(margin_max_questions="10").margin_max_questions == 10
    assert _args(margin_max_questions="none").margin_max_questions is None  # every question
    with pytest.raises(ValueError, match="margin_max_questions='ten'"):
        _args(margin_max_questions="ten")
    with pytest.raises(ValueError, match="judge_questions=-1"):
        _args(judge_questions=-1)


def test_recipes_keep_their_explicit_numbers(tmp_path):
    from persona_vaccine.training.recipe import parse_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: smollm2-135m\noutput_dir: out\njudge_questions: 20\n")
    _, _, args = parse_recipe(str(recipe), ["--margin_max_questions", "5"])
    assert args.judge_questions == 20 and args.margin_max_questions == 5
    _, _, args = parse_recipe(str(recipe), ["--margin_max_questions", "auto"])
    assert args.margin_max_questions == "auto"


def test_a_short_run_says_what_auto_switched_off_and_how_to_force_it(caplog):
    state = SimpleNamespace(max_steps=4, logging_steps=5)
    with caplog.at_level(logging.INFO, logger="persona_vaccine.training.sizing"):
        assert margin_questions(_args(logging_steps=5), state) == 0
        assert answer_questions(_args(logging_steps=5), state, judged=False) == 0
    assert "set margin_max_questions: 10" in caplog.text and "set judge_questions: 10" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="persona_vaccine.training.sizing"):
        assert margin_questions(_args(logging_steps=5, margin_max_questions=3), state) == 3  # forced on
        assert answer_questions(_args(logging_steps=5), state, judged=True) == 2
        assert margin_questions(_args(logging_steps=5), SimpleNamespace(max_steps=20, logging_steps=5)) == 10
    assert not caplog.text
