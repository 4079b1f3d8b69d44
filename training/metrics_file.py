"""OUTPUT_DIR/metrics.jsonl: every log row of a run with its step, written by a callback and read back as
rows, drift history and loss history (by compare, the W&B extras and resume)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import BinaryIO

from transformers import TrainerCallback

from persona_vaccine.jsonl import read_records

METRICS_FILE = "metrics.jsonl"


class JsonlMetricsCallback(TrainerCallback):
    """Write every log event, with its step, to OUTPUT_DIR/metrics.jsonl (main process only): one row per
    step. Events logged at the step of the file's last row (the last step's loss, final drift, the
    trainer's end-of-training figures and the evaluation after training) are merged into that row, a
    later event's value winning for a key logged twice."""

    def __init__(self, output_dir: str):
        self.path = Path(output_dir) / METRICS_FILE

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {"step": state.global_step}
        for key, value in logs.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = str(value)
            row[key] = value
        self.path.touch()
        with self.path.open("r+b") as f:
            offset, last = _last_row(f)
            if last is not None and last.get("step") == row["step"]:
                row = {**last, **row}
            else:
                offset = f.seek(0, 2)
            f.seek(offset)
            f.truncate()
            f.write((json.dumps(row) + "\n").encode())


def _last_row(f: BinaryIO, chunk: int = 1 << 16) -> tuple[int, dict | None]:
    """(byte offset, row) of the last complete line of the open file `f`, read from its end; a line cut
    by a crash is cut off the file."""
    size = f.seek(0, 2)
    tail, start = b"", size
    while start > 0 and tail.count(b"\n") < 2:  # the last complete line and the newline before it
        start = max(0, start - chunk)
        f.seek(start)
        tail = f.read(size - start)
    end = tail.rfind(b"\n") + 1  # past the last complete line (0: none)
    if end < len(tail):
        f.truncate(start + end)
    if not end:
        return start, None
    begin = tail.rfind(b"\n", 0, end - 1) + 1
    try:
        row = json.loads(tail[begin:end])
    except ValueError:
        row = None
    return start + begin, row if isinstance(row, dict) else None


def read_metrics(output_dir: str | Path) -> list[dict]:
    """The rows of OUTPUT_DIR/metrics.jsonl (a line cut by a crash is skipped)."""
    return read_records(Path(output_dir) / METRICS_FILE)


def drift_history(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """{trait: [(step, shift), ...]} from a run's metrics.jsonl (empty when there is none), starting with
    (0, 0.0): the base model, against which the shift is measured."""
    by_step: dict[str, dict[int, float]] = {}
    for row in read_metrics(run_dir):
        for key, value in row.items():
            if key.startswith("drift/") and key.endswith("/shift"):
                by_step.setdefault(key.split("/")[1], {0: 0.0})[int(row.get("step", 0))] = float(value)
    return _sorted(by_step)


def loss_history(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """{"train": [(step, loss), ...], "eval": [(step, eval_loss), ...]} from a run's metrics.jsonl."""
    by_step: dict[str, dict[int, float]] = {}
    for row in read_metrics(run_dir):
        for key, name in (("loss", "train"), ("eval_loss", "eval")):
            if isinstance(row.get(key), (int, float)):
                by_step.setdefault(name, {})[int(row.get("step", 0))] = float(row[key])
    return _sorted(by_step)


def _sorted(by_step: dict[str, dict[int, float]]) -> dict[str, list[tuple[int, float]]]:
    """Points in step order; a step logged twice (a rerun into the same directory) keeps its last value."""
    return {name: sorted(points.items()) for name, points in by_step.items()}
