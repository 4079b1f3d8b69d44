"""Where metrics go: Weights & Biases (offline unless the user is logged in) and OUTPUT_DIR/metrics.jsonl."""

from __future__ import annotations

import json
import math
import netrc
import os
import time
import uuid
from pathlib import Path

from transformers import TrainerCallback

from steering.jsonl import read_records

WANDB_HOST = "api.wandb.ai"


def wandb_logged_in() -> bool:
    """True when W&B credentials exist (env var or ~/.netrc); never asks for a login."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


RUN_ID_FILE = "wandb_run_id"
CLOCK_FILE = "run_clock.json"


def wandb_run_id(output_dir: str | Path, resume: bool) -> str:
    """The run's W&B id, kept in OUTPUT_DIR/wandb_run_id: the same id on resume (one W&B run), else a new one."""
    path = Path(output_dir) / RUN_ID_FILE
    if resume and path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")
    return run_id


def configure_wandb(
    output_dir: str, project: str = "persona-vaccine", group: str | None = None, resume: bool = False
) -> str:
    """Set W&B's environment for a run and return the mode: the user's WANDB_MODE, else online if logged in,
    else offline. Run files go to OUTPUT_DIR/wandb; standard input is never read. A resumed run continues
    the W&B run of OUTPUT_DIR (its id is in OUTPUT_DIR/wandb_run_id)."""
    if int(os.environ.get("RANK", "0")) == 0:  # only the main process reports to W&B
        os.environ["WANDB_RUN_ID"] = wandb_run_id(output_dir, resume)
        os.environ["WANDB_RESUME"] = "allow"
    mode = os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")
    os.environ["WANDB_MODE"] = mode
    os.environ.setdefault("WANDB_PROJECT", project)
    os.environ.setdefault("WANDB_DIR", str(Path(output_dir).resolve()))
    os.environ.setdefault("WANDB_SILENT", "true")
    if group:
        os.environ.setdefault("WANDB_RUN_GROUP", group)
    Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)
    return mode


class JsonlMetricsCallback(TrainerCallback):
    """Append every log event, with its step, to OUTPUT_DIR/metrics.jsonl (main process only)."""

    def __init__(self, output_dir: str):
        self.path = Path(output_dir) / "metrics.jsonl"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {"step": state.global_step}
        for key, value in logs.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = str(value)
            row[key] = value
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


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


def read_metrics(output_dir: str | Path) -> list[dict]:
    """The rows of OUTPUT_DIR/metrics.jsonl (a line cut by a crash is skipped)."""
    return read_records(Path(output_dir) / "metrics.jsonl")


def log_run_extras(output_dir: str | Path, samples: dict[str, dict]) -> bool:
    """Log a table of sample generations and the drift plot to the active W&B run; False when none is active.

    `samples` maps "variant:trait" to a `training.trait_eval.judged_expression` result.
    """
    try:
        import wandb
    except ImportError:
        return False
    if wandb.run is None:
        return False
    from .compare import drift_history, plot

    table = wandb.Table(
        columns=["variant", "trait", "question", "answer", "judged trait", "judged coherence"]
    )
    for name, result in samples.items():
        variant, _, trait = name.rpartition(":")
        for question, answer in zip(result.get("questions", []), result.get("answers", []), strict=False):
            table.add_data(variant, trait, question, answer, result.get("trait"), result.get("coherence"))
    extras: dict = {"samples": table}
    history = drift_history(output_dir)
    if history:
        run = {"name": Path(output_dir).name, "history": history}
        extras["drift_plot"] = wandb.Image(str(plot([run], Path(output_dir) / "drift.png")))
    wandb.log(extras)
    return True
