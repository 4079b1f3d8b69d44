"""Stop a training run whose loss, gradient norm or drift turns NaN/inf, keeping the last good checkpoint."""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import torch
from transformers import TrainerCallback

from persona_vaccine.errors import TrainingDiverged

from .precheck import last_checkpoint

logger = logging.getLogger(__name__)

WATCHED = ("loss", "grad_norm", "eval_loss")  # and every drift/... value


def _non_finite(logs: dict) -> list[str]:
    return [
        f"{key}={value}"
        for key, value in logs.items()
        if (key in WATCHED or key.startswith("drift/"))
        and isinstance(value, (int, float))
        and not math.isfinite(value)
    ]


class NonFiniteGuard(TrainerCallback):
    """Raise TrainingDiverged at the first non-finite logged value; drop a checkpoint with non-finite weights."""

    def __init__(self, output_dir: str | Path):
        self.output_dir = Path(output_dir)

    def _stop(self, what: str, step: int) -> None:
        good = last_checkpoint(self.output_dir)
        keep = (
            f"the last good checkpoint is {good} (resume with --resume_from_checkpoint {good} after lowering "
            "learning_rate or the steering coefficients)"
            if good
            else "no checkpoint was saved before it (lower learning_rate or the steering coefficients)"
        )
        raise TrainingDiverged(f"training stopped at step {step}: {what} is not finite; {keep}")

    def on_log(self, args, state, control, logs=None, **kwargs):
        bad = _non_finite(logs or {})
        if bad:
            self._stop(", ".join(bad), state.global_step)

    def on_save(self, args, state, control, model=None, **kwargs):
        if model is None:
            return
        trainable = [p for p in model.parameters() if p.requires_grad and p.numel()]
        if all(bool(torch.isfinite(p.detach()).all()) for p in trainable):
            return
        bad = self.output_dir / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and bad.is_dir():
            shutil.rmtree(bad)
        self._stop("a trainable weight", state.global_step)
