"""Read residual-stream activations (decoder block outputs) with hooks, batched and without grad."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from persona_vaccine.models.compat import cache_kwarg_name, model_device
from persona_vaccine.models.layers import eval_mode, get_decoder_layers, unwrap_model
from persona_vaccine.steering.hook_core import attach


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
def _on_blocks(
    model: nn.Module,
    layers: Sequence[int],
    fn: Callable[[int, torch.Tensor], None],
    stop_after: int | None = None,
) -> Iterator[None]:
    """Call `fn(layer, block_output)` for each given 1-based layer; raise `_StopForward` after `stop_after`."""

    def read(layer: int, hidden: torch.Tensor) -> None:
        fn(layer, hidden)
        if layer == stop_after:
            raise _StopForward

    with attach(model, {layer: [read] for layer in set(layers)}):
        yield


@contextlib.contextmanager
def record_blocks(
    model: nn.Module, layers: Sequence[int], stop_early: bool = False
) -> Iterator[dict[int, torch.Tensor]]:
    """Record the outputs of the given 1-based layers on each forward; optionally stop after the last."""
    records: dict[int, torch.Tensor] = {}
    last = max(layers)
    stop_early = stop_early and last < len(get_decoder_layers(model)) and _early_stop_allowed(model)

    def store(layer: int, hidden: torch.Tensor) -> None:
        records[layer] = hidden.detach()

    with _on_blocks(model, layers, store, stop_after=last if stop_early else None):
        yield records


def run_forward(model: nn.Module, **inputs) -> None:
    """A no-grad forward that tolerates the early stop of `record_blocks`."""
    with torch.no_grad():
        try:
            model(**inputs, use_cache=False)
        except _StopForward:
            pass


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


_MIN_SHARED_PREFIX = 16  # prompt tokens a group must share to be run once through a KV cache


def _right_pad(rows: list[list[int]], pad_id: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return ids


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _plan(
    samples: Sequence[tuple[list[int], list[int]]], batch_size: int, share_prefix: bool
) -> list[tuple[list[int], int]]:
    """Batches of sample indices, each with the number of leading prompt tokens all its samples share.

    Prompts sorted as token sequences put those that share a prefix next to each other; runs sharing
    at least `_MIN_SHARED_PREFIX` tokens are batched apart (by length within the run, in near-equal
    batches) so their prefix runs once; the rest are pooled and batched by length (shared prefix 0).
    """
    length = [len(p) + len(r) for p, r in samples]
    runs: list[list[int]] = []
    if share_prefix:
        order = sorted(range(len(samples)), key=lambda i: list(samples[i][0]))
        for k, i in enumerate(order):
            if k and _common_prefix(samples[order[k - 1]][0], samples[i][0]) >= _MIN_SHARED_PREFIX:
                runs[-1].append(i)
            else:
                runs.append([i])
    else:
        runs = [[i] for i in range(len(samples))]
    min_run = max(2, batch_size // 4)
    pooled = sorted((i for run in runs if len(run) < min_run for i in run), key=length.__getitem__)
    plan = [(pooled[s : s + batch_size], 0) for s in range(0, len(pooled), batch_size)]
    for run in (r for r in runs if len(r) >= min_run):
        run.sort(key=length.__getitem__)
        n_batches = -(-len(run) // batch_size)
        for k in range(n_batches):
            idx = run[k * len(run) // n_batches : (k + 1) * len(run) // n_batches]
            prompts = [samples[i][0] for i in idx]
            shared = min(_common_prefix(prompts[0], q) for q in prompts)  # <= every prompt's length
            plan.append((idx, shared))
    return plan


class _Reducer:
    """Block-output hook target: reduces each block output to the three reads as it is produced.

    A batch runs in one or two forwards (a shared prompt prefix, then the rest through its KV cache);
    each forward covers the positions [offset, offset + width) of every sample.
    """

    def __init__(self, n_layers: int, device: torch.device):
        self.n_layers = n_layers
        self.device = device
        self.norm_sum = torch.zeros(n_layers, dtype=torch.float64, device=device)
        self.batch: torch.Tensor | None = None  # [B, L, 3, H]: response_avg, prompt_avg, prompt_last

    def start(self, n_prompt: list[int], n_resp: list[int], offset: int, width: int) -> None:
        """Set up the weights of the next forward, over positions [offset, offset + width)."""
        weights = torch.zeros(len(n_prompt), 2, width)  # row 0 averages the response, row 1 the prompt
        last = []
        for j, (p, r) in enumerate(zip(n_prompt, n_resp, strict=True)):
            weights[j, 0, max(p - offset, 0) : max(min(p + r - offset, width), 0)] = 1.0 / max(r, 1)
            weights[j, 1, : max(min(p - offset, width), 0)] = 1.0 / max(p, 1)
            last.append(p - 1 - offset)
        self.weights = weights.to(self.device)
        self.response = self.weights[:, 0] > 0
        self.count_norms = bool(self.response.any())
        here = [j for j, t in enumerate(last) if 0 <= t < width]
        self.last_rows = torch.tensor(here, dtype=torch.long, device=self.device)
        self.last_pos = torch.tensor([last[j] for j in here], dtype=torch.long, device=self.device)

    def __call__(self, layer: int, hidden: torch.Tensor) -> None:
        hidden = hidden.detach().float()
        size = self.weights.shape[0]
        if hidden.shape[0] != size:  # the shared prefix, run once for the whole batch
            hidden = hidden.expand(size, -1, -1)
        if self.batch is None:
            self.batch = torch.zeros(size, self.n_layers, 3, hidden.shape[-1], device=self.device)
        self.batch[:, layer - 1, :2] += torch.bmm(self.weights, hidden)
        if len(self.last_rows):
            self.batch[self.last_rows, layer - 1, 2] = hidden[self.last_rows, self.last_pos]
        if self.count_norms:
            self.norm_sum[layer - 1] += hidden.norm(dim=-1)[self.response].sum().double()


def _forward(model: nn.Module, **inputs) -> None:
    with torch.inference_mode():
        try:
            model(**inputs)
        except _StopForward:
            pass


def prompt_response_activations(
    model: nn.Module,
    samples: Sequence[tuple[list[int], list[int]]],
    pad_id: int,
    batch_size: int = 16,
    progress: bool = True,
    share_prefix: bool = False,
) -> Activations:
    """Activations of (prompt_ids, response_ids) pairs: no-grad forwards over the ids, in batches.

    Samples are batched by length and right-padded: under causal attention no real token sees the
    padding and positions are those of the unpadded sequence, so no attention mask is needed, and
    padding is never averaged. With `share_prefix`, samples whose prompts share a prefix (a system
    prompt) are batched together and the prefix runs once, the rest through its KV cache: it saves
    compute but splits batches, and was 0.79x as fast on a 2-core CPU (bench/activation_capture.py), so
    it is off by default. The reads are
    reduced inside the block hooks (block outputs are not kept), and the forward stops after the last
    block: the final norm and LM head never run.
    """
    from transformers import DynamicCache

    n_layers = len(get_decoder_layers(model))
    device = model_device(model)
    config = getattr(unwrap_model(model), "config", None)
    cache_kwarg = cache_kwarg_name(model)
    out: torch.Tensor | None = None
    norm_count = 0
    reducer = _Reducer(n_layers, device)
    stop_after = n_layers if _early_stop_allowed(model) else None
    with eval_mode(model):
        with _on_blocks(model, range(1, n_layers + 1), reducer, stop_after=stop_after):
            for idx, shared in tqdm(
                _plan(samples, batch_size, share_prefix), desc="activations", disable=not progress
            ):
                n_prompt = [len(samples[i][0]) for i in idx]
                n_resp = [len(samples[i][1]) for i in idx]
                reducer.batch = None
                cache = None
                if shared:
                    cache = DynamicCache(config=config)
                    reducer.start(n_prompt, n_resp, 0, shared)
                    prefix = torch.tensor([samples[idx[0]][0][:shared]], device=device)
                    _forward(model, input_ids=prefix, use_cache=True, **{cache_kwarg: cache})
                    cache.batch_repeat_interleave(len(idx))
                rows = [(list(samples[i][0]) + list(samples[i][1]))[shared:] for i in idx]
                if max(map(len, rows)) > 0:
                    ids = _right_pad(rows, pad_id)
                    reducer.start(n_prompt, n_resp, shared, ids.shape[1])
                    _forward(
                        model, input_ids=ids.to(device), use_cache=cache is not None, **{cache_kwarg: cache}
                    )
                batch = reducer.batch
                assert batch is not None  # filled by the block hooks during the forward
                if out is None:
                    out = torch.empty(len(samples), n_layers, 3, batch.shape[-1])
                out[idx] = batch.cpu()
                norm_count += sum(n_resp)

    if out is None:
        raise ValueError("prompt_response_activations needs at least one sample")
    return Activations(
        response_avg=out[:, :, 0].contiguous(),
        prompt_avg=out[:, :, 1].contiguous(),
        prompt_last=out[:, :, 2].contiguous(),
        mean_norms=(reducer.norm_sum.cpu() / max(norm_count, 1)).float(),
    )


def last_prompt_activations(
    model: nn.Module, tokenizer, prompts: Sequence[str], layers: Sequence[int], batch_size: int = 32
) -> torch.Tensor:
    """Activation of the last prompt token at each of `layers`, [N, len(layers), H] float32.

    `prompts` are already formatted texts (see persona_vaccine.models.chat.format_chat). Stops after the deepest layer.
    """
    device = model_device(model)
    out = []
    with eval_mode(model):
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
    return torch.cat(out)
