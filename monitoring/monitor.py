"""The monitor: read the residual stream on persona vectors while a model runs, never changing it unless
a guard acts.

Readings, per trait, on the unit vector at the vector's layer ("layer l" = output of decoder block l):
- `prompt_last`: the last prompt token, the paper's early warning (it produces the first answer token);
- `tokens[k]`: the position that produced answer token k (so `tokens[0] == prompt_last`), available
  before token k is shown;
- `running_mean`: the mean of `tokens[1:]`, i.e. of the answer's own positions (the paper's response
  average, without the last token, which no forward pass reads);
- `turns`: the mean over each earlier assistant turn of the conversation (persona drift across turns).
Padding never counts: left padding from the prefill's attention mask, and rows that finished (EOS or a
`stop` guard) while others in the batch go on. Prefill vs decode is read from the forward call itself:
a call whose KV cache is empty (or absent) is a prefill and starts new readings; later calls are decode
steps of the same generation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import torch
from torch import nn
from transformers import StoppingCriteria

from persona_vaccine.steering import residual_ops
from persona_vaccine.steering.forward_call import PositionTracker
from persona_vaccine.steering.hook_core import attach
from persona_vaccine.steering.vector import vector_for_model

from .readings import Alert, RequestReadings, TraitReading, Watch

__all__ = ["Alert", "Monitor", "TraitReading", "Watch", "monitor"]


class Monitor:
    """Forward hooks that read (and, for guards, act on) the residual stream; `with m.active(): generate()`."""

    def __init__(
        self,
        model: nn.Module,
        watches: Sequence[Watch],
        eos_token_id: int | Sequence[int] | None = None,
        layers_path: str | None = None,
        on_alert: Callable[[Alert], None] | None = None,
    ):
        self.model = model
        self.watches = list(watches)
        self.layers_path = layers_path
        traits = [w.trait for w in self.watches]
        if len(set(traits)) != len(traits):
            raise ValueError(f"two vectors for the same trait: {traits}")
        self.by_layer: dict[int, list[tuple[Watch, torch.Tensor, torch.Tensor]]] = {}
        for w in self.watches:
            vector_for_model(w.vector, model, layers_path=layers_path)
            self.by_layer.setdefault(w.at, []).append((w, w.vector.unit(w.at), w.vector[w.at].float()))
        self.band_by_layer: dict[int, list[tuple[Watch, torch.Tensor, float]]] = {}
        for w in self.watches:
            if w.guard == "cap":
                for layer, cap in sorted(w.band_caps.items()):
                    self.band_by_layer.setdefault(layer, []).append((w, w.vector.unit(layer), cap))
        if eos_token_id is None:
            eos_token_id = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        self.eos = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id or [])
        self.on_alert = on_alert
        self.rows: list[RequestReadings] = []
        self._turn_spans: list[list[tuple[int, int]]] | None = None
        self._valid: torch.Tensor | None = None  # [B, T] of the current call
        self._prefill = True
        self._device_cache: dict = {}
        self._tracker = PositionTracker()

    # --- per generation -----------------------------------------------------------------------
    def set_turns(self, spans: list[list[tuple[int, int]]] | None) -> None:
        """Token spans [start, end) of earlier assistant turns, per row, in the unpadded prompt."""
        self._turn_spans = spans

    def readings(self, row: int = 0) -> dict[str, TraitReading]:
        return self.rows[row].readings

    def alerts(self, row: int = 0) -> list[Alert]:
        return self.rows[row].alerts

    def stopped(self, row: int = 0) -> bool:
        return self.rows[row].stop

    def stopping_criteria(self) -> StoppingCriteria:
        """Ends the rows that a `stop` guard flagged (pass in `generate(stopping_criteria=[...])`)."""
        return _StopOnAlert(self)

    # --- hooks --------------------------------------------------------------------------------
    def _pre_forward(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        at = self._tracker(module, args, kwargs)
        call = at.call
        ids, tokens = call.input_ids, call.tokens
        if tokens is None:
            return
        batch, length = tokens.shape[:2]
        self._prefill = at.start == 0 or not self.rows or len(self.rows) != batch
        if self._prefill:
            self.rows = [RequestReadings.of(self.watches, r) for r in range(batch)]
            mask = call.attention_mask
            if isinstance(mask, torch.Tensor) and mask.dim() == 2 and mask.shape == (batch, length):
                self._valid = mask.detach().bool().cpu()
            else:  # transformers drops an all-ones mask
                self._valid = torch.ones(batch, length, dtype=torch.bool)
            return
        for r, row in enumerate(self.rows):
            if row.finished:
                continue
            new = ids[r].tolist() if ids is not None else []
            if any(t in self.eos for t in new):
                row.finished = True
            else:
                row.generated.extend(new)
        self._valid = torch.tensor([[not row.finished] * length for row in self.rows], dtype=torch.bool)

    def _on(self, tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        key = (id(tensor), like.device)
        if key not in self._device_cache:
            self._device_cache[key] = tensor.to(like.device)
        return self._device_cache[key]

    def _watch(self, layer: int, hidden: torch.Tensor) -> torch.Tensor | None:
        """Read every watch of `layer` and let its guard act; the changed stream, or None."""
        entries = self.by_layer[layer]
        batch, length = hidden.shape[:2]
        valid_cpu = self._valid
        if valid_cpu is None or valid_cpu.shape != (batch, length):  # not a call the pre-hook saw
            return None
        projections = [
            residual_ops.read(hidden, self._on(unit, hidden)[None])[..., 0] for _, unit, _ in entries
        ]
        values = [p.detach().cpu() for p in projections]
        changed = hidden
        for (watch, unit, raw), proj, vals in zip(entries, projections, values, strict=True):
            act_from = self._read(watch, vals, valid_cpu)
            changed = self._guard(watch, unit, raw, proj, valid_cpu, act_from, changed)
        return None if changed is hidden else changed

    def _read(self, watch: Watch, vals: torch.Tensor, valid: torch.Tensor) -> list[int | None]:
        """Record this call's readings; per row, the first position a steer guard acts on (or None)."""
        act_from: list[int | None] = []
        for r, row in enumerate(self.rows):
            steering_before = watch.trait in row.steering
            positions = valid[r].nonzero().flatten().tolist()
            if not positions:
                act_from.append(None)
                continue
            if self._prefill:
                spans = self._turn_spans[r] if self._turn_spans and r < len(self._turn_spans) else []
                fired = self._fire(row.read_prompt(watch, vals[r, positions[0] : positions[-1] + 1], spans))
                act_from.append(positions[-1] if fired and watch.guard == "steer" else None)
                continue
            first_alert = None
            for p in positions:
                if self._fire(row.read_answer(watch, float(vals[r, p]))) and first_alert is None:
                    first_alert = p
            if steering_before:
                act_from.append(positions[0])
            else:
                act_from.append(first_alert if watch.guard == "steer" else None)
        return act_from

    def _fire(self, alert: Alert | None) -> bool:
        if alert is not None and self.on_alert is not None:
            self.on_alert(alert)
        return alert is not None

    def _cap(self, watch: Watch, unit, proj, cap: float, valid_cpu, hidden):
        """Clamp the projections above `cap` to it, on answer tokens only unless the watch says all."""
        if watch.cap_positions == "answer" and self._prefill:
            return hidden
        valid = valid_cpu.to(device=hidden.device, dtype=torch.float32)
        excess = residual_ops.cap_excess(proj, cap, valid)
        if not bool((excess > 0).any()):
            return hidden
        for r, count in enumerate((excess > 0).sum(1).tolist()):
            self.rows[r].readings[watch.trait].capped += count
        return residual_ops.subtract_along(hidden, excess, self._on(unit, hidden))

    def _band(self, layer: int, hidden: torch.Tensor) -> torch.Tensor | None:
        """The cap guard's band: clamp each watch's own direction at this layer."""
        valid_cpu = self._valid
        if valid_cpu is None or valid_cpu.shape != tuple(hidden.shape[:2]):
            return None
        changed = hidden
        for watch, unit, cap in self.band_by_layer[layer]:
            proj = residual_ops.read(changed, self._on(unit, changed)[None])[..., 0]
            changed = self._cap(watch, unit, proj, cap, valid_cpu, changed)
        return None if changed is hidden else changed

    def _guard(self, watch, unit, raw, proj, valid_cpu, act_from, hidden):
        if watch.guard == "cap":
            return self._cap(watch, unit, proj, watch.cap, valid_cpu, hidden)
        if watch.guard == "steer" and any(a is not None for a in act_from):
            amount = torch.zeros(valid_cpu.shape)
            for r, start in enumerate(act_from):
                if start is not None:
                    amount[r, start:] = valid_cpu[r, start:].float() * watch.steer_coef
                    self.rows[r].readings[watch.trait].steered += int(valid_cpu[r, start:].sum())
            return residual_ops.subtract_along(hidden, amount.to(hidden.device), self._on(raw, hidden))
        return hidden

    @contextlib.contextmanager
    def active(self) -> Iterator[Monitor]:
        """Register the hooks for the duration of the block."""
        ops: dict[int, list] = {layer: [self._watch] for layer in self.by_layer}
        for layer in self.band_by_layer:
            ops.setdefault(layer, []).append(self._band)
        self._tracker.reset()
        try:
            with attach(self.model, ops, pre_forward=self._pre_forward, layers_path=self.layers_path):
                yield self
        finally:
            self._device_cache.clear()


class _StopOnAlert(StoppingCriteria):
    def __init__(self, monitor: Monitor):
        self.monitor = monitor

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.BoolTensor:
        rows = self.monitor.rows
        done = [bool(r < len(rows) and rows[r].stop) for r in range(input_ids.shape[0])]
        for r, stop in enumerate(done):
            if stop:
                rows[r].finished = True
        return cast(torch.BoolTensor, torch.tensor(done, dtype=torch.bool, device=input_ids.device))


@contextlib.contextmanager
def monitor(model: nn.Module, watches: Sequence[Watch], **kwargs) -> Iterator[Monitor]:
    """`with monitor(model, [Watch(vector, prompt_threshold=...)]) as m: model.generate(...)`."""
    with Monitor(model, watches, **kwargs).active() as m:
        yield m
