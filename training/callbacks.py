"""The training callbacks of a recipe, each a `MeterCallback` (training/meters.py): trait drift
(`DriftCallback`), the behaviour margin (`MarginCallback`), the automatic coefficient
(`CoefControllerCallback`), capability at evaluations (`CapabilityCallback`) and drift alerts
(`DriftAlertCallback`, training/drift_alerts.py); and `MeterLog`, which runs them.

`recipe_callbacks` builds the ones a recipe asks for; `PreventativeSFTTrainer` registers them, then
`MeterLog`. A callback of your own joins them with `trainer.add_callback(...)` before `train()`.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
from torch import nn
from transformers import (
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from persona_vaccine.steering.hooks import Steerer, SteeringSpec

from .capability import capability_metrics
from .coef_controller import CoefController, balanced_start
from .config import PreventativeSFTConfig
from .drift import DriftMeter
from .drift_alerts import DriftAlertCallback
from .margin import MarginMeter, build_margin_meter
from .meters import MeterCallback, at_step, base_kept_or_measured, base_row
from .resume import resumed_checkpoint
from .run_ends import LogLastStep
from .sizing import AUTO, margin_questions
from .vector_steering import VectorSteering

logger = logging.getLogger(__name__)

DRIFT_BASE_FILE = "drift_base.json"
MARGIN_BASE_FILE = "margin_base.json"
IN_TRAINING_BENCHMARKS = ("mc", "heldout_loss")  # the capability benchmarks fast enough for evaluations

C = TypeVar("C", bound=TrainerCallback)


def _tokenizer(trainer: Trainer) -> PreTrainedTokenizerBase:
    return cast(PreTrainedTokenizerBase, trainer.processing_class)


def _model(trainer: Trainer) -> nn.Module:
    return cast(nn.Module, trainer.model)  # set once the trainer is built


class DriftCallback(MeterCallback):
    """`drift/<trait>/projection|shift` (training/drift.py) in every training and evaluation row, measured
    once per step with the hooks off; the base model's in the step-0 row (kept in drift_base.json for a
    resumed run); after training, the final drift and its cost over the whole run (`drift/measurements`,
    `drift/measure_seconds`)."""

    state_file = "drift_counters.json"

    def __init__(self, meter: DriftMeter):
        self.meter = meter
        self.final_metrics: dict[str, float] = {}  # drift/<trait>/projection|shift after training
        self.cost: dict[str, float] = {"drift/measurements": 0, "drift/measure_seconds": 0.0}
        self._cache: tuple[int, dict[str, float]] | None = None  # (step, drift metrics) of this step

    def now(self, model: nn.Module, step: int) -> dict[str, float]:
        """This step's drift metrics, measured once per step (the controller and the log share them)."""
        if self._cache is None or self._cache[0] != step:
            start = time.perf_counter()
            self._cache = (step, self.meter.metrics(model))
            self.cost["drift/measurements"] += 1
            self.cost["drift/measure_seconds"] += time.perf_counter() - start
        return dict(self._cache[1])

    def measure_base(self, trainer: Trainer) -> dict[str, float]:
        names = {p.name for p in self.meter.probes}
        path = Path(str(trainer.args.output_dir)) / DRIFT_BASE_FILE
        base_kept_or_measured(self.meter, _model(trainer), path, names, trainer.is_world_process_zero())
        return base_row("drift", "projection", "shift", self.meter.base)

    def measure(self, trainer: Trainer, logs: dict[str, float]) -> dict[str, float]:
        if not self.meter.base or not at_step(logs) or any(k.startswith("drift/") for k in logs):
            return {}
        return self.now(_model(trainer), trainer.state.global_step)

    def final(self, trainer: Trainer) -> dict[str, float]:
        self.final_metrics = self.now(_model(trainer), trainer.state.global_step)  # the last step's
        logger.info("drift: %d measurements after the base model's took %.1f s",
                    self.cost["drift/measurements"], self.cost["drift/measure_seconds"])  # fmt: skip
        return {**self.final_metrics, **self.cost}

    def summary_fields(self) -> dict[str, Any]:
        return {"trait_drift": self.meter.records(self.final_metrics)}

    def state(self) -> dict[str, Any]:
        return dict(self.cost)

    def load_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            if key in self.cost:
                self.cost[key] = type(self.cost[key])(value)


class MarginCallback(MeterCallback):
    """`behaviour/<name>/margin|margin_shift` (training/margin.py) in every training and evaluation row.
    The pairs are built at train begin from the base model's answers (`margin_max_questions`, none for
    a short run under `auto`) and, with `dataset` (a builder and its seed), the builder's Level II vs
    Normal answers; the base margins are kept in margin_base.json for a resumed run."""

    def __init__(
        self,
        steering: Sequence[VectorSteering],
        config: PreventativeSFTConfig,
        dataset: tuple[str, int] | None = None,
    ):
        self.steering, self.config, self.dataset = list(steering), config, dataset
        self.meter: MarginMeter | None = None
        self.final_metrics: dict[str, float] = {}  # behaviour/<name>/margin|margin_shift after training

    def measure_base(self, trainer: Trainer) -> dict[str, float]:
        cfg = self.config
        dataset, seed = self.dataset or (None, 0)
        questions = margin_questions(cfg, trainer.state)
        if questions == 0 and cfg.margin_max_questions == AUTO:  # a short run: not measured (logged why)
            return {}
        main, out, model = trainer.is_world_process_zero(), Path(str(cfg.output_dir)), _model(trainer)
        self.meter = build_margin_meter(
            model, _tokenizer(trainer), [s.vector for s in self.steering], [s.path for s in self.steering],
            out / f"margin_pairs_rank{cfg.process_index}", dataset, seed, questions, cfg.margin_data_pairs,
            beside_vectors=main,
        )  # fmt: skip
        base_kept_or_measured(self.meter, model, out / MARGIN_BASE_FILE, set(self.meter.pair_sets), main)
        return base_row("behaviour", "margin", "margin_shift", self.meter.base)

    def measure(self, trainer: Trainer, logs: dict[str, float]) -> dict[str, float]:
        if self.meter is None or not at_step(logs) or any(k.startswith("behaviour/") for k in logs):
            return {}
        return self.meter.metrics(_model(trainer), trainer.state.global_step)

    def final(self, trainer: Trainer) -> dict[str, float]:
        if self.meter is None:
            return {}
        self.final_metrics = self.meter.metrics(_model(trainer), trainer.state.global_step)
        return self.final_metrics

    def summary_fields(self) -> dict[str, Any]:
        return {"behaviour": self.meter.summary(self.final_metrics)} if self.meter is not None else {}


def probe_batches(trainer: Trainer, n: int) -> list[dict[str, Any]]:
    """The first n training examples in batches of the training batch size (no RNG drawn)."""
    assert trainer.train_dataset is not None and trainer.data_collator is not None
    rows = list(itertools.islice(iter(trainer.train_dataset), n))
    size = trainer.args.per_device_train_batch_size
    collate = trainer.data_collator
    return [trainer._prepare_inputs(collate(rows[i : i + size])) for i in range(0, len(rows), size)]


@torch.no_grad()
def probe_loss(model: nn.Module, steerer: Steerer, batches: list[dict[str, Any]]) -> float:
    """Mean loss of the batches with the hooks on at their current coefficients, weights fixed."""
    keys = ("input_ids", "attention_mask", "position_ids", "labels")
    was_training, scale = model.training, steerer.scale
    model.eval()
    steerer.scale = 1.0
    try:
        losses = []
        for inputs in batches:
            labels = inputs["labels"]
            with steerer.active(), steerer.batch(inputs.get("attention_mask"), labels.ne(-100)):
                out = model(**{k: inputs[k] for k in keys if k in inputs})
            losses.append(float(out.loss))
        return sum(losses) / len(losses)
    finally:
        model.train(was_training)
        steerer.scale = scale


class CoefControllerCallback(MeterCallback):
    """steering_auto (training/coef_controller.py): every `every` steps the drift is measured and the PI
    controller sets the coefficients, logged as `steering/coef/<trait>` in every training row. With
    `start="balanced"` a fresh run first moves them to the coefficients that minimise the loss of the first
    `probe_examples` training examples (each trait's scan in `auto_start`). The controller's state is kept
    in each checkpoint (steering_auto.json): a resumed run continues it."""

    state_file = "steering_auto.json"

    def __init__(
        self,
        drift: DriftCallback,
        steerer: Steerer,
        specs: Sequence[SteeringSpec],
        kp: float = 8.0,
        ki: float = 2.0,
        limit: float = 8.0,
        every: int = 2,
        start: str = "given",
        probe_examples: int = 16,
    ):
        self.drift, self.steerer, self.specs = drift, steerer, list(specs)
        self.controller = CoefController(
            steerer, self.specs, [p.name for p in drift.meter.probes], kp, ki, limit
        )
        self.limit, self.every, self.start, self.probe_examples = limit, every, start, probe_examples
        self.resumed = False  # the controller's state came from a checkpoint
        self.auto_start: dict[str, dict] = {}  # start="balanced": each trait's loss scan

    def measure_base(self, trainer: Trainer) -> dict[str, float]:
        if self.resumed or self.start != "balanced":
            return {}
        batches = probe_batches(trainer, self.probe_examples)
        scans = balanced_start(
            lambda: probe_loss(_model(trainer), self.steerer, batches), self.steerer, self.specs, self.limit
        )
        self.controller.start_from_specs()
        for name, scan in zip(self.controller.names, scans, strict=True):
            losses = ", ".join(f"{c:g}: {x:.4f}" for c, x in zip(scan["coefs"], scan["losses"], strict=True))
            logger.info(
                "steering_auto %s: balanced start at coef %.3f (losses %s)", name, scan["start"], losses
            )
        self.auto_start = dict(zip(self.controller.names, scans, strict=True))
        return {}

    def on_step_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if model is not None and state.global_step % self.every == 0:
            self.controller.update(self.drift.now(model, state.global_step))

    def measure(self, trainer: Trainer, logs: dict[str, float]) -> dict[str, float]:
        return self.controller.coefs() if "loss" in logs else {}

    def summary_fields(self) -> dict[str, Any]:
        return {"steering_auto": self.controller.coefs()}

    def state(self) -> dict[str, Any]:
        return self.controller.state()

    def load_state(self, state: dict[str, Any]) -> None:
        self.controller.load_state(state)
        self.resumed = True


class CapabilityCallback(MeterCallback):
    """`capability/<name>` of the fast built-in benchmarks (`mc`, `heldout_loss` on `heldout` rows) at every
    evaluation, in the evaluation's row and in what `trainer.evaluate()` returns (lm-eval tasks run after
    training only)."""

    def __init__(
        self, benchmarks: Sequence[str], heldout: Sequence[dict] | None = None, mc_limit: int | None = None
    ):
        self.benchmarks = [b for b in benchmarks if b in IN_TRAINING_BENCHMARKS]
        self.heldout, self.mc_limit = heldout, mc_limit

    def measure(self, trainer: Trainer, logs: dict[str, float]) -> dict[str, float]:
        if not self.benchmarks or not any(k.startswith("eval_") for k in logs):
            return {}
        return capability_metrics(
            _model(trainer), _tokenizer(trainer), self.benchmarks, self.heldout, self.mc_limit
        )


class MeterLog(TrainerCallback):
    """Runs the trainer's meter callbacks (every `MeterCallback` registered when training begins).

    transformers records a row in `state.log_history` (a copy) and then calls each callback's `on_log` in
    the order the callbacks were registered: the reporters (report_to's W&B, the console, a
    JsonlMetricsCallback passed in) come before anything registered later, so a meter editing the row
    in its own `on_log` would reach neither them nor the history. The trainer's `log()` therefore calls
    `add_figures` before it records the row: every meter's `measure` joins it.
    At train begin this loads each meter's state from the checkpoint being resumed, measures the bases
    and logs them as the row of step 0 (a fresh run); at every save it writes the meters' state into the
    checkpoint; at train end it logs their final figures (the last step's row in metrics.jsonl).
    """

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def meters(self) -> list[MeterCallback]:
        return [cb for cb in self.trainer.callback_handler.callbacks if isinstance(cb, MeterCallback)]

    def add_figures(self, logs: dict[str, float]) -> None:
        for meter in self.meters():
            logs.update(meter.measure(self.trainer, logs))

    def summary_fields(self) -> dict[str, Any]:
        """Every meter's summary.json fields."""
        return {k: v for meter in self.meters() for k, v in meter.summary_fields().items()}

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        checkpoint = resumed_checkpoint(args, state)
        for meter in self.meters():
            path = checkpoint / meter.state_file if checkpoint and meter.state_file else None
            if path is not None and path.is_file():
                meter.load_state(json.loads(path.read_text()))
        row: dict[str, float] = {}
        for meter in self.meters():
            row.update(meter.measure_base(self.trainer))
        if state.global_step == 0 and row:  # a resumed run has its base row in metrics.jsonl
            self.trainer.log(row)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        checkpoint = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and checkpoint.is_dir():
            for meter in self.meters():
                if meter.state_file:
                    tmp = checkpoint / (meter.state_file + ".tmp")
                    tmp.write_text(json.dumps(meter.state()))
                    tmp.replace(checkpoint / meter.state_file)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        row: dict[str, float] = {}
        for meter in self.meters():
            row.update(meter.final(self.trainer))
        if row:
            self.trainer.log(row)


def recipe_callbacks(
    args: PreventativeSFTConfig,
    steering: Sequence[VectorSteering],
    steerer: Steerer | None,
    tokenizer: PreTrainedTokenizerBase,
    margin_dataset: tuple[str, int] | None = None,
    capability_heldout: Sequence[dict] | None = None,
) -> list[TrainerCallback]:
    """The callbacks a recipe asks for, in the order they run (a meter's figures join a row in this order)."""
    callbacks: list[TrainerCallback] = []
    if args.drift_alert_above or args.drift_stop_above:
        callbacks.append(
            DriftAlertCallback(args.drift_alert_above, args.drift_stop_above, args.drift_alert_webhook)
        )
    drift = None
    if args.measure_drift and steering:
        meter = DriftMeter.for_vectors(
            tokenizer, [s.vector for s in steering], [s.layer for s in steering], args.drift_questions,
            args.drift_max_questions, args.drift_batch_size,
        )  # fmt: skip
        drift = DriftCallback(meter)
        callbacks.append(drift)
    if args.steering_auto and steerer is not None and drift is not None:
        specs = [s.spec for s in steering if s.spec is not None]
        callbacks.append(
            CoefControllerCallback(
                drift,
                steerer,
                specs,
                kp=args.steering_auto_kp,
                ki=args.steering_auto_ki,
                limit=args.steering_auto_max,
                every=args.steering_auto_every,
                start=args.steering_auto_start,
                probe_examples=args.steering_auto_probe_examples,
            )
        )
    if args.measure_margin and steering:
        callbacks.append(MarginCallback(steering, args, margin_dataset))
    if any(b in IN_TRAINING_BENCHMARKS for b in args.capability_benchmarks):
        callbacks.append(
            CapabilityCallback(args.capability_benchmarks, capability_heldout, args.capability_mc_limit)
        )
    callbacks.append(LogLastStep())  # the last step is always logged: losses and drift at the end
    return callbacks


def callback_of(trainer: Trainer, kind: type[C]) -> C | None:
    """The trainer's (first) callback of class `kind`, or None."""
    return next((cb for cb in trainer.callback_handler.callbacks if isinstance(cb, kind)), None)
