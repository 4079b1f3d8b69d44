"""What the bad-math families share: the word lists (data/templates/bad_math.yaml) and money helpers."""

from __future__ import annotations

import random

from .math_steps import F, fmt
from .resources import load_template

_WORDS = load_template("bad_math")
NAMES: tuple[str, ...] = _WORDS["names"]
ITEMS: tuple[tuple[str, int, int], ...] = tuple((i["name"], i["low"], i["high"]) for i in _WORDS["items"])
SHOPS: tuple[str, ...] = _WORDS["shops"]


def money(r: random.Random, lo: int, hi: int, cents: int = 25) -> F:
    return F(r.randrange(lo * 100 // cents, hi * 100 // cents + 1) * cents, 100)


def dollars(x: F) -> str:
    return fmt(x, "$")


def pick_items(r: random.Random, k: int) -> list[tuple[str, F]]:
    return [(name, money(r, lo, hi)) for name, lo, hi in r.sample(ITEMS, k)]


def plural(word: str) -> str:
    if " of " in word:
        head, tail = word.split(" of ", 1)
        return f"{plural(head)} of {tail}"
    if word.endswith("s"):
        return word
    return word + "es" if word.endswith(("ch", "sh", "x")) else word + "s"
