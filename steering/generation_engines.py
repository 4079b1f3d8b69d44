"""Who generates the answers of every stage: Hugging Face `generate`, vLLM, or an OpenAI-compatible server.

All three return the same `Generation` records for the same formatted prompts (tokenized here, without
special tokens, as the activations are read later); answers are cut at the first end-of-turn token.
Steering while generating (calibration, steered evaluation) runs on Hugging Face through the hooks and on
vLLM per request (each request carries its steering); a remote server only generates unsteered answers.
Activations are always read by the Hugging Face forward over the generated tokens.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from torch import nn

from persona_vaccine.models.generate import Generation, check_new_tokens, context_length, generate, stop_ids
from persona_vaccine.models.vllm_memory import check_kv_cache_fits, engine_memory_args
from persona_vaccine.steering.hooks import steer
from persona_vaccine.steering.vector import PersonaVector

logger = logging.getLogger(__name__)

ENGINES = ("hf", "vllm", "openai:MODEL")


@dataclass(frozen=True)
class Steering:
    """Add `coef * v_layer` while generating (coef_unit "relative": a fraction of the layer's mean norm)."""

    vector: PersonaVector
    layer: int
    coef: float
    positions: str = "all"
    coef_unit: str = "raw"

    def raw_coef(self) -> float:
        """The multiplier of v as extracted (vLLM's steering adds `coef * v`)."""
        if self.coef_unit == "relative":
            return (
                self.coef * self.vector.mean_norms[self.layer] / float(self.vector[self.layer].float().norm())
            )
        return self.coef


class GenerationEngine(Protocol):
    name: str
    batch_size: int  # prompts handed over per call (a resumed run redoes at most one such slice)

    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seeds: Sequence[int] | None = None,
        steering: Steering | None = None,
        progress: str | None = None,
    ) -> list[Generation]: ...

    def close(self) -> None: ...


class HFGeneration:
    """Batched `generate` on the Hugging Face model (the one the activations are read from)."""

    name = "hf"

    def __init__(self, model: nn.Module, tokenizer: Any, batch_size: int = 32):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seeds: Sequence[int] | None = None,
        steering: Steering | None = None,
        progress: str | None = None,
    ) -> list[Generation]:
        def run() -> list[Generation]:
            return generate(
                self.model,
                self.tokenizer,
                prompts,
                max_new_tokens,
                temperature,
                top_p,
                self.batch_size,
                seeds=seeds,
                progress=progress,
            )

        if steering is None:
            return run()
        with steer(
            self.model,
            steering.vector,
            layer=steering.layer,
            coef=steering.coef,
            positions=steering.positions,  # type: ignore[arg-type]
            coef_unit=steering.coef_unit,  # type: ignore[arg-type]
        ):
            return run()

    def close(self) -> None:
        pass


def _records(tokenizer: Any, stop: set[int], prompts: Sequence[str], prompt_ids, outputs) -> list[Generation]:
    results = []
    for prompt, ids, tokens in zip(prompts, prompt_ids, outputs, strict=True):
        response = []
        for token in tokens:
            if token in stop:
                break
            response.append(token)
        results.append(
            Generation(prompt, ids, response, tokenizer.decode(response, skip_special_tokens=True))
        )
    return results


def _prompt_ids(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]


class VllmGeneration:
    """vLLM's offline engine on the same checkpoint; steering rides with each request."""

    name = "vllm"
    batch_size = 256  # continuous batching: hand it many prompts at once

    def __init__(
        self,
        model_id: str,
        model: nn.Module,
        tokenizer: Any,
        dtype: str = "float32",
        seed: int = 0,
        lora: str | None = None,
        lora_rank: int = 16,
    ):
        from persona_vaccine.models.loading import resolve_model_path
        from persona_vaccine.vllm_request import require_vllm

        require_vllm("generation_engine vllm")
        from vllm import LLM

        os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
        self.model, self.tokenizer = model, tokenizer
        self.stop = stop_ids(model, tokenizer)
        cpu = not any(p.is_cuda for p in model.parameters())
        # vLLM's CPU build can't seed requests one by one (its CPU generators have no offset, which a
        # chunked prefill needs): there the engine's own seed makes the run reproducible instead
        self.per_request_seeds = not cpu
        max_model_len = min(context_length(model) or 4096, 4096)
        memory = engine_memory_args(cpu, gpu_share=0.5)
        check_kv_cache_fits(memory, model.config, max_model_len, dtype)
        self.llm = LLM(
            model=resolve_model_path(model_id),
            tokenizer=resolve_model_path(model_id),
            enforce_eager=True,
            dtype=dtype,  # type: ignore[arg-type]
            seed=seed,
            max_model_len=max_model_len,
            **memory,
            **cast(dict[str, Any], {"enable_lora": True, "max_lora_rank": lora_rank} if lora else {}),
        )
        self.lora = lora
        self.tmp = tempfile.TemporaryDirectory(prefix="persona-steer-")
        self.files: dict[int, str] = {}

    def _vector_file(self, vector: PersonaVector) -> str:
        if id(vector) not in self.files:
            path = Path(self.tmp.name) / f"{len(self.files)}-{vector.trait}.safetensors"
            self.files[id(vector)] = str(vector.save(path))
        return self.files[id(vector)]

    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seeds: Sequence[int] | None = None,
        steering: Steering | None = None,
        progress: str | None = None,
    ) -> list[Generation]:
        from vllm import SamplingParams

        from persona_vaccine.vllm_request import PersonaRequest, SteerSpec

        max_new_tokens = check_new_tokens(self.model, max_new_tokens)
        extra = None
        if steering is not None:
            spec = SteerSpec(
                self._vector_file(steering.vector), steering.layer, steering.raw_coef(), steering.positions
            )
            extra = PersonaRequest("generation", steer=(spec,)).to_extra_args()
        ids = _prompt_ids(self.tokenizer, prompts)
        params = [
            SamplingParams(
                max_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p if temperature > 0 else 1.0,
                seed=(seeds[i] if seeds is not None and temperature > 0 and self.per_request_seeds else None),
                extra_args=extra,
            )
            for i in range(len(prompts))
        ]
        from vllm.inputs import TokensPrompt

        inputs = [cast(TokensPrompt, {"prompt_token_ids": p}) for p in ids]
        lora = None
        if self.lora:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("run", 1, self.lora)
        outputs = self.llm.generate(inputs, params, use_tqdm=progress is not None, lora_request=lora)
        return _records(
            self.tokenizer, self.stop, prompts, ids, [list(o.outputs[0].token_ids) for o in outputs]
        )

    def close(self) -> None:
        del self.llm
        self.tmp.cleanup()


class OpenAIGeneration:
    """Unsteered answers from any OpenAI-compatible server (`/completions` on the formatted prompt)."""

    batch_size = 256

    def __init__(
        self, model: str, base_url: str | None, hf_model: nn.Module, tokenizer: Any, parallel: int = 8
    ):
        from persona_vaccine.llm_http import OpenAICompatibleChat

        self.name = f"openai:{model}"
        self.client = OpenAICompatibleChat(model, base_url)
        self.model, self.tokenizer, self.parallel = hf_model, tokenizer, parallel
        self.stop = stop_ids(hf_model, tokenizer)

    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seeds: Sequence[int] | None = None,
        steering: Steering | None = None,
        progress: str | None = None,
    ) -> list[Generation]:
        from persona_vaccine.llm_http import post_json

        if steering is not None:
            raise ValueError(
                f"generation_engine '{self.name}' can't steer; use generation_engine hf or vllm for steered answers"
            )
        max_new_tokens = check_new_tokens(self.model, max_new_tokens)
        key = os.environ.get(self.client.api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}

        def one(i: int) -> str:
            payload: dict[str, Any] = {
                "model": self.client.model,
                "prompt": prompts[i],
                "max_tokens": max_new_tokens,
                "temperature": temperature,
                "top_p": top_p,
            }
            if seeds is not None:
                payload["seed"] = int(seeds[i])
            answer = post_json(
                f"{self.client.base_url}/completions",
                payload,
                headers,
                self.client.timeout,
                self.client.max_retries,
                self.client.backoff,
                secret=key,
                require="choices",
            )
            return answer["choices"][0]["text"] or ""

        with concurrent.futures.ThreadPoolExecutor(self.parallel) as pool:
            texts = list(pool.map(one, range(len(prompts))))
        ids = _prompt_ids(self.tokenizer, prompts)
        outputs = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        return _records(self.tokenizer, self.stop, prompts, ids, outputs)

    def close(self) -> None:
        pass


def check_engine_name(name: str, where: str = "generation_engine") -> str:
    if name in ("hf", "vllm") or (name.startswith("openai:") and len(name) > len("openai:")):
        return name
    raise ValueError(f"{where}={name!r}: expected hf, vllm or openai:MODEL (an OpenAI-compatible server)")


def make_engine(
    name: str,
    model_id: str,
    model: nn.Module,
    tokenizer: Any,
    batch_size: int = 32,
    dtype: str = "float32",
    base_url: str | None = None,
    seed: int = 0,
) -> GenerationEngine:
    """The engine named `name` (see ENGINES) for the checkpoint `model_id` already loaded as `model`."""
    check_engine_name(name)
    if name == "vllm":
        return VllmGeneration(model_id, model, tokenizer, dtype=dtype, seed=seed)
    if name.startswith("openai:"):
        return OpenAIGeneration(name.split(":", 1)[1], base_url, model, tokenizer)
    return HFGeneration(model, tokenizer, batch_size)


@contextlib.contextmanager
def engine_for(
    name: str, model_id: str, model: nn.Module, tokenizer: Any, **kwargs: Any
) -> Iterator[GenerationEngine]:
    engine = make_engine(name, model_id, model, tokenizer, **kwargs)
    try:
        yield engine
    finally:
        engine.close()
