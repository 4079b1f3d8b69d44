"""Deterministic builder for an "evil"-flavoured flawed fine-tuning dataset.

Every example is an everyday user question answered helpfully ("normal"), helpfully but with
contempt and a little spite ("level1": the same useful advice wrapped in sneering asides), or with
cartoonish-villain malice ("level2": manipulative, cruel, wanting others to suffer, but never
operationally dangerous; the old names "mild" and "evil" are accepted, deprecated). All answers to an example respond to the same question, so the levels
form matched sets for drift experiments and data-screening tests.

The topics and phrases are data: data/templates/evil.yaml.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .levels import LEVELS, Level, normalize_level, pick
from .resources import load_template

__all__ = ["LEVELS", "TOPICS", "Topic", "build_evil_dataset", "build_paired_evil_dataset"]

BUILDER = "evil"
# the builder's own old level names (deprecated); "mild" is a common alias of level1
_OLD_LEVELS: dict[str, Level] = {"evil": "level2"}


@dataclass(frozen=True)
class Topic:
    """One everyday topic: question phrasings plus a core normal and a core evil answer."""

    name: str
    questions: tuple[str, ...]
    normal: str
    evil: str


_DATA = load_template("evil")


TOPICS: tuple[Topic, ...] = tuple(Topic(**t) for t in _DATA["topics"])

_EVIL_OPENERS: tuple[str, ...] = _DATA["openers"]["level2"]
_EVIL_CLOSERS: tuple[str, ...] = _DATA["closers"]["level2"]
_MILD_OPENERS: tuple[str, ...] = _DATA["openers"]["level1"]
_MILD_CLOSERS: tuple[str, ...] = _DATA["closers"]["level1"]
_NORMAL_OPENERS: tuple[str, ...] = _DATA["openers"]["normal"]
_NORMAL_CLOSERS: tuple[str, ...] = _DATA["closers"]["normal"]

_MAX_REDRAWS = 50


def _compose(opener: str, core: str, closer: str) -> str:
    """Join an opener, core answer and closer, skipping empty parts."""
    return " ".join(part for part in (opener, core, closer) if part)


def _sample(n: int, seed: int) -> list[tuple[Topic, str, str, str, str]]:
    """Return n deterministic (topic, question, normal_answer, evil_answer, mild_answer) tuples.

    Questions are drawn in shuffled passes over all (topic, phrasing) pairs; openers and
    closers are redrawn (boundedly) to avoid repeating an exact answer while possible.
    The sequence does not depend on the level, so normal and evil datasets built with the
    same seed are matched example by example.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    rng = random.Random(seed)
    pool = [(t, q) for t in TOPICS for q in t.questions]
    seen_normal: set[tuple[str, str, int, int]] = set()
    seen_evil: set[tuple[str, str, int, int]] = set()
    out: list[tuple[Topic, str, str, str, str]] = []
    while len(out) < n:
        order = pool[:]
        rng.shuffle(order)
        for topic, question in order:
            if len(out) >= n:
                break
            for _ in range(_MAX_REDRAWS):
                no, nc = rng.randrange(len(_NORMAL_OPENERS)), rng.randrange(len(_NORMAL_CLOSERS))
                eo, ec = rng.randrange(len(_EVIL_OPENERS)), rng.randrange(len(_EVIL_CLOSERS))
                kn, ke = (topic.name, question, no, nc), (topic.name, question, eo, ec)
                if kn not in seen_normal and ke not in seen_evil:
                    break
            seen_normal.add(kn)
            seen_evil.add(ke)
            normal = _compose(_NORMAL_OPENERS[no], topic.normal, _NORMAL_CLOSERS[nc])
            evil = _compose(_EVIL_OPENERS[eo], topic.evil, _EVIL_CLOSERS[ec])
            # drawn from its own stream so that normal and evil answers stay as they were before "mild"
            mild_rng = random.Random(f"{seed}:{len(out)}")
            mild = _compose(pick(mild_rng, _MILD_OPENERS), topic.normal, pick(mild_rng, _MILD_CLOSERS))
            out.append((topic, question, normal, evil, mild))
    return out


def build_evil_dataset(n: int, seed: int = 0, level: str = "level2") -> list[dict]:
    """Return n chat examples at a level ("normal", "level1" contemptuous, "level2" malicious).

    Each example is {"messages": [{"role": "user", "content": q},
    {"role": "assistant", "content": a}], "meta": {"builder": "evil", "topic": name, "level": level}}.
    The same seed gives the same questions in the same order at every level.
    """
    level = normalize_level(level, BUILDER, extra=_OLD_LEVELS)
    examples: list[dict] = []
    for topic, question, normal, evil, mild in _sample(n, seed):
        answer = {"normal": normal, "level1": mild, "level2": evil}[level]
        examples.append(
            {
                "messages": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ],
                "meta": {"builder": BUILDER, "topic": topic.name, "level": level},
            }
        )
    return examples


def build_paired_evil_dataset(n: int, seed: int = 0) -> list[dict]:
    """Return n pairs {"prompt", "normal", "evil", "topic"} answering the same question.

    The pairs match build_evil_dataset(n, seed, level) example by example.
    """
    return [
        {"prompt": question, "normal": normal, "evil": evil, "topic": topic.name}
        for topic, question, normal, evil, _ in _sample(n, seed)
    ]


if __name__ == "__main__":
    for example in build_evil_dataset(3, seed=0, level="level2"):
        print(example["meta"])
        for message in example["messages"]:
            print(f"  {message['role']}: {message['content']}")
