"""Steering hooks: add `coef * v` to (or project v out of) the residual stream at chosen layers.

Hooks are forward hooks on decoder blocks, held by a `Steerer` and registered by a context manager,
so they stay registered through backward (gradient checkpointing re-runs the blocks there) and are
removed on exit. Positions are chosen per token from masks: never padding; "prompt" or "response"
tokens from an explicit response mask (training) or, when none is set, from the forward calls
themselves (generation: the first call is the prompt, cached decode steps are the response).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .layers import check_layer, get_decoder_layers, hidden_size
from .vector import PersonaVector

MODES = ("add", "ablate")
POSITIONS = ("all", "prompt", "response")
COEF_UNITS = ("raw", "relative")


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
    mode: str = "add"
    positions: str = "all"
    coef_unit: str = "raw"

    def __post_init__(self) -> None:
        if isinstance(self.layers, int):
            self.layers = [self.layers]
        if self.mode not in MODES:
            raise ValueError(f"steering mode={self.mode!r}: expected one of {MODES}")
        if self.positions not in POSITIONS:
            raise ValueError(f"steering positions={self.positions!r}: expected one of {POSITIONS}")
        if self.coef_unit not in COEF_UNITS:
            raise ValueError(f"steering coef_unit={self.coef_unit!r}: expected one of {COEF_UNITS}")
        if not self.layers:
            raise ValueError(f"steering for '{self.vector.trait}' names no layers")
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


class Steerer:
    """Holds steering ops for a model; `with steerer.active():` registers the hooks."""

    def __init__(self, model: nn.Module, specs: Sequence[SteeringSpec], layers_path: str | None = None):
        self.model = model
        self.blocks = get_decoder_layers(model, layers_path)
        size = hidden_size(model)
        self.ops: dict[int, list[_Op]] = {}
        for spec in specs:
            spec.vector.check_model(size, len(self.blocks), source=f"vector '{spec.vector.trait}'")
            for layer in spec.layers:
                self.ops.setdefault(layer, []).append(_Op(spec, spec.direction(layer)))
        self.scale = 1.0  # multiplies every "add" delta (coefficient schedules)
        self._attention_mask: torch.Tensor | None = None
        self._response_mask: torch.Tensor | None = None
        self._explicit = False
        self._calls = 0
        self._mask_cache: dict[tuple, torch.Tensor | None] = {}

    # --- masks --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(
        self, attention_mask: torch.Tensor | None, response_mask: torch.Tensor | None = None
    ) -> Iterator[None]:
        """Set the masks of the batch about to run (and be back-propagated) explicitly."""
        previous = (self._attention_mask, self._response_mask, self._explicit)
        self._attention_mask, self._response_mask, self._explicit = attention_mask, response_mask, True
        self._mask_cache.clear()
        try:
            yield
        finally:
            self._attention_mask, self._response_mask, self._explicit = previous
            self._mask_cache.clear()

    def _capture(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self._explicit:
            return
        self._attention_mask = kwargs.get("attention_mask")
        self._response_mask = None
        self._calls += 1
        self._mask_cache.clear()

    def _mask(self, positions: str, hidden: torch.Tensor) -> torch.Tensor | None:
        """[B, T, 1] mask of the positions to steer in `hidden`, or None for every position."""
        key = (positions, hidden.shape[:2], hidden.device, hidden.dtype)
        if key in self._mask_cache:
            return self._mask_cache[key]
        batch, length = hidden.shape[:2]
        attn = self._attention_mask
        valid = None
        if attn is not None and attn.dim() == 2 and attn.shape[0] == batch and attn.shape[1] >= length:
            valid = attn[:, -length:].to(device=hidden.device).bool()  # cached decoding: the last tokens
        response = None
        if self._response_mask is not None and self._response_mask.shape[:2] == (batch, length):
            response = self._response_mask.to(device=hidden.device).bool()
        elif positions != "all" and not self._explicit:
            # generation: a forward over more tokens than the cache holds is the prompt; decode steps respond
            prefill = attn is None or attn.shape[1] == length
            response = torch.full((batch, length), not prefill, device=hidden.device)
        if positions == "all":
            mask = valid
        else:
            if response is None:
                response = torch.zeros(batch, length, dtype=torch.bool, device=hidden.device)
            mask = response if positions == "response" else ~response
            if valid is not None:
                mask = mask & valid
        result = None if mask is None else mask.unsqueeze(-1).to(hidden.dtype)
        self._mask_cache[key] = result
        return result

    # --- hooks --------------------------------------------------------------------------------
    def _hook(self, layer: int):
        ops = self.ops[layer]

        def hook(module: nn.Module, args: tuple, output):
            hidden = output[0] if isinstance(output, tuple) else output
            for op in ops:
                mask = self._mask(op.spec.positions, hidden)
                direction = op.on(hidden)
                if op.spec.mode == "add":
                    delta = direction * self.scale if self.scale != 1.0 else direction
                    hidden = hidden + (delta if mask is None else mask * delta)
                else:
                    projection = (hidden @ direction).unsqueeze(-1) * direction * op.spec.coef
                    hidden = hidden - (projection if mask is None else mask * projection)
            if isinstance(output, tuple):
                return (hidden, *output[1:])
            return hidden

        return hook

    @contextlib.contextmanager
    def active(self) -> Iterator[Steerer]:
        """Register the hooks for the duration of the block (forward and backward)."""
        handles = [self.model.register_forward_pre_hook(self._capture, with_kwargs=True)]
        try:
            for layer in sorted(self.ops):
                handles.append(self.blocks[layer - 1].register_forward_hook(self._hook(layer)))
            yield self
        finally:
            for handle in handles:
                handle.remove()
            self._mask_cache.clear()


@contextlib.contextmanager
def steer(
    model: nn.Module,
    vector: PersonaVector | Sequence[SteeringSpec],
    layer: int | Sequence[int] | None = None,
    coef: float = 1.0,
    mode: str = "add",
    positions: str = "all",
    coef_unit: str = "raw",
) -> Iterator[Steerer]:
    """Steer `model` inside the block: `with steer(model, vector, layer=16, coef=1.5): model.generate(...)`.

    Pass a list of SteeringSpec to steer several traits at once.
    """
    if isinstance(vector, PersonaVector):
        layers = [vector.default_layer()] if layer is None else layer
        specs = [SteeringSpec(vector, layers, coef, mode, positions, coef_unit)]
    else:
        specs = list(vector)
    with Steerer(model, specs).active() as steerer:
        yield steerer
