"""How much memory an in-process vLLM engine takes: a share of the GPU, or a fixed KV cache on a CPU."""

from __future__ import annotations

import math
import os
from typing import Any

from persona_vaccine.errors import InvalidInput

GIB = 1024**3


def engine_memory_args(cpu: bool, gpu_share: float) -> dict[str, Any]:
    """vLLM engine arguments that size its memory.

    On a GPU: `gpu_memory_utilization` (`PERSONA_VLLM_MEMORY`, else `gpu_share`). On a CPU vLLM would size
    its KV cache as a share of RAM minus what the process already holds, so an engine started by a process
    that has loaded a model or a dataset is refused; a fixed KV cache of `PERSONA_VLLM_KV_GIB` GiB
    (default 1) doesn't depend on that. vLLM's own `VLLM_CPU_KVCACHE_SPACE` wins when it is set.
    """
    if not cpu:
        return {"gpu_memory_utilization": _float_env("PERSONA_VLLM_MEMORY", gpu_share)}
    if os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        return {}
    return {"kv_cache_memory_bytes": int(_float_env("PERSONA_VLLM_KV_GIB", 1.0) * GIB)}


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise InvalidInput(
            f"environment variable {name}={raw!r} must be a number above 0 (e.g. 0.5); set it or unset it"
        )
    return value
