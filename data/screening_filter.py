"""The recipe stage of screening: drop the samples above a threshold, or the riskiest top percent."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class DropRule:
    """Drop samples whose score on `trait` is above `threshold`, or the top `top_pct` percent."""

    trait: str
    score: str = "projection_diff"
    threshold: float | None = None
    top_pct: float | None = None

    def __post_init__(self) -> None:
        if (self.threshold is None) == (self.top_pct is None):
            raise ValueError("a screening drop rule needs exactly one of threshold or top_pct")
        if self.top_pct is not None and not 0 <= self.top_pct <= 100:
            raise ValueError(f"top_pct must be within 0..100, got {self.top_pct}")

    def describe(self) -> str:
        if self.threshold is not None:
            return f"{self.trait} {self.score} > {self.threshold:g}"
        return f"top {self.top_pct:g}% by {self.trait} {self.score}"


def apply_drop_rule(rows: Sequence[dict], rule: DropRule) -> tuple[set[int], dict]:
    """Indices of the samples to drop, and a log entry saying how many and why."""
    values = {r["index"]: r["scores"][rule.trait][rule.score] for r in rows}
    if rule.threshold is not None:
        dropped = {i for i, v in values.items() if v > rule.threshold}
        cut: float | None = rule.threshold
    else:
        k = math.floor(len(values) * (rule.top_pct or 0.0) / 100)  # DropRule: top_pct is set here
        order = sorted(values, key=lambda i: values[i], reverse=True)
        dropped = set(order[:k])
        cut = values[order[k - 1]] if k else None
    return dropped, {
        "rule": rule.describe(),
        "screened": len(values),
        "dropped": len(dropped),
        "kept": len(values) - len(dropped),
        "cut": cut,
        "dropped_indices": sorted(dropped),
    }
