"""Shared fixtures: tiny random models built from configs, a tiny tokenizer, and the embedded model's tokenizer."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # parallel workers share the cores: one thread each (and in the processes they start), not two contending
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    torch.set_num_threads(threads)
else:
    torch.set_num_threads(min(2, os.cpu_count() or 1))

# The longest modules start first, so that two workers finish together (each module runs on one worker;
# `make test` passes --no-loadscope-reorder, without which xdist would start the modules with most tests first).
LONGEST_FIRST = (
    "test_first_hour.py",
    "test_first_hour_pip.py",
    "test_launch.py",
    "test_embedded_e2e.py",
    "test_vllm_generation.py",
    "test_faults.py",
    "test_seeds.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order inside a module, and of the other modules, is kept


def tiny_llama(vocab_size: int = 256, layers: int = 4, hidden: int = 32, seed: int = 0):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=0,
        tie_word_embeddings=True,
    )
    return AutoModelForCausalLM.from_config(config).eval()


@pytest.fixture(scope="session")
def smol_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer (from the embedded model, converted once and cached)."""
    from persona_vaccine.models.loading import load_tokenizer

    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A 512-token byte-level BPE with SmolLM2's chat template and special tokens (built offline)."""
    from tiny_tokenizer import build_tiny_tokenizer

    return build_tiny_tokenizer()


def _chat_model(tokenizer):
    model = tiny_llama(vocab_size=len(tokenizer), layers=4, hidden=32)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


@pytest.fixture(scope="session")
def tiny_chat_model(tiny_tokenizer):
    """A tiny random Llama with the tiny tokenizer's 512-token vocabulary and SmolLM2's chat template."""
    return _chat_model(tiny_tokenizer)


@pytest.fixture(scope="session")
def smol_chat_model(smol_tokenizer):
    """A tiny random Llama with the embedded model's 49k vocabulary (for tests of SmolLM2's tokenizer)."""
    return _chat_model(smol_tokenizer)
