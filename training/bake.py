"""Fold a constant steering addition into a checkpoint's weights, on any architecture where it is exact.

Adding `delta` to the output of decoder block l for every token equals adding `delta` to the bias of
the block's last linear layer that writes into the residual stream, provided nothing (a norm, a gate,
an expert router) sits between that layer and the block output. Which layer that is, and whether the
bias survives a plain `from_pretrained`, is found from the model itself, not from a table: the
candidate is perturbed and the block output must move by exactly the perturbation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from persona_vaccine.errors import UserError
from persona_vaccine.models.layers import (
    eval_mode,
    get_decoder_layers,
    hidden_size,
    unwrap_model,
)
from persona_vaccine.steering.hook_core import attach

_BIAS_FLAGS = ("mlp_bias",)  # config switches that give MLP projections a bias at load time


class ExportError(UserError, ValueError):
    """A run can't be exported as asked; the message says why and what to do."""


class BakeError(ExportError):
    """Steering can't be folded into this checkpoint's weights."""


def _out_features(module: nn.Module) -> int | None:
    if isinstance(module, nn.Linear):
        return module.out_features
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf"):  # GPT-2 style, weight [in, out]
        return int(getattr(module, "nf"))  # noqa: B009 - an attribute torch's Module typing doesn't know
    return None


def _probe_ids(base: nn.Module) -> torch.Tensor:
    config: Any = base.config
    vocab = int(getattr(config.get_text_config(), "vocab_size", 32) or 32)
    device = next(base.parameters()).device
    return torch.arange(1, 5, device=device).remainder(max(vocab - 1, 1)).unsqueeze(0) + 1


def _block_output(base: nn.Module, layer: int, ids: torch.Tensor, perturb=None) -> torch.Tensor:
    """Block `layer`'s output on `ids`, read through the hook core; `perturb` = (sub-module, delta) adds
    delta to that sub-module's output inside the block (a weight-side probe, not a residual-stream op)."""
    seen: dict[str, torch.Tensor] = {}

    def read(_: int, hidden: torch.Tensor) -> None:
        seen["h"] = hidden.detach()

    handle = None
    if perturb is not None:
        module, delta = perturb
        handle = module.register_forward_hook(lambda m, a, o: o + delta.to(o.dtype))
    try:
        with torch.no_grad(), attach(base, {layer: [read]}):
            base(input_ids=ids, use_cache=False)
    finally:
        if handle is not None:
            handle.remove()
    return seen["h"]


def residual_write(model: nn.Module, layer: int) -> tuple[str, nn.Module]:
    """(name inside the block, module) of block `layer`'s last linear whose output reaches the block output as is."""
    base = unwrap_model(model)
    block = get_decoder_layers(base)[layer - 1]
    size = hidden_size(base)
    candidates = [(n, m) for n, m in block.named_modules() if _out_features(m) == size]
    has_switch = any(getattr(base.config, flag, None) is not None for flag in _BIAS_FLAGS)
    if not has_switch and all(getattr(m, "bias", None) is None for _, m in candidates):
        raise _no_bias(base.config)
    ids = _probe_ids(base)
    with eval_mode(base):
        return _first_faithful(base, layer, candidates, ids, size)


def _first_faithful(base, layer: int, candidates, ids, size) -> tuple[str, nn.Module]:
    model_type = getattr(base.config, "model_type", "?")
    try:
        plain = _block_output(base, layer, ids)
    except RuntimeError as e:
        raise BakeError(
            f"baking steering into a '{model_type}' checkpoint is not supported here: the model failed on a probe "
            f"forward ({e}). Steer at inference with persona_vaccine.steering.hooks.steer(model, vector, layer, coef) instead."
        ) from e
    delta = torch.linspace(-1.0, 1.0, size, device=plain.device, dtype=plain.dtype)
    tol = 1e-3 * float(delta.abs().max()) + 1e-4 * float(plain.abs().max())
    for name, module in reversed(candidates):
        try:
            moved = _block_output(base, layer, ids, (module, delta)) - plain
        except RuntimeError:  # the perturbation broke a shape downstream: not a residual write
            continue
        if torch.allclose(moved, delta.expand_as(moved), atol=tol, rtol=0):
            return name, module
    raise BakeError(
        f"baking steering into a '{model_type}' checkpoint is not supported: no linear layer of its blocks writes into the "
        "residual stream unchanged (a norm, gate or expert router follows each one), so no bias can hold a "
        "constant addition. Steer at inference with persona_vaccine.steering.hooks.steer(model, vector, layer, coef) instead."
    )


def _zero_bias(module: nn.Module) -> None:
    if getattr(module, "bias", None) is None:
        out = _out_features(module)
        weight = module.weight
        assert out is not None and isinstance(weight, torch.Tensor)
        module.bias = nn.Parameter(torch.zeros(out, dtype=weight.dtype, device=weight.device))


def _bias_keys_at_load(config) -> set[str]:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        reference = AutoModelForCausalLM.from_config(config)
    return {k for k in reference.state_dict() if k.endswith(".bias")}


def _ensure_loadable_bias(base: nn.Module, module: nn.Module) -> None:
    """Make sure `module.bias` exists and is a parameter that `from_pretrained` will load."""
    if getattr(module, "bias", None) is not None:
        return
    config = base.config
    for flag in _BIAS_FLAGS:
        if getattr(config, flag, None) is False:
            setattr(config, flag, True)
            wanted = _bias_keys_at_load(config)
            for name, sub in base.named_modules():
                if f"{name}.bias" in wanted and _out_features(sub) is not None:
                    _zero_bias(sub)
            have = {k for k in base.state_dict() if k.endswith(".bias")}
            if module.bias is not None and have == wanted:
                return
            raise BakeError(f"setting config.{flag}=True does not give the residual write a loadable bias")
    raise _no_bias(config)


def _no_bias(config) -> BakeError:
    return BakeError(
        f"baking steering into a '{getattr(config, 'model_type', '?')}' checkpoint is not supported: its residual "
        "write has no bias and its config has no switch (such as mlp_bias) to load one. Steer at inference "
        "with persona_vaccine.steering.hooks.steer(model, vector, layer, coef) instead."
    )


def bake_steering(model: nn.Module, deltas: dict[int, torch.Tensor]) -> list[str]:
    """Add `deltas[l]` to the output of block l (1-based) for every token, as weights (in place).

    Returns the parameter names that received the deltas.
    """
    base = unwrap_model(model)
    blocks = get_decoder_layers(base)
    for layer in deltas:
        if not 1 <= layer <= len(blocks):
            raise BakeError(f"bake layer {layer} is out of range 1..{len(blocks)}")
    writes = {layer: residual_write(base, layer) for layer in deltas}
    names = []
    for layer, delta in deltas.items():
        name, module = writes[layer]
        _ensure_loadable_bias(base, module)
        bias = module.bias
        assert isinstance(bias, torch.Tensor)
        with torch.no_grad():
            bias += delta.to(dtype=bias.dtype, device=bias.device)
        prefix = next(n for n, m in base.named_modules() if m is blocks[layer - 1])
        names.append(f"{prefix}.{name}.bias")
    return names
