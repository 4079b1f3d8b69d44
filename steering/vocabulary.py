"""The project's vocabulary: every closed set of names (levels, steering modes and positions, ...) as a
`Literal` type, its tuple of values, and one check that turns a bad value into a one-line error.

Hooks, the training config, screening and the builders import their names from here, so a name is
spelled once. Old spellings stay accepted where recipes used them, with a deprecation warning that
names the new one (`canonical`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Literal, TypeVar, get_args

__all__ = [
    "BUILDER_ALIASES",
    "COEF_UNITS",
    "LEVELS",
    "LEVEL_ALIASES",
    "MODES",
    "POSITIONS",
    "SCHEDULES",
    "SCREEN_METHODS",
    "VECTOR_POSITIONS",
    "CoefUnit",
    "Level",
    "Schedule",
    "ScreenMethod",
    "SteeringMode",
    "SteeringPositions",
    "VectorPosition",
    "canonical",
    "check_choice",
    "normalize_level",
]

# A flawed-data builder's level: a good answer, a mildly flawed one, a severely flawed one.
Level = Literal["normal", "level1", "level2"]
# How a vector acts on the residual stream: add coef * v, or remove coef times the projection on v.
SteeringMode = Literal["add", "ablate"]
# Which tokens are steered (padding never is).
SteeringPositions = Literal["all", "prompt", "response"]
# A steering coefficient in raw units of v, or as a fraction of the layer's mean activation norm.
CoefUnit = Literal["raw", "relative"]
# The steering coefficient over training.
Schedule = Literal["constant", "warmup", "decay"]
# Where a persona vector's activations are read: averaged over the response or the prompt, or the
# prompt's last token.
VectorPosition = Literal["response_avg", "prompt_avg", "prompt_last"]
# How a dataset is screened: with the base model's responses, or from the prompt's last token only.
ScreenMethod = Literal["response", "prompt_last"]

LEVELS: tuple[Level, ...] = get_args(Level)
MODES: tuple[SteeringMode, ...] = get_args(SteeringMode)
POSITIONS: tuple[SteeringPositions, ...] = get_args(SteeringPositions)
COEF_UNITS: tuple[CoefUnit, ...] = get_args(CoefUnit)
SCHEDULES: tuple[Schedule, ...] = get_args(Schedule)
VECTOR_POSITIONS: tuple[VectorPosition, ...] = get_args(VectorPosition)
SCREEN_METHODS: tuple[ScreenMethod, ...] = get_args(ScreenMethod)

# Old level names (deprecated): the evil builder's "mild"/"evil", "severe", and other spellings.
LEVEL_ALIASES: dict[str, Level] = {
    "level0": "normal",
    "clean": "normal",
    "level_1": "level1",
    "level-1": "level1",
    "i": "level1",
    "1": "level1",
    "mild": "level1",
    "level_2": "level2",
    "level-2": "level2",
    "ii": "level2",
    "2": "level2",
    "severe": "level2",
}
# Old builder names (deprecated): builders are named after the trait they elicit (persona_vaccine/traits/*.json).
BUILDER_ALIASES: dict[str, str] = {"sycophancy": "sycophantic", "hallucination": "hallucinating"}

_Name = TypeVar("_Name", bound=str)


def check_choice(field: str, value: object, allowed: Sequence[_Name]) -> _Name:
    """`value` if it is one of `allowed`, else a ValueError naming the field and the choices."""
    if value not in allowed:
        raise ValueError(f"{field}={value!r}: expected one of {', '.join(allowed)}")
    return value  # type: ignore[return-value]  # checked just above


def canonical(kind: str, name: str, aliases: Mapping[str, str]) -> str:
    """`name`, or the new name of a deprecated one (with a FutureWarning saying which to write)."""
    new = aliases.get(name)
    if new is None:
        return name
    warnings.warn(f"{kind} {name!r} is deprecated: use {new!r}", FutureWarning, stacklevel=3)
    return new


def normalize_level(level: str, builder: str = "builder", extra: Mapping[str, Level] | None = None) -> Level:
    """The level name ("normal", "level1", "level2") of a level or a deprecated alias ("mild", "II", ...).

    `extra`: a builder's own old names (the evil builder's "evil" = "level2").
    """
    key = str(level).strip().lower().replace(" ", "")
    if key in LEVELS:
        return key
    aliases = {**LEVEL_ALIASES, **(extra or {})}
    if key not in aliases:
        raise ValueError(
            f"{builder}: unknown level {level!r}; expected one of {list(LEVELS)} "
            "(deprecated aliases: mild = level1, severe = level2)"
        )
    return canonical(f"{builder}: level", key, aliases)  # type: ignore[return-value]  # a Level


# what a watched trait does when its projection crosses the threshold (monitoring.guards describes each)
GUARDS = ("alert", "cap", "steer", "stop")
