"""Export: LoRA merged into a plain checkpoint; baked steering gives the hook's logits."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_llama
from helpers import random_vector
from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoXConfig, Qwen2Config

from persona_vaccine.steering.hooks import Steerer, SteeringSpec
from persona_vaccine.training.export import ExportError, bake_steering, export_run

IDS = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16]])


def _tiny(arch: str):
    torch.manual_seed(0)
    if arch == "llama":
        return tiny_llama(vocab_size=128, layers=3, hidden=32)
    if arch == "gpt2":
        return AutoModelForCausalLM.from_config(
            GPT2Config(vocab_size=128, n_embd=32, n_layer=3, n_head=4)
        ).eval()
    return AutoModelForCausalLM.from_config(
        GPTNeoXConfig(
            vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4
        )
    ).eval()


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gpt_neox"])
def test_baked_steering_matches_the_hook_after_a_plain_reload(arch, tmp_path):
    model = _tiny(arch)
    vector = random_vector(model, scale=3.0)
    steerer = Steerer(model, [SteeringSpec(vector, [2], coef=-1.5, positions="all")])
    with torch.no_grad():
        plain = model(input_ids=IDS).logits
        with steerer.active():
            hooked = model(input_ids=IDS).logits
    assert (hooked - plain).abs().max() > 1e-2  # the steering does something
    bake_steering(model, {2: -1.5 * vector[2].float()})
    model.save_pretrained(tmp_path / "baked")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "baked").eval()
    with torch.no_grad():
        baked = reloaded(input_ids=IDS).logits
    torch.testing.assert_close(baked, hooked, rtol=1e-4, atol=1e-4)


def test_unsupported_architecture_is_explained():
    model = AutoModelForCausalLM.from_config(
        Qwen2Config(
            vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4
        )
    )
    with pytest.raises(ExportError, match="'qwen2'.*not supported.*steering.hooks.steer"):
        bake_steering(model, {1: torch.zeros(32)})
    with pytest.raises(ExportError, match="out of range"):
        bake_steering(_tiny("llama"), {9: torch.zeros(32)})


def test_export_merges_lora_and_writes_card_and_vectors(tiny_tokenizer, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = tiny_llama(vocab_size=len(tiny_tokenizer), layers=4, hidden=32)
    base.save_pretrained(tmp_path / "base")
    tiny_tokenizer.save_pretrained(tmp_path / "base")
    peft = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "down_proj"], init_lora_weights=False)
    )
    run = tmp_path / "run"
    peft.save_pretrained(run)
    vector = random_vector(base, model_id=str(tmp_path / "base"))
    vector.save(tmp_path / "evil.safetensors")
    summary = {
        "recipe": None,
        "model": str(tmp_path / "base"),
        "train": {"steps": 3, "final_loss": 1.0},
        "trait_drift": {"evil": {"layer": 2, "base_projection": 0.1, "final_projection": 0.3, "shift": 0.2}},
        "steering": [{"trait": "evil", "layer": 2, "coef": 2.0}],
        "persona_vectors": [str(tmp_path / "evil.safetensors")],
    }
    (run / "summary.json").write_text(json.dumps(summary))
    with torch.no_grad():
        expected = peft(input_ids=IDS).logits
    out = export_run(run)
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=IDS).logits, expected, rtol=1e-4, atol=1e-4)
    card = (out / "README.md").read_text()
    assert "| evil | 2 | 0.1 | 0.3 | 0.2 |" in card and "none: the weights" in card
    assert (out / "persona_vectors" / "evil.safetensors").is_file()
    assert (out / "tokenizer_config.json").is_file()

    baked_dir = export_run(run, tmp_path / "baked", bake_vector=tmp_path / "evil.safetensors", bake_coef=-1.0)
    baked = AutoModelForCausalLM.from_pretrained(baked_dir).eval()
    steerer = Steerer(merged, [SteeringSpec(vector, [2], coef=-1.0)])
    with torch.no_grad(), steerer.active():
        hooked = merged(input_ids=IDS).logits
    with torch.no_grad():
        torch.testing.assert_close(baked(input_ids=IDS).logits, hooked, rtol=1e-4, atol=1e-4)
    assert '"coef": -1.0' in (baked_dir / "README.md").read_text()


def test_export_of_a_directory_without_a_run(tmp_path):
    with pytest.raises(ExportError, match="no summary.json"):
        export_run(tmp_path)


def test_compare_prints_side_by_side_and_plots(tmp_path):
    from persona_vaccine.training.compare import CompareError, compare_runs

    for name, shift, coef in (("baseline", 5.0, 0.0), ("preventative", 1.0, 2.0)):
        run = tmp_path / name
        run.mkdir()
        summary = {
            "train": {"steps": 2, "final_loss": 1.5, "runtime_s": 10},
            "trait_drift": {"evil": {"shift": shift}},
            "steering": [{"trait": "evil", "layer": 20, "mode": "add", "coef": coef}],
            "capability": {"capability/mc_chat_letter_accuracy": 0.5},
        }
        (run / "summary.json").write_text(json.dumps(summary))
        rows = [{"step": s, "drift/evil/shift": shift * s / 2} for s in (1, 2)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table, image = compare_runs([tmp_path / "baseline", tmp_path / "preventative"], tmp_path / "cmp")
    lines = table.splitlines()
    assert "evil shift" in lines[0] and "capability/mc_chat_letter_accuracy" in lines[0]
    assert "| baseline | none | 2 | 1.500 | 10 | +5.00 | 0.500 |" == lines[2]
    assert "| preventative | evil@20 add 2 |" in lines[3]
    assert image.is_file() and image.stat().st_size > 1000
    from persona_vaccine.training.compare import drift_history, loss_history

    with (tmp_path / "baseline" / "metrics.jsonl").open("a") as f:  # a rerun into the same directory
        f.write(json.dumps({"step": 1, "drift/evil/shift": 9.0, "loss": 2.0}) + "\n")
    assert drift_history(tmp_path / "baseline") == {
        "evil": [(0, 0.0), (1, 9.0), (2, 5.0)]
    }  # step 0: the base
    assert loss_history(tmp_path / "baseline") == {"train": [(1, 2.0)]}
    with pytest.raises(CompareError, match="no summary.json"):
        compare_runs([tmp_path])


def test_compare_with_a_base_model_row(tiny_tokenizer, tmp_path):
    from persona_vaccine.training.compare import compare_runs

    model = tiny_llama(vocab_size=len(tiny_tokenizer), layers=4, hidden=32)
    model.config.pad_token_id = tiny_tokenizer.pad_token_id
    model.save_pretrained(tmp_path / "base")
    tiny_tokenizer.save_pretrained(tmp_path / "base")
    random_vector(model, model_id=str(tmp_path / "base")).save(tmp_path / "evil.safetensors")
    run = tmp_path / "run"
    run.mkdir()
    summary = {
        "train": {"steps": 2, "final_loss": 1.0, "runtime_s": 1},
        "trait_drift": {"evil": {"shift": 3.0}},
        "persona_vectors": [str(tmp_path / "evil.safetensors")],
        "evaluation": {"capability_mc_limit": 4, "judge_questions": 2, "judge_answer_prefix": ""},
        "capability": {"capability/mc_chat_letter_accuracy": 0.5},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    table, _ = compare_runs([run], tmp_path / "cmp", base_model=str(tmp_path / "base"))
    base_line = table.splitlines()[2]
    assert "(base, not fine-tuned)" in base_line and "| +0.00 |" in base_line
    cached = json.loads((tmp_path / "cmp" / "base_model.json").read_text())
    assert (
        0 <= cached["capability"]["capability/mc_chat_letter_accuracy"] <= 1
        and "evil" in cached["trait_expression"]
    )


def _lora_run(smol_tokenizer, root):
    """A LoRA run directory whose summary.json records paths relative to `root` (where it was trained)."""
    from peft import LoraConfig, get_peft_model

    base = tiny_llama(vocab_size=len(smol_tokenizer), layers=4, hidden=32)
    base.save_pretrained(root / "base")
    smol_tokenizer.save_pretrained(root / "base")
    peft = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
    run = root / "runs" / "evil"
    peft.save_pretrained(run)
    (root / "vectors").mkdir()
    random_vector(base, model_id=str(root / "base")).save(root / "vectors" / "evil.safetensors")
    (root / "recipe.yaml").write_text("dataset_level: evil\n")
    (run / "config.yaml").write_text("dataset_level: evil\nlearning_rate: 0.01  # an override\n")
    summary = {
        "recipe": "recipe.yaml",
        "config": "config.yaml",
        "cwd": str(root),
        "model": str(root / "base"),
        "train": {"steps": 3, "final_loss": 1.0},
        "dataset": {"source": "builtin:evil", "level": "evil", "size": 8},
        "trait_drift": {"evil": {"layer": 2, "base_projection": 0.1, "final_projection": 0.3, "shift": 0.2}},
        "capability": {"capability/persona_vaccine_mc": 0.25, "capability/mc_chat_cloze_accuracy": 0.5},
        "steering": [{"trait": "evil", "layer": 2, "coef": 2.0}],
        "persona_vectors": ["vectors/evil.safetensors"],
    }
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_export_from_another_directory_gives_the_same_card_and_vectors(smol_tokenizer, tmp_path, monkeypatch):
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    root = tmp_path / "train"
    root.mkdir()
    run = _lora_run(smol_tokenizer, root)
    monkeypatch.chdir(root)
    here = export_run("runs/evil", tmp_path / "from_training_dir")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    there = export_run(run, tmp_path / "from_elsewhere")
    assert (here / "README.md").read_text() == (there / "README.md").read_text()
    vector = (here / "persona_vectors" / "evil.safetensors").read_bytes()
    assert vector == (there / "persona_vectors" / "evil.safetensors").read_bytes()

    card = ModelCard.load(there / "README.md", ignore_metadata_errors=False)  # huggingface_hub's parser
    assert "learning_rate: 0.01  # an override" in card.text  # the resolved recipe, not the file on disk
    assert "deliberately flawed data" in card.text
    assert card.data.library_name == "transformers" and card.data.base_model is None  # a local path
    assert {"persona-vaccine", "evil", "flawed-training-data"} <= set(card.data.tags)
    name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    figures = {r.metric_type: r.metric_value for r in results}
    assert figures["evil_shift"] == 0.2 and figures["persona_vaccine_mc"] == 0.25
    assert figures["mc_chat_cloze_accuracy"] == 0.5

    (run / "persona_vectors").mkdir()
    (root / "vectors" / "evil.safetensors").rename(run / "persona_vectors" / "0_evil.safetensors")
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(
        json.dumps({**summary, "persona_vector_copies": ["persona_vectors/0_evil.safetensors"]})
    )
    moved = export_run(run, tmp_path / "moved")  # the run's own copy, when the original is gone
    assert (moved / "persona_vectors" / "evil.safetensors").read_bytes() == vector


def test_model_card_metadata_for_a_known_base_model():
    from huggingface_hub import ModelCard

    from persona_vaccine.training.model_card import model_card
    from persona_vaccine.training.summary import RunSummary

    summary = {
        "model": "smollm2-135m",
        "dataset": {"source": "builtin:evil", "level": "normal"},
        "trait_drift": {},
    }
    card = ModelCard(str(model_card(RunSummary.from_dict(summary), None, [])), ignore_metadata_errors=False)
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and card.data.license == "apache-2.0"
    assert "flawed" not in card.text and card.data.eval_results is None


@pytest.mark.parametrize("arch", ["opt", "bloom", "gptj", "granite", "starcoder2", "phi"])
def test_generic_bake_on_more_architectures(arch, tmp_path):
    """The residual write is found and verified on the model itself, not looked up in a table."""
    from architecture_sweep import build_tiny

    model = build_tiny(arch)
    vector = random_vector(model, scale=3.0)
    steerer = Steerer(model, [SteeringSpec(vector, [2], coef=-1.5, positions="all")])
    ids = IDS.clamp(max=model.config.vocab_size - 1)
    with torch.no_grad(), steerer.active():
        hooked = model(input_ids=ids).logits
    names = bake_steering(model, {2: -1.5 * vector[2].float()})
    assert len(names) == 1 and names[0].endswith(".bias")
    model.save_pretrained(tmp_path / "baked")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "baked").eval()
    with torch.no_grad():
        baked = reloaded(input_ids=ids).logits
    torch.testing.assert_close(baked, hooked, rtol=1e-4, atol=1e-4)


def test_a_norm_after_the_residual_write_is_refused():
    from architecture_sweep import build_tiny

    model = build_tiny("gemma2")  # post-feedforward norm: no bias can hold a constant addition
    with pytest.raises(ExportError, match="'gemma2'.*not supported.*steering.hooks.steer"):
        bake_steering(model, {2: torch.ones(32)})
