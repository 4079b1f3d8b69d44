"""Steering hooks: add `coef * v` to (or project v out of) the residual stream at chosen layers.

Hooks are forward hooks on decoder blocks, held by a `Steerer` and registered by a context manager,
so they stay registered through backward (gradient checkpointing re-runs the blocks there) and are
removed on exit. Positions are chosen per token: never padding; "prompt" or "response" tokens from
an explicit response mask (training, or a plain forward over prompt + response) or, under
`generate`, from what each forward call really gets: the length of the KV cache before the call
(the absolute position of its first token) and, without a cache, the growing input it is fed.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from persona_vaccine.cli_args import command_name
from persona_vaccine.models.layers import (
    check_layer,
)
from persona_vaccine.steering.forward_call import PositionTracker
from persona_vaccine.steering.hook_core import attach
from persona_vaccine.steering.options import (
    COEF_UNITS,
    MODES,
    POSITIONS,
    CoefUnit,
    SteeringMode,
    SteeringPositions,
)
from persona_vaccine.steering.vector import PersonaVector, vector_for_model

from . import residual_ops


class SteeringNoOp(ValueError):
    """A steering request that would silently steer nothing."""


@dataclass
class SteeringSpec:
    """One trait's steering: which vector, where, how strong.

    coef_unit "raw" adds `coef * v_l` (the paper's unit, v not normalised); "relative" adds
    `coef * mean_norm_l * v_l / |v_l|`, so coef is a fraction of the layer's typical activation norm
    and transfers across layers and models. mode "ablate" removes `coef` times the projection on v
    (coef 1 projects it out completely).
    """

    vector: PersonaVector
    layers: Sequence[int]
    coef: float = 1.0
    mode: SteeringMode = "add"
    positions: SteeringPositions = "all"
    coef_unit: CoefUnit = "raw"

    def __post_init__(self) -> None:
        if isinstance(self.layers, int):
            self.layers = [self.layers]
        self.layers = list(self.layers)
        if self.mode not in MODES:
            raise ValueError(f"steering mode={self.mode!r}: expected one of {MODES}")
        if self.positions not in POSITIONS:
            raise ValueError(f"steering positions={self.positions!r}: expected one of {POSITIONS}")
        if self.coef_unit not in COEF_UNITS:
            raise ValueError(f"steering coef_unit={self.coef_unit!r}: expected one of {COEF_UNITS}")
        if (
            isinstance(self.coef, bool)
            or not isinstance(self.coef, (int, float))
            or not math.isfinite(self.coef)
        ):
            raise ValueError(
                f"steering coef for '{self.vector.trait}' must be a finite number, got {self.coef!r}"
            )
        if not self.layers:
            raise ValueError(f"steering for '{self.vector.trait}' names no layers")
        duplicates = sorted({layer for layer in self.layers if self.layers.count(layer) > 1})
        if duplicates:
            raise ValueError(
                f"steering for '{self.vector.trait}' names layer(s) {duplicates} more than once; each layer "
                "is steered once (use a larger coef to steer harder)"
            )
        for layer in self.layers:
            check_layer(layer, self.vector.num_layers, where=f"steering layer for '{self.vector.trait}'")
            if layer not in self.vector.layers:
                raise ValueError(f"vector '{self.vector.trait}' has no direction for layer {layer}")
            if self.coef_unit == "relative" and layer not in self.vector.mean_norms:
                raise ValueError(
                    f"coef_unit='relative' needs the mean activation norm of layer {layer}, which vector "
                    f"'{self.vector.trait}' does not record; use coef_unit='raw' or re-extract the vector"
                )

    def direction(self, layer: int) -> torch.Tensor:
        """The float32 tensor this spec uses at `layer`: the added delta (add) or the unit vector (ablate)."""
        if self.mode == "ablate":
            return self.vector.unit(layer)
        if self.coef_unit == "relative":
            return self.coef * self.vector.mean_norms[layer] * self.vector.unit(layer)
        return self.coef * self.vector[layer].float()


@dataclass
class _Op:
    spec: SteeringSpec
    direction: torch.Tensor  # float32, CPU
    cache: tuple[torch.device, torch.dtype, torch.Tensor] | None = None

    def on(self, like: torch.Tensor) -> torch.Tensor:
        if self.cache is None or self.cache[0] != like.device or self.cache[1] != like.dtype:
            self.cache = (like.device, like.dtype, self.direction.to(device=like.device, dtype=like.dtype))
        return self.cache[2]


@dataclass
class _Call:
    """What one forward call of the model covers: absolute positions [start, start + length)."""

    attention_mask: object  # a [B, T] tensor, or whatever else the forward got (checked in _mask)
    start: int  # tokens already in the KV cache before this call
    prompt_length: int | None  # tokens of the prompt, in the same (padded) coordinates; None = unknown


class Steerer:
    """Holds steering ops for a model; `with steerer.active():` registers the hooks."""

    def __init__(self, model: nn.Module, specs: Sequence[SteeringSpec], layers_path: str | None = None):
        self.model, self.layers_path = model, layers_path
        self.ops: dict[int, list[_Op]] = {}
        for spec in specs:
            vector_for_model(spec.vector, model, layers_path=layers_path)
            for layer in spec.layers:
                self.ops.setdefault(layer, []).append(_Op(spec, spec.direction(layer)))
        self.scale = 1.0  # multiplies every "add" delta (coefficient schedules)
        self._counts: dict[str, torch.Tensor | int] = {}
        self._needs_response = any(s.positions == "response" for s in specs)
        self._call = _Call(None, 0, None)
        self._response_mask: torch.Tensor | None = None
        self._explicit = False
        self._mask_cache: dict[tuple, torch.Tensor | None] = {}
        self._tracker = PositionTracker()

    # --- masks --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(
        self, attention_mask: torch.Tensor | None, response_mask: torch.Tensor | None = None
    ) -> Iterator[None]:
        """Set the masks of the batch about to run (and be back-propagated) explicitly."""
        previous = (self._call, self._response_mask, self._explicit)
        self._call = _Call(attention_mask, 0, None)
        self._response_mask, self._explicit = response_mask, True
        self._mask_cache.clear()
        try:
            yield
        finally:
            self._call, self._response_mask, self._explicit = previous
            self._mask_cache.clear()

    def _capture(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self._explicit:
            return
        at = self._tracker(module, args, kwargs)
        if (
            at.new_prompt
            and self._needs_response
            and self._response_mask is None
            and at.call.cache is None
            and "use_cache" not in at.call.inputs  # generate() always passes it; a plain model(ids) does not
        ):
            raise SteeringNoOp(
                "positions='response' on a plain forward pass would steer nothing: a forward with no KV "
                "cache is all prompt. Under generate() the response is found by itself; for a forward over "
                "prompt + response, pass response_mask= to steer() (or use steerer.batch(attention_mask, "
                "response_mask))."
            )
        self._call = _Call(at.attention_mask, at.start, at.prompt_length)
        self._mask_cache.clear()

    def _mask(self, positions: str, hidden: torch.Tensor) -> torch.Tensor | None:
        """[B, T, 1] mask of the positions to steer in `hidden`, or None for every position."""
        key = (positions, hidden.shape[:2], hidden.device, hidden.dtype)
        if key in self._mask_cache:
            return self._mask_cache[key]
        batch, length = hidden.shape[:2]
        attn = self._call.attention_mask
        valid = None
        if (
            isinstance(attn, torch.Tensor)
            and attn.dim() == 2
            and attn.shape[0] == batch
            and attn.shape[1] >= length
        ):
            valid = attn[:, -length:].to(device=hidden.device).bool()  # cached decoding: the last tokens
        mask = valid
        if positions != "all":
            if self._response_mask is not None and tuple(self._response_mask.shape[:2]) == (batch, length):
                response = self._response_mask.to(device=hidden.device).bool()
            elif self._explicit or self._call.prompt_length is None:
                response = torch.zeros(batch, length, dtype=torch.bool, device=hidden.device)
            else:
                absolute = torch.arange(length, device=hidden.device) + self._call.start
                response = (absolute >= self._call.prompt_length).expand(batch, length)
            mask = response if positions == "response" else ~response
            if valid is not None:
                mask = mask & valid
        result = None if mask is None else mask.unsqueeze(-1).to(hidden.dtype)
        self._mask_cache[key] = result
        return result

    # --- hooks --------------------------------------------------------------------------------
    def _count(self, op: _Op, mask: torch.Tensor | None, hidden: torch.Tensor) -> None:
        n = hidden.shape[0] * hidden.shape[1] if mask is None else mask.detach().sum()
        trait = op.spec.vector.trait
        self._counts[trait] = self._counts.get(trait, 0) + n  # a device tensor: no sync per hook call

    @property
    def steered_tokens(self) -> dict[str, int]:
        """Per trait: token positions steered so far outside autograd (summed over its layers)."""
        return {trait: int(n) for trait, n in self._counts.items()}

    def _apply(self, layer: int, hidden: torch.Tensor) -> torch.Tensor:
        """The steering ops of `layer` applied to the residual stream after that block."""
        for op in self.ops[layer]:
            mask = self._mask(op.spec.positions, hidden)
            if not torch.is_grad_enabled() or not hidden.requires_grad:
                self._count(op, mask, hidden)
            direction = op.on(hidden)
            rows = None if mask is None else mask[..., 0]
            if op.spec.mode == "add":
                delta = direction * self.scale if self.scale != 1.0 else direction
                hidden = residual_ops.add(hidden, delta, rows)
            else:
                hidden = residual_ops.ablate(hidden, direction, op.spec.coef, rows)
        return hidden

    def set_coef(self, spec: SteeringSpec, coef: float) -> None:
        """Change one spec's coefficient in place (used by the automatic coefficient controller)."""
        spec.coef = coef
        for layer, ops in self.ops.items():
            for op in ops:
                if op.spec is spec:
                    op.direction, op.cache = spec.direction(layer), None

    @contextlib.contextmanager
    def active(self) -> Iterator[Steerer]:
        """Register the hooks for the duration of the block (forward and backward)."""
        self._call = _Call(None, 0, None)
        self._tracker.reset()
        ops = {layer: [self._apply] for layer in self.ops}
        try:
            with attach(self.model, ops, pre_forward=self._capture, layers_path=self.layers_path):
                yield self
        finally:
            self._mask_cache.clear()
            self._tracker.reset()


def _resolve_coef(vector: PersonaVector, coef: float | None) -> float:
    if coef is not None:
        return coef
    if vector.coef is not None:
        return vector.coef
    raise ValueError(
        f"steer(): vector '{vector.trait}' has no calibrated coefficient, so pass coef= (e.g. coef=1.5; "
        f"negative to suppress the trait), or calibrate it ({command_name()} extract ... with calibration)"
    )


@contextlib.contextmanager
def steer(
    model: nn.Module,
    vector: PersonaVector | Sequence[SteeringSpec],
    layer: int | Sequence[int] | None = None,
    coef: float | None = None,
    mode: SteeringMode = "add",
    positions: SteeringPositions = "all",
    coef_unit: CoefUnit = "raw",
    response_mask: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    layers_path: str | None = None,
) -> Iterator[Steerer]:
    """Steer `model` inside the block: `with steer(model, vector, layer=16, coef=1.5): model.generate(...)`.

    `layer` and `coef` default to the vector's calibrated ones (an error if it has no coefficient and
    none is given; mode "ablate" defaults to coef 1). Pass a list of SteeringSpec to steer several traits
    at once. `response_mask` ([B, T] bool) marks the response tokens of a plain forward pass over
    prompt + response, for positions "response" / "prompt".
    """
    if isinstance(vector, PersonaVector):
        layers = [vector.default_layer()] if layer is None else [layer] if isinstance(layer, int) else layer
        strength = (1.0 if coef is None else coef) if mode == "ablate" else _resolve_coef(vector, coef)
        specs = [SteeringSpec(vector, layers, strength, mode, positions, coef_unit)]
    else:
        specs = list(vector)
    steerer = Steerer(model, specs, layers_path=layers_path)
    with steerer.active():
        if response_mask is not None:
            with steerer.batch(attention_mask, response_mask):
                yield steerer
        else:
            yield steerer
