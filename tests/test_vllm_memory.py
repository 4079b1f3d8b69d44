"""The memory an in-process vLLM engine asks for: fixed on a CPU, a share of the GPU, and bad settings refused."""

from __future__ import annotations

import pytest

from persona_vaccine.errors import InvalidInput
from persona_vaccine.models.vllm_memory import GIB, engine_memory_args


def test_a_cpu_engine_gets_a_fixed_kv_cache_that_the_process_size_does_not_change(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.delenv("PERSONA_VLLM_KV_GIB", raising=False)
    assert engine_memory_args(cpu=True, gpu_share=0.3) == {"kv_cache_memory_bytes": GIB}
    monkeypatch.setenv("PERSONA_VLLM_KV_GIB", "0.25")
    assert engine_memory_args(cpu=True, gpu_share=0.3) == {"kv_cache_memory_bytes": GIB // 4}


def test_vllms_own_cpu_setting_wins(monkeypatch):
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2")
    monkeypatch.setenv("PERSONA_VLLM_KV_GIB", "0.25")
    assert engine_memory_args(cpu=True, gpu_share=0.3) == {}


def test_a_gpu_engine_gets_a_share_of_the_gpu(monkeypatch):
    monkeypatch.delenv("PERSONA_VLLM_MEMORY", raising=False)
    assert engine_memory_args(cpu=False, gpu_share=0.3) == {"gpu_memory_utilization": 0.3}
    monkeypatch.setenv("PERSONA_VLLM_MEMORY", "0.6")
    assert engine_memory_args(cpu=False, gpu_share=0.3) == {"gpu_memory_utilization": 0.6}


@pytest.mark.parametrize("raw", ["half", "0", "-1", "inf", "nan"])
def test_a_bad_setting_names_the_variable_and_the_fix(monkeypatch, raw):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.setenv("PERSONA_VLLM_KV_GIB", raw)
    with pytest.raises(InvalidInput, match=r"PERSONA_VLLM_KV_GIB=.*number above 0"):
        engine_memory_args(cpu=True, gpu_share=0.3)
