"""PreventativeSFTTrainer on a tiny random Llama with SmolLM2's tokenizer."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from helpers import random_vector
from trl import SFTTrainer

from persona_vaccine.data.loading import load_training_dataset
from persona_vaccine.models.layers import get_decoder_layers
from persona_vaccine.training.callbacks import DriftCallback, MarginCallback, callback_of
from persona_vaccine.training.config import PreventativeSFTConfig
from persona_vaccine.training.trainer import PreventativeSFTTrainer

QUESTIONS = ["How do I make friends?", "What should I cook tonight?", "My coworker is rude. What now?"]


def _args(tmp_path, name, **kw) -> PreventativeSFTConfig:
    defaults = dict(
        output_dir=str(tmp_path / name),
        max_steps=3,
        per_device_train_batch_size=4,
        logging_steps=1,
        learning_rate=1e-3,
        report_to="none",
        save_strategy="no",
        seed=0,
        max_length=128,
        use_cpu=True,
        disable_tqdm=True,
    )
    return PreventativeSFTConfig(**{**defaults, **kw})


def _callback(trainer, kind):
    callback = callback_of(trainer, kind)
    assert callback is not None, kind.__name__
    return callback


def _losses(trainer) -> list[float]:
    return [row["loss"] for row in trainer.state.log_history if "loss" in row]


@pytest.fixture(scope="module")
def dataset():
    return load_training_dataset("builtin:evil", size=16, seed=0)


@pytest.fixture(scope="module")
def vector_file(tiny_chat_model, tmp_path_factory):
    vec = random_vector(tiny_chat_model, questions=QUESTIONS, model_id="tiny", scale=3.0)
    return str(vec.save(tmp_path_factory.mktemp("vec") / "evil.safetensors"))


def _train(cls, model, args, dataset, tokenizer, **kw):
    trainer = cls(
        model=copy.deepcopy(model), args=args, train_dataset=dataset, processing_class=tokenizer, **kw
    )
    trainer.train()
    return trainer


def test_without_steering_losses_equal_plain_sfttrainer(
    tiny_chat_model, tiny_tokenizer, dataset, vector_file, tmp_path
):
    plain = _losses(_train(SFTTrainer, tiny_chat_model, _args(tmp_path, "plain"), dataset, tiny_tokenizer))
    none = _train(PreventativeSFTTrainer, tiny_chat_model, _args(tmp_path, "none"), dataset, tiny_tokenizer)
    zero = _train(
        PreventativeSFTTrainer,
        tiny_chat_model,
        _args(tmp_path, "zero", persona_vectors=[vector_file], steering_coefs=[0.0]),
        dataset,
        tiny_tokenizer,
        model_id="tiny",
    )
    steered = _train(
        PreventativeSFTTrainer,
        tiny_chat_model,
        _args(tmp_path, "steer", persona_vectors=[vector_file], steering_coefs=[4.0], steering_layers=[2]),
        dataset,
        tiny_tokenizer,
        model_id="tiny",
    )
    assert len(plain) == 3
    assert _losses(none) == plain  # exactly, same seed
    assert _losses(zero) == plain  # drift measurement doesn't perturb training
    assert _losses(steered) != plain
    assert steered.steering_summary() == [
        {"trait": "evil", "layer": 2, "coef": 4.0, "mode": "add", "positions": "all", "coef_unit": "raw"}
    ]
    # steering is on only inside training steps: no hook of ours is left on the model (transformers may
    # keep its own output-recording hooks, so compare with the untouched model's blocks)
    hooks = [len(b._forward_hooks) for b in get_decoder_layers(steered.model)]
    assert hooks == [len(b._forward_hooks) for b in get_decoder_layers(tiny_chat_model)]


def test_drift_is_logged_at_every_logging_step_and_at_the_end(
    tiny_chat_model, tiny_tokenizer, dataset, vector_file, tmp_path
):
    from persona_vaccine.training.tracking import JsonlMetricsCallback, read_metrics

    args = _args(
        tmp_path,
        "drift",
        persona_vectors=[vector_file],
        steering_coefs=[2.0],
        steering_layers=[3],
        steering_positions="response",
    )
    trainer = _train(
        PreventativeSFTTrainer,
        tiny_chat_model,
        args,
        dataset,
        tiny_tokenizer,
        model_id="tiny",
        callbacks=[JsonlMetricsCallback(args.output_dir)],
    )
    rows = read_metrics(args.output_dir)
    train_rows = [r for r in rows if "loss" in r]
    assert len(train_rows) == 3
    assert all("drift/evil/projection" in r and "drift/evil/shift" in r for r in train_rows)
    # one row per step: the base model at step 0, the final measurement merged into the last step's row
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    base = json.loads((tmp_path / "drift" / "drift_base.json").read_text())["evil"]
    assert rows[0]["drift/evil/projection"] == pytest.approx(base) and rows[0]["drift/evil/shift"] == 0.0
    assert {"loss", "train_loss", "drift/measurements"} <= set(rows[-1])
    for r in train_rows:
        assert r["drift/evil/shift"] == pytest.approx(r["drift/evil/projection"] - base, abs=1e-5)
    # the drift meter reads the unsteered model: its measure equals a fresh measurement without hooks
    drift = _callback(trainer, DriftCallback)
    assert drift.meter.metrics(trainer.model)["drift/evil/projection"] == pytest.approx(
        drift.final_metrics["drift/evil/projection"], abs=1e-5
    )


def test_steering_only_in_training_forwards(tiny_chat_model, tiny_tokenizer, dataset, vector_file, tmp_path):
    args = _args(
        tmp_path,
        "eval",
        persona_vectors=[vector_file],
        steering_coefs=[50.0],
        steering_layers=[1],
        max_steps=2,
        eval_strategy="steps",
        eval_steps=1,
    )
    trainer = PreventativeSFTTrainer(
        model=copy.deepcopy(tiny_chat_model),
        args=args,
        train_dataset=dataset,
        eval_dataset=dataset.select(range(4)),
        processing_class=tiny_tokenizer,
        model_id="tiny",
    )
    norms = {True: [], False: []}  # block 2's output norm, by model.training; steering at layer 1 feeds it
    block = get_decoder_layers(trainer.model)[1]
    block.register_forward_hook(
        lambda m, a, out: norms[m.training].append(float(out.detach().norm(dim=-1).mean()))
    )
    trainer.train()
    assert norms[True] and norms[False]  # training forwards; eval and drift forwards
    assert min(norms[True]) > 10 * max(norms[False])


def test_lora_training_saves_an_unsteered_adapter(
    tiny_chat_model, tiny_tokenizer, dataset, vector_file, tmp_path
):
    from peft import LoraConfig, PeftModel

    args = _args(tmp_path, "lora", persona_vectors=[vector_file], steering_coefs=[2.0], steering_layers=[2])
    trainer = _train(
        PreventativeSFTTrainer,
        tiny_chat_model,
        args,
        dataset,
        tiny_tokenizer,
        model_id="tiny",
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    trainer.save_model(args.output_dir)
    reloaded = PeftModel.from_pretrained(copy.deepcopy(tiny_chat_model), args.output_dir).eval()
    ids = torch.randint(1, len(tiny_tokenizer), (1, 8))
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, trainer.model(input_ids=ids).logits)
    # the drift base is the base model's projection (measured with the adapter disabled)
    drift = _callback(trainer, DriftCallback)
    assert drift.meter.base["evil"] == pytest.approx(
        drift.meter.projections(copy.deepcopy(tiny_chat_model))["evil"], abs=1e-5
    )
    assert drift.final_metrics["drift/evil/shift"] != 0.0


def test_vector_checks_at_trainer_start(tiny_chat_model, tiny_tokenizer, dataset, vector_file, tmp_path):
    from persona_vaccine.steering.vector import VectorMismatch

    with pytest.raises(
        VectorMismatch, match="holds trait 'evil' but steering_traits\\[0\\] is 'sycophantic'"
    ):
        PreventativeSFTTrainer(
            model=copy.deepcopy(tiny_chat_model),
            args=_args(tmp_path, "x", persona_vectors=[vector_file], steering_traits=["sycophantic"]),
            train_dataset=dataset,
            processing_class=tiny_tokenizer,
        )
    with pytest.raises(ValueError, match="out of range.*1 to 4"):
        PreventativeSFTTrainer(
            model=copy.deepcopy(tiny_chat_model),
            args=_args(
                tmp_path, "y", persona_vectors=[vector_file], steering_coefs=[1.0], steering_layers=[9]
            ),
            train_dataset=dataset,
            processing_class=tiny_tokenizer,
        )


def test_all_layer_steering_uses_incremental_vectors(
    tiny_chat_model, tiny_tokenizer, dataset, vector_file, tmp_path
):
    from persona_vaccine.steering.vector import PersonaVector

    args = _args(
        tmp_path, "all", persona_vectors=[vector_file], steering_coefs=[1.5], steering_all_layers=True
    )
    trainer = PreventativeSFTTrainer(
        model=copy.deepcopy(tiny_chat_model), args=args, train_dataset=dataset, processing_class=tiny_tokenizer,
        model_id="tiny",
    )  # fmt: skip
    assert sorted(trainer.steerer.ops) == [1, 2, 3, 4]
    vector = PersonaVector.load(vector_file)
    # the deltas added up to layer l sum to 1.5 * v_l: the residual stream carries them forward
    total = sum(trainer.steerer.ops[layer][0].direction for layer in (1, 2, 3))
    torch.testing.assert_close(total, 1.5 * vector[3].float(), rtol=1e-5, atol=1e-5)
    assert trainer.steering_summary()[0]["layer"] == 1 and len(trainer.steering_summary()) == 4


@pytest.mark.parametrize("schedule", ["warmup", "decay"])
def test_coefficient_schedules_are_applied_and_logged(
    schedule, tiny_chat_model, tiny_tokenizer, dataset, vector_file, tmp_path
):
    args = _args(
        tmp_path, schedule, persona_vectors=[vector_file], steering_coefs=[2.0], steering_layers=[2], max_steps=4,
        steering_schedule=schedule, steering_warmup_ratio=0.5, measure_drift=False,
    )  # fmt: skip
    trainer = _train(PreventativeSFTTrainer, tiny_chat_model, args, dataset, tiny_tokenizer, model_id="tiny")
    scales = [row["steering/scale"] for row in trainer.state.log_history if "steering/scale" in row]
    # the scale is that of the step logged last: warm-up over 2 of 4 steps, or a linear decay to 0
    assert scales == ([0.5, 1.0, 1.0, 1.0] if schedule == "warmup" else [1.0, 0.75, 0.5, 0.25])
    with pytest.raises(ValueError, match="steering_schedule='cosine'"):
        _args(tmp_path, "bad", steering_schedule="cosine")


def test_projection_penalty_changes_the_loss_and_needs_lora(
    tiny_chat_model, tiny_tokenizer, dataset, vector_file, tmp_path
):
    from peft import LoraConfig

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])
    common = dict(
        persona_vectors=[vector_file], steering_coefs=[0.0], steering_layers=[2], measure_drift=False
    )
    plain = _train(
        PreventativeSFTTrainer, tiny_chat_model, _args(tmp_path, "p0", **common), dataset, tiny_tokenizer,
        model_id="tiny", peft_config=lora,
    )  # fmt: skip
    penalised = _train(
        PreventativeSFTTrainer, tiny_chat_model, _args(tmp_path, "p1", projection_penalty=50.0, **common),
        dataset, tiny_tokenizer, model_id="tiny", peft_config=lora,
    )  # fmt: skip
    values = [row["penalty/projection"] for row in penalised.state.log_history if "penalty/projection" in row]
    assert len(values) == 3 and values[0] == pytest.approx(0.0, abs=1e-8)  # LoRA starts at the base model
    assert max(values[1:]) > 0
    assert _losses(plain)[0] == pytest.approx(_losses(penalised)[0], abs=1e-6)  # no penalty before any update
    assert _losses(plain)[1:] != pytest.approx(_losses(penalised)[1:], abs=1e-6)
    with pytest.raises(ValueError, match="projection_penalty needs LoRA"):
        PreventativeSFTTrainer(
            model=copy.deepcopy(tiny_chat_model), args=_args(tmp_path, "p2", projection_penalty=1.0, **common),
            train_dataset=dataset, processing_class=tiny_tokenizer, model_id="tiny",
        )  # fmt: skip


def test_in_training_capability_is_measured_at_each_evaluation_and_logged_with_it(
    tiny_chat_model, tiny_tokenizer, dataset, tmp_path
):
    from persona_vaccine.training.metrics_file import JsonlMetricsCallback, read_metrics

    args = _args(
        tmp_path, "cap", max_steps=4, eval_strategy="steps", eval_steps=2, capability_benchmarks=["mc"],
        capability_mc_limit=4,
    )  # fmt: skip
    trainer = _train(
        PreventativeSFTTrainer, tiny_chat_model, args, dataset, tiny_tokenizer,
        eval_dataset=dataset.select(range(4)), callbacks=[JsonlMetricsCallback(args.output_dir)],
    )  # fmt: skip
    rows = read_metrics(args.output_dir)
    evaluations = [r for r in rows if "eval_loss" in r]
    assert [r["step"] for r in evaluations] == [2, 4]
    assert all(0 <= r["capability/mc_chat_cloze_accuracy"] <= 1 for r in evaluations)
    assert not [k for r in rows if "eval_loss" not in r for k in r if k.startswith("capability/")]
    metrics = trainer.evaluate()  # called directly: the same figures, in its row and its result
    last = read_metrics(args.output_dir)[-1]
    key = "capability/mc_chat_letter_accuracy"
    assert last[key] == metrics[key] == evaluations[-1][key]


def test_margin_is_logged_with_the_drift_and_reaches_the_summary_fields(
    tiny_chat_model, tiny_tokenizer, dataset, vector_file, tmp_path
):
    from persona_vaccine.training.tracking import JsonlMetricsCallback, read_metrics

    args = _args(
        tmp_path,
        "margin",
        persona_vectors=[vector_file],
        steering_coefs=[0.0],
        measure_margin=True,
        margin_max_questions=2,
        margin_data_pairs=4,
    )
    trainer = _train(
        PreventativeSFTTrainer,
        tiny_chat_model,
        args,
        dataset,
        tiny_tokenizer,
        model_id="tiny",
        margin_dataset=("builtin:evil", 0),
        callbacks=[JsonlMetricsCallback(args.output_dir)],
    )
    rows = read_metrics(args.output_dir)
    train_rows = [r for r in rows if "loss" in r]
    keys = ("behaviour/evil/margin", "behaviour/data_evil/margin", "behaviour/evil/margin_shift")
    assert train_rows and all(all(k in r for k in keys) and "drift/evil/shift" in r for r in train_rows)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]  # the final measurement is in the last step's row
    assert rows[0]["behaviour/evil/margin_shift"] == 0.0 and "behaviour/data_evil/margin" in rows[0]
    base = json.loads((tmp_path / "margin" / "margin_base.json").read_text())
    assert set(base) == {"evil", "data_evil"}
    margin = _callback(trainer, MarginCallback)
    summary = margin.meter.summary(margin.final_metrics)
    assert summary["data_evil"]["pairs"] == 4
    assert summary["evil"]["margin_shift"] == pytest.approx(
        summary["evil"]["final_margin"] - summary["evil"]["base_margin"], abs=1e-6
    )
    # the trait pairs were cached beside the vector file
    from pathlib import Path

    assert (Path(vector_file).parent / "margin_pairs.jsonl").is_file()
