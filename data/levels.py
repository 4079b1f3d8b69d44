"""Shared pieces of the flawed-data builders: level names, argument checks and the row format.

Every builder makes chat rows {"messages": [user, assistant], "meta": {"builder", "level", ...}} at one
of three levels: "normal" (a good answer), "level1" (mildly flawed) and "level2" (severely flawed);
the names and their deprecated aliases are defined here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Literal, TypeVar, get_args

from persona_vaccine.choices import canonical

# A flawed-data builder's level: a good answer, a mildly flawed one, a severely flawed one.
Level = Literal["normal", "level1", "level2"]
LEVELS: tuple[Level, ...] = get_args(Level)

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


__all__ = [
    "LEVELS",
    "LEVEL_ALIASES",
    "Level",
    "check_size",
    "chat_row",
    "normalize_level",
    "pick",
    "shuffled_passes",
]


def check_size(n: int) -> None:
    """Raise ValueError unless n is a positive integer."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")


def chat_row(user: str, assistant: str, meta: dict) -> dict:
    """A single-turn chat example with its metadata."""
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
        "meta": meta,
    }


T = TypeVar("T")


def pick(rng: random.Random, options: Sequence[T]) -> T:
    """One option, drawn with rng."""
    return options[rng.randrange(len(options))]


def shuffled_passes(rng: random.Random, pool_size: int, n: int) -> list[int]:
    """n indices into a pool, drawn as shuffled passes over the whole pool (no repeat within a pass)."""
    out: list[int] = []
    while len(out) < n:
        order = list(range(pool_size))
        rng.shuffle(order)
        out.extend(order[: n - len(out)])
    return out
