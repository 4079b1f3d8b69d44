"""What a run carries across a resume: the checkpoint it starts from, its metrics rows up to that step,
its training clock and its mean loss over all steps (the meters' own state: `callbacks.MeterLog`)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from transformers import TrainerCallback, TrainerState, TrainingArguments

from .config import PreventativeSFTConfig
from .metrics_file import METRICS_FILE, read_metrics
from .precheck import resolve_resume

logger = logging.getLogger(__name__)

CLOCK_FILE = "run_clock.json"


def check_resume(args: PreventativeSFTConfig) -> str | None:
    """Resolve --resume_from_checkpoint (true: the last checkpoint) before a model is loaded; returns the
    checkpoint folder (None: a fresh run), also left in `args.resume_from_checkpoint`."""
    args.resume_from_checkpoint = resolve_resume(args.resume_from_checkpoint, str(args.output_dir))
    return args.resume_from_checkpoint


def resumed_checkpoint(args: TrainingArguments, state: TrainerState) -> Path | None:
    """The checkpoint a training loop resumed from, as a callback sees it at train begin (None: a fresh
    run): the one named in the config, else OUTPUT_DIR/checkpoint-<step>."""
    if state.global_step == 0:
        return None
    named = args.resume_from_checkpoint
    if named and Path(named).is_dir():
        return Path(named)
    own = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
    return own if own.is_dir() else None


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


def truncate_metrics(output_dir: Path, checkpoint: str) -> None:
    """On resume, drop metrics.jsonl rows logged after the checkpoint (they are logged again)."""
    metrics = output_dir / METRICS_FILE
    if not (metrics.is_file() and (Path(checkpoint) / "trainer_state.json").is_file()):
        return
    step = checkpoint_step(checkpoint)
    kept = [row for row in read_metrics(output_dir) if row.get("step", 0) <= step]  # torn lines go too
    metrics.write_text("".join(json.dumps(row) + "\n" for row in kept))


class RunClockCallback(TrainerCallback):
    """The whole run's clock across resumes, kept in each checkpoint as run_clock.json:

    - `elapsed_s`: wall time since the run started (model loading and setup included; the evaluation
      after training too, when `elapsed()` is read at the end),
    - `train_s`: time in the training loop (the trainer's `train_runtime`).

    A resumed run starts from the checkpoint's figures (the time after that checkpoint, lost with the
    crash, is not counted). Its trainer-end log row gets the whole run's `train_runtime` and `train_loss`:
    this callback edits that row in place, so it must come before the callbacks writing rows out
    (metrics.jsonl, W&B), as the first of the run's callbacks.
    """

    def __init__(self, checkpoint: str | Path | None = None):
        saved = read_clock(checkpoint)
        self.start_step = checkpoint_step(str(checkpoint) if checkpoint else None)
        self.offset_s = _seconds(saved.get("elapsed_s"))
        self.train_offset_s = _seconds(saved.get("train_s", saved.get("elapsed_s")))
        self.start = time.perf_counter()  # the run starts now (built before the model is loaded)
        self.train_start: float | None = None

    def elapsed(self) -> float:
        """Wall time of the whole run so far."""
        return self.offset_s + time.perf_counter() - self.start

    def train_elapsed(self) -> float:
        """Time in the training loop of the whole run so far."""
        since = 0.0 if self.train_start is None else time.perf_counter() - self.train_start
        return self.train_offset_s + since

    def on_train_begin(self, args, state, control, **kwargs):
        self.train_start = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "train_runtime" not in logs:
            return
        whole = {"train_runtime": round(self.train_offset_s + float(logs["train_runtime"]), 4)}
        if "train_loss" in logs:
            whole["train_loss"] = whole_run_mean_loss(
                state.log_history, float(logs["train_loss"]), self.start_step, state.global_step
            )
        logs.update(whole)  # the dict every later callback gets
        if state.log_history and "train_runtime" in state.log_history[-1]:
            state.log_history[-1].update(whole)

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and checkpoint.is_dir():
            clock = {
                "elapsed_s": self.elapsed(),
                "train_s": self.train_elapsed(),
                "step": state.global_step,
            }
            tmp = checkpoint / (CLOCK_FILE + ".tmp")
            tmp.write_text(json.dumps(clock))
            tmp.replace(checkpoint / CLOCK_FILE)


def read_clock(checkpoint: str | Path | None) -> dict:
    """A checkpoint's run_clock.json ({} when it has none or it is unreadable)."""
    path = Path(str(checkpoint)) / CLOCK_FILE if checkpoint else None
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _seconds(value: object) -> float:
    try:
        return max(float(value), 0.0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def whole_run_mean_loss(
    log_history: list[dict], resumed_mean: float, start_step: int, end_step: int
) -> float:
    """Mean training loss over all steps of a resumed run.

    The trainer's `training_loss` covers only the steps after `start_step`; the steps before come
    from the logged losses of the restored history, each weighted by the steps it averages.
    """
    if start_step <= 0:
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
    if end_step <= start_step:  # resumed from the last checkpoint: no step trained since (its mean reads 0)
        return prior_mean
    return (prior_mean * start_step + resumed_mean * (end_step - start_step)) / end_step
