"""lm-evaluation-harness tasks as capability benchmarks (optional: `pip install "lm-eval[hf]"`): looked up in
lm-eval's tasks, the task YAMLs shipped here (`training/lm_eval_tasks/`: `persona_vaccine_mc`) and the
`include_paths` given, checked before training, run on the in-memory model through lm-eval's HFLM."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from torch import nn
from transformers import PreTrainedTokenizerBase

from persona_vaccine.models.layers import eval_mode

from .capability_error import CapabilityError

logger = logging.getLogger(__name__)

_LM_EVAL_INSTALL = 'pip install "lm-eval[hf]"'
TASKS_DIR = Path(__file__).with_name("lm_eval_tasks")  # persona_vaccine_mc: the built-in items
BUILTIN = ("mc", "heldout_loss")
_NOT_METRICS = {"sample_len", "alias", "samples"}  # lm-eval's counts and names beside the metrics
_PRIMARY_METRICS = (
    "acc_norm,none",
    "acc,none",
    "exact_match,strict-match",
    "exact_match,flexible-extract",
    "exact_match,none",
    "f1,none",
)


def lm_eval_tasks(benchmarks: Sequence[str]) -> list[str]:
    """The benchmark names that are lm-eval tasks (not our built-in `mc` and `heldout_loss`)."""
    return [b for b in dict.fromkeys(benchmarks) if b not in BUILTIN]


def _import_lm_eval(tasks: Sequence[str]):
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise CapabilityError(
            f"lm-eval task(s) {', '.join(map(repr, tasks))} need lm-evaluation-harness, which is not "
            f"installed ({exc}). Install it with: {_LM_EVAL_INSTALL}, or drop these benchmarks."
        ) from exc
    return lm_eval, TaskManager


def task_manager(tasks: Sequence[str], include_paths: Sequence[str | Path] = ()):
    """An lm-eval TaskManager that knows `tasks`: our task dir and `include_paths` alone when they hold
    them all (fast), else lm-eval's own tasks too. Raises CapabilityError naming unknown tasks."""
    _, TaskManager = _import_lm_eval(tasks)
    paths = [str(TASKS_DIR), *map(str, include_paths)]
    for path in include_paths:
        if not Path(path).is_dir():
            raise CapabilityError(f"lm_eval_include_path: {path} is not a directory of lm-eval task YAMLs")
    manager = TaskManager(include_path=paths, include_defaults=False)
    if all(t in manager.all_tasks for t in tasks):
        return manager
    manager = TaskManager(include_path=paths)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        import difflib

        hints = []
        for task in unknown:
            close = difflib.get_close_matches(task, manager.all_tasks, n=1)
            hints.append(f"'{task}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise CapabilityError(
            f"capability_benchmarks: unknown lm-eval task {', '.join(hints)}: use 'mc', 'heldout_loss', a "
            "name from `lm-eval ls tasks`, or a task of your own YAML directory given in lm_eval_include_path"
        )
    return manager


def check_lm_eval_tasks(tasks: Sequence[str], include_paths: Sequence[str | Path] = ()) -> None:
    """Before training: every task is known and its data loads (no network needed for cached or local
    data). Raises CapabilityError naming the task and the fix."""
    if not tasks:
        return
    manager = task_manager(tasks, include_paths)
    for task in tasks:
        try:
            manager.load([task])
        except Exception as exc:
            raise CapabilityError(
                f"capability_benchmarks: lm-eval task {task!r} can't load its data ({type(exc).__name__}: "
                f"{exc}). Its data comes from the Hugging Face Hub: allow network access, or download it once "
                "and set HF_DATASETS_OFFLINE=1 to use the cache, or drop the task."
            ) from exc


def primary_metric(results: dict, task: str) -> float:
    """The main figure of `task` in lm-eval's results (acc_norm, then acc, exact_match, f1, ...)."""
    metrics = (results or {}).get("results", {}).get(task)
    if not metrics:
        raise CapabilityError(f"lm-eval task {task!r} returned no results")
    for key in _PRIMARY_METRICS:
        if isinstance(metrics.get(key), (int, float)):
            return float(metrics[key])
    for key, value in metrics.items():
        if "stderr" not in key and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    raise CapabilityError(f"lm-eval task {task!r} has no numeric metric: {sorted(metrics)}")


def _task_figures(results: dict, task: str) -> dict[str, float]:
    """`capability/<task>` (the main figure) and `capability/<task>/<metric>` for each numeric metric."""
    figures = {f"capability/{task}": primary_metric(results, task)}
    for key, value in results["results"][task].items():
        if key.split(",")[0] in _NOT_METRICS or "stderr" in key:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            figures[f"capability/{task}/{key.split(',')[0]}"] = float(value)
    return figures


def lm_eval_scores(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    tasks: list[str],
    limit: int | None = None,
    batch_size: int = 8,
    include_paths: Sequence[str | Path] = (),
    errors: dict[str, str] | None = None,
) -> dict[str, float]:
    """lm-evaluation-harness tasks (zero-shot) on the in-memory model through lm-eval's HFLM:
    {"capability/<task>": main metric, "capability/<task>/<metric>": each metric}.

    `limit` caps the items per task. Tasks are looked up by name in lm-eval, our `lm_eval_tasks/` and
    `include_paths`. A task that fails raises CapabilityError, or, with `errors` given, is recorded there
    ({task: message}) and the other tasks still run.
    """
    if not tasks:
        return {}
    lm_eval, _ = _import_lm_eval(tasks)
    from lm_eval.models.huggingface import HFLM

    manager = task_manager(tasks, include_paths)
    figures: dict[str, float] = {}
    with eval_mode(model):  # lm-eval runs the model in eval mode; training mode comes back after
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        for i, task in enumerate(tasks, 1):
            logger.info("lm-eval: task %s (%d of %d)", task, i, len(tasks))
            try:
                results = lm_eval.simple_evaluate(
                    model=lm, tasks=[task], limit=limit, task_manager=manager, log_samples=False,
                    bootstrap_iters=0,
                )  # fmt: skip
                figures.update(_task_figures(results, task))
            except Exception as exc:
                message = (
                    f"lm-eval task {task!r} could not run ({type(exc).__name__}: {exc}). Check the task "
                    "name (`lm-eval ls tasks`); hub data needs network access or HF_DATASETS_OFFLINE=1 "
                    "with a cache."
                )
                if errors is None:
                    raise CapabilityError(message) from exc
                logger.error(message)
                errors[task] = message
    return figures
