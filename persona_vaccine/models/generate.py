"""Batched generation that returns token ids (prompt and response) as well as text."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from transformers import LogitsProcessor, LogitsProcessorList

from persona_vaccine.models.layers import eval_mode, unwrap_model

logger = logging.getLogger(__name__)


@dataclass
class Generation:
    prompt: str
    prompt_ids: list[int]
    response_ids: list[int]  # up to, not including, the first end-of-turn token
    response: str


def stop_ids(model: nn.Module, tokenizer) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(unwrap_model(model), "generation_config", None), tokenizer):
        eos = getattr(source, "eos_token_id", None)
        if eos is not None:
            ids.update(eos if isinstance(eos, (list, tuple)) else [eos])
    return ids


def context_length(model: nn.Module) -> int | None:
    """The most tokens (prompt + response) the model's positions allow, when its config says."""
    config = getattr(unwrap_model(model), "config", None)
    config = getattr(config, "get_text_config", lambda: config)() if config is not None else None
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_new_tokens(model: nn.Module, max_new_tokens: int, where: str = "max_new_tokens") -> int:
    """`max_new_tokens` if positive and within the model's context, else capped there (with a warning).

    ValueError for zero or negative values.
    """
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
        raise ValueError(f"{where}={max_new_tokens!r}: must be a positive number of tokens (e.g. 64)")
    limit = context_length(model)
    if limit is not None and max_new_tokens > limit:
        logger.warning(
            "%s=%d exceeds the model's context of %d tokens: capped at %d (prompt tokens count too)",
            where,
            max_new_tokens,
            limit,
            limit,
        )
        return limit
    return max_new_tokens


class SeededSampler(LogitsProcessor):
    """Temperature / top-p sampling with one torch.Generator per batch row.

    Temperature, then the model's generation_config top_k, then top_p, as transformers samples.
    Each row's draws depend only on its own seed, not on the batch it shares, so a sample is the
    same whether it is generated alone, in another batch, or after a resumed run. It returns scores
    that are -inf except at the drawn token, so greedy decoding emits exactly that token.
    """

    def __init__(
        self, seeds: Sequence[int], temperature: float, top_p: float, top_k: int | None = None
    ) -> None:
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = scores.float() / self.temperature
        if self.top_k and self.top_k < logits.shape[-1]:  # as transformers' sampling: top-k, then top-p
            kth = logits.topk(self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, -float("inf"))
        probs = logits.softmax(-1).cpu()
        if self.top_p < 1.0:
            ordered, order = probs.sort(-1, descending=True)
            outside = ordered.cumsum(-1) - ordered > self.top_p  # keep the smallest set above top_p
            probs = probs.scatter(-1, order, ordered.masked_fill(outside, 0.0))
        drawn = [
            int(torch.multinomial(row, 1, generator=g)) for row, g in zip(probs, self.generators, strict=True)
        ]
        out = torch.full_like(scores, -float("inf"))
        out[torch.arange(len(drawn)), torch.tensor(drawn, device=scores.device)] = 0.0
        return cast(torch.FloatTensor, out)


def generate(
    model: nn.Module,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 32,
    seed: int | None = None,
    seeds: Sequence[int] | None = None,
    progress: str | None = None,
) -> list[Generation]:
    """Generate one response per formatted prompt, in batches with left padding.

    With `progress`, a progress bar of that title counts the decoding steps of every batch (a batch
    that stops early jumps to its end), so a long generation shows it is moving.

    temperature 0 decodes greedily. `seeds` (one per prompt) makes each sampled response depend
    only on its own seed (`SeededSampler`); `seed` seeds torch's global generator instead.
    `max_new_tokens` is capped by the model's context. Responses are cut at the first end-of-turn
    token, so a pad token equal to EOS (SmolLM2, Llama) can't leak into them.
    """
    if seeds is not None and len(seeds) != len(prompts):
        raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
    if seed is not None:
        torch.manual_seed(seed)
    max_new_tokens = check_new_tokens(model, max_new_tokens)
    limit = context_length(model)
    device = next(unwrap_model(model).parameters()).device
    stop = stop_ids(model, tokenizer)
    sampling: dict[str, Any] = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p}
        if temperature > 0
        else {"do_sample": False}
    )
    results = []
    with eval_mode(model):
        from tqdm.auto import tqdm

        n_batches = -(-len(prompts) // batch_size)
        bar = tqdm(total=n_batches * max_new_tokens, desc=progress, unit="step", disable=progress is None)
        try:
            for start in range(0, len(prompts), batch_size):
                chunk = list(prompts[start : start + batch_size])
                enc = tokenizer(
                    chunk, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
                )
                width = enc["input_ids"].shape[1]
                new_tokens = max_new_tokens if limit is None else max(1, min(max_new_tokens, limit - width))
                if new_tokens < max_new_tokens:
                    logger.warning("prompts of %d tokens leave room for %d new tokens", width, new_tokens)
                kwargs: dict[str, Any] = dict(sampling)
                if seeds is not None and temperature > 0:
                    top_k = getattr(getattr(unwrap_model(model), "generation_config", None), "top_k", None)
                    sampler = SeededSampler(seeds[start : start + batch_size], temperature, top_p, top_k)
                    kwargs = {"do_sample": False, "logits_processor": LogitsProcessorList([sampler])}
                if progress is not None:
                    kwargs["streamer"] = _StepCounter(bar)
                with torch.no_grad():
                    out = cast(Callable[..., torch.Tensor], model.generate)(  # a transformers/PEFT model
                        input_ids=enc["input_ids"].to(device),
                        attention_mask=enc["attention_mask"].to(device),
                        max_new_tokens=new_tokens,
                        pad_token_id=tokenizer.pad_token_id,
                        **kwargs,
                    )
                for row, prompt in enumerate(chunk):
                    prompt_ids = enc["input_ids"][row][enc["attention_mask"][row].bool()].tolist()
                    response_ids = []
                    for token in out[row, width:].tolist():
                        if token in stop:
                            break
                        response_ids.append(token)
                    text = tokenizer.decode(response_ids, skip_special_tokens=True)
                    results.append(Generation(prompt, prompt_ids, response_ids, text))
                bar.update((start // batch_size + 1) * max_new_tokens - bar.n)  # the batch's end
        finally:
            bar.close()
    return results


class _StepCounter:
    """A `generate` streamer that only counts decoding steps on a progress bar (the outputs are unchanged)."""

    def __init__(self, bar):
        self.bar, self.prompt_seen = bar, False

    def put(self, value) -> None:
        if self.prompt_seen:  # the first call carries the prompt
            self.bar.update(1)
        self.prompt_seen = True

    def end(self) -> None:
        pass
