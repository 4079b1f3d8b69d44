"""Training steps outside `trainer.train()`, for timing: one batch, the optimizer, a step with or without
the trainer's steering hooks."""

from __future__ import annotations

from typing import Any


def prepare_steps(trainer: Any) -> tuple[Any, dict]:
    """The trainer's (wrapped) model and one batch of its training data, with the optimizer created."""
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which the benches bypass
    return trainer.model, next(iter(trainer.get_train_dataloader()))


def train_step(trainer: Any, model: Any, batch: dict, steerer: Any) -> None:
    """One forward, backward and optimizer step on `batch`, steered by `steerer` (None: not steered)."""
    trainer.steerer = steerer
    trainer.training_step(model, dict(batch))
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)
