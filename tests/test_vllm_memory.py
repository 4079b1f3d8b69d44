"""The memory an in-process vLLM engine asks for: fixed on a CPU, a share of a GPU, bad settings refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from persona_vaccine.errors import InvalidInput
from persona_vaccine.models.vllm_memory import (
    GIB,
    check_kv_cache_fits,
    engine_memory_args,
    kv_bytes_per_token,
)
from persona_vaccine.steering.vector import PersonaVector

ROOT = Path(__file__).resolve().parents[1]


def test_a_cpu_engine_gets_a_fixed_kv_cache_that_the_process_size_does_not_change(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.delenv("PERSONA_VLLM_KV_GIB", raising=False)
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert engine_memory_args(cpu=True, gpu_share=0.3) == {"kv_cache_memory_bytes": int(machine / 10)}
    ballast = torch.ones(2**28)  # the process grows by 1 GiB: the cache it asks for does not shrink
    assert engine_memory_args(cpu=True, gpu_share=0.3) == {"kv_cache_memory_bytes": int(machine / 10)}
    del ballast
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


def test_kv_bytes_are_counted_only_where_every_layer_keeps_every_token():
    from transformers import Gemma2Config, LlamaConfig, MistralConfig, Qwen2Config

    llama = LlamaConfig(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, hidden_size=576)
    assert kv_bytes_per_token(llama, "float32") == 2 * 30 * 3 * 64 * 4
    assert kv_bytes_per_token(llama, "bfloat16") == 2 * 30 * 3 * 64 * 2
    qwen = Qwen2Config(num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, hidden_size=3584)
    assert kv_bytes_per_token(qwen, "bfloat16") == 2 * 28 * 4 * 128 * 2  # its sliding window is off
    assert kv_bytes_per_token(MistralConfig(sliding_window=4096), "bfloat16") is None
    assert kv_bytes_per_token(Gemma2Config(), "bfloat16") is None  # sliding layers between global ones


def test_a_kv_cache_too_small_for_one_request_is_refused_with_the_fix():
    from transformers import LlamaConfig

    config = LlamaConfig(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, hidden_size=576)
    needed = 8192 * 2 * 30 * 3 * 64 * 4  # 0.35 GiB, as vLLM itself counts
    check_kv_cache_fits({"kv_cache_memory_bytes": needed}, config, 8192, "float32")
    with pytest.raises(
        InvalidInput, match=r"needs 0\.35 GiB\): set PERSONA_VLLM_KV_GIB=0\.4 or more, or lower --x"
    ):
        check_kv_cache_fits({"kv_cache_memory_bytes": needed - 1}, config, 8192, "float32", "--x")
    check_kv_cache_fits({}, config, 8192, "float32")  # vLLM's own setting: left to vLLM


@pytest.mark.slow
def test_serve_refuses_a_small_kv_cache_in_one_line_before_vllm_starts(tmp_path):
    pytest.importorskip("vllm")
    vector = PersonaVector("evil", "smollm2-135m", 576, 30, {15: torch.ones(576)})
    path = vector.save(tmp_path / "evil.safetensors")
    env = {**os.environ, "PERSONA_VLLM_KV_GIB": "0.01"}
    argv = ["serve", "--engine", "vllm", "--model", "smollm2-135m", "--vectors", str(path), "--port", "8129"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "error: vLLM's KV cache of 0.01 GiB can't hold one request of max_model_len 8192" in proc.stderr
    assert "PERSONA_VLLM_KV_GIB=0.4 or more, or lower --max_model_len" in proc.stderr
    assert "Traceback" not in proc.stderr
