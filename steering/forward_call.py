"""What a forward pre-hook sees of one model call: its inputs, KV cache and how many tokens came before.

Steering (steering.hooks.Steerer) and monitoring (monitoring.monitor.Monitor) both read the call this
way: positional arguments bound to the forward's parameter names, the cache under either name
(`cache` in newer transformers, `past_key_values` before) and its length.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn


def past_length(cache: object) -> int | None:
    """Tokens already in `cache`; None when the cache can't say (recurrent or linear-attention layers)."""
    if cache is None:
        return 0
    if hasattr(cache, "get_seq_length"):
        try:
            return int(cache.get_seq_length())
        except Exception:  # noqa: BLE001 - e.g. a cache of only linear-attention layers
            return None
    if isinstance(cache, (tuple, list)) and cache and isinstance(cache[0], (tuple, list)) and cache[0]:
        return int(cache[0][0].shape[-2])  # legacy tuple cache: (key, value) per layer
    return None


@dataclass
class ForwardCall:
    """The named inputs of one forward call."""

    inputs: dict

    @property
    def cache(self) -> object:
        return self.inputs.get("cache", self.inputs.get("past_key_values"))

    @property
    def input_ids(self) -> torch.Tensor | None:
        return self.inputs.get("input_ids")

    @property
    def tokens(self) -> torch.Tensor | None:
        """input_ids, or inputs_embeds when the call has no ids: the tensor whose [B, T] is the call's."""
        ids = self.inputs.get("input_ids")
        return ids if ids is not None else self.inputs.get("inputs_embeds")

    @property
    def length(self) -> int | None:
        """Tokens of this call (T), None when neither ids nor embeddings have a sequence axis."""
        tokens = self.tokens
        return tokens.shape[1] if tokens is not None and tokens.dim() >= 2 else None

    @property
    def attention_mask(self) -> object:
        return self.inputs.get("attention_mask")


class ForwardCallReader:
    """Reads calls of one model in its forward pre-hook (the forward's signature is looked up once)."""

    def __init__(self) -> None:
        self._signature: inspect.Signature | None = None

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict) -> ForwardCall:
        if not args:
            return ForwardCall(kwargs)
        if self._signature is None:
            self._signature = inspect.signature(module.forward)
        try:
            return ForwardCall({**self._signature.bind_partial(*args, **kwargs).arguments, **kwargs})
        except TypeError:
            return ForwardCall(kwargs)
