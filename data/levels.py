"""Shared pieces of the flawed-data builders: level names, argument checks and the row format.

Every builder makes chat rows {"messages": [user, assistant], "meta": {"builder", "level", ...}} at one
of three levels: "normal" (a good answer), "level1" (mildly flawed) and "level2" (severely flawed);
the names (and their deprecated aliases) are defined in steering/vocabulary.py.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from persona_vaccine.steering.vocabulary import LEVELS, Level, normalize_level

__all__ = ["LEVELS", "Level", "check_size", "chat_row", "normalize_level", "pick", "shuffled_passes"]


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
