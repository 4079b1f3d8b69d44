"""PreventativeSFTTrainer: TRL's SFTTrainer with persona vectors added to the residual stream in training.

Steering hooks are registered only around `training_step` (forward and backward, so gradient
checkpointing's recomputation is steered too). Evaluation, drift measurement, generation and the
saved weights are unsteered. What the recipe measures during training (drift, margins, the automatic
coefficient, capability at evaluations, drift alerts) are callbacks: training/callbacks.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, cast

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase
from trl import SFTTrainer

from persona_vaccine.errors import InvalidInput
from persona_vaccine.steering.hook_core import attach
from persona_vaccine.steering.hooks import Steerer

from .callbacks import MeterLog, recipe_callbacks
from .config import PreventativeSFTConfig
from .summary import SteeringRecord
from .vector_steering import VectorSteering, steering_from_config, steering_records


def _peft_model(model: Any) -> Any:
    """The PEFT model inside DeepSpeed / DDP wrappers."""
    while type(model).__name__ in {"DeepSpeedEngine", "DistributedDataParallel"}:
        model = model.module
    return model


class PreventativeSFTTrainer(SFTTrainer):
    """SFTTrainer + preventative steering (`steering`, one `VectorSteering` per vector file) and the
    projection penalty; registers the recipe's callbacks (`callbacks.recipe_callbacks`) and `MeterLog`.

    `margin_dataset` ((builder dataset, seed): its Level II vs Normal pairs for the margin) and
    `capability_heldout` (clean rows for `capability/heldout_loss` at evaluations) go to those callbacks.
    """

    args: PreventativeSFTConfig

    def __init__(
        self,
        *args: Any,
        model_id: str | None = None,
        margin_dataset: tuple[str, int] | None = None,
        capability_heldout: Sequence[dict] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        model = cast(nn.Module, self.model)  # SFTTrainer needs one
        self.steering: list[VectorSteering] = steering_from_config(self.args, model, model_id)
        if self.args.projection_penalty and not callable(getattr(model, "disable_adapter", None)):
            raise InvalidInput(
                "projection_penalty needs LoRA (use_peft: true): the base model's projections come from the "
                "same model with its adapter disabled"
            )
        specs = [s.spec for s in self.steering if s.spec is not None]
        self.steerer: Steerer | None = Steerer(model, specs) if specs else None
        tokenizer = cast(PreTrainedTokenizerBase, self.processing_class)
        for callback in recipe_callbacks(
            self.args, self.steering, self.steerer, tokenizer, margin_dataset, capability_heldout
        ):
            self.add_callback(callback)
        self.meter_log = MeterLog(self)
        self.add_callback(self.meter_log)

    # --- steering ----------------------------------------------------------------------------
    def schedule_scale(self) -> float:
        """The coefficient multiplier of the current step (steering_schedule)."""
        cfg, step, total = self.args, self.state.global_step, max(self.state.max_steps, 1)
        if cfg.steering_schedule == "warmup":
            return min(1.0, (step + 1) / max(cfg.steering_warmup_ratio * total, 1.0))
        if cfg.steering_schedule == "decay":
            return max(0.0, 1.0 - step / total)
        return 1.0

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        if self.steerer is None:
            return super().training_step(model, inputs, num_items_in_batch)
        labels = inputs.get("labels")
        response = labels.ne(-100) if labels is not None else None
        self.steerer.scale = self.schedule_scale()
        if self.args.steering_schedule != "constant":  # logged with the next training row, as its last value
            self._metrics["train"]["steering/scale"] = [self.steerer.scale]
        with self.steerer.active(), self.steerer.batch(inputs.get("attention_mask"), response):
            return super().training_step(model, inputs, num_items_in_batch)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """The meter callbacks' figures join the row before it is recorded and reported (`MeterLog`)."""
        self.meter_log.add_figures(logs)
        super().log(logs, start_time)

    def steering_summary(self) -> list[SteeringRecord]:
        """summary.json's `steering`: every steered (vector, layer) with its coefficient now."""
        return steering_records(self.steering)

    # --- projection-change penalty -----------------------------------------------------------------
    @contextlib.contextmanager
    def _capture_penalty_layer(self, model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
        """Capture the penalty layer's block output, before any steering hook on that block adds to it."""
        captured: dict[str, torch.Tensor] = {}

        def capture(layer: int, hidden: torch.Tensor) -> None:
            captured["h"] = hidden

        with attach(model, {self.steering[0].layer: [capture]}, first=True):
            yield captured

    def _response_projection(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-sample mean projection of the response tokens on the first vector."""
        mask = labels.ne(-100).to(hidden.dtype).unsqueeze(-1)
        first = self.steering[0]
        unit = first.vector.unit(first.layer).to(hidden.device, hidden.dtype)
        return ((hidden * mask).sum(1) / mask.sum(1).clamp_min(1)) @ unit

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        if not self.args.projection_penalty or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        with self._capture_penalty_layer(model) as captured:
            loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        current = self._response_projection(captured["h"], inputs["labels"])
        steerer = self.steerer
        scale = steerer.scale if steerer is not None else 1.0
        try:
            if steerer is not None:
                steerer.scale = 0.0  # the base forward runs unsteered ("add" steering)
            with (
                torch.no_grad(),
                _peft_model(model).disable_adapter(),
                self._capture_penalty_layer(model) as base,
            ):
                model(**{k: v for k, v in inputs.items() if k != "labels"})
        finally:
            if steerer is not None:
                steerer.scale = scale
        base_projection = self._response_projection(base["h"], inputs["labels"])
        penalty = ((current - base_projection.detach()) ** 2).mean()
        self._metrics["train"]["penalty/projection"] = [float(penalty.detach())]  # the last step's
        loss = loss + self.args.projection_penalty * penalty
        return (loss, outputs) if return_outputs else loss
