"""Inside each vLLM worker: forward hooks on the decoder layers that read, steer and guard the residual
stream per request, with the same operations and the same per-request state as the Hugging Face monitor.

vLLM runs a batch as flat token rows ([num_tokens, H]; a decoder layer returns `(hidden, residual)`,
whose sum is the residual stream). The model runner says which rows belong to which request
(`input_batch.req_ids`, `query_start_loc`), and each request carries its persona settings in
`SamplingParams.extra_args`. Requests without settings pass through untouched: steering adds row 0 of a
table that is all zeros, so their numbers stay bit-identical.

Readings leave the worker as one message per step on a ZeroMQ socket (rank 0 only: under tensor
parallelism every rank holds the whole residual stream). A `stop` guard marks its request; the logits
processor in `vllm_plugin` then ends only that request.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from persona_vaccine.steering import residual_ops
from persona_vaccine.steering.vector import PersonaVector
from persona_vaccine.vllm_request import PersonaRequest, PersonaRequestError, parse

from .readings import RequestReadings, Watch

logger = logging.getLogger("persona_vaccine.vllm")

READINGS_ADDRESS_ENV = "PERSONA_VLLM_READINGS"  # ipc:// address of the reader in the serving process
STOPPED: set[int] = set()  # id() of the SamplingParams whose stop guard fired (read by the logits processor)


@dataclass
class _Request:
    """One request the worker watches or steers."""

    spec: PersonaRequest
    state: Any  # vLLM's CachedRequestState: prompt length, output token ids, sampling params
    watches: list[Watch]
    readings: RequestReadings
    next_position: dict[str, int] = field(default_factory=dict)  # per trait: recomputed rows are read once
    prompt: dict[str, list[float]] = field(default_factory=dict)  # prompt projections per trait
    sent: dict[str, int] = field(default_factory=dict)  # per trait: readings already published
    alerts_sent: int = 0

    @property
    def params_id(self) -> int:
        return id(self.state.sampling_params)

    def event(self) -> dict | None:
        """What is new since the last event, for the reader in the serving process."""
        tokens, turns = {}, {}
        for trait, reading in self.readings.readings.items():
            done = self.sent.get(trait, 0)
            if len(reading.tokens) > done:
                tokens[trait] = reading.tokens[done:]
                if done == 0:
                    turns[trait] = reading.turns
                self.sent[trait] = len(reading.tokens)
        alerts = self.readings.alerts[self.alerts_sent :]
        self.alerts_sent = len(self.readings.alerts)
        if not tokens and not alerts:
            return None
        return {
            "tag": self.spec.tag,
            "tokens": tokens,
            "turns": turns,
            "capped": {t: r.capped for t, r in self.readings.readings.items()},
            "steered": {t: r.steered for t, r in self.readings.readings.items()},
            "alerts": [a.to_dict() for a in alerts],
            "stop": self.readings.stop,
        }


class _Vectors:
    """Vector files loaded once per worker; directions cached per (path, layer, device, dtype)."""

    def __init__(self) -> None:
        self.vectors: dict[str, PersonaVector] = {}
        self.tensors: dict[tuple, torch.Tensor] = {}

    def load(self, path: str) -> PersonaVector:
        if path not in self.vectors:
            self.vectors[path] = PersonaVector.load(path)
        return self.vectors[path]

    def unit(self, vector: PersonaVector, layer: int, like: torch.Tensor) -> torch.Tensor:
        return self._cached(("unit", id(vector), layer, like.device), lambda: vector.unit(layer), like)

    def raw(self, vector: PersonaVector, layer: int, like: torch.Tensor) -> torch.Tensor:
        return self._cached(("raw", id(vector), layer, like.device), lambda: vector[layer].float(), like)

    def _cached(self, key: tuple, make: Callable[[], torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        if key not in self.tensors:
            self.tensors[key] = make().to(device=like.device, dtype=torch.float32)
        return self.tensors[key]


class _Publisher:
    """Sends each step's readings to the serving process (a no-op where no reader is listening)."""

    def __init__(self, rank: int) -> None:
        self.socket: Any = None
        address = os.environ.get(READINGS_ADDRESS_ENV)
        if address and rank == 0:
            import zmq

            self.socket = zmq.Context.instance().socket(zmq.PUSH)
            self.socket.setsockopt(zmq.LINGER, 0)
            self.socket.connect(address)

    def send(self, events: list[dict]) -> None:
        if self.socket is None or not events:
            return
        import zmq

        try:
            self.socket.send(json.dumps(events).encode(), zmq.NOBLOCK)
        except zmq.Again:
            logger.warning("persona readings dropped: the reader is not keeping up")


class WorkerHooks:
    """The hooks of one worker: per-request state, vectors and the per-layer forward hooks."""

    def __init__(self, worker: Any, layers: nn.ModuleList) -> None:
        self.worker = worker
        self.layers = layers
        self.vectors = _Vectors()
        self.requests: dict[str, _Request | None] = {}
        self.publisher = _Publisher(int(getattr(worker, "rank", 0) or 0))
        self.handles = [
            block.register_forward_hook(self._hook(i + 1), with_kwargs=True) for i, block in enumerate(layers)
        ]
        self.plans: dict[int, list[tuple[int, int, _Request]]] = {}
        self.errors = 0

    # --- which rows belong to whom ------------------------------------------------------------
    def _batch(self) -> tuple[list[str], Any] | None:
        runner = self.worker.model_runner
        n = runner.input_batch.num_reqs
        if n == 0:
            return None
        return list(runner.input_batch.req_ids[:n]), runner.query_start_loc.np[: n + 1]

    def _request(self, req_id: str) -> _Request | None:
        if req_id in self.requests:
            return self.requests[req_id]
        state = self.worker.model_runner.requests.get(req_id)
        params = getattr(state, "sampling_params", None)
        found = None
        if state is not None and params is not None and params.extra_args:
            try:
                spec = parse(params.extra_args, default_tag=req_id)
            except PersonaRequestError as e:  # validated by the front end; never kill the engine
                logger.error("request %s: persona settings ignored: %s", req_id, e)
                spec = None
            if spec is not None:
                watches = [self._watch(w) for w in spec.watch]
                found = _Request(spec, state, watches, RequestReadings.of(watches))
        self._forget_finished()
        self.requests[req_id] = found
        return found

    def _watch(self, w: Any) -> Watch:
        vector = self.vectors.load(w.vector)
        return Watch(
            vector,
            w.layer,
            w.prompt_threshold,
            w.response_threshold,
            w.guard,
            w.cap,
            w.steer_coef,
            w.min_tokens,
            w.cap_positions,
            dict(w.band_caps),
        )

    def _forget_finished(self) -> None:
        live = self.worker.model_runner.requests
        if len(self.requests) > 2 * len(live) + 64:
            for req_id in [r for r in self.requests if r not in live]:
                found = self.requests.pop(req_id)
                if found is not None:
                    STOPPED.discard(found.params_id)

    # --- the hook -----------------------------------------------------------------------------
    def _hook(self, layer: int) -> Callable:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
            try:
                return self._on_layer(layer, args, kwargs, output)
            except Exception:  # an exception here would kill the engine for every request
                self.errors += 1
                logger.exception("persona hook at layer %d failed; this step is left unchanged", layer)
                return None

        return hook

    def _plan(self) -> dict[int, list[tuple[int, int, _Request]]]:
        """Per layer, the rows [start, end) of each request with persona settings in this step's batch."""
        batch = self._batch()
        plans: dict[int, list[tuple[int, int, _Request]]] = {}
        if batch is None:
            return plans
        req_ids, starts = batch
        for i, req_id in enumerate(req_ids):
            request = self._request(req_id)
            if request is not None:
                for layer in request.spec.layers:
                    plans.setdefault(layer, []).append((int(starts[i]), int(starts[i + 1]), request))
        return plans

    def _on_layer(self, layer: int, args: tuple, kwargs: dict, output: Any) -> Any:
        if layer == 1:  # the first block of every step: find out who is in the batch, once
            self.plans = self._plan()
        plans = self.plans.get(layer)
        if not plans:
            return None
        split = isinstance(output, tuple) and len(output) == 2 and output[1] is not None
        hidden, residual = (output[0], output[1]) if split else (None, output)
        original = residual
        positions = args[0] if args else kwargs["positions"]
        residual = self._steer(layer, plans, residual, positions)
        residual = self._cap_band(
            layer, plans, residual if hidden is None else hidden + residual, residual, positions
        )
        watched = [(s, e, r, w) for s, e, r in plans for w in r.watches if w.layer == layer]
        if watched:
            stream = residual if hidden is None else hidden + residual
            residual = self._watch_rows(layer, watched, positions.tolist(), stream, residual)
        # a request's readings go out after its last hooked layer of the step (a cap band may follow the watch)
        done = {id(r): r for _, _, r in plans if r.watches and layer == max(r.spec.layers)}
        if done:
            self.publisher.send([e for r in done.values() if (e := r.event())])
        if residual is original:
            return None
        return (hidden, residual) if split else residual

    def _steer(
        self, layer: int, plans: list, residual: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        rows = [torch.zeros(residual.shape[-1], device=residual.device)]
        index = torch.zeros(residual.shape[0], dtype=torch.long)
        for start, end, request in plans:
            for s in request.spec.steer:
                if s.layer != layer:
                    continue
                rows.append(s.coef * self.vectors.raw(self.vectors.load(s.vector), layer, residual))
                if s.positions == "all":
                    index[start:end] = len(rows) - 1
                else:
                    response = positions[start:end].cpu() >= request.state.num_prompt_tokens
                    chosen = response if s.positions == "response" else ~response
                    index[start:end][chosen] = len(rows) - 1
        if len(rows) == 1:
            return residual
        table = torch.stack(rows).to(residual.dtype)
        return residual_ops.add(residual, table[index.to(residual.device)])

    @staticmethod
    def _cap_rows(
        request: _Request, watch: Watch, positions: torch.Tensor, start: int, end: int, size: int, device
    ):
        """1.0 on the request's rows the cap acts on: its answer tokens, or all of them."""
        mask = torch.zeros(size, device=device)
        mask[start:end] = 1.0
        if watch.cap_positions == "answer":
            prompt = (positions[start:end] < request.state.num_prompt_tokens).to(device)
            mask[start:end][prompt] = 0.0
        return mask

    def _cap_band(self, layer: int, plans: list, stream, residual, positions: torch.Tensor):
        """The cap guard's band: clamp each capped watch's own direction at this layer."""
        for start, end, request in plans:
            for watch in request.watches:
                cap = watch.band_caps.get(layer) if watch.guard == "cap" else None
                if cap is None:
                    continue
                unit = self.vectors.unit(watch.vector, layer, stream)
                mask = self._cap_rows(request, watch, positions, start, end, stream.shape[0], stream.device)
                excess = residual_ops.cap_excess(residual_ops.read(stream, unit[None])[:, 0], cap, mask)
                request.readings.readings[watch.trait].capped += int((excess > 0).sum())
                residual = residual_ops.subtract_along(residual, excess, unit)
                stream = residual_ops.subtract_along(stream, excess, unit)
        return residual

    def _watch_rows(self, layer: int, watched: list, positions: list[int], stream, residual):
        units = torch.stack([self.vectors.unit(w.vector, layer, stream) for *_, w in watched])
        projections = residual_ops.read(stream, units)  # [rows, watches]
        values = projections.detach().cpu()
        amounts: dict[tuple[str, int], torch.Tensor] = {}
        by_id = {id(w.vector): w.vector for *_, w in watched}
        for j, (start, end, request, watch) in enumerate(watched):
            first = self._read(request, watch, positions, values[:, j], start, end)
            if watch.guard == "cap":
                rows = torch.tensor(positions)
                mask = self._cap_rows(request, watch, rows, start, end, stream.shape[0], stream.device)
                excess = residual_ops.cap_excess(projections[:, j], float(watch.cap or 0.0), mask)
                request.readings.readings[watch.trait].capped += int((excess > 0).sum())
                key = ("unit", id(watch.vector))
                amounts[key] = amounts.get(key, torch.zeros_like(excess)) + excess
            elif watch.guard == "steer" and first is not None:
                amount = torch.zeros(stream.shape[0], device=stream.device)
                amount[first:end] = watch.steer_coef
                request.readings.readings[watch.trait].steered += end - first
                key = ("raw", id(watch.vector))
                amounts[key] = amounts.get(key, torch.zeros_like(amount)) + amount
        for (kind, vector_id), amount in amounts.items():
            get = self.vectors.unit if kind == "unit" else self.vectors.raw
            direction = get(by_id[vector_id], layer, stream)
            residual = residual_ops.subtract_along(residual, amount, direction)
        return residual

    def _read(self, request: _Request, watch: Watch, positions: list[int], values, start: int, end: int):
        """Feed one watch its request's new rows; the first row a steer guard acts on (or None)."""
        trait, last_prompt = watch.trait, request.state.num_prompt_tokens - 1
        first = start if trait in request.readings.steering else None
        prompt = request.prompt.setdefault(trait, [math.nan] * (last_prompt + 1))
        seen = request.next_position.get(trait, 0)
        for row in range(start, end):
            position = positions[row]
            if position < seen:
                continue  # a recomputed row (preemption): read once
            seen = position + 1
            value = float(values[row])
            if position < last_prompt:
                prompt[position] = value
                continue
            request.readings.generated = request.state.output_token_ids
            if position == last_prompt:
                prompt[position] = value
                alert = request.readings.read_prompt(watch, torch.tensor(prompt), request.spec.turns)
                reading = request.readings.readings[trait]
                reading.turns = [t for t in reading.turns if not math.isnan(t)]
            else:
                alert = request.readings.read_answer(watch, value)
            if alert is not None and watch.guard == "steer" and first is None:
                first = row
            if alert is not None and watch.guard == "stop":
                STOPPED.add(request.params_id)
        request.next_position[trait] = seen
        return first
