"""The one model behind the server: a worker thread that runs queued requests one at a time under the
monitor, so that no two requests share a forward pass and each request's readings are those it would
get alone."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

import torch
from transformers import StoppingCriteria

from persona_vaccine.models.chat import format_chat, prepare_messages
from persona_vaccine.models.loading import load_model
from persona_vaccine.steering.vector import PersonaVector, vector_for_model

from .guards import STOP_REASON, parse_guards
from .monitor import Monitor, Watch
from .thresholds import Thresholds, parse_manual, thresholds_for

logger = logging.getLogger(__name__)


@dataclass
class GenerationParams:
    max_tokens: int = 256
    min_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass
class TokenEvent:
    """One answer token as it is streamed: its text, each trait's reading and the alerts it raised."""

    position: int  # 0-based answer position
    token_id: int
    text: str
    projections: dict[str, float | None]
    alerts: list[dict]


@dataclass
class Completion:
    """A finished request: the answer, why it ended, token counts, readings per trait and alerts."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    readings: dict[str, dict]
    alerts: list[dict]
    seconds: float

    def usage(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": total,
        }


@dataclass
class Failure:
    message: str


Event = TokenEvent | Completion | Failure


@dataclass
class Job:
    """One chat request. `on_event(kind, event)` ("token", "done" or "error") is called from the engine's thread."""

    messages: list[dict]
    params: GenerationParams
    on_event: Callable[[str, Event], None]
    request_id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex[:24])
    conversation_id: str | None = None
    cancelled: bool = False
    submitted: float = field(default_factory=time.monotonic)


@dataclass
class TraitInfo:
    trait: str
    layer: int
    guard: str
    thresholds: Thresholds
    cap: float | None
    vector_path: str

    def to_dict(self) -> dict:
        t = self.thresholds
        return {
            "layer": self.layer,
            "guard": self.guard,
            "prompt_threshold": t.prompt,
            "response_threshold": t.response,
            "cap": self.cap,
            "threshold_source": t.source,
            "prompt_auc": t.prompt_auc,
            "response_auc": t.response_auc,
            "expected_false_alert_rate": t.false_alert_rate,
            "band_caps": {str(k): v for k, v in t.band_caps.items()},
        }


class ServingEngine(Protocol):
    """What the server needs of an engine (Hugging Face `Engine` or `VllmEngine`)."""

    model_name: str
    created: int
    context_length: int
    max_tokens_limit: int
    traits: dict[str, TraitInfo]

    def prompt_ids(self, messages: list[dict]) -> list[int]: ...

    def submit(self, job: Job) -> None: ...

    def close(self) -> None: ...


@dataclass
class ServeSetup:
    """What `serve` reads from its flags before any engine starts: vectors, guards, hand-set thresholds."""

    vectors: list[tuple[PersonaVector, str]]
    guards: dict[str, str]
    manual: dict[str, tuple[float | None, float | None]]
    name: str  # the model id clients send

    @classmethod
    def parse(
        cls,
        model_id: str,
        vector_paths: list[str],
        guard_specs: list[str] | None,
        threshold_specs: list[str] | None,
        model_name: str | None = None,
    ) -> ServeSetup:
        vectors = [(PersonaVector.load(p), p) for p in vector_paths]
        traits = [v.trait for v, _ in vectors]
        guards = parse_guards(guard_specs, traits)
        manual = parse_manual(threshold_specs)
        unknown = set(manual) - set(traits)
        if unknown:
            raise ValueError(f"--threshold names {sorted(unknown)}, which no vector has (traits: {traits})")
        name = model_name or (Path(model_id).name if Path(model_id).exists() else model_id)
        return cls(vectors, guards, manual, name)


def add_guard_actions(traits: dict[str, TraitInfo], readings: dict[str, dict], alerts: list[dict]) -> None:
    """Each reading's `guard_actions`: tokens capped or steered, or 1 when a stop guard ended the answer."""
    for trait, info in traits.items():
        reading = readings[trait]
        if info.guard == "cap":
            reading["guard_actions"] = reading["capped"]
        elif info.guard == "steer":
            reading["guard_actions"] = reading["steered"]
        else:
            reading["guard_actions"] = int(info.guard == "stop" and any(a["trait"] == trait for a in alerts))


def turn_spans(tokenizer, messages: list[dict]) -> list[tuple[int, int]]:
    """Token spans [start, end) of each earlier assistant message in the formatted prompt."""
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = format_chat(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        through = format_chat(tokenizer, messages[: i + 1], add_generation_prompt=False)
        start = len(tokenizer(before, add_special_tokens=False)["input_ids"]) if before else 0
        end = len(tokenizer(through, add_special_tokens=False)["input_ids"])
        spans.append((start, max(start, end)))
    return spans


class _Step(StoppingCriteria):
    """Called by generate after every new token: streams it with its readings; ends cancelled jobs."""

    def __init__(self, engine: Engine, job: Job, prompt_len: int):
        self.engine, self.job, self.prompt_len = engine, job, prompt_len
        self.ids: list[int] = []
        self.text = ""
        self.alerts_sent = 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.BoolTensor:
        m = self.engine.monitor
        token = int(input_ids[0, -1])
        k = input_ids.shape[1] - self.prompt_len - 1  # 0-based answer position
        self.ids.append(token)
        projections = {t: (r.tokens[k] if k < len(r.tokens) else None) for t, r in m.readings().items()}
        text = self.engine.tokenizer.decode(self.ids, skip_special_tokens=True)
        delta = ""
        if not text.endswith("\ufffd") and text.startswith(self.text):
            delta, self.text = text[len(self.text) :], text
        alerts = m.alerts()[self.alerts_sent :]
        self.alerts_sent += len(alerts)
        self.job.on_event(
            "token", TokenEvent(k, token, delta, projections, [self.engine.alert_dict(a) for a in alerts])
        )
        done = self.job.cancelled
        return cast(torch.BoolTensor, torch.tensor([done], dtype=torch.bool, device=input_ids.device))


class Engine:
    """Loads the model and vectors, watches every trait, and serves jobs from a queue."""

    def __init__(
        self,
        model,
        tokenizer,
        vectors: list[tuple[PersonaVector, str]],
        guards: dict[str, str] | None = None,
        manual_thresholds: dict[str, tuple[float | None, float | None]] | None = None,
        model_name: str = "model",
        max_tokens_limit: int = 2048,
        steer_coef: float | None = None,
        on_alert: Callable[[dict], None] | None = None,
        threshold_source: str = "auto",
    ):
        self.model, self.tokenizer, self.model_name = model.eval(), tokenizer, model_name
        guards = guards or {}
        manual = manual_thresholds or {}
        self.traits: dict[str, TraitInfo] = {}
        watches = []
        for vector, path in vectors:
            vector_for_model(vector, model, model_name, source=str(path))
            layer = vector.default_layer()
            thresholds = thresholds_for(
                model, tokenizer, vector, layer, path, manual.get(vector.trait), threshold_source
            )
            guard = guards.get(vector.trait, "alert")
            coef = steer_coef if steer_coef is not None else abs(vector.coef or 1.0)
            band = thresholds.band_caps if guard == "cap" else {}
            watch = Watch(
                vector,
                layer,
                thresholds.prompt,
                thresholds.response,
                guard,
                thresholds.cap,
                coef,
                band_caps=band,
            )
            watches.append(watch)
            self.traits[vector.trait] = TraitInfo(
                vector.trait, layer, guard, thresholds, watch.cap, str(path)
            )
        self.monitor = Monitor(model, watches, eos_token_id=self._eos_ids())
        limit = getattr(model.config, "max_position_embeddings", None) or max_tokens_limit
        self.context_length = int(limit)
        self.max_tokens_limit = min(max_tokens_limit, self.context_length)
        self.on_alert = on_alert
        self.created = int(time.time())
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._busy = threading.Lock()
        self._ids = itertools.count()
        self._thread = threading.Thread(target=self._run, name="persona-engine", daemon=True)
        self._thread.start()

    @classmethod
    def load(
        cls,
        model_id: str,
        vector_paths: list[str],
        guard_specs: list[str] | None = None,
        threshold_specs: list[str] | None = None,
        dtype: str = "float32",
        device: str | None = None,
        layers_path: str | None = None,
        **kwargs,
    ) -> Engine:
        setup = ServeSetup.parse(
            model_id, vector_paths, guard_specs, threshold_specs, kwargs.pop("model_name", None)
        )
        model, tokenizer = load_model(model_id, dtype=dtype, device=device, layers_path=layers_path)
        return cls(
            model, tokenizer, setup.vectors, setup.guards, setup.manual, model_name=setup.name, **kwargs
        )

    def _eos_ids(self) -> list[int]:
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    # --- requests -----------------------------------------------------------------------------
    def prompt_ids(self, messages: list[dict]) -> list[int]:
        text = format_chat(self.tokenizer, messages)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def submit(self, job: Job) -> None:
        self._queue.put(job)

    def alert_dict(self, alert) -> dict:
        text = self.tokenizer.decode(alert.token_ids, skip_special_tokens=True)
        return alert.to_dict(text)

    def _run(self) -> None:
        with self.monitor.active():
            while (job := self._queue.get()) is not None:
                if job.cancelled:
                    continue
                try:
                    with self._busy:
                        result = self._generate(job)
                    job.on_event("done", result)
                except Exception as e:  # a failing request must not stop the worker
                    logger.exception("request %s failed", job.request_id)
                    job.on_event("error", Failure(f"{type(e).__name__}: {e}"))

    def _generate(self, job: Job) -> Completion:
        messages = prepare_messages(self.tokenizer, job.messages)
        ids = self.prompt_ids(messages)
        self.monitor.set_turns([turn_spans(self.tokenizer, messages)])
        step = _Step(self, job, len(ids))
        p = job.params
        kwargs: dict = {"max_new_tokens": p.max_tokens, "do_sample": p.temperature > 0}
        if p.min_tokens:
            kwargs["min_new_tokens"] = p.min_tokens
        if p.temperature > 0:
            kwargs.update(temperature=p.temperature, top_p=p.top_p, top_k=0)
        if p.stop:
            kwargs.update(stop_strings=p.stop, tokenizer=self.tokenizer)
        if p.seed is not None:
            torch.manual_seed(p.seed)
        started = time.monotonic()
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=torch.tensor([ids], device=device),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
                stopping_criteria=[self.monitor.stopping_criteria(), step],
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self._eos_ids(),
                **kwargs,
            )
        answer = out[0, len(ids) :].tolist()
        eos = set(self._eos_ids())
        if self.monitor.stopped():
            finish = STOP_REASON
        elif (answer and answer[-1] in eos) or (p.stop and len(answer) < p.max_tokens):
            finish = "stop"
        else:
            finish = "length"
        while answer and answer[-1] in eos:
            answer.pop()
        readings = {t: r.to_dict() for t, r in self.monitor.readings().items()}
        alerts = [self.alert_dict(a) for a in self.monitor.alerts()]
        add_guard_actions(self.traits, readings, alerts)
        return Completion(
            self.tokenizer.decode(answer, skip_special_tokens=True),
            finish,
            len(ids),
            len(out[0]) - len(ids),
            readings,
            alerts,
            time.monotonic() - started,
        )

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
