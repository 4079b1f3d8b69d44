"""What a run carries across a resume: the checkpoint it starts from, its metrics rows up to that step,
its training clock and its mean loss over all steps."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from transformers import TrainerCallback

from .config import PreventativeSFTConfig
from .metrics_file import METRICS_FILE, read_metrics
from .precheck import resolve_resume

logger = logging.getLogger(__name__)

CLOCK_FILE = "run_clock.json"


def check_resume(args: PreventativeSFTConfig) -> None:
    """Resolve --resume_from_checkpoint (true: the last checkpoint) before a model is loaded."""
    args.resume_from_checkpoint = resolve_resume(args.resume_from_checkpoint, str(args.output_dir))


def resolve_checkpoint(output_dir: Path, checkpoint: str | bool | None) -> str | None:
    """The checkpoint directory a resume starts from (`True`: the latest in OUTPUT_DIR)."""
    if checkpoint is True or checkpoint == "true":
        from transformers.trainer_utils import get_last_checkpoint

        return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    return str(checkpoint) if checkpoint else None


def checkpoint_step(checkpoint: str | None) -> int:
    """The global step a checkpoint was saved at (0 without one)."""
    state = Path(str(checkpoint)) / "trainer_state.json"
    return json.loads(state.read_text())["global_step"] if checkpoint and state.is_file() else 0


def start_clean(output_dir: Path) -> None:
    """A run without resume into a used directory: its metrics start over (no second copy of the steps)."""
    metrics = output_dir / METRICS_FILE
    if metrics.is_file():
        logger.warning("%s: not resuming, so the %d metrics rows of an earlier run are removed", output_dir,
                       len(read_metrics(output_dir)))  # fmt: skip
        metrics.unlink()


def truncate_metrics(output_dir: Path, checkpoint: str | bool) -> None:
    """On resume, drop metrics.jsonl rows logged after the checkpoint (they are logged again)."""
    resolved = resolve_checkpoint(output_dir, checkpoint)
    state = Path(str(resolved)) / "trainer_state.json"
    metrics = output_dir / METRICS_FILE
    if not (resolved and state.is_file() and metrics.is_file()):
        return
    step = json.loads(state.read_text())["global_step"]
    kept = [row for row in read_metrics(output_dir) if row.get("step", 0) <= step]  # torn lines go too
    metrics.write_text("".join(json.dumps(row) + "\n" for row in kept))


class RunClockCallback(TrainerCallback):
    """Training wall time of the whole run across resumes: written into each checkpoint as run_clock.json."""

    def __init__(self, offset_s: float = 0.0):
        self.offset_s, self.start = offset_s, time.perf_counter()

    def elapsed(self) -> float:
        return self.offset_s + time.perf_counter() - self.start

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and checkpoint.is_dir():
            clock = {"elapsed_s": self.elapsed(), "step": state.global_step}
            (checkpoint / CLOCK_FILE).write_text(json.dumps(clock))


def clock_offset(checkpoint: str | Path | None) -> float:
    """Seconds of training before `checkpoint` (0 when it has no run_clock.json)."""
    path = Path(str(checkpoint)) / CLOCK_FILE if checkpoint else None
    if path is None or not path.is_file():
        return 0.0
    try:
        return float(json.loads(path.read_text())["elapsed_s"])
    except (ValueError, KeyError, TypeError):
        return 0.0


def whole_run_mean_loss(
    log_history: list[dict], resumed_mean: float, start_step: int, end_step: int
) -> float:
    """Mean training loss over all steps of a resumed run.

    The trainer's `training_loss` covers only the steps after `start_step`; the steps before come
    from the logged losses of the restored history, each weighted by the steps it averages.
    """
    if start_step <= 0 or end_step <= start_step:
        return resumed_mean
    total = covered = 0
    for row in log_history:
        step = row.get("step", 0)
        if "loss" in row and covered < step <= start_step:
            total += row["loss"] * (step - covered)
            covered = step
    if covered == 0:
        return resumed_mean
    prior_mean = total / covered
    return (prior_mean * start_step + resumed_mean * (end_step - start_step)) / end_step
