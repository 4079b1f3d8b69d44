"""Run one training job from parsed recipe configs and write OUTPUT_DIR/summary.json."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, set_seed
from trl import ModelConfig, get_peft_config

from data.loading import load_training_dataset
from steering.chat import prepare_messages
from steering.errors import InvalidInput
from steering.layers import get_decoder_layers, set_layers_path
from steering.lock import output_lock
from steering.models import load_tokenizer, pretrained, resolve_model_path

from .config import DataArguments, PreventativeSFTConfig
from .drift_alerts import DriftAlertCallback
from .guards import NonFiniteGuard
from .precheck import resolve_resume
from .tracking import (
    JsonlMetricsCallback,
    RunClockCallback,
    clock_offset,
    read_metrics,
    whole_run_mean_loss,
)
from .trainer import PreventativeSFTTrainer

logger = logging.getLogger(__name__)


def screen_training_set(dataset, model, tokenizer, data_args: DataArguments, output_dir: Path, model_id: str):
    """The recipe's screening stage: drop risky samples before training; returns (dataset, log)."""
    from data.screening import DropRule, ScreenConfig, apply_drop_rule, screen_dataset

    out = Path(data_args.screen_output_dir or output_dir / "screening")
    cfg = ScreenConfig(
        dataset=data_args.dataset,
        dataset_level=data_args.dataset_level,
        dataset_size=len(dataset),
        dataset_seed=data_args.dataset_seed,
        vectors=list(data_args.screen_vectors),
        model_name_or_path=model_id,
        method=data_args.screen_method,
        max_new_tokens=data_args.screen_max_new_tokens,
        output_dir=str(out),
    )
    rows = [{"prompt": ex["prompt"], "completion": ex["completion"]} for ex in dataset]
    _, screened = screen_dataset(cfg, model, tokenizer, rows)
    trait = next(iter(screened[0]["scores"]))
    rule = DropRule(trait, cfg.score, data_args.screen_drop_above, data_args.screen_drop_top_pct)
    dropped, log = apply_drop_rule(screened, rule)
    with (out / "dropped.jsonl").open("w") as f:
        for row in screened:
            if row["index"] in dropped:
                f.write(json.dumps(row) + "\n")
    log["report"] = str(out / "report.html")
    logger.info("screening dropped %d of %d samples (%s)", log["dropped"], log["screened"], log["rule"])
    keep = [i for i in range(len(dataset)) if i not in dropped]
    if not keep:
        raise InvalidInput(
            f"screening dropped every sample ({log['rule']}); raise screen_drop_above or lower the top %"
        )
    return dataset.select(keep), log


def build_datasets(data_args: DataArguments, tokenizer, seed: int, screen=None):
    dataset = load_training_dataset(
        data_args.dataset,
        data_args.dataset_split,
        data_args.dataset_level,
        data_args.dataset_size,
        data_args.dataset_seed,
        data_args.max_train_samples,
    )
    screening = None
    if screen is not None:
        dataset, screening = screen(dataset)
    # Templates without a system role get it folded into the first user turn; thinking is switched off.
    dataset = dataset.map(
        lambda ex: {
            "prompt": prepare_messages(tokenizer, ex["prompt"]),
            "chat_template_kwargs": {"enable_thinking": False},
        }
    )
    if data_args.eval_fraction > 0:
        split = dataset.train_test_split(test_size=data_args.eval_fraction, seed=seed)
        return split["train"], split["test"], screening
    return dataset, None, screening


def load_base_model(model_args: ModelConfig, trust_remote_code: bool = False):
    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    return pretrained(
        AutoModelForCausalLM,
        resolve_model_path(model_args.model_name_or_path),
        model_args.model_name_or_path,
        dtype=dtype,
        revision=model_args.model_revision,
        attn_implementation=model_args.attn_implementation,
        trust_remote_code=trust_remote_code,
    )


def clean_heldout_rows(data_args: DataArguments, n: int = 48) -> list[dict] | None:
    """Held-out clean data for `capability/heldout_loss`: a builder's normal level with another seed."""
    if not data_args.dataset.startswith("builtin:"):
        return None
    from data.loading import build_dataset, to_prompt_completion

    name = data_args.dataset.split(":", 1)[1]
    rows = build_dataset(name, n, seed=data_args.dataset_seed + 1000, level="normal")
    return [to_prompt_completion(r) for r in rows]


def evaluate_after_training(
    trainer, args: PreventativeSFTConfig, model_id: str, data_args: DataArguments
) -> dict:
    """Capability benchmarks and judged trait expression of the fine-tuned model, unsteered and (with
    `inference_steering_coef`) with the first vector added at inference."""
    import contextlib

    from transformers.integrations import is_deepspeed_zero3_enabled

    from steering.hooks import steer

    from .tracking import reports_to_wandb

    wants_judge = args.judge_after_training != "none" and trainer.vectors
    wants_samples = bool(trainer.vectors) and reports_to_wandb(args)  # answers only, without a judge
    if not (args.capability_benchmarks or wants_judge or wants_samples):
        return {}
    if is_deepspeed_zero3_enabled() and trainer.accelerator.num_processes > 1:
        logger.warning(
            "post-training evaluation is skipped under multi-process ZeRO-3: export the run, evaluate it"
        )
        return {"post_training_eval": "skipped under multi-process ZeRO-3 (export the run and evaluate it)"}
    from .capability import capability_metrics

    model, tokenizer = trainer.model, trainer.processing_class
    heldout = trainer.capability_heldout
    judge = None
    if wants_judge:
        from steering.judge import make_judge

        name = model_id if args.judge_after_training == "base" else args.judge_after_training
        judge = make_judge(name, answer_prefix=args.judge_answer_prefix, min_mass=args.judge_min_mass)
    variants: list[tuple[str, float | None]] = [("", None)]
    if args.inference_steering_coef and trainer.vectors:
        variants.append(("_inference_steered", args.inference_steering_coef))
    out: dict = {}
    errors: dict[str, str] = {}
    samples: dict[str, dict] = {}
    first, first_layer = (trainer.vectors[0], trainer.layers[0]) if trainer.vectors else (None, None)
    progress = post_training_progress(args, len(variants), len(trainer.vectors), wants_judge or wants_samples)
    for suffix, coef in variants:
        context = steer(model, first, layer=first_layer, coef=coef) if coef else contextlib.nullcontext()
        with context:
            if args.capability_benchmarks:
                progress.set_postfix_str(f"capability{suffix}")
                caps = capability_metrics(
                    model, tokenizer, list(args.capability_benchmarks), heldout, args.capability_mc_limit,
                    lm_eval_limit=args.lm_eval_limit, lm_eval_include_paths=args.lm_eval_include_path,
                    errors=errors,
                )  # fmt: skip
                out[f"capability{suffix}"] = caps
                progress.update()
        if judge is not None or wants_samples:
            from .trait_eval import judged_expression

            scores = {}
            for vector in trainer.vectors:
                progress.set_postfix_str(f"answers{suffix} {vector.trait}")
                result = judged_expression(
                    model, tokenizer, vector, judge, args.judge_questions, args.judge_max_new_tokens,
                    steer_coef=coef, steer_layer=first_layer, steer_vector=first,
                    cache_path=Path(args.output_dir) / "judgments.sqlite",
                )  # fmt: skip
                progress.update()
                samples[f"{suffix.lstrip('_') or 'unsteered'}:{vector.trait}"] = result
                if judge is None:
                    continue
                scores[vector.trait] = result["trait"]
                scores[f"{vector.trait}_coherence"] = result["coherence"]
                if trainer.is_world_process_zero():
                    path = Path(args.output_dir) / f"samples{suffix}_{vector.trait}.json"
                    path.write_text(json.dumps(result, indent=2))
            if judge is not None:
                out[f"trait_expression{suffix}"] = scores
    progress.close()
    flat = {}
    for key, values in out.items():
        for name, value in values.items():
            if value is not None:
                name = (
                    name.replace("capability/", f"{key}/")
                    if key.startswith("capability")
                    else f"{key}/{name}"
                )
                flat[f"post_training/{name}"] = value
    trainer.log(flat)
    if trainer.is_world_process_zero():
        from .tracking import log_run_extras

        log_run_extras(
            args.output_dir, samples
        )  # W&B: a table of the answers and their scores, the drift plot
    if errors:
        out["capability_errors"] = errors
    return out


def post_training_progress(args: PreventativeSFTConfig, n_variants: int, n_vectors: int, answers: bool):
    """A progress bar over the evaluation after training (capability, then answers per vector)."""
    from tqdm.auto import tqdm

    total = n_variants * (bool(args.capability_benchmarks) + (n_vectors if answers else 0))
    return tqdm(total=total, desc="evaluation after training", disable=args.disable_tqdm or not total)


def _resolve_checkpoint(output_dir: Path, checkpoint: str | bool | None) -> str | None:
    """The checkpoint directory a resume starts from (`True`: the latest in OUTPUT_DIR)."""
    if checkpoint is True or checkpoint == "true":
        from transformers.trainer_utils import get_last_checkpoint

        return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    return str(checkpoint) if checkpoint else None


def _checkpoint_step(checkpoint: str | None) -> int:
    state = Path(str(checkpoint)) / "trainer_state.json"
    return json.loads(state.read_text())["global_step"] if checkpoint and state.is_file() else 0


def _start_clean(output_dir: Path) -> None:
    """A run without resume into a used directory: its metrics start over (no second copy of the steps)."""
    metrics = output_dir / "metrics.jsonl"
    if metrics.is_file():
        logger.warning("%s: not resuming, so the %d metrics rows of an earlier run are removed", output_dir,
                       len(read_metrics(output_dir)))  # fmt: skip
        metrics.unlink()


def _truncate_metrics(output_dir: Path, checkpoint: str | bool) -> None:
    """On resume, drop metrics.jsonl rows logged after the checkpoint (they are logged again)."""
    checkpoint = _resolve_checkpoint(output_dir, checkpoint)
    state = Path(str(checkpoint)) / "trainer_state.json"
    metrics = output_dir / "metrics.jsonl"
    if not (checkpoint and state.is_file() and metrics.is_file()):
        return
    step = json.loads(state.read_text())["global_step"]
    kept = [row for row in read_metrics(output_dir) if row.get("step", 0) <= step]  # torn lines go too
    metrics.write_text("".join(json.dumps(row) + "\n" for row in kept))


def check_resume(args: PreventativeSFTConfig) -> None:
    """Resolve --resume_from_checkpoint (true: the last checkpoint) before a model is loaded."""
    args.resume_from_checkpoint = resolve_resume(args.resume_from_checkpoint, args.output_dir)


def run_training(
    model_args: ModelConfig,
    data_args: DataArguments,
    args: PreventativeSFTConfig,
    recipe: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Train, save the (unsteered) weights or adapter, and return the run summary.

    OUTPUT_DIR is locked for the run (a second run into it stops with the holder's pid and host).
    `overrides` (the command line's `--field value ...`) only go into the resolved OUTPUT_DIR/config.yaml.
    Each call is its own W&B run (OUTPUT_DIR/wandb), finished when it returns; a resumed run continues
    the W&B run of OUTPUT_DIR (its id is in OUTPUT_DIR/wandb_run_id).
    """
    check_resume(args)
    main = int(os.environ.get("RANK", "0")) == 0
    with output_lock(args.output_dir, "train", enabled=main):
        return _run_training(model_args, data_args, args, recipe, overrides, main)


def _run_training(
    model_args: ModelConfig,
    data_args: DataArguments,
    args: PreventativeSFTConfig,
    recipe: str | None,
    overrides: list[str] | None,
    main: bool,
) -> dict:
    from .capability import check_lm_eval_tasks, lm_eval_tasks
    from .run_files import copy_vectors, resolved_recipe, write_run_config
    from .tracking import finish_wandb_run, use_run_wandb_callback

    set_seed(args.seed)
    output_dir = Path(args.output_dir)
    checkpoint = _resolve_checkpoint(output_dir, args.resume_from_checkpoint)
    if main and not args.resume_from_checkpoint:
        _start_clean(output_dir)
    if args.run_name is None and recipe:
        args.run_name = Path(recipe).stem
    check_lm_eval_tasks(lm_eval_tasks(args.capability_benchmarks), args.lm_eval_include_path)
    resolved = resolved_recipe((model_args, data_args, args), recipe, overrides)
    if args.process_index == 0:
        write_run_config(output_dir, resolved, recipe, overrides)
    model_id = model_args.model_name_or_path
    tokenizer = load_tokenizer(model_id, trust_remote_code=args.trust_remote_code)
    model = load_base_model(model_args, args.trust_remote_code)
    set_layers_path(model, args.layers_path)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    screen = None
    if data_args.screen_vectors:

        def screen(dataset):
            return screen_training_set(dataset, model, tokenizer, data_args, output_dir, model_id)

    train_dataset, eval_dataset, screening = build_datasets(data_args, tokenizer, args.seed, screen)
    clock = RunClockCallback(clock_offset(checkpoint))
    drift_alerts = DriftAlertCallback(args.drift_alert_above, args.drift_stop_above, args.drift_alert_webhook)
    trainer = PreventativeSFTTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=[
            NonFiniteGuard(args.output_dir),
            JsonlMetricsCallback(args.output_dir),
            clock,
            drift_alerts,
        ],
        model_id=model_id,
        margin_dataset=(data_args.dataset, data_args.dataset_seed),
    )
    use_run_wandb_callback(trainer, model_id, data_args, recipe, resolved, resume=bool(checkpoint))
    if "heldout_loss" in args.capability_benchmarks:
        trainer.capability_heldout = clean_heldout_rows(data_args)
    if args.resume_from_checkpoint and trainer.is_world_process_zero():
        _truncate_metrics(output_dir, args.resume_from_checkpoint)
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    runtime = clock.elapsed()  # the whole run's training time, across resumes
    start_step = _checkpoint_step(checkpoint)
    mean_loss = whole_run_mean_loss(
        trainer.state.log_history, result.training_loss, start_step, trainer.state.global_step
    )
    trainer.save_model(args.output_dir)
    post = evaluate_after_training(trainer, args, model_id, data_args)
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    summary = {
        "recipe": recipe,
        "model": model_id,
        "cwd": str(Path.cwd()),  # relative paths below are relative to it (export finds them from anywhere)
        "config": "config.yaml",  # the resolved recipe, in this run directory
        "train": {
            "steps": trainer.state.global_step,
            "final_loss": losses[-1] if losses else result.training_loss,
            "mean_loss": mean_loss,
            "runtime_s": round(runtime, 2),
            "resumed_from_step": start_step,
            "examples": len(train_dataset),
            "world_size": trainer.accelerator.num_processes,
            "engine": type(trainer.model_wrapped).__name__,
            "num_layers": len(get_decoder_layers(trainer.model_wrapped)),  # found through the engine
        },
        "trait_drift": {
            probe.name: {
                "layer": probe.layer,
                "base_projection": trainer.drift.base.get(probe.name),
                "final_projection": trainer.final_drift.get(f"drift/{probe.name}/projection"),
                "shift": trainer.final_drift.get(f"drift/{probe.name}/shift"),
            }
            for probe in (trainer.drift.probes if trainer.drift else [])
        },
        "behaviour": trainer.margin.summary(trainer.final_margin) if trainer.margin else {},
        "steering": trainer.steering_summary(),
        "steering_auto": trainer.coef_controller.coefs() if trainer.coef_controller else None,
        "persona_vectors": list(args.persona_vectors),
        "persona_vector_copies": copy_vectors(output_dir, list(args.persona_vectors))
        if trainer.is_world_process_zero()
        else [],
        "inference_steering_coef": args.inference_steering_coef,
        "evaluation": {
            "capability_benchmarks": list(args.capability_benchmarks),
            "capability_mc_limit": args.capability_mc_limit,
            "judge_after_training": args.judge_after_training,
            "judge_answer_prefix": args.judge_answer_prefix,
            "judge_questions": args.judge_questions,
        },
        "dataset": {
            "source": data_args.dataset,
            "level": data_args.dataset_level,
            "size": len(train_dataset),
            "builder_size": data_args.dataset_size,
            "seed": data_args.dataset_seed,
        },
        "losses": losses,
    }
    summary.update(post)
    if drift_alerts.enabled:
        summary["drift_alerts"] = drift_alerts.summary()
    if screening is not None:
        summary["screening"] = {k: v for k, v in screening.items() if k != "dropped_indices"}
    if trainer.is_world_process_zero():
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    finish_wandb_run()
    return summary
