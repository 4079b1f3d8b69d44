"""persona-vaccine as a vLLM plugin, loaded by vLLM itself in every process it starts.

- `register` (entry point `vllm.general_plugins`): after each worker loads its model, attach the persona
  hooks (`vllm_worker.WorkerHooks`); in the process that takes requests, give every steered request a
  prefix-cache salt of its own, so an unsteered request never reuses a steered request's KV blocks.
- `PersonaLogitsProcessor` (entry point `vllm.logits_processors`): checks each request's persona settings
  when it arrives (a bad one is an HTTP 400, never a dead engine) and ends the requests whose `stop`
  guard fired, with their stop token.

Hooks need eager execution (`enforce_eager=True`, `--enforce-eager`): compiled graphs skip Python hooks.
Set `PERSONA_VLLM_DISABLE=1` to load vLLM without them.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import torch

from persona_vaccine.vllm_request import PersonaRequestError, parse

logger = logging.getLogger("persona_vaccine.vllm")

DISABLE_ENV = "PERSONA_VLLM_DISABLE"


def _decoder_layers(model: Any) -> Any:
    from persona_vaccine.models.layers import get_decoder_layers

    return get_decoder_layers(model)


def _attach(worker: Any) -> None:
    from .vllm_worker import WorkerHooks

    config = worker.vllm_config
    if getattr(worker, "use_v2_model_runner", False):
        logger.warning("persona hooks need vLLM's V1 model runner (VLLM_USE_V2_MODEL_RUNNER=0); not attached")
        return
    if not config.model_config.enforce_eager:
        logger.warning("persona hooks need eager mode (enforce_eager=True / --enforce-eager); not attached")
        return
    if config.parallel_config.pipeline_parallel_size > 1:
        logger.warning("persona hooks do not support pipeline parallelism; not attached")
        return
    worker.persona_hooks = WorkerHooks(worker, _decoder_layers(worker.model_runner.model))


def _patch_worker() -> None:
    from vllm.v1.worker import gpu_worker

    if getattr(gpu_worker.Worker, "_persona_patched", False):
        return
    load_model = gpu_worker.Worker.load_model

    def load_model_with_hooks(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = load_model(self, *args, **kwargs)
        _attach(self)
        return result

    gpu_worker.Worker.load_model = load_model_with_hooks  # type: ignore[method-assign]
    gpu_worker.Worker.persona_hooks_attached = _hooks_attached  # type: ignore[attr-defined]
    gpu_worker.Worker._persona_patched = True  # type: ignore[attr-defined]


def _hooks_attached(worker: Any) -> dict:
    """collective_rpc target: whether this worker has the hooks, and their error count."""
    hooks = getattr(worker, "persona_hooks", None)
    return {"attached": hooks is not None, "errors": getattr(hooks, "errors", 0), "rank": worker.rank}


def _patch_salt() -> None:
    from vllm.v1.engine import input_processor

    cls = input_processor.InputProcessor
    if getattr(cls, "_persona_patched", False):
        return
    process_inputs = cls.process_inputs

    def process_inputs_with_salt(self: Any, *args: Any, **kwargs: Any) -> Any:
        request = process_inputs(self, *args, **kwargs)
        params = request.sampling_params
        spec = parse(params.extra_args) if params is not None and params.extra_args else None
        salt = spec.cache_salt() if spec is not None else None
        if salt:
            request.cache_salt = f"{request.cache_salt}|{salt}" if request.cache_salt else salt
        return request

    cls.process_inputs = process_inputs_with_salt  # type: ignore[method-assign]
    cls._persona_patched = True  # type: ignore[attr-defined]


def register() -> None:
    """The general plugin: cheap, idempotent, run by vLLM in each of its processes."""
    if os.environ.get(DISABLE_ENV) == "1":
        return
    _patch_salt()
    _patch_worker()


if TYPE_CHECKING:
    from vllm.v1.sample.logits_processor import LogitsProcessor
else:
    try:
        from vllm.v1.sample.logits_processor import LogitsProcessor
    except ImportError:  # vLLM not installed: the plugin is never loaded then
        LogitsProcessor = object


class PersonaLogitsProcessor(LogitsProcessor):
    """Validates persona settings on arrival; makes a stopped request's next token its stop token."""

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        if sampling_params.extra_args:
            try:
                parse(sampling_params.extra_args)
            except PersonaRequestError as e:
                from vllm.exceptions import VLLMValidationError

                raise VLLMValidationError(f"persona: {e}", parameter="vllm_xargs") from None

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        eos = getattr(vllm_config.model_config.hf_config, "eos_token_id", None)
        self.default_stop = [eos] if isinstance(eos, int) else list(eos or [])
        self.params: dict[int, Any] = {}  # batch index -> SamplingParams

    def is_argmax_invariant(self) -> bool:
        return False

    def update_state(self, batch_update: Any) -> None:
        if batch_update is None:
            return
        for index in batch_update.removed:
            self.params.pop(index, None)
        for index, params, _, _ in batch_update.added:
            self.params[index] = params
        for a, b, direction in batch_update.moved:
            pa, pb = self.params.pop(a, None), self.params.pop(b, None)
            if pa is not None:
                self.params[b] = pa
            if pb is not None and direction.name == "SWAP":
                self.params[a] = pb

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        from .vllm_worker import STOPPED

        if not STOPPED:
            return logits
        for index, params in self.params.items():
            if id(params) in STOPPED and index < logits.shape[0]:
                stop = [t for t in (params.all_stop_token_ids or self.default_stop) if t < logits.shape[1]]
                if stop:
                    keep = logits[index, stop].clone()
                    logits[index] = float("-inf")
                    logits[index, stop] = keep.clamp_min(0.0)
        return logits
