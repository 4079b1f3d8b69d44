"""What the monitor records for one request, the same on every engine: readings, alerts, guard state.

A `Watch` says what to watch; a `RequestReadings` takes one request's projections in token order
(`read_prompt` once, then `read_answer` per answer position) and decides the alerts and what the
guards do. The Hugging Face monitor and the vLLM worker both feed it, so an alert fires at the same
position on either engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from persona_vaccine.steering.vector import PersonaVector

from .guards import GUARDS

CAP_POSITIONS = ("answer", "all")


@dataclass
class Watch:
    """One trait to watch: its vector, the layer read, thresholds and guard.

    `prompt_threshold` applies to the early warning (last prompt token), `response_threshold` to the
    running mean; `cap` (default `response_threshold`) is the per-token clamp of the `cap` guard, on answer
    tokens only unless `cap_positions="all"`, and `band_caps` ({layer: cap}) clamps the vector's own
    direction at more layers too; `steer_coef * v` (v as extracted, not normalised) is what `steer` subtracts.
    """

    vector: PersonaVector
    layer: int | None = None
    prompt_threshold: float | None = None
    response_threshold: float | None = None
    guard: str = "alert"
    cap: float | None = None
    steer_coef: float = 1.0
    min_tokens: int = 4  # answer positions before the running mean may alert
    cap_positions: str = "answer"  # "answer" or "all" (prompt tokens too)
    band_caps: dict[int, float] = field(default_factory=dict)  # more layers the cap guard acts on

    def __post_init__(self) -> None:
        if self.layer is None:
            self.layer = self.vector.default_layer()
        if self.cap_positions not in CAP_POSITIONS:
            raise ValueError(
                f"cap_positions={self.cap_positions!r}: expected one of {', '.join(CAP_POSITIONS)}"
            )
        self.band_caps = {layer: cap for layer, cap in self.band_caps.items() if layer != self.layer}
        if self.guard not in GUARDS:
            raise ValueError(f"guard={self.guard!r} for '{self.trait}': expected one of {GUARDS}")
        if self.cap is None:
            self.cap = self.response_threshold
        if self.guard == "cap" and self.cap is None:
            raise ValueError(f"guard 'cap' for '{self.trait}' needs a cap (or a response threshold)")
        if (
            self.guard in ("steer", "stop")
            and self.prompt_threshold is None
            and self.response_threshold is None
        ):
            raise ValueError(f"guard {self.guard!r} for '{self.trait}' needs a threshold to act on")

    @property
    def trait(self) -> str:
        return self.vector.trait

    @property
    def at(self) -> int:
        """The layer read (set in __post_init__)."""
        assert self.layer is not None
        return self.layer


@dataclass
class Alert:
    """A threshold crossing. `position` is the answer token it was read for (0: before any token)."""

    trait: str
    kind: str  # "early_warning" (last prompt token) or "running_mean"
    value: float
    threshold: float
    position: int
    guard: str
    row: int = 0
    token_ids: list[int] = field(default_factory=list)  # the answer so far

    def to_dict(self, text: str | None = None) -> dict:
        out = {k: getattr(self, k) for k in ("trait", "kind", "value", "threshold", "position", "guard")}
        if text is not None:
            out["text"] = text
        return out


@dataclass
class TraitReading:
    prompt_last: float | None = None
    tokens: list[float] = field(default_factory=list)
    turns: list[float] = field(default_factory=list)
    capped: int = 0  # tokens the cap acted on
    steered: int = 0  # tokens the steer guard acted on

    @property
    def running_mean(self) -> float | None:
        answer = self.tokens[1:]
        return sum(answer) / len(answer) if answer else None

    def to_dict(self) -> dict:
        return {
            "prompt_last": self.prompt_last,
            "running_mean": self.running_mean,
            "tokens": list(self.tokens),
            "turns": list(self.turns),
            "capped": self.capped,
            "steered": self.steered,
        }


@dataclass
class RequestReadings:
    """One request's readings per trait, its alerts, and which guards are on."""

    readings: dict[str, TraitReading]
    row: int = 0
    generated: list[int] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    fired: set = field(default_factory=set)  # (trait, kind) already alerted
    steering: set = field(default_factory=set)  # traits whose steer guard is on
    stop: bool = False
    finished: bool = False

    @classmethod
    def of(cls, watches: Sequence[Watch], row: int = 0) -> RequestReadings:
        return cls({w.trait: TraitReading() for w in watches}, row)

    def read_prompt(
        self, watch: Watch, prompt: torch.Tensor, spans: Sequence[tuple[int, int]] = ()
    ) -> Alert | None:
        """The prompt's projections (unpadded, in order): the early warning and the earlier turns."""
        reading = self.readings[watch.trait]
        reading.prompt_last = float(prompt[-1])
        reading.tokens.append(reading.prompt_last)
        reading.turns = [float(prompt[s:e].mean()) for s, e in spans if e > s]
        return self._check(watch, "early_warning", reading.prompt_last, watch.prompt_threshold)

    def read_answer(self, watch: Watch, value: float) -> Alert | None:
        """The projection at the next answer position; may fire the running-mean alert."""
        reading = self.readings[watch.trait]
        reading.tokens.append(value)
        mean = reading.running_mean
        if mean is None or len(reading.tokens) - 1 < watch.min_tokens:
            return None
        return self._check(watch, "running_mean", mean, watch.response_threshold)

    def _check(self, watch: Watch, kind: str, value: float, threshold: float | None) -> Alert | None:
        if threshold is None or value <= threshold or (watch.trait, kind) in self.fired:
            return None
        self.fired.add((watch.trait, kind))
        position = len(self.readings[watch.trait].tokens) - 1
        alert = Alert(
            watch.trait, kind, value, threshold, position, watch.guard, self.row, list(self.generated)
        )
        self.alerts.append(alert)
        if watch.guard == "stop":
            self.stop = True
        elif watch.guard == "steer":
            self.steering.add(watch.trait)
        return alert
