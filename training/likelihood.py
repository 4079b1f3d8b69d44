"""Log-likelihood scoring on an in-memory model: continuations after contexts (batched, one KV cache per
context), the multiple-choice accuracy of the `mc` benchmark, and the held-out loss of `heldout_loss`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from persona_vaccine.models.chat import format_chat
from persona_vaccine.models.compat import forward_parameters, model_device
from persona_vaccine.models.layers import eval_mode, unwrap_model

from .capability_error import CapabilityError
from .mc_items import LETTERS, cloze_prompt, mc_prompt


def _pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and their attention mask."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(list(row), dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def _score_batch(
    model: nn.Module,
    contexts: list[list[int]],
    continuations: list[list[list[int]]],
    pad_id: int,
    params: set[str],
) -> list[list[float]]:
    """Summed log-probabilities of each context's continuations (right padding, attention masks).

    The contexts run once; their KV cache is then copied to one row per multi-token continuation,
    whose remaining tokens run with explicit positions, so padding changes nothing.
    """
    from transformers import DynamicCache

    device = model_device(model)
    cache_kwarg = "cache" if "cache" in params else "past_key_values"
    lengths = torch.tensor([len(c) for c in contexts])
    ids, mask = _pad(contexts, pad_id)
    config: Any = unwrap_model(model).config
    cache = DynamicCache(config=config)
    kwargs = {"use_cache": True, cache_kwarg: cache}
    last = lengths - 1
    if "logits_to_keep" in params:  # only the positions read: one per distinct context length
        keep = torch.unique(last)
        kwargs["logits_to_keep"] = keep.to(device)
        last = torch.searchsorted(keep, last)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs).logits
    first = logits[torch.arange(len(contexts), device=device), last.to(device)].float().log_softmax(-1).cpu()
    del logits

    scores = [[first[i, cont[0]].item() for cont in conts] for i, conts in enumerate(continuations)]
    tails = [
        (i, j, cont) for i, conts in enumerate(continuations) for j, cont in enumerate(conts) if len(cont) > 1
    ]
    if tails:
        rows = torch.tensor([i for i, _, _ in tails])
        cache.batch_select_indices(rows.to(device))
        tail_ids, tail_mask = _pad([cont[:-1] for _, _, cont in tails], pad_id)
        positions = lengths[rows].unsqueeze(1) + torch.arange(tail_ids.shape[1])
        out = model(
            input_ids=tail_ids.to(device),
            attention_mask=torch.cat([mask[rows], tail_mask], dim=1).to(device),
            position_ids=positions.to(device),
            **{"use_cache": True, cache_kwarg: cache},
        ).logits
        logp = out.float().log_softmax(-1).cpu()
        for r, (i, j, cont) in enumerate(tails):
            targets = torch.tensor(cont[1:])
            scores[i][j] += logp[r, torch.arange(len(targets)), targets].sum().item()
    return scores


def continuation_logprobs(
    model: nn.Module,
    requests: Sequence[tuple[list[int], list[list[int]]]],
    pad_id: int,
    batch_size: int = 16,
) -> list[list[float]]:
    """Summed log P(continuation | context) for each (context ids, [continuation ids]) request.

    No-grad forwards over `batch_size` contexts at a time (sorted by length); eval mode is set and
    the model's training mode restored after. Models whose forward takes no `position_ids` run one
    context at a time.
    """
    for context, conts in requests:
        if not context or not conts or any(not c for c in conts):
            raise CapabilityError("every request needs a non-empty context and non-empty continuations")
    params = forward_parameters(model)
    if "position_ids" not in params:
        batch_size = 1
    order = sorted(range(len(requests)), key=lambda k: len(requests[k][0]))
    out: list[list[float]] = [[] for _ in requests]
    with eval_mode(model):
        with torch.no_grad():
            for start in range(0, len(order), max(1, batch_size)):
                idx = order[start : start + max(1, batch_size)]
                scores = _score_batch(
                    model,
                    [list(requests[k][0]) for k in idx],
                    [[list(c) for c in requests[k][1]] for k in idx],
                    pad_id,
                    params,
                )
                for k, s in zip(idx, scores, strict=True):
                    out[k] = s
    return out


def _pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return 0 if pad_id is None else int(pad_id)  # padding is masked: any id in the vocabulary works


def choice_logprobs(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, items: Sequence[dict], batch_size: int = 16
) -> list[dict[str, list[float]]]:
    """Per item, summed log-likelihoods: `letter`, of " A".." D" after `mc_prompt` (choices listed);
    `text`, of " <choice text>" after `cloze_prompt` (the question alone)."""

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    requests = []
    for item in items:
        requests.append((ids(mc_prompt(tokenizer, item)), [ids(f" {letter}") for letter in LETTERS]))
        requests.append(
            (ids(cloze_prompt(tokenizer, item)), [ids(f" {choice}") for choice in item["choices"]])
        )
    scores = continuation_logprobs(model, requests, _pad_id(tokenizer), batch_size=batch_size)
    return [{"letter": scores[2 * i], "text": scores[2 * i + 1]} for i in range(len(items))]


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda k: values[k])  # ties: the first


def mc_accuracy(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, items: Sequence[dict], batch_size: int = 16
) -> dict:
    """Accuracy on multiple-choice items, scored by log-likelihood.

    Returns `accuracy` (argmax over the letters, choices listed in the prompt), `accuracy_text`
    (argmax of the choice text's log-likelihood after the bare question, divided by its length in
    characters, after the chat-formatted question: not lm-eval's acc_norm), `accuracy_text_raw` (the same, not normalised), the binomial
    standard errors `stderr` and `stderr_text`, `n`, and `per_category` ({category: {accuracy,
    accuracy_text, accuracy_text_raw, n}}).
    """
    if not items:
        raise CapabilityError("mc_accuracy needs at least one item")
    scores = choice_logprobs(model, tokenizer, items, batch_size=batch_size)
    correct: dict[str, list[bool]] = {"accuracy": [], "accuracy_text": [], "accuracy_text_raw": []}
    for item, s in zip(items, scores, strict=True):
        normed = [ll / len(f" {choice}") for ll, choice in zip(s["text"], item["choices"], strict=True)]
        correct["accuracy"].append(_argmax(s["letter"]) == item["answer"])
        correct["accuracy_text"].append(_argmax(normed) == item["answer"])
        correct["accuracy_text_raw"].append(_argmax(s["text"]) == item["answer"])

    def summary(idx: list[int]) -> dict:
        return {**{k: sum(v[i] for i in idx) / len(idx) for k, v in correct.items()}, "n": len(idx)}

    result = summary(list(range(len(items))))
    n, acc, acc_text = result["n"], result["accuracy"], result["accuracy_text"]
    categories: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        categories.setdefault(item["category"], []).append(i)
    return {
        **result,
        "stderr": math.sqrt(acc * (1 - acc) / n),
        "stderr_text": math.sqrt(acc_text * (1 - acc_text) / n),
        "per_category": {category: summary(idx) for category, idx in categories.items()},
    }


def _completion_ids(tokenizer: PreTrainedTokenizerBase, row: dict, index: int) -> tuple[list[int], list[int]]:
    prompt, completion = row.get("prompt"), row.get("completion")
    if not isinstance(prompt, list) or not prompt or not isinstance(completion, list) or not completion:
        raise CapabilityError(
            f"held-out row {index}: expected {{'prompt': [messages], 'completion': [assistant message]}}"
        )
    prompt_text = format_chat(tokenizer, list(prompt))
    full_text = format_chat(tokenizer, [*prompt, *completion], add_generation_prompt=False)
    if full_text.startswith(prompt_text):  # the completion as the template renders it, end of turn included
        completion_text = full_text[len(prompt_text) :]
    else:  # templates that rewrite earlier turns: the bare answer and EOS
        completion_text = "".join(m["content"] for m in completion) + (tokenizer.eos_token or "")
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    return prompt_ids, tokenizer(completion_text, add_special_tokens=False)["input_ids"]


def heldout_loss(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[dict],
    batch_size: int = 8,
    max_length: int = 256,
) -> float:
    """Mean token cross-entropy on the assistant completion tokens of prompt-completion rows.

    Rows are {"prompt": [messages], "completion": [assistant message]}; prompt tokens are masked (the
    completion-only loss of TRL's SFT), sequences are cut at `max_length` tokens, and the mean is over
    all completion tokens of all rows. No grad; the model's training mode is restored after.
    """
    samples = []
    for index, row in enumerate(rows):
        prompt_ids, completion_ids = _completion_ids(tokenizer, row, index)
        sequence = (prompt_ids + completion_ids)[:max_length]
        if len(sequence) > len(prompt_ids):
            samples.append((sequence, len(prompt_ids)))
    if not samples:
        raise CapabilityError(
            f"heldout_loss: no completion tokens within max_length={max_length} in {len(rows)} rows"
        )
    device = model_device(model)
    pad_id = _pad_id(tokenizer)
    total, count = 0.0, 0
    with eval_mode(model):
        with torch.no_grad():
            for start in range(0, len(samples), max(1, batch_size)):
                batch = samples[start : start + max(1, batch_size)]
                ids, mask = _pad([s for s, _ in batch], pad_id)
                labels = mask.clone()
                for i, (_, n_prompt) in enumerate(batch):
                    labels[i, :n_prompt] = 0
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                target = labels[:, 1:].bool().to(device)
                picked = logits[:, :-1][target].float()
                loss = torch.nn.functional.cross_entropy(
                    picked, ids[:, 1:].to(device)[target], reduction="sum"
                )
                total += loss.item()
                count += int(target.sum())
    return total / count
