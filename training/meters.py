"""The meter protocol of the training callbacks, and what the drift and margin meters share: a base
measured once (or kept from the run being resumed) and each reading's shift from it.

A meter callback (`MeterCallback`) measures something about the model during training and hands its
figures to `callbacks.MeterLog`, which puts them into the trainer's log rows (so they reach
metrics.jsonl, W&B and the console), logs the base figures as the row of step 0 and the final figures
in the last step's row, keeps each meter's state in the checkpoints and gives it back on resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Protocol

from transformers import Trainer, TrainerCallback


class MeterCallback(TrainerCallback):
    """A callback whose figures go into the trainer's log rows. Override what applies; every hook defaults
    to nothing. `trainer.add_callback(MyMeter())` before `train()` is all it takes."""

    state_file: ClassVar[str | None] = None  # its state's file in each checkpoint (None: nothing to keep)

    def measure_base(self, trainer: Trainer) -> dict[str, float]:
        """At train begin, before the first step (after a resumed run's state is loaded): the figures of
        the step-0 row, logged by a fresh run."""
        return {}

    def measure(self, trainer: Trainer, logs: dict[str, float]) -> dict[str, float]:
        """Figures to add to a row the trainer logs (`logs`: the row so far: `loss` in a training row,
        `eval_*` in an evaluation's)."""
        return {}

    def final(self, trainer: Trainer) -> dict[str, float]:
        """After the last step: figures logged in the last step's row."""
        return {}

    def summary_fields(self) -> dict[str, Any]:
        """Its fields of the run's summary.json (unknown names are kept as extra keys)."""
        return {}

    def state(self) -> dict[str, Any]:
        """What a resumed run needs to continue (saved as `state_file` in each checkpoint)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from `state()` as saved in the checkpoint a run resumes from."""


def at_step(logs: dict[str, float]) -> bool:
    """A training row (`loss`) or an evaluation's (`eval_*`), the rows the meters measure."""
    return "loss" in logs or any(k.startswith("eval_") for k in logs)


class ModelMeter(Protocol):
    base: dict[str, float]

    def measure_base(self, model: Any) -> dict[str, float]: ...


def with_shift(
    prefix: str, value_key: str, shift_key: str, current: dict[str, float], base: dict[str, float]
) -> dict[str, float]:
    """`{prefix}/{name}/{value_key}` for every reading, and `.../{shift_key}` (now - base) where a base exists."""
    out = {}
    for name, value in current.items():
        out[f"{prefix}/{name}/{value_key}"] = value
        if name in base:
            out[f"{prefix}/{name}/{shift_key}"] = value - base[name]
    return out


def base_row(prefix: str, value_key: str, shift_key: str, base: dict[str, float]) -> dict[str, float]:
    """The step-0 figures of a base: each value with a shift of 0."""
    row: dict[str, float] = {}
    for name, value in base.items():
        row[f"{prefix}/{name}/{value_key}"] = value
        row[f"{prefix}/{name}/{shift_key}"] = 0.0
    return row


def base_kept_or_measured(meter: ModelMeter, model: Any, path: Path, names: set[str], save: bool) -> None:
    """A resumed run keeps the base of the original model (saved in `path`); else it is measured now and,
    on the main process (`save`), written to `path`."""
    if path.is_file():
        saved = json.loads(path.read_text())
        if set(saved) == names:
            meter.base = saved
            return
    meter.measure_base(model)
    if save:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(meter.base, indent=2))
