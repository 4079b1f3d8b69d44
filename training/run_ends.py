"""Both ends of a run in its log, whatever `logging_steps` is: the base model's drift (and margins) as the
row of step 0, and a log at the last step (its loss, drift and margins), so that a run shorter than one
logging interval still has its losses and its drift at the start and the end."""

from __future__ import annotations

from transformers import TrainerCallback


def base_row(drift, margin) -> dict[str, float]:
    """The step-0 row: the base model's projections and margins, with shifts of 0 (empty: nothing measured)."""
    row: dict[str, float] = {}
    if drift is not None:
        for name, value in drift.base.items():
            row[f"drift/{name}/projection"] = value
            row[f"drift/{name}/shift"] = 0.0
    if margin is not None:
        for name, value in margin.base.items():
            row[f"behaviour/{name}/margin"] = value
            row[f"behaviour/{name}/margin_shift"] = 0.0
    return row


class LogLastStep(TrainerCallback):
    """Log at the last step (max_steps, or a step that stops training) even between logging steps.

    Runs after transformers' DefaultFlowCallback, which sets `should_log` on the logging steps only.
    `logging_strategy: no` is respected (nothing is logged then).
    """

    def on_step_end(self, args, state, control, **kwargs):
        strategy = str(getattr(args.logging_strategy, "value", args.logging_strategy))
        if strategy != "no" and (state.global_step >= state.max_steps or control.should_training_stop):
            control.should_log = True
        return control
