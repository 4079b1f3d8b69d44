"""How much memory an in-process vLLM engine takes: a share of the GPU, or a fixed KV cache on a CPU."""

from __future__ import annotations

import math
import os
from typing import Any

from persona_vaccine.errors import InvalidInput

GIB = 1024**3
CPU_KV_SHARE = 0.1  # of the machine's memory, as vLLM's own CPU default


def engine_memory_args(cpu: bool, gpu_share: float) -> dict[str, Any]:
    """vLLM engine arguments that size its memory.

    On a GPU: `gpu_memory_utilization` (`PERSONA_VLLM_MEMORY`, else `gpu_share`). On a CPU vLLM would size
    its KV cache as a share of RAM minus what the process already holds, so an engine started by a process
    that has loaded a model or a dataset is refused; a fixed KV cache doesn't depend on that:
    `PERSONA_VLLM_KV_GIB` GiB, else a tenth of the machine's memory. vLLM's own `VLLM_CPU_KVCACHE_SPACE`
    wins when it is set.
    """
    if not cpu:
        return {"gpu_memory_utilization": _float_env("PERSONA_VLLM_MEMORY", gpu_share)}
    if os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        return {}
    default = CPU_KV_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    return {"kv_cache_memory_bytes": int(_float_env("PERSONA_VLLM_KV_GIB", default) * GIB)}


def check_kv_cache_fits(
    memory_args: dict[str, Any], config: Any, max_model_len: int, dtype: str, length_flag: str = ""
) -> None:
    """Refuse, before vLLM starts, a fixed KV cache too small for one request of `max_model_len` tokens.

    `length_flag` names the option that sets `max_model_len`, when the user has one. Counted for models
    whose every layer keeps keys and values for every token (sliding-window, hybrid and
    compressed-attention models keep less, and are left to vLLM's own check).
    """
    kv_bytes = memory_args.get("kv_cache_memory_bytes")
    per_token = kv_bytes_per_token(config, dtype)
    if kv_bytes is None or per_token is None:
        return
    needed = per_token * max_model_len
    if kv_bytes < needed:
        raise InvalidInput(
            f"vLLM's KV cache of {kv_bytes / GIB:.2f} GiB can't hold one request of max_model_len "
            f"{max_model_len} tokens (needs {needed / GIB:.2f} GiB): set PERSONA_VLLM_KV_GIB="
            f"{math.ceil(needed / GIB * 10) / 10:g} or more"
            + (f", or lower {length_flag}" if length_flag else "")
        )


def kv_bytes_per_token(config: Any, dtype: str) -> int | None:
    """Bytes of keys and values one token takes over all layers, or None where that is not the plain sum."""
    if getattr(config, "text_config", None) is not None or getattr(config, "kv_lora_rank", None):
        return None
    if any(t != "full_attention" for t in getattr(config, "layer_types", None) or ()):
        return None
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return None
    try:
        layers, heads = int(config.num_hidden_layers), int(config.num_attention_heads)
        kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
        head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    except (AttributeError, TypeError, ValueError):
        return None
    return 2 * layers * kv_heads * head_dim * (4 if _dtype_name(config, dtype) == "float32" else 2)


def _dtype_name(config: Any, dtype: str) -> str:
    if dtype != "auto":
        return dtype
    return str(getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "").replace(
        "torch.", ""
    )


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
