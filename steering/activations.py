"""Read residual-stream activations (decoder block outputs) with hooks, batched and without grad."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from .layers import get_decoder_layers, unwrap_model


class _StopForward(Exception):
    """Raised by the last needed hook to skip the rest of the network."""


def _early_stop_allowed(model: nn.Module) -> bool:
    # Under ZeRO-3 every rank must run every block (parameters are gathered collectively).
    try:
        from transformers.integrations import is_deepspeed_zero3_enabled

        return not is_deepspeed_zero3_enabled()
    except ImportError:
        return True


@contextlib.contextmanager
def record_blocks(
    model: nn.Module, layers: Sequence[int], stop_early: bool = False
) -> Iterator[dict[int, torch.Tensor]]:
    """Record the outputs of the given 1-based layers on each forward; optionally stop after the last."""
    blocks = get_decoder_layers(model)
    records: dict[int, torch.Tensor] = {}
    last = max(layers)
    stop_early = stop_early and last < len(blocks) and _early_stop_allowed(model)

    def make_hook(layer: int):
        def hook(module, args, output):
            records[layer] = (output[0] if isinstance(output, tuple) else output).detach()
            if stop_early and layer == last:
                raise _StopForward

        return hook

    handles = [blocks[layer - 1].register_forward_hook(make_hook(layer)) for layer in sorted(set(layers))]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def run_forward(model: nn.Module, **inputs) -> None:
    """A no-grad forward that tolerates the early stop of `record_blocks`."""
    with torch.no_grad():
        try:
            model(**inputs, use_cache=False)
        except _StopForward:
            pass


def _device(model: nn.Module) -> torch.device:
    return next(unwrap_model(model).parameters()).device


@dataclass
class Activations:
    """Per-sample activations at every layer for the three read positions, [N, L, H] each (float32).

    Index 0 along L is layer 1. `mean_norms[l-1]` is the mean per-token norm over response tokens.
    """

    response_avg: torch.Tensor
    prompt_avg: torch.Tensor
    prompt_last: torch.Tensor
    mean_norms: torch.Tensor

    def at(self, position: str) -> torch.Tensor:
        return getattr(self, position)


def _left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids, mask


def prompt_response_activations(
    model: nn.Module,
    samples: Sequence[tuple[list[int], list[int]]],
    pad_id: int,
    batch_size: int = 16,
    progress: bool = True,
) -> Activations:
    """Activations of (prompt_ids, response_ids) pairs: one no-grad forward per batch over the ids.

    Samples are batched by length (left padding); padding is never averaged.
    """
    n_layers = len(get_decoder_layers(model))
    layers = list(range(1, n_layers + 1))
    device = _device(model)
    order = sorted(range(len(samples)), key=lambda i: len(samples[i][0]) + len(samples[i][1]))
    results: dict[str, list[tuple[int, torch.Tensor]]] = {
        "response_avg": [],
        "prompt_avg": [],
        "prompt_last": [],
    }
    norm_sum = torch.zeros(n_layers, dtype=torch.float64)
    norm_count = 0
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, len(order), batch_size), desc="activations", disable=not progress):
            idx = order[start : start + batch_size]
            rows = [list(samples[i][0]) + list(samples[i][1]) for i in idx]
            ids, attn = _left_pad(rows, pad_id)
            width = ids.shape[1]
            response = torch.zeros_like(attn, dtype=torch.bool)
            prompt = attn.bool().clone()
            last = torch.empty(len(idx), dtype=torch.long)
            for j, i in enumerate(idx):
                n_resp = len(samples[i][1])
                response[j, width - n_resp :] = n_resp > 0
                prompt[j, width - n_resp :] = False
                last[j] = width - n_resp - 1
            with record_blocks(model, layers) as records:
                run_forward(model, input_ids=ids.to(device), attention_mask=attn.to(device))
            hidden = torch.stack([records[layer] for layer in layers], dim=1).float().cpu()  # [B, L, T, H]
            resp = response[:, None, :, None].float()
            prm = prompt[:, None, :, None].float()
            results["response_avg"] += zip(
                idx, ((hidden * resp).sum(2) / resp.sum(2).clamp_min(1)), strict=True
            )
            results["prompt_avg"] += zip(idx, ((hidden * prm).sum(2) / prm.sum(2).clamp_min(1)), strict=True)
            results["prompt_last"] += zip(idx, hidden[torch.arange(len(idx)), :, last], strict=True)
            norms = hidden.norm(dim=-1)  # [B, L, T]
            norm_sum += (norms * response[:, None, :]).sum(dim=(0, 2)).double()
            norm_count += int(response.sum())
    finally:
        model.train(was_training)

    def ordered(pairs: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
        return torch.stack([t for _, t in sorted(pairs, key=lambda p: p[0])])

    return Activations(
        response_avg=ordered(results["response_avg"]),
        prompt_avg=ordered(results["prompt_avg"]),
        prompt_last=ordered(results["prompt_last"]),
        mean_norms=(norm_sum / max(norm_count, 1)).float(),
    )


def last_prompt_activations(
    model: nn.Module, tokenizer, prompts: Sequence[str], layers: Sequence[int], batch_size: int = 32
) -> torch.Tensor:
    """Activation of the last prompt token at each of `layers`, [N, len(layers), H] float32.

    `prompts` are already formatted texts (see steering.chat.format_chat). Stops after the deepest layer.
    """
    device = _device(model)
    out = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(prompts), batch_size):
            enc = tokenizer(
                list(prompts[start : start + batch_size]),
                return_tensors="pt",
                padding=True,
                padding_side="left",
                add_special_tokens=False,
            )
            with record_blocks(model, layers, stop_early=True) as records:
                run_forward(
                    model,
                    input_ids=enc["input_ids"].to(device),
                    attention_mask=enc["attention_mask"].to(device),
                )
            out.append(torch.stack([records[layer][:, -1].float().cpu() for layer in layers], dim=1))
    finally:
        model.train(was_training)
    return torch.cat(out)
