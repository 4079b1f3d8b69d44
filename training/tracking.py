"""Where metrics go: Weights & Biases (offline unless the user is logged in) and OUTPUT_DIR/metrics.jsonl."""

from __future__ import annotations

import json
import math
import netrc
import os
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


def configure_wandb(output_dir: str, project: str = "persona-vaccine", group: str | None = None) -> str:
    """Set W&B's environment for a run and return the mode: the user's WANDB_MODE, else online if logged in,
    else offline. Run files go to OUTPUT_DIR/wandb; standard input is never read."""
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
