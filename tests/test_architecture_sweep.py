"""transformers' causal-LM zoo as tiny random models: discovery, steer + exact restore, ablate, generate
positions, and a 2-step preventative LoRA run (the full table: `python tests/architecture_sweep.py --train`)."""

from __future__ import annotations

import pytest
from architecture_sweep import Result, causal_lm_types, check, check_training, sweep, table

# Architectures people fine-tune today that a whitelist used to refuse, one check each in the fast suite.
COMMON = [
    "mixtral",
    "qwen2_moe",
    "qwen3_moe",
    "gpt_oss",
    "granite",
    "cohere2",
    "glm4",
    "smollm3",
    "olmo",
    "gemma",
    "phi",
    "starcoder2",
    "falcon",
    "gptj",
    "gpt_bigcode",
    "mpt",
    "opt",
    "bloom",
    "exaone4",
    "llama4_text",
]
TRAIN = ["llama", "mixtral", "qwen3_moe", "gpt2", "falcon", "mpt", "gemma2", "phi"]


@pytest.mark.parametrize("model_type", COMMON)
def test_common_architectures(model_type):
    if model_type not in causal_lm_types():
        pytest.skip(f"{model_type} is not in this transformers' causal-LM mapping")
    result = check(model_type)
    assert result.built, result.reason
    assert result.passed, result.reason
    assert result.blocks == result.expected_blocks
    assert result.generate_positions is True, result.reason


@pytest.mark.slow
def test_the_whole_causal_lm_zoo(capsys):
    results = sweep()
    with capsys.disabled():
        print("\n" + table(results))
    built = [r for r in results if r.built]
    passed = [r for r in built if r.passed]
    assert len(built) >= 100, f"only {len(built)} of {len(results)} model types could be built tiny"
    assert len(passed) >= 0.9 * len(built), table(results)
    assert all(r.reason for r in results if not r.passed)  # every failure says why


@pytest.mark.slow
@pytest.mark.parametrize("model_type", TRAIN)
def test_two_step_preventative_lora_training(model_type, smol_tokenizer, tmp_path):
    ok, why = check_training(model_type, smol_tokenizer, tmp_path)
    assert ok, why


def test_a_result_passes_only_if_every_check_that_ran_passed():
    core = dict(built=True, discovery=True, steer_changes=True, restore_exact=True, ablate=True)
    assert Result("a", **core).passed  # generate not run
    assert Result("a", **core, generate_positions=True).passed
    assert not Result("a", **core, generate_positions=False).passed
    assert not Result("a", **{**core, "ablate": False}, generate_positions=True).passed
    summary = table(
        [Result("a", **core, generate_positions=False), Result("b", **core, generate_positions=True)]
    )
    assert summary.endswith("2 of them pass discovery + steer + restore + ablate (100.0%); 1 pass every check "
                            "that ran, generate positions included (50.0%).")  # fmt: skip
