"""The training callbacks and their meter protocol, on a tiny random Llama: a meter of one's own gets its
figures into metrics.jsonl, the trainer's log history and the console, and its state across a resume."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from helpers import random_vector
from test_trainer import QUESTIONS, _args, _callback, _train

from persona_vaccine.data.loading import load_training_dataset
from persona_vaccine.training.callbacks import (
    CapabilityCallback,
    CoefControllerCallback,
    DriftCallback,
    MarginCallback,
    MeterLog,
    callback_of,
)
from persona_vaccine.training.drift_alerts import DriftAlertCallback
from persona_vaccine.training.meters import MeterCallback
from persona_vaccine.training.metrics_file import JsonlMetricsCallback, read_metrics
from persona_vaccine.training.trainer import PreventativeSFTTrainer
from persona_vaccine.training.vector_steering import steering_from_config


@pytest.fixture(scope="module")
def dataset():
    return load_training_dataset("builtin:evil", size=16, seed=0)


@pytest.fixture(scope="module")
def vector_file(tiny_chat_model, tmp_path_factory):
    vec = random_vector(tiny_chat_model, questions=QUESTIONS, model_id="tiny", scale=3.0)
    return str(vec.save(tmp_path_factory.mktemp("vec") / "evil.safetensors"))


def _norm(model) -> float:
    return float(sum(p.detach().float().norm() ** 2 for p in model.parameters() if p.requires_grad) ** 0.5)


class WeightNorm(MeterCallback):
    """A user's meter: the trainable weights' norm at the base, at every training row and at the end."""

    state_file = "weight_norm.json"

    def __init__(self):
        self.rows = 0
        self.loaded: dict | None = None

    def measure_base(self, trainer):
        return {"user/weight_norm": _norm(trainer.model)}

    def measure(self, trainer, logs):
        if "loss" not in logs:
            return {}
        self.rows += 1
        return {"user/weight_norm": _norm(trainer.model), "user/rows": float(self.rows)}

    def final(self, trainer):
        return {"user/final_weight_norm": _norm(trainer.model)}

    def summary_fields(self):
        return {"weight_norm_rows": self.rows}

    def state(self):
        return {"rows": self.rows}

    def load_state(self, state):
        self.loaded = state
        self.rows = state["rows"]


def test_a_meter_of_ones_own_reaches_metrics_history_and_console(
    tiny_chat_model,
    tiny_tokenizer,
    dataset,
    tmp_path,
    capsys,
):
    args = _args(tmp_path, "own", max_steps=3, save_strategy="steps", save_steps=2)
    trainer = PreventativeSFTTrainer(
        model=copy.deepcopy(tiny_chat_model), args=args, train_dataset=dataset, processing_class=tiny_tokenizer,
        callbacks=[JsonlMetricsCallback(args.output_dir)],
    )  # fmt: skip
    meter = WeightNorm()
    trainer.add_callback(meter)  # after the reporters: its figures still join each row before they see it
    base = _norm(trainer.model)
    trainer.train()
    rows = read_metrics(args.output_dir)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["user/weight_norm"] == pytest.approx(base)
    train_rows = [r for r in rows if "loss" in r]
    assert [r["user/rows"] for r in train_rows] == [1.0, 2.0, 3.0]
    assert train_rows[-1]["user/weight_norm"] != pytest.approx(base)  # the weights moved
    assert rows[-1]["user/final_weight_norm"] == pytest.approx(_norm(trainer.model))
    # the trainer's own record of the rows, and the console (PrinterCallback: disable_tqdm), have them too
    history = [r for r in trainer.state.log_history if "loss" in r]
    assert [r["user/rows"] for r in history] == [1.0, 2.0, 3.0]
    assert "user/weight_norm" in capsys.readouterr().out
    assert trainer.meter_log.summary_fields() == {"weight_norm_rows": 3}
    # its state is in every checkpoint, and a resumed run gets it back before training goes on
    checkpoint = tmp_path / "own" / "checkpoint-2"
    assert json.loads((checkpoint / "weight_norm.json").read_text()) == {"rows": 2}
    resumed = PreventativeSFTTrainer(
        model=copy.deepcopy(tiny_chat_model), args=_args(tmp_path, "own", max_steps=3), train_dataset=dataset,
        processing_class=tiny_tokenizer,
    )  # fmt: skip
    again = WeightNorm()
    resumed.add_callback(again)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert again.loaded == {"rows": 2}
    step3 = next(r for r in resumed.state.log_history if r.get("step") == 3 and "loss" in r)
    assert step3["user/rows"] == 3.0  # counted on from the checkpoint's 2
    # the base row is the fresh run's: a resumed run does not log another step-0 row
    assert sum(r.get("step") == 0 for r in resumed.state.log_history) == 1


def test_the_evaluation_row_reaches_a_meter_and_what_evaluate_returns(
    tiny_chat_model,
    tiny_tokenizer,
    dataset,
    tmp_path,
):
    class EvalSeen(MeterCallback):
        def measure(self, trainer, logs):
            return {"user/eval_loss_twice": 2 * logs["eval_loss"]} if "eval_loss" in logs else {}

    args = _args(tmp_path, "eval", max_steps=1)
    trainer = PreventativeSFTTrainer(
        model=copy.deepcopy(tiny_chat_model), args=args, train_dataset=dataset,
        eval_dataset=dataset.select(range(4)), processing_class=tiny_tokenizer, callbacks=[EvalSeen()],
    )  # fmt: skip
    metrics = trainer.evaluate()
    assert metrics["user/eval_loss_twice"] == pytest.approx(2 * metrics["eval_loss"])
    assert trainer.state.log_history[-1]["user/eval_loss_twice"] == metrics["user/eval_loss_twice"]


def test_the_recipe_asks_for_its_callbacks(tiny_chat_model, tiny_tokenizer, dataset, vector_file, tmp_path):
    def kinds(**kw) -> set[str]:
        trainer = PreventativeSFTTrainer(
            model=copy.deepcopy(tiny_chat_model), args=_args(tmp_path, "kinds", **kw), train_dataset=dataset,
            processing_class=tiny_tokenizer, model_id="tiny",
        )  # fmt: skip
        assert isinstance(trainer.callback_handler.callbacks[-1], MeterLog)  # last: it runs the others
        return {
            type(cb).__name__ for cb in trainer.callback_handler.callbacks if isinstance(cb, MeterCallback)
        }

    assert kinds() == set()  # no vector: plain SFT
    assert kinds(persona_vectors=[vector_file]) == {"DriftCallback"}
    assert kinds(persona_vectors=[vector_file], measure_drift=False) == set()
    every = kinds(
        persona_vectors=[vector_file], steering_auto=True, measure_margin=True, capability_benchmarks=["mc"],
        drift_alert_above=["0.5"],
    )  # fmt: skip
    assert every == {
        c.__name__
        for c in (
            DriftCallback,
            CoefControllerCallback,
            MarginCallback,
            CapabilityCallback,
            DriftAlertCallback,
        )
    }
    # lm-eval tasks run after training only: no callback for them
    assert kinds(capability_benchmarks=["persona_vaccine_mc"]) == set()


def test_one_steering_spec_per_vector(tiny_chat_model, vector_file, tmp_path):
    from persona_vaccine.steering.vector import PersonaVector

    vector = PersonaVector.load(vector_file)
    args = _args(
        tmp_path, "specs", persona_vectors=[vector_file, vector_file], steering_layers=[3],
        steering_coefs=[0.0, 1.5], steering_positions="response", steering_coef_unit="relative",
    )  # fmt: skip
    measured, steered = steering_from_config(args, tiny_chat_model, "tiny")
    assert (measured.trait, measured.layer, measured.coef, measured.spec) == ("evil", 3, 0.0, None)
    assert measured.records() == []
    assert steered.layer == vector.default_layer()  # no steering_layers entry: the vector's own layer
    assert steered.spec is not None and steered.spec.layers == [steered.layer]
    assert steered.records() == [
        {"trait": "evil", "layer": steered.layer, "coef": 1.5, "mode": "add", "positions": "response",
         "coef_unit": "relative"}
    ]  # fmt: skip
    expected = 1.5 * vector.mean_norms[steered.layer] * vector.unit(steered.layer)
    torch.testing.assert_close(steered.spec.direction(steered.layer), expected)


def test_drift_counters_continue_across_a_resume(
    tiny_chat_model,
    tiny_tokenizer,
    dataset,
    vector_file,
    tmp_path,
):
    args = _args(
        tmp_path, "cost", persona_vectors=[vector_file], max_steps=2, save_strategy="steps", save_steps=2
    )
    _train(PreventativeSFTTrainer, tiny_chat_model, args, dataset, tiny_tokenizer, model_id="tiny")
    saved = json.loads((tmp_path / "cost" / "checkpoint-2" / "drift_counters.json").read_text())
    assert saved["drift/measurements"] == 2 and saved["drift/measure_seconds"] > 0
    resumed = PreventativeSFTTrainer(
        model=copy.deepcopy(tiny_chat_model), args=_args(tmp_path, "cost", persona_vectors=[vector_file], max_steps=3),
        train_dataset=dataset, processing_class=tiny_tokenizer, model_id="tiny",
    )  # fmt: skip
    resumed.train(resume_from_checkpoint=str(tmp_path / "cost" / "checkpoint-2"))
    drift = _callback(resumed, DriftCallback)
    assert drift.cost["drift/measurements"] == 3  # the checkpoint's 2, and step 3's
    assert callback_of(resumed, MarginCallback) is None
