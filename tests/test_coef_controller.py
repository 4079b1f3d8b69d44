"""steering_auto: the PI controller sets the coefficient against the measured shift (tiny model)."""

from __future__ import annotations

import contextlib
import copy
import json

import pytest
import torch
from helpers import random_vector
from persona_vaccine.steering.hooks import Steerer, SteeringSpec
from persona_vaccine.steering.layers import block_hidden, get_decoder_layers, with_block_hidden
from persona_vaccine.training.coef_controller import CoefController, PIController
from persona_vaccine.training.drift import DriftMeter
from persona_vaccine.training.trainer import PreventativeSFTTrainer
from test_trainer import QUESTIONS, _args, _train


@contextlib.contextmanager
def injected_drift(model, vector, layer: int, amount: float):
    """Weights that moved along v: the block output gets `amount * unit(v)` at every position."""
    unit = vector.unit(layer)

    def hook(module, args, output):
        return with_block_hidden(output, block_hidden(output) + amount * unit)

    handle = get_decoder_layers(model)[layer - 1].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@pytest.mark.parametrize("amount", [3.0, -3.0])
def test_the_coefficient_moves_to_cancel_an_injected_drift(tiny_chat_model, tiny_tokenizer, amount):
    vector = random_vector(tiny_chat_model, questions=QUESTIONS)
    layer = 2
    meter = DriftMeter.for_vectors(tiny_tokenizer, [vector], [layer])
    meter.measure_base(tiny_chat_model)
    spec = SteeringSpec(vector, [layer], 0.0)
    steerer = Steerer(tiny_chat_model, [spec])
    controller = CoefController(steerer, [spec], ["evil"], kp=1.0, ki=0.5, limit=8.0)
    coefs = []
    with injected_drift(tiny_chat_model, vector, layer, amount):
        for _ in range(3):
            drift = meter.metrics(tiny_chat_model)
            assert drift["drift/evil/shift"] == pytest.approx(amount, rel=0.05)
            coefs.append(controller.update(drift)["steering/coef/evil"])
    # a drift towards the trait raises the (preventative) coefficient, a drift away lowers it; the
    # integral keeps pushing while the drift persists
    assert all(c * amount > 0 for c in coefs)
    assert abs(coefs[2]) > abs(coefs[1]) > abs(coefs[0])
    assert spec.coef == coefs[-1]
    # the steerer adds the new coefficient: its op's delta is coef * v at the layer
    (op,) = steerer.ops[layer]
    assert torch.allclose(op.direction, coefs[-1] * vector[layer].float())
    # error units: the first update is kp * shift / |v| + ki * shift / |v|
    assert coefs[0] == pytest.approx(1.5 * amount / float(vector[layer].norm()), rel=0.05)


def test_pi_controller_clips_without_wind_up():
    pi = PIController(kp=0.0, ki=1.0, limit=2.0)
    for _ in range(10):
        pi.update(5.0)
    assert pi.coef == 2.0
    assert pi.update(-1.0) < 2.0  # comes off the limit at once: the integral was clipped too


def test_auto_coefficients_are_logged_and_follow_the_drift(tiny_chat_model, tiny_tokenizer, tmp_path):
    from persona_vaccine.data.loading import load_training_dataset
    from persona_vaccine.training.tracking import JsonlMetricsCallback, read_metrics

    dataset = load_training_dataset("builtin:evil", size=16, seed=0)
    vector = random_vector(tiny_chat_model, questions=QUESTIONS, model_id="tiny", scale=3.0)
    path = str(vector.save(tmp_path / "evil.safetensors"))
    args = _args(
        tmp_path, "auto", persona_vectors=[path], steering_layers=[2], steering_auto=True,
        steering_auto_every=1, max_steps=4,
    )  # fmt: skip
    trainer = _train(
        PreventativeSFTTrainer, tiny_chat_model, args, dataset, tiny_tokenizer, model_id="tiny",
        callbacks=[JsonlMetricsCallback(args.output_dir)],
    )  # fmt: skip
    rows = [r for r in read_metrics(args.output_dir) if "loss" in r]
    assert len(rows) == 4 and all("steering/coef/evil" in r for r in rows)
    # replay the controller on the logged shifts: the logged coefficients are its outputs
    pi = PIController(1.0, 0.5, 8.0)
    norm = float(vector[2].norm())
    for r in rows:
        assert r["steering/coef/evil"] == pytest.approx(pi.update(r["drift/evil/shift"] / norm), abs=1e-6)
    assert trainer.specs[0].coef == rows[-1]["steering/coef/evil"]


def test_auto_needs_drift_and_add_mode(tmp_path):
    with pytest.raises(ValueError, match="measure_drift is false"):
        _args(tmp_path, "x", persona_vectors=["v.safetensors"], steering_auto=True, measure_drift=False)
    with pytest.raises(ValueError, match="use add"):
        _args(tmp_path, "x", persona_vectors=["v.safetensors"], steering_auto=True, steering_mode="ablate")


def test_a_resumed_run_continues_the_controller(tiny_chat_model, tiny_tokenizer, tmp_path):
    from persona_vaccine.data.loading import load_training_dataset

    dataset = load_training_dataset("builtin:evil", size=16, seed=0)
    vector = random_vector(tiny_chat_model, questions=QUESTIONS, model_id="tiny", scale=3.0)
    path = str(vector.save(tmp_path / "evil.safetensors"))
    common = dict(persona_vectors=[path], steering_layers=[2], steering_auto=True, steering_auto_every=1)
    first = _train(
        PreventativeSFTTrainer, tiny_chat_model,
        _args(tmp_path, "run", max_steps=2, save_strategy="steps", save_steps=2, **common),
        dataset, tiny_tokenizer, model_id="tiny",
    )  # fmt: skip
    saved = json.loads((tmp_path / "run" / "checkpoint-2" / "steering_auto.json").read_text())
    assert saved["evil"]["coef"] == first.specs[0].coef != 0.0
    resumed = PreventativeSFTTrainer(
        model=copy.deepcopy(tiny_chat_model), args=_args(tmp_path, "run", max_steps=3, **common),
        train_dataset=dataset, processing_class=tiny_tokenizer, model_id="tiny",
    )  # fmt: skip
    resumed.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-2"))
    row = next(r for r in resumed.state.log_history if r.get("step") == 3 and "loss" in r)
    # step 3's coefficient continues the saved integral (a fresh controller would start from 0)
    pi = PIController(1.0, 0.5, 8.0, integral=saved["evil"]["integral"])
    expected = pi.update(row["drift/evil/shift"] / float(vector[2].norm()))
    assert row["steering/coef/evil"] == pytest.approx(expected, abs=1e-7)
