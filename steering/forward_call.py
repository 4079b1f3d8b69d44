"""What a forward pre-hook sees of one model call, and where its tokens sit in the sequence.

`PositionTracker` is the one position tracker of the hook core: steering (`steering.hooks.Steerer`) and
monitoring (`monitoring.monitor.Monitor`) both follow a model's calls with it. It binds positional
arguments to the forward's parameter names, finds the cache under either name (`cache` in newer
transformers, `past_key_values` before) and its length, and tells a new prompt (prefill) from decoding
on a KV cache, from more prompt on a cache (a new turn) and from generation without a cache.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

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


_RECURRENT_STATES = ("state", "mems", "cache_params")  # generate's per-model caches that are not a Cache


@dataclass
class CallPositions:
    """Where one forward call's tokens sit: absolute positions [start, start + length)."""

    call: ForwardCall
    attention_mask: Any  # a [B, T] tensor, or whatever else the forward got
    start: int  # tokens already in the KV cache (or recurrent state) before this call
    prompt_length: int | None  # tokens of the prompt, in the same (padded) coordinates; None = unknown
    new_prompt: bool  # this call starts a new sequence

    def response(self, batch: int, length: int, device: torch.device) -> torch.Tensor:
        """[B, T] bool: which of this call's positions are past the prompt (all False when unknown)."""
        if self.prompt_length is None:
            return torch.zeros(batch, length, dtype=torch.bool, device=device)
        absolute = torch.arange(length, device=device) + self.start
        return (absolute >= self.prompt_length).expand(batch, length)


class PositionTracker:
    """Follows the calls of one model (use it as, or inside, its forward pre-hook)."""

    def __init__(self) -> None:
        self._read_call = ForwardCallReader()
        self.reset()

    def reset(self) -> None:
        self.current: CallPositions | None = None
        self._last_ids: torch.Tensor | None = None
        self._seen = 0  # tokens of the current sequence the model has processed so far
        self._last_cache: object = None

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict) -> CallPositions:
        call = self._read_call(module, args, kwargs)
        inputs, cache = call.inputs, call.cache
        previous = self.current.prompt_length if self.current is not None else None
        state = next((inputs[k] for k in _RECURRENT_STATES if inputs.get(k) is not None), None)
        if cache is None and state is not None and previous is not None:
            cache, start = state, self._seen  # a recurrent state (RWKV, XLNet...): it continues what we saw
        else:
            known = past_length(cache)
            # a cache that can't tell its length: the same object again continues the sequence we saw
            start = known if known is not None else (self._seen if cache is self._last_cache else 0)
        self._last_cache = cache
        ids, length = call.tokens, call.length
        prompt_length, new_prompt = previous, False
        if start > 0:
            if length is not None and length > 1:  # more prompt on top of a cache (a new turn)
                prompt_length = start + length
            elif prompt_length is None:  # a cache filled before tracking began: all of it is prompt
                prompt_length = start
        elif not self._continues(ids, previous):  # else: generation without a KV cache, same prompt again
            prompt_length, new_prompt = length, True  # a new prefill: this call is the prompt
        self._last_ids = ids.detach() if ids is not None and ids.dtype == torch.long else None
        self._seen = start + (length or 0)
        self.current = CallPositions(call, call.attention_mask, start, prompt_length, new_prompt)
        return self.current

    def _continues(self, ids: torch.Tensor | None, prompt_length: int | None) -> bool:
        last = self._last_ids
        if ids is None or last is None or ids.dtype != torch.long or prompt_length is None:
            return False
        return (
            ids.shape[0] == last.shape[0]
            and ids.shape[1] > last.shape[1]
            and torch.equal(ids[:, : last.shape[1]], last)
        )
