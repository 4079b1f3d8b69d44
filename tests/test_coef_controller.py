"""steering_auto: the PI controller sets the coefficient against the measured shift (tiny model)."""

from __future__ import annotations

import contextlib
import copy
import json

import pytest
import torch
from helpers import random_vector
from test_trainer import QUESTIONS, _args, _callback, _train

from persona_vaccine.models.layers import block_hidden, get_decoder_layers, with_block_hidden
from persona_vaccine.steering.hooks import Steerer, SteeringSpec
from persona_vaccine.training.callbacks import CoefControllerCallback, probe_batches, probe_loss
from persona_vaccine.training.coef_controller import (
    START_GRID,
    CoefController,
    PIController,
    balanced_start,
    parabola_minimum,
)
from persona_vaccine.training.drift import DriftMeter
from persona_vaccine.training.trainer import PreventativeSFTTrainer


@pytest.fixture
def auto_run_inputs(tiny_chat_model, tmp_path):
    """A steering_auto run's dataset, and its vector as a value and as a saved file."""
    from persona_vaccine.data.loading import load_training_dataset

    dataset = load_training_dataset("builtin:evil", size=16, seed=0)
    vector = random_vector(tiny_chat_model, questions=QUESTIONS, model_id="tiny", scale=3.0)
    return dataset, vector, str(vector.save(tmp_path / "evil.safetensors"))


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
            # (a + amount * u) . u - a . u = amount |u|^2 = amount: exact up to fp32 rounding of the dot
            # products (activations of size ~10 over 32 dimensions: ~1e-5 absolute)
            assert drift["drift/evil/shift"] == pytest.approx(amount, abs=1e-4)
            coefs.append(controller.update(drift)["steering/coef/evil"])
    # a drift towards the trait raises the (preventative) coefficient, a drift away lowers it; the
    # integral keeps pushing while the drift persists
    assert all(c * amount > 0 for c in coefs)
    assert abs(coefs[2]) > abs(coefs[1]) > abs(coefs[0])
    assert spec.coef == coefs[-1]
    # the steerer adds the new coefficient: its op's delta is coef * v at the layer
    (op,) = steerer.ops[layer]
    assert torch.allclose(op.direction, coefs[-1] * vector[layer].float())
    # error units: the first update is kp * shift / |v| + ki * shift / |v| (the shift exact as above)
    assert coefs[0] == pytest.approx(1.5 * amount / float(vector[layer].norm()), rel=1e-4)
    # then the integral adds ki * shift / |v| per update: 1.5, 2.0, 2.5 times shift / |v|
    assert coefs == pytest.approx(
        [k * amount / float(vector[layer].norm()) for k in (1.5, 2.0, 2.5)], rel=1e-4
    )


def test_pi_controller_clips_without_wind_up():
    pi = PIController(kp=0.0, ki=1.0, limit=2.0)
    for _ in range(10):
        pi.update(5.0)
    assert pi.coef == 2.0
    assert pi.update(-1.0) < 2.0  # comes off the limit at once: the integral was clipped too


def test_auto_coefficients_are_logged_and_follow_the_drift(
    tiny_chat_model, tiny_tokenizer, tmp_path, auto_run_inputs
):
    from persona_vaccine.training.tracking import JsonlMetricsCallback, read_metrics

    dataset, vector, path = auto_run_inputs
    args = _args(
        tmp_path, "auto", persona_vectors=[path], steering_layers=[2], steering_auto=True,
        steering_auto_every=1, max_steps=4, steering_auto_start="given",
    )  # fmt: skip
    trainer = _train(
        PreventativeSFTTrainer, tiny_chat_model, args, dataset, tiny_tokenizer, model_id="tiny",
        callbacks=[JsonlMetricsCallback(args.output_dir)],
    )  # fmt: skip
    rows = [r for r in read_metrics(args.output_dir) if "loss" in r]
    assert len(rows) == 4 and all("steering/coef/evil" in r for r in rows)
    # replay the controller on the logged shifts: the logged coefficients are its outputs
    pi = PIController(args.steering_auto_kp, args.steering_auto_ki, args.steering_auto_max)
    norm = float(vector[2].norm())
    for r in rows:
        assert r["steering/coef/evil"] == pytest.approx(pi.update(r["drift/evil/shift"] / norm), abs=1e-6)
    assert trainer.steering[0].coef == rows[-1]["steering/coef/evil"]


def test_the_drift_cost_of_training_is_counted_once_per_measured_step(
    tiny_chat_model, tiny_tokenizer, tmp_path, auto_run_inputs
):
    from persona_vaccine.training.tracking import JsonlMetricsCallback, read_metrics

    dataset, _, path = auto_run_inputs
    args = _args(
        tmp_path, "cost", persona_vectors=[path], steering_layers=[2], steering_auto=True,
        steering_auto_every=2, max_steps=6, logging_steps=3, steering_auto_start="given",
    )  # fmt: skip
    _train(
        PreventativeSFTTrainer, tiny_chat_model, args, dataset, tiny_tokenizer, model_id="tiny",
        callbacks=[JsonlMetricsCallback(args.output_dir)],
    )  # fmt: skip
    final = [r for r in read_metrics(args.output_dir) if "drift/measurements" in r]
    # the controller at steps 2, 4, 6 and the log at step 3 (step 6's log shares the controller's)
    assert len(final) == 1 and final[0]["drift/measurements"] == 4
    assert final[0]["drift/measure_seconds"] > 0


def test_auto_needs_drift_and_add_mode(tmp_path):
    with pytest.raises(ValueError, match="measure_drift is false"):
        _args(tmp_path, "x", persona_vectors=["v.safetensors"], steering_auto=True, measure_drift=False)
    with pytest.raises(ValueError, match="use add"):
        _args(tmp_path, "x", persona_vectors=["v.safetensors"], steering_auto=True, steering_mode="ablate")


def test_a_resumed_run_continues_the_controller(tiny_chat_model, tiny_tokenizer, tmp_path, auto_run_inputs):
    dataset, vector, path = auto_run_inputs
    common = dict(
        persona_vectors=[path], steering_layers=[2], steering_auto=True, steering_auto_every=1,
        steering_auto_kp=2.0, steering_auto_ki=0.5, steering_auto_start="balanced",
    )  # fmt: skip
    # a balanced start runs once: the resumed run continues the saved state instead
    first = _train(
        PreventativeSFTTrainer, tiny_chat_model,
        _args(tmp_path, "run", max_steps=2, save_strategy="steps", save_steps=2, **common),
        dataset, tiny_tokenizer, model_id="tiny",
    )  # fmt: skip
    saved = json.loads((tmp_path / "run" / "checkpoint-2" / "steering_auto.json").read_text())
    assert saved["evil"]["coef"] == first.steering[0].coef != 0.0
    resumed = PreventativeSFTTrainer(
        model=copy.deepcopy(tiny_chat_model), args=_args(tmp_path, "run", max_steps=3, **common),
        train_dataset=dataset, processing_class=tiny_tokenizer, model_id="tiny",
    )  # fmt: skip
    resumed.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-2"))
    row = next(r for r in resumed.state.log_history if r.get("step") == 3 and "loss" in r)
    # step 3's coefficient continues the saved integral (a fresh controller would start from 0)
    pi = PIController(2.0, 0.5, 8.0, integral=saved["evil"]["integral"])
    expected = pi.update(row["drift/evil/shift"] / float(vector[2].norm()))
    assert row["steering/coef/evil"] == pytest.approx(expected, abs=1e-7)


def test_a_proportional_only_controller_keeps_its_start(tiny_chat_model):
    spec = SteeringSpec(random_vector(tiny_chat_model), [1], 1.5)
    controller = CoefController(Steerer(tiny_chat_model, [spec]), [spec], ["evil"], kp=2.0, ki=0.0, limit=8.0)
    (pi,) = controller.pis
    assert pi.update(0.0) == 1.5 and pi.update(0.5) == pytest.approx(2.5)


def test_parabola_minimum_finds_the_vertex_and_keeps_an_edge():
    xs = [-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0, 8.0]
    assert parabola_minimum(xs, [(x - 1.3) ** 2 for x in xs]) == pytest.approx(1.3)
    assert parabola_minimum(xs, [-x for x in xs]) == 8.0  # no interior minimum: the grid's edge
    # |x - 2| is no parabola: the one through (1, 1), (2, 0), (4, 2) is 2/3 x^2 - 3 x + 10/3, vertex 9/4
    assert parabola_minimum(xs, [abs(x - 2.0) for x in xs]) == pytest.approx(2.25, rel=1e-12)


def test_balanced_start_minimises_the_given_loss_one_trait_at_a_time(tiny_chat_model):
    a, b = random_vector(tiny_chat_model), random_vector(tiny_chat_model)
    specs = [SteeringSpec(a, [1], 0.0), SteeringSpec(b, [2], 0.0)]
    steerer = Steerer(tiny_chat_model, specs)
    best = (2.5, -1.2)
    scans = balanced_start(
        lambda: sum((s.coef - t) ** 2 for s, t in zip(specs, best, strict=True)), steerer, specs, limit=8.0
    )
    assert [s.coef for s in specs] == pytest.approx(best)
    assert scans[0]["coefs"] == [f * 8.0 for f in START_GRID] and len(scans[0]["losses"]) == len(START_GRID)
    assert [op.direction for op in steerer.ops[1]][0] == pytest.approx(2.5 * a[1].float())


def test_the_balanced_start_is_the_real_loss_minimiser(
    tiny_chat_model, tiny_tokenizer, tmp_path, auto_run_inputs
):
    dataset, vector, path = auto_run_inputs
    args = _args(
        tmp_path, "auto", persona_vectors=[path], steering_layers=[2], steering_auto=True,
        steering_auto_every=1, max_steps=2, steering_auto_probe_examples=8, steering_auto_max=4.0,
        steering_auto_start="balanced",
    )  # fmt: skip
    trainer = PreventativeSFTTrainer(
        model=copy.deepcopy(tiny_chat_model), args=args, train_dataset=dataset, processing_class=tiny_tokenizer,
        model_id="tiny",
    )  # fmt: skip
    batches = probe_batches(trainer, 8)
    assert len(batches) == 2 and all(b["input_ids"].shape[0] == 4 for b in batches)
    auto = _callback(trainer, CoefControllerCallback)
    auto.measure_base(trainer)  # the balanced start, as at train begin
    scan = auto.auto_start["evil"]
    losses = scan["losses"]
    spec = trainer.steering[0].spec

    def loss() -> float:
        return probe_loss(trainer.model, trainer.steerer, batches)

    # the scan's losses are the model's: the one at coef 0 is the unsteered training loss
    trainer.steerer.set_coef(spec, 0.0)
    assert losses[START_GRID.index(0.0)] == pytest.approx(loss(), rel=1e-5)
    assert len(set(round(x, 6) for x in losses)) > 1  # the coefficient changes the loss
    assert scan["start"] == pytest.approx(parabola_minimum(scan["coefs"], losses))
    trainer.steerer.set_coef(spec, scan["start"])
    assert loss() <= min(losses) + 1e-4
    # the controller starts there: its integral reproduces the start at zero error
    pi = auto.controller.pis[0]
    assert pi.coef == scan["start"] and pi.ki * pi.integral == pytest.approx(scan["start"])
    trainer.train()
    assert trainer.steering[0].coef != 0.0
