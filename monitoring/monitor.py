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
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import StoppingCriteria

from persona_vaccine.steering.forward_call import ForwardCallReader, past_length
from persona_vaccine.steering.layers import get_decoder_layers
from persona_vaccine.steering.vector import PersonaVector, vector_for_model

from .guards import GUARDS, apply_along, cap_excess


@dataclass
class Watch:
    """One trait to watch: its vector, the layer read, thresholds and guard.

    `prompt_threshold` applies to the early warning (last prompt token), `response_threshold` to the
    running mean; `cap` (default `response_threshold`) is the per-token clamp of the `cap` guard, and
    `steer_coef * v` (v as extracted, not normalised) is what `steer` subtracts.
    """

    vector: PersonaVector
    layer: int | None = None
    prompt_threshold: float | None = None
    response_threshold: float | None = None
    guard: str = "alert"
    cap: float | None = None
    steer_coef: float = 1.0
    min_tokens: int = 4  # answer positions before the running mean may alert

    def __post_init__(self) -> None:
        if self.layer is None:
            self.layer = self.vector.default_layer()
        if self.guard not in GUARDS:
            raise ValueError(f"guard={self.guard!r} for '{self.trait}': expected one of {GUARDS}")
        if self.cap is None:
            self.cap = self.response_threshold
        if self.guard == "cap" and self.cap is None:
            raise ValueError(f"guard 'cap' for '{self.trait}' needs a cap (or a response threshold)")
        if (
            self.guard in ("steer", "stop")
            and self.prompt_threshold is None
            and self.response_threshold is None
        ):
            raise ValueError(f"guard {self.guard!r} for '{self.trait}' needs a threshold to act on")

    @property
    def trait(self) -> str:
        return self.vector.trait


@dataclass
class Alert:
    """A threshold crossing. `position` is the answer token it was read for (0: before any token)."""

    trait: str
    kind: str  # "early_warning" (last prompt token) or "running_mean"
    value: float
    threshold: float
    position: int
    guard: str
    row: int = 0
    token_ids: list[int] = field(default_factory=list)  # the answer so far

    def to_dict(self, text: str | None = None) -> dict:
        out = {k: getattr(self, k) for k in ("trait", "kind", "value", "threshold", "position", "guard")}
        if text is not None:
            out["text"] = text
        return out


@dataclass
class TraitReading:
    prompt_last: float | None = None
    tokens: list[float] = field(default_factory=list)
    turns: list[float] = field(default_factory=list)
    capped: int = 0  # tokens the cap acted on
    steered: int = 0  # tokens the steer guard acted on

    @property
    def running_mean(self) -> float | None:
        answer = self.tokens[1:]
        return sum(answer) / len(answer) if answer else None

    def to_dict(self) -> dict:
        return {
            "prompt_last": self.prompt_last,
            "running_mean": self.running_mean,
            "tokens": list(self.tokens),
            "turns": list(self.turns),
            "capped": self.capped,
            "steered": self.steered,
        }


@dataclass
class _Row:
    readings: dict[str, TraitReading]
    generated: list[int] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    fired: set = field(default_factory=set)  # (trait, kind) already alerted
    steering: set = field(default_factory=set)  # traits whose steer guard is on
    stop: bool = False
    finished: bool = False


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
        self.blocks = get_decoder_layers(model, layers_path)
        traits = [w.trait for w in self.watches]
        if len(set(traits)) != len(traits):
            raise ValueError(f"two vectors for the same trait: {traits}")
        self.by_layer: dict[int, list[tuple[Watch, torch.Tensor, torch.Tensor]]] = {}
        for w in self.watches:
            vector_for_model(w.vector, model, layers_path=layers_path)
            self.by_layer.setdefault(w.layer, []).append(
                (w, w.vector.unit(w.layer), w.vector[w.layer].float())
            )
        if eos_token_id is None:
            eos_token_id = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        self.eos = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id or [])
        self.on_alert = on_alert
        self.rows: list[_Row] = []
        self._turn_spans: list[list[tuple[int, int]]] | None = None
        self._valid: torch.Tensor | None = None  # [B, T] of the current call
        self._prefill = True
        self._device_cache: dict = {}
        self._read_call = ForwardCallReader()

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
        call = self._read_call(module, args, kwargs)
        past = past_length(call.cache) or 0
        ids = call.input_ids
        batch, length = call.tokens.shape[:2]
        self._prefill = past == 0 or not self.rows or len(self.rows) != batch
        if self._prefill:
            self.rows = [_Row({w.trait: TraitReading() for w in self.watches}) for _ in range(batch)]
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

    def _alert(self, r: int, watch: Watch, kind: str, value: float, threshold: float | None) -> bool:
        row = self.rows[r]
        if threshold is None or value <= threshold or (watch.trait, kind) in row.fired:
            return False
        row.fired.add((watch.trait, kind))
        alert = Alert(
            watch.trait,
            kind,
            value,
            threshold,
            len(row.readings[watch.trait].tokens) - 1,
            watch.guard,
            r,
            list(row.generated),
        )
        row.alerts.append(alert)
        if watch.guard == "stop":
            row.stop = True
        elif watch.guard == "steer":
            row.steering.add(watch.trait)
        if self.on_alert is not None:
            self.on_alert(alert)
        return True

    def _on(self, tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        key = (id(tensor), like.device)
        if key not in self._device_cache:
            self._device_cache[key] = tensor.to(like.device)
        return self._device_cache[key]

    def _layer_hook(self, layer: int):
        entries = self.by_layer[layer]

        def hook(module: nn.Module, args: tuple, output):
            hidden = output[0] if isinstance(output, tuple) else output
            batch, length = hidden.shape[:2]
            valid_cpu = self._valid
            if valid_cpu is None or valid_cpu.shape != (batch, length):  # not a call the pre-hook saw
                return None
            projections = [hidden.float() @ self._on(unit, hidden) for _, unit, _ in entries]
            values = [p.detach().cpu() for p in projections]
            changed = hidden
            for (watch, unit, raw), proj, vals in zip(entries, projections, values, strict=True):
                act_from = self._read(watch, vals, valid_cpu)
                changed = self._guard(watch, unit, raw, proj, valid_cpu, act_from, changed)
            if changed is hidden:
                return None
            return (changed, *output[1:]) if isinstance(output, tuple) else changed

        return hook

    def _read(self, watch: Watch, vals: torch.Tensor, valid: torch.Tensor) -> list[int | None]:
        """Record this call's readings; per row, the first position a steer guard acts on (or None)."""
        act_from: list[int | None] = []
        for r, row in enumerate(self.rows):
            reading = row.readings[watch.trait]
            steering_before = watch.trait in row.steering
            positions = valid[r].nonzero().flatten().tolist()
            if not positions:
                act_from.append(None)
                continue
            if self._prefill:
                last = positions[-1]
                reading.prompt_last = float(vals[r, last])
                reading.tokens.append(reading.prompt_last)
                pad = len(valid[r]) - len(positions)
                spans = self._turn_spans[r] if self._turn_spans and r < len(self._turn_spans) else []
                reading.turns = [float(vals[r, pad + s : pad + e].mean()) for s, e in spans if e > s]
                fired = self._alert(r, watch, "early_warning", reading.prompt_last, watch.prompt_threshold)
                act_from.append(last if fired and watch.guard == "steer" else None)
                continue
            first_alert = None
            for p in positions:
                reading.tokens.append(float(vals[r, p]))
                mean = reading.running_mean
                if mean is not None and len(reading.tokens) - 1 >= watch.min_tokens:
                    if (
                        self._alert(r, watch, "running_mean", mean, watch.response_threshold)
                        and first_alert is None
                    ):
                        first_alert = p
            if steering_before:
                act_from.append(positions[0])
            else:
                act_from.append(first_alert if watch.guard == "steer" else None)
        return act_from

    def _guard(self, watch, unit, raw, proj, valid_cpu, act_from, hidden):
        if watch.guard == "cap":
            valid = self._valid_on(valid_cpu, hidden)
            excess = cap_excess(proj, watch.cap, valid)
            if not bool((excess > 0).any()):
                return hidden
            for r, count in enumerate((excess > 0).sum(1).tolist()):
                self.rows[r].readings[watch.trait].capped += count
            return apply_along(hidden, excess, self._on(unit, hidden))
        if watch.guard == "steer" and any(a is not None for a in act_from):
            amount = torch.zeros(valid_cpu.shape)
            for r, start in enumerate(act_from):
                if start is not None:
                    amount[r, start:] = valid_cpu[r, start:].float() * watch.steer_coef
                    self.rows[r].readings[watch.trait].steered += int(valid_cpu[r, start:].sum())
            return apply_along(hidden, amount.to(hidden.device), self._on(raw, hidden))
        return hidden

    def _valid_on(self, valid_cpu: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return valid_cpu.to(device=like.device, dtype=torch.float32)

    @contextlib.contextmanager
    def active(self) -> Iterator[Monitor]:
        """Register the hooks for the duration of the block."""
        handles = [self.model.register_forward_pre_hook(self._pre_forward, with_kwargs=True)]
        try:
            for layer in sorted(self.by_layer):
                handles.append(self.blocks[layer - 1].register_forward_hook(self._layer_hook(layer)))
            yield self
        finally:
            for handle in handles:
                handle.remove()
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
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


@contextlib.contextmanager
def monitor(model: nn.Module, watches: Sequence[Watch], **kwargs) -> Iterator[Monitor]:
    """`with monitor(model, [Watch(vector, prompt_threshold=...)]) as m: model.generate(...)`."""
    with Monitor(model, watches, **kwargs).active() as m:
        yield m
