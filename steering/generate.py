"""Batched generation that returns token ids (prompt and response) as well as text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .layers import unwrap_model


@dataclass
class Generation:
    prompt: str
    prompt_ids: list[int]
    response_ids: list[int]  # up to, not including, the first end-of-turn token
    response: str


def _stop_ids(model: nn.Module, tokenizer) -> set[int]:
    ids = set()
    for source in (getattr(unwrap_model(model), "generation_config", None), tokenizer):
        eos = getattr(source, "eos_token_id", None)
        if eos is not None:
            ids.update(eos if isinstance(eos, (list, tuple)) else [eos])
    return ids


def generate(
    model: nn.Module,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 32,
    seed: int | None = None,
) -> list[Generation]:
    """Generate one response per formatted prompt, in batches with left padding.

    temperature 0 decodes greedily. Responses are cut at the first end-of-turn token, so a pad token
    equal to EOS (SmolLM2, Llama) can't leak into them.
    """
    if seed is not None:
        torch.manual_seed(seed)
    device = next(unwrap_model(model).parameters()).device
    stop = _stop_ids(model, tokenizer)
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p}
        if temperature > 0
        else {"do_sample": False}
    )
    results = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = list(prompts[start : start + batch_size])
            enc = tokenizer(
                chunk, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
            )
            with torch.no_grad():
                out = model.generate(
                    input_ids=enc["input_ids"].to(device),
                    attention_mask=enc["attention_mask"].to(device),
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    **sampling,
                )
            width = enc["input_ids"].shape[1]
            for row, prompt in enumerate(chunk):
                prompt_ids = enc["input_ids"][row][enc["attention_mask"][row].bool()].tolist()
                response_ids = []
                for token in out[row, width:].tolist():
                    if token in stop:
                        break
                    response_ids.append(token)
                text = tokenizer.decode(response_ids, skip_special_tokens=True)
                results.append(Generation(prompt, prompt_ids, response_ids, text))
    finally:
        model.train(was_training)
    return results
