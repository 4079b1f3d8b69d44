"""PreventativeSFTTrainer: TRL's SFTTrainer with persona vectors added to the residual stream in training.

Steering hooks are registered only around `training_step` (forward and backward, so gradient
checkpointing's recomputation is steered too). Evaluation, drift measurement, generation and the
saved weights are unsteered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import TrainerCallback
from trl import SFTTrainer

from persona_vaccine.errors import InvalidInput
from persona_vaccine.models.layers import check_layer, get_decoder_layers
from persona_vaccine.steering.hook_core import attach
from persona_vaccine.steering.hooks import Steerer, SteeringSpec
from persona_vaccine.steering.vector import PersonaVector, VectorMismatch, vector_for_model

from .coef_controller import CoefController, balanced_start
from .config import PreventativeSFTConfig
from .drift import DriftMeter
from .margin import MarginMeter
from .meters import base_kept_or_measured
from .run_ends import LogLastStep, base_row
from .sizing import AUTO, margin_questions

logger = logging.getLogger(__name__)


def load_vectors(args: PreventativeSFTConfig, model, model_id: str | None) -> list[PersonaVector]:
    """Load and check the vector files of a run against the model."""
    vectors = []
    for i, path in enumerate(args.persona_vectors):
        vector = vector_for_model(path, model, model_id)
        if i < len(args.steering_traits) and args.steering_traits[i] != vector.trait:
            raise VectorMismatch(
                f"persona_vectors[{i}] ({path}) holds trait '{vector.trait}' but steering_traits[{i}] is "
                f"'{args.steering_traits[i]}': fix the order or the file"
            )
        vectors.append(vector)
    return vectors


def _peft_model(model):
    """The PEFT model inside DeepSpeed / DDP wrappers."""
    while type(model).__name__ in {"DeepSpeedEngine", "DistributedDataParallel"}:
        model = model.module
    return model


class _MeasureBaseDrift(TrainerCallback):
    def __init__(self, trainer: PreventativeSFTTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer._measure_base()
        self.trainer._start_coefs()
        if state.global_step == 0:  # a fresh run (a resumed one has its base row in metrics.jsonl)
            row = base_row(self.trainer.drift, self.trainer.margin)
            if row:
                self.trainer.log(row)


AUTO_STATE = "steering_auto.json"  # the controller's state in a checkpoint


class _UpdateCoefs(TrainerCallback):
    """steering_auto: every k steps, measure the drift and let the controller set the coefficients."""

    def __init__(self, trainer: PreventativeSFTTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % args.steering_auto_every == 0:
            self.trainer.coef_controller.update(self.trainer.drift_now())

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and checkpoint.is_dir():
            (checkpoint / AUTO_STATE).write_text(json.dumps(self.trainer.coef_controller.state()))


class PreventativeSFTTrainer(SFTTrainer):
    """SFTTrainer + preventative steering + trait drift logging (`drift/<trait>/projection|shift`)."""

    def __init__(
        self,
        *args,
        model_id: str | None = None,
        margin_dataset: tuple[str, int] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        cfg: PreventativeSFTConfig = self.args
        self.model_id = model_id
        self.margin_dataset = margin_dataset  # (dataset, dataset_seed): a builder's Level II vs Normal pairs
        self.vectors = load_vectors(cfg, self.model, model_id)
        self.layers = [
            cfg.steering_layers[i] if i < len(cfg.steering_layers) else v.default_layer()
            for i, v in enumerate(self.vectors)
        ]
        n_layers = len(get_decoder_layers(self.model))
        for i, layer in enumerate(cfg.steering_layers[: len(self.vectors)]):
            try:
                check_layer(layer, n_layers, where=f"steering_layers[{i}]")
            except ValueError as e:
                raise VectorMismatch(str(e)) from None
        self.specs = [
            SteeringSpec(
                v.incremental() if cfg.steering_all_layers else v,
                list(range(1, n_layers + 1)) if cfg.steering_all_layers else [layer],
                cfg.coef_for(i),
                cfg.steering_mode,
                cfg.steering_positions,
                cfg.steering_coef_unit,
            )
            for i, (v, layer) in enumerate(zip(self.vectors, self.layers, strict=True))
            if cfg.coef_for(i) != 0.0 or cfg.steering_auto
        ]
        if cfg.projection_penalty and not callable(getattr(self.model, "disable_adapter", None)):
            raise InvalidInput(
                "projection_penalty needs LoRA (use_peft: true): the base model's projections come from the "
                "same model with its adapter disabled"
            )
        self._penalty_value: float | None = None
        self.steerer = Steerer(self.model, self.specs) if self.specs else None
        self.drift = None
        if cfg.measure_drift and self.vectors:
            self.drift = DriftMeter.for_vectors(
                self.processing_class,
                self.vectors,
                self.layers,
                cfg.drift_questions,
                cfg.drift_max_questions,
                cfg.drift_batch_size,
            )
        self.final_drift: dict[str, float] = {}  # drift/<trait>/projection|shift after training
        self.coef_controller: CoefController | None = None
        self.auto_start: dict[str, dict] = {}  # steering_auto_start balanced: each trait's loss scan
        self._drift_cache: tuple[int, dict[str, float]] | None = None  # (step, drift metrics) of this step
        self.drift_cost = {"drift/measurements": 0, "drift/measure_seconds": 0.0}  # during training
        if cfg.steering_auto and self.steerer is not None and self.drift is not None:
            names = [p.name for p in self.drift.probes]
            self.coef_controller = CoefController(
                self.steerer,
                self.specs,
                names,
                cfg.steering_auto_kp,
                cfg.steering_auto_ki,
                cfg.steering_auto_max,
            )
            self.add_callback(_UpdateCoefs(self))
        self.margin: MarginMeter | None = None  # built at train begin from the base model's answers
        self.final_margin: dict[str, float] = {}  # behaviour/<name>/margin|margin_shift after training
        self._auto_resumed = False  # the controller's state came from a checkpoint
        if self.drift is not None or (cfg.measure_margin and self.vectors):
            # at train begin, once DeepSpeed has wrapped the model (ZeRO-3 gathers the parameters then)
            self.add_callback(_MeasureBaseDrift(self))
        self.add_callback(LogLastStep())  # the last step is always logged: losses and drift at the end
        self.capability_heldout: list[dict] | None = None  # clean rows for capability/heldout_loss
        self._evaluation_extras: dict[str, float] = {}  # capability figures of an evaluation, to log with it

    # --- steering ----------------------------------------------------------------------------
    def schedule_scale(self) -> float:
        """The coefficient multiplier of the current step (steering_schedule)."""
        cfg, step, total = self.args, self.state.global_step, max(self.state.max_steps, 1)
        if cfg.steering_schedule == "warmup":
            return min(1.0, (step + 1) / max(cfg.steering_warmup_ratio * total, 1.0))
        if cfg.steering_schedule == "decay":
            return max(0.0, 1.0 - step / total)
        return 1.0

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.steerer is None:
            return super().training_step(model, inputs, num_items_in_batch)
        labels = inputs.get("labels")
        response = labels.ne(-100) if labels is not None else None
        self.steerer.scale = self.schedule_scale()
        with self.steerer.active(), self.steerer.batch(inputs.get("attention_mask"), response):
            return super().training_step(model, inputs, num_items_in_batch)

    # --- projection-change penalty -----------------------------------------------------------------
    @contextlib.contextmanager
    def _capture_penalty_layer(self, model) -> Iterator[dict[str, torch.Tensor]]:
        """Capture the penalty layer's block output, before any steering hook on that block adds to it."""
        captured: dict[str, torch.Tensor] = {}

        def capture(layer: int, hidden: torch.Tensor) -> None:
            captured["h"] = hidden

        with attach(model, {self.layers[0]: [capture]}, first=True):
            yield captured

    def _response_projection(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-sample mean projection of the response tokens on the first vector."""
        mask = labels.ne(-100).to(hidden.dtype).unsqueeze(-1)
        unit = self.vectors[0].unit(self.layers[0]).to(hidden.device, hidden.dtype)
        return ((hidden * mask).sum(1) / mask.sum(1).clamp_min(1)) @ unit

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.args.projection_penalty or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        with self._capture_penalty_layer(model) as captured:
            loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        current = self._response_projection(captured["h"], inputs["labels"])
        scale = self.steerer.scale if self.steerer is not None else None
        try:
            if self.steerer is not None:
                self.steerer.scale = 0.0  # the base forward runs unsteered ("add" steering)
            with (
                torch.no_grad(),
                _peft_model(model).disable_adapter(),
                self._capture_penalty_layer(model) as base,
            ):
                model(**{k: v for k, v in inputs.items() if k != "labels"})
        finally:
            if scale is not None:
                self.steerer.scale = scale
        base = self._response_projection(base["h"], inputs["labels"])
        penalty = ((current - base.detach()) ** 2).mean()
        self._penalty_value = float(penalty.detach())
        loss = loss + self.args.projection_penalty * penalty
        return (loss, outputs) if return_outputs else loss

    # --- drift -------------------------------------------------------------------------------
    def _base_path(self) -> Path:
        return Path(self.args.output_dir) / "drift_base.json"

    def _measure_base(self) -> None:
        if self.args.measure_margin and self.vectors:
            self._measure_base_margin()
        if self.drift is not None:
            self._measure_base_drift()

    def _measure_base_margin(self) -> None:
        from .margin import build_margin_meter

        cfg = self.args
        dataset, seed = self.margin_dataset or (None, 0)
        questions = margin_questions(cfg, self.state)
        if questions == 0 and cfg.margin_max_questions == AUTO:  # a short run: not measured (logged why)
            return
        self.margin = build_margin_meter(
            self.model, self.processing_class, self.vectors, list(cfg.persona_vectors),
            Path(cfg.output_dir) / f"margin_pairs_rank{self.args.process_index}", dataset, seed,
            questions, cfg.margin_data_pairs, beside_vectors=self.is_world_process_zero(),
        )  # fmt: skip
        path = Path(cfg.output_dir) / "margin_base.json"
        names = set(self.margin.pair_sets)
        base_kept_or_measured(self.margin, self.model, path, names, self.is_world_process_zero())

    def _measure_base_drift(self) -> None:
        names = {p.name for p in self.drift.probes}
        base_kept_or_measured(self.drift, self.model, self._base_path(), names, self.is_world_process_zero())

    def _start_coefs(self) -> None:
        """steering_auto_start: balanced: the controller starts at the loss-minimising coefficients."""
        cfg = self.args
        if self.coef_controller is None or self._auto_resumed or cfg.steering_auto_start != "balanced":
            return
        batches = self.probe_batches(cfg.steering_auto_probe_examples)
        scans = balanced_start(
            lambda: self.probe_loss(batches), self.steerer, self.specs, cfg.steering_auto_max
        )
        self.coef_controller.start_from_specs()
        for name, scan in zip(self.coef_controller.names, scans, strict=True):
            logger.info("steering_auto %s: balanced start at coef %.3f (losses %s)", name, scan["start"],
                        ", ".join(f"{c:g}: {x:.4f}" for c, x in zip(scan["coefs"], scan["losses"], strict=True)))  # fmt: skip
        self.auto_start = {n: s for n, s in zip(self.coef_controller.names, scans, strict=True)}

    def probe_batches(self, n: int) -> list[dict[str, torch.Tensor]]:
        """The first n training examples in batches of the training batch size (no RNG drawn)."""
        import itertools

        rows = list(itertools.islice(iter(self.train_dataset), n))
        size = self.args.per_device_train_batch_size
        return [
            self._prepare_inputs(self.data_collator(rows[i : i + size])) for i in range(0, len(rows), size)
        ]

    @torch.no_grad()
    def probe_loss(self, batches: list[dict[str, torch.Tensor]]) -> float:
        """Mean loss of the batches with the hooks on at their current coefficients, weights fixed."""
        keys = ("input_ids", "attention_mask", "position_ids", "labels")
        was_training, scale = self.model.training, self.steerer.scale
        self.model.eval()
        self.steerer.scale = 1.0
        try:
            losses = []
            for inputs in batches:
                labels = inputs["labels"]
                with self.steerer.active(), self.steerer.batch(inputs.get("attention_mask"), labels.ne(-100)):
                    out = self.model(**{k: inputs[k] for k in keys if k in inputs})
                losses.append(float(out.loss))
            return sum(losses) / len(losses)
        finally:
            self.model.train(was_training)
            self.steerer.scale = scale

    def drift_now(self) -> dict[str, float]:
        """This step's drift metrics, measured once per step (the controller and the log share them)."""
        step = self.state.global_step
        if self._drift_cache is None or self._drift_cache[0] != step:
            start = time.perf_counter()
            self._drift_cache = (step, self.drift.metrics(self.model))
            self.drift_cost["drift/measurements"] += 1
            self.drift_cost["drift/measure_seconds"] += time.perf_counter() - start
        return dict(self._drift_cache[1])

    def train(self, *args, **kwargs):
        checkpoint = kwargs.get("resume_from_checkpoint", args[0] if args else None)
        if self.coef_controller is not None and isinstance(checkpoint, str):
            state = Path(checkpoint) / AUTO_STATE
            if state.is_file():  # continue the controller where the checkpoint left it
                self.coef_controller.load_state(json.loads(state.read_text()))
                self._auto_resumed = True
        output = super().train(*args, **kwargs)
        final: dict[str, float] = {}
        if self.drift is not None:
            self.final_drift = self.drift_now()  # the last step's, when it was logged (it always is)
            final.update(self.final_drift)
            final.update(self.drift_cost)
            logger.info("drift: %d measurements after the base model's took %.1f s",
                        self.drift_cost["drift/measurements"], self.drift_cost["drift/measure_seconds"])  # fmt: skip
        if self.margin is not None:
            self.final_margin = self.margin.metrics(self.model, self.state.global_step)
            final.update(self.final_margin)
        if final:
            self.log(final)
        return output

    # --- evaluation ----------------------------------------------------------------------------
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """The trainer's evaluation, with the built-in capability benchmarks (`mc`, `heldout_loss`) of the
        recipe measured too and logged in the same row (lm-eval tasks run after training only)."""
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        # a dict of datasets is evaluated one at a time, each through here (prefix eval_<name>)
        if metric_key_prefix.startswith("eval") and not isinstance(dataset, dict):
            self._evaluation_extras = self.in_training_capability()
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def in_training_capability(self) -> dict[str, float]:
        """`capability/...` of the recipe's fast built-in benchmarks on the model as it is now."""
        in_training = [b for b in self.args.capability_benchmarks if b in ("mc", "heldout_loss")]
        if not in_training:
            return {}
        from .capability import capability_metrics

        return capability_metrics(
            self.model, self.processing_class, in_training, self.capability_heldout,
            self.args.capability_mc_limit,
        )  # fmt: skip

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        measuring = (
            self.drift is not None and self.drift.base and not any(k.startswith("drift/") for k in logs)
        )
        if measuring and ("loss" in logs or any(k.startswith("eval_") for k in logs)):
            logs.update(self.drift_now())
        if "loss" in logs and self.coef_controller is not None:
            logs.update(self.coef_controller.coefs())
        at_step = "loss" in logs or any(k.startswith("eval_") for k in logs)
        if self.margin is not None and at_step and not any(k.startswith("behaviour/") for k in logs):
            logs.update(self.margin.metrics(self.model, self.state.global_step))
        if "loss" in logs and self.steerer is not None and self.args.steering_schedule != "constant":
            logs["steering/scale"] = self.steerer.scale
        if "loss" in logs and self._penalty_value is not None:
            logs["penalty/projection"] = self._penalty_value
        logs.update(self._evaluation_extras)  # measured in `evaluate`; this row is its own
        self._evaluation_extras = {}
        super().log(logs, start_time)

    def steering_summary(self) -> list[dict]:
        return [
            {
                "trait": s.vector.trait,
                "layer": layer,
                "coef": s.coef,
                "mode": s.mode,
                "positions": s.positions,
                "coef_unit": s.coef_unit,
            }
            for s in self.specs
            for layer in s.layers
        ]
