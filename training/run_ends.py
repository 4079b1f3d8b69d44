"""The end of a run in its log, whatever `logging_steps` is: a log at the last step (its loss, drift and
margins), so that a run shorter than one logging interval still has its losses and its drift at the end
(the base model's figures are the row of step 0: `callbacks.MeterLog`)."""

from __future__ import annotations

from transformers import TrainerCallback


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
