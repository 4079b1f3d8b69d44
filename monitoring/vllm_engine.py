"""The server's engine on vLLM: continuous batching, with the persona hooks running inside vLLM's workers.

Same interface as the Hugging Face `Engine` (submit a `Job`, get "token", "done" or "error" events),
so the OpenAI API, alerts, sinks, /metrics and the dashboard are the same code on either engine.
Each request carries its watches in `SamplingParams.extra_args`; each answer token is sent once its
readings have arrived from the workers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from persona_vaccine.models.chat import format_chat, prepare_messages
from persona_vaccine.models.loading import load_model, load_tokenizer, model_config, resolve_model_path
from persona_vaccine.models.vllm_memory import check_kv_cache_fits, engine_memory_args
from persona_vaccine.steering.vector import PersonaVector
from persona_vaccine.vllm_request import (
    VLLM_EXTRA,
    PersonaRequest,
    VllmMissing,
    WatchSpec,
    require_vllm,
)

from .engine import Completion, Failure, Job, ServeSetup, TokenEvent, TraitInfo, add_guard_actions, turn_spans
from .guards import STOP_REASON
from .ordinary import find_calibration
from .thresholds import thresholds_for

logger = logging.getLogger(__name__)


def _calibrated(
    model_id: str, vectors: list[tuple[PersonaVector, str]], manual: dict, dtype: str, source: str = "auto"
) -> dict:
    """Thresholds per trait; the Hugging Face model is loaded only if a vector needs calibrating."""
    needs = [
        (v, p)
        for v, p in vectors
        if v.trait not in manual
        and (Path(p).parent / "generations.jsonl").is_file()
        and (source == "extraction" or find_calibration(p) is None)
    ]
    model = tokenizer = None
    if needs:
        model, tokenizer = load_model(model_id, dtype=dtype)
    found = {}
    for vector, path in vectors:
        layer = vector.default_layer()
        if vector.trait in manual or (vector, path) not in needs:
            found[vector.trait] = thresholds_for(
                None, None, vector, layer, path, manual.get(vector.trait), source
            )
        else:
            found[vector.trait] = thresholds_for(model, tokenizer, vector, layer, path, None, source)
    del model
    return found


class VllmEngine:
    """vLLM's AsyncLLM on its own event-loop thread, watching every trait on every request."""

    def __init__(
        self,
        model_id: str,
        vectors: list[tuple[PersonaVector, str]],
        guards: dict[str, str] | None = None,
        manual_thresholds: dict[str, tuple[float | None, float | None]] | None = None,
        model_name: str = "model",
        max_tokens_limit: int = 2048,
        steer_coef: float | None = None,
        dtype: str = "float32",
        max_model_len: int | None = None,
        prefix_caching: bool = False,
        tensor_parallel_size: int = 1,
        seed: int = 0,
        threshold_source: str = "auto",
    ):
        require_vllm("--engine vllm (or use --engine hf)")
        from .vllm_readings import ReadingsReader

        self.model_name, self.created = model_name, int(time.time())
        self.tokenizer = load_tokenizer(model_id)
        config = model_config(model_id)
        limit = max_model_len or getattr(config, "max_position_embeddings", None) or max_tokens_limit
        self.context_length = int(limit)
        self.max_tokens_limit = min(max_tokens_limit, self.context_length)
        memory = engine_memory_args(_cpu(), gpu_share=0.9)
        check_kv_cache_fits(memory, config, self.context_length, dtype, length_flag="--max_model_len")
        guards = guards or {}
        thresholds = _calibrated(model_id, vectors, manual_thresholds or {}, dtype, threshold_source)
        self.traits: dict[str, TraitInfo] = {}
        self.watches: list[WatchSpec] = []
        for vector, path in vectors:
            vector.check_model(config.hidden_size, config.num_hidden_layers, model_id, str(path))
            layer, guard, t = (
                vector.default_layer(),
                guards.get(vector.trait, "alert"),
                thresholds[vector.trait],
            )
            coef = steer_coef if steer_coef is not None else abs(vector.coef or 1.0)
            cap = t.cap if t.cap is not None else t.response
            band = (
                tuple(sorted((k, v) for k, v in t.band_caps.items() if k != layer)) if guard == "cap" else ()
            )
            watch = WatchSpec(
                str(Path(path).resolve()), layer, t.prompt, t.response, guard, cap, coef, band_caps=band
            )
            self.watches.append(watch)
            self.traits[vector.trait] = TraitInfo(vector.trait, layer, guard, t, cap, str(path))
        self.reader = ReadingsReader()
        os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="persona-vllm", daemon=True)
        self.thread.start()
        engine_args = dict(
            model=resolve_model_path(model_id),
            served_model_name=model_name,
            enforce_eager=True,
            dtype=dtype,
            max_model_len=self.context_length,
            enable_prefix_caching=prefix_caching,
            tensor_parallel_size=tensor_parallel_size,
            **memory,
            seed=seed,
        )
        self.engine = self._call(self._start(engine_args), timeout=None)

    async def _start(self, engine_args: dict) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        return AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_args))

    async def _shutdown(self) -> None:
        engine, self.engine = self.engine, None
        engine.shutdown()

    def _call(self, coroutine: Coroutine, timeout: float | None = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    @classmethod
    def load(
        cls,
        model_id: str,
        vector_paths: list[str],
        guard_specs: list[str] | None = None,
        threshold_specs: list[str] | None = None,
        **kwargs: Any,
    ) -> VllmEngine:
        setup = ServeSetup.parse(
            model_id, vector_paths, guard_specs, threshold_specs, kwargs.pop("model_name", None)
        )
        return cls(model_id, setup.vectors, setup.guards, setup.manual, model_name=setup.name, **kwargs)

    # --- requests -----------------------------------------------------------------------------
    def prompt_ids(self, messages: list[dict]) -> list[int]:
        text = format_chat(self.tokenizer, messages)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def submit(self, job: Job) -> None:
        asyncio.run_coroutine_threadsafe(self._serve(job), self.loop)

    def persona_request(self, tag: str, spans: list[tuple[int, int]]) -> PersonaRequest:
        return PersonaRequest(tag, tuple(self.watches), (), tuple(spans))

    async def _serve(self, job: Job) -> None:
        try:
            job.on_event("done", await self._generate(job))
        except Exception as e:  # a failing request must not stop the others
            logger.exception("request %s failed", job.request_id)
            job.on_event("error", Failure(f"{type(e).__name__}: {e}"))

    async def _generate(self, job: Job) -> Completion:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        messages = prepare_messages(self.tokenizer, job.messages)
        ids = self.prompt_ids(messages)
        spec = self.persona_request(job.request_id, turn_spans(self.tokenizer, messages))
        p = job.params
        params = SamplingParams(
            max_tokens=p.max_tokens,
            min_tokens=p.min_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            seed=p.seed,
            stop=p.stop or None,
            output_kind=RequestOutputKind.DELTA,
            extra_args=spec.to_extra_args(),
        )
        started, text, finish = time.monotonic(), "", "length"
        answer: list[int] = []
        traits, alerts_sent = list(self.traits), 0
        async for out in self.engine.generate({"prompt_token_ids": ids}, params, job.request_id):
            completion = out.outputs[0]
            for i, token in enumerate(completion.token_ids):
                k = len(answer)
                answer.append(token)
                collected = await self._readings(job.request_id, k + 1, traits)
                new_alerts = [self._alert(a, answer) for a in collected.alerts[alerts_sent:]]
                alerts_sent = len(collected.alerts)
                projections = {
                    t: (r.tokens[k] if k < len(r.tokens) else None) for t, r in collected.readings.items()
                }
                delta = completion.text if i == 0 else ""
                job.on_event("token", TokenEvent(k, token, delta, projections, new_alerts))
            text += completion.text
            finish = completion.finish_reason or finish
            if job.cancelled or (collected.stop and not out.finished):
                await self.engine.abort(job.request_id)
                break
        collected = self.reader.pop(job.request_id)
        readings = {t: collected.readings[t].to_dict() for t in traits if t in collected.readings}
        alerts = [self._alert(a, answer) for a in collected.alerts]
        add_guard_actions({t: i for t, i in self.traits.items() if t in readings}, readings, alerts)
        eos = self.tokenizer.eos_token_id
        completion_tokens = len(answer)
        if answer and answer[-1] == eos:
            answer.pop()
        finish = STOP_REASON if collected.stop else finish
        return Completion(
            text, finish, len(ids), completion_tokens, readings, alerts, time.monotonic() - started
        )

    async def _readings(self, tag: str, count: int, traits: list[str]) -> Any:
        found = self.reader.collected.get(tag)
        if found is not None and found.count(traits) >= count:
            return found
        return await self.loop.run_in_executor(None, self.reader.wait, tag, count, traits)

    def _alert(self, alert: dict, answer: list[int]) -> dict:
        text = self.tokenizer.decode(answer[: alert["position"]], skip_special_tokens=True)
        return {**alert, "text": text}

    def close(self) -> None:
        if self.engine is None:
            return
        self._call(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.reader.close()


def _cpu() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:
        return True


__all__ = ["VLLM_EXTRA", "VllmEngine", "VllmMissing", "require_vllm"]
