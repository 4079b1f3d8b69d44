"""Shims over transformers versions and model wrappers, in one place (no other module inspects signatures)."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from persona_vaccine.models.layers import unwrap_model


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (through DeepSpeed, DDP, PEFT and compile wrappers)."""
    return next(unwrap_model(model).parameters()).device


def forward_parameters(model: nn.Module) -> set[str]:
    """The names the model's forward takes (of the unwrapped model)."""
    return set(inspect.signature(unwrap_model(model).forward).parameters)


def cache_kwarg_name(model: nn.Module) -> str:
    """The forward's name for the KV cache: `cache` in newer transformers, `past_key_values` before."""
    return "cache" if "cache" in forward_parameters(model) else "past_key_values"


def cache_kwargs(model: nn.Module, cache: object) -> dict:
    """`{name: cache}` under the forward's name for the KV cache."""
    return {cache_kwarg_name(model): cache}


def output_cache(output: object) -> Any:
    """The KV cache of a forward's output: `cache` in transformers >= 5.2x, `past_key_values` before."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values")  # noqa: B009


def last_logits_only(model: nn.Module) -> dict:
    """`logits_to_keep=1` where the model takes it: no [batch, length, vocab] logits for a prompt."""
    return {"logits_to_keep": 1} if "logits_to_keep" in forward_parameters(model) else {}
