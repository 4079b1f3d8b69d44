"""Run one training job from parsed recipe configs and write OUTPUT_DIR/summary.json (a RunSummary)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, set_seed
from trl import ModelConfig, get_peft_config

from persona_vaccine.lock import output_lock
from persona_vaccine.models.layers import get_decoder_layers, set_layers_path
from persona_vaccine.models.loading import load_tokenizer, pretrained, resolve_model_path

from .capability import check_lm_eval_tasks, lm_eval_tasks
from .config import DataArguments, PreventativeSFTConfig
from .drift_alerts import DriftAlertCallback
from .evaluation import evaluate_after_training
from .guards import NonFiniteGuard
from .metrics_file import JsonlMetricsCallback
from .resume import (
    RunClockCallback,
    check_resume,
    checkpoint_step,
    resolve_checkpoint,
    start_clean,
    truncate_metrics,
    whole_run_mean_loss,
)
from .run_files import copy_vectors, remove_if_empty, resolved_recipe, write_run_config
from .sizing import judged_questions
from .summary import SUMMARY_FILE, RunSummary
from .tracking import finish_wandb_run, log_run_extras, use_run_wandb_callback
from .train_data import build_datasets, clean_heldout_rows, screen_training_set
from .trainer import PreventativeSFTTrainer


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


def run_training(
    model_args: ModelConfig,
    data_args: DataArguments,
    args: PreventativeSFTConfig,
    recipe: str | None = None,
    overrides: list[str] | None = None,
) -> RunSummary:
    """Train, save the (unsteered) weights or adapter, and return the run summary.

    OUTPUT_DIR is locked for the run (a second run into it stops with the holder's pid and host).
    `overrides` (the command line's `--field value ...`) only go into the resolved OUTPUT_DIR/config.yaml.
    Each call is its own W&B run (OUTPUT_DIR/wandb), finished when it returns; a resumed run continues
    the W&B run of OUTPUT_DIR (its id is in OUTPUT_DIR/wandb_run_id).
    """
    check_resume(args)
    main = int(os.environ.get("RANK", "0")) == 0
    output_dir = Path(args.output_dir)
    new_dir = not output_dir.exists()
    try:
        with output_lock(args.output_dir, "train", enabled=main):
            return _run_training(model_args, data_args, args, recipe, overrides, main)
    except BaseException:
        if main and new_dir:
            remove_if_empty(output_dir)  # a run that failed its checks leaves no empty OUTPUT_DIR behind
        raise


def _run_training(
    model_args: ModelConfig,
    data_args: DataArguments,
    args: PreventativeSFTConfig,
    recipe: str | None,
    overrides: list[str] | None,
    main: bool,
) -> RunSummary:
    set_seed(args.seed)
    output_dir = Path(args.output_dir)
    checkpoint = resolve_checkpoint(output_dir, args.resume_from_checkpoint)
    clock = RunClockCallback(checkpoint)  # the run's wall time starts here, setup included
    if main and not args.resume_from_checkpoint:
        start_clean(output_dir)
    if args.run_name is None and recipe:
        args.run_name = Path(recipe).stem
    check_lm_eval_tasks(lm_eval_tasks(args.capability_benchmarks), args.lm_eval_include_path)
    resolved = resolved_recipe((model_args, data_args, args), recipe, overrides)
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
    drift_alerts = DriftAlertCallback(args.drift_alert_above, args.drift_stop_above, args.drift_alert_webhook)
    trainer = PreventativeSFTTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=[
            clock,  # first: it turns the trainer's end-of-training figures into the whole run's
            NonFiniteGuard(args.output_dir),
            JsonlMetricsCallback(args.output_dir),
            drift_alerts,
        ],
        model_id=model_id,
        margin_dataset=(data_args.dataset, data_args.dataset_seed),
    )
    clock.restore_counters(trainer.drift_cost)  # drift/measurements... continue across resumes
    if args.process_index == 0:  # the checks have passed: the run directory gets its recipe
        write_run_config(output_dir, resolved, recipe, overrides)
    use_run_wandb_callback(trainer, model_id, data_args, recipe, resolved, resume=bool(checkpoint))
    if "heldout_loss" in args.capability_benchmarks:
        trainer.capability_heldout = clean_heldout_rows(data_args)
    if args.resume_from_checkpoint and trainer.is_world_process_zero():
        truncate_metrics(output_dir, args.resume_from_checkpoint)
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    start_step = checkpoint_step(checkpoint)
    mean_loss = whole_run_mean_loss(
        trainer.state.log_history, result.training_loss, start_step, trainer.state.global_step
    )
    trainer.save_model(args.output_dir)
    post = evaluate_after_training(trainer, args, model_id)
    if post.ran:
        trainer.log(post.metrics())
        if trainer.is_world_process_zero():
            log_run_extras(args.output_dir, post.samples)  # W&B: the answers and their scores, the drift plot
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    if not losses and trainer.state.global_step > 0:  # nothing logged (logging_strategy: no)
        losses = [mean_loss]
    summary = RunSummary(
        recipe=recipe,
        model=model_id,
        cwd=str(Path.cwd()),  # relative paths below are relative to it (export finds them from anywhere)
        config="config.yaml",  # the resolved recipe, in this run directory
        train={
            "steps": trainer.state.global_step,
            "final_loss": losses[-1] if losses else result.training_loss,
            "mean_loss": mean_loss,
            "runtime_s": round(clock.elapsed(), 2),  # the whole run, across resumes
            "resumed_from_step": start_step,
            "examples": len(train_dataset),
            "world_size": trainer.accelerator.num_processes,
            "engine": type(trainer.model_wrapped).__name__,
            "num_layers": len(get_decoder_layers(trainer.model_wrapped)),  # found through the engine
        },
        trait_drift=trainer.drift.records(trainer.final_drift) if trainer.drift else {},
        behaviour=trainer.margin.summary(trainer.final_margin) if trainer.margin else None,
        steering=trainer.steering_summary(),
        steering_auto=trainer.coef_controller.coefs() if trainer.coef_controller else None,
        persona_vectors=list(args.persona_vectors),
        persona_vector_copies=copy_vectors(output_dir, list(args.persona_vectors))
        if trainer.is_world_process_zero()
        else [],
        inference_steering_coef=args.inference_steering_coef,
        evaluation={
            "capability_benchmarks": list(args.capability_benchmarks),
            "capability_mc_limit": args.capability_mc_limit,
            "judge_after_training": args.judge_after_training,
            "judge_answer_prefix": args.judge_answer_prefix,
            "judge_questions": judged_questions(args, trainer.state),
        },
        dataset={
            "source": data_args.dataset,
            "level": data_args.dataset_level,
            "size": len(train_dataset),
            "builder_size": data_args.dataset_size,
            "seed": data_args.dataset_seed,
        },
        losses=losses,
        **post.fields,
        drift_alerts=drift_alerts.summary() if drift_alerts.enabled else None,
        screening={k: v for k, v in screening.items() if k != "dropped_indices"}
        if screening is not None
        else None,
    )
    if trainer.is_world_process_zero():
        summary.write(output_dir / SUMMARY_FILE)
    finish_wandb_run()
    return summary
