"""Guards: what a watched trait does to the residual stream when its projection crosses the threshold.

alert  records only (the residual stream is never touched);
cap    clamps the projection on the unit vector to at most the cap, on the tokens above it only
       ("The Assistant Axis", arXiv 2601.10387);
steer  subtracts `coef * v` from the first alerting token on;
stop   ends the generation (finish reason `persona_alert`).
"""

from __future__ import annotations

from persona_vaccine.vllm_request import GUARDS

__all__ = ["GUARDS", "STOP_REASON", "parse_guards"]

STOP_REASON = "persona_alert"


def parse_guards(specs: list[str] | None, traits: list[str], default: str = "alert") -> dict[str, str]:
    """`["cap"]` (every trait) or `["evil=cap", "sycophantic=stop"]` -> {trait: guard}."""
    guards = dict.fromkeys(traits, default)
    for spec in specs or []:
        trait, _, guard = spec.rpartition("=")
        if guard not in GUARDS:
            raise ValueError(f"--guard {spec!r}: guard must be one of {', '.join(GUARDS)}")
        if not trait:
            guards = dict.fromkeys(traits, guard)
        elif trait not in guards:
            raise ValueError(f"--guard {spec!r}: no vector for trait {trait!r} (traits: {', '.join(traits)})")
        else:
            guards[trait] = guard
    return guards
