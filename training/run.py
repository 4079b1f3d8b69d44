"""Run one training job from parsed recipe configs and write OUTPUT_DIR/summary.json (a RunSummary)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase, set_seed
from trl import ModelConfig, get_peft_config

from persona_vaccine.errors import InvalidInput
from persona_vaccine.lock import output_lock
from persona_vaccine.models.layers import get_decoder_layers, set_layers_path
from persona_vaccine.models.loading import load_tokenizer, pretrained, resolve_model_path

from .capability import check_lm_eval_tasks, lm_eval_tasks
from .config import DataArguments, PreventativeSFTConfig
from .evaluation import AfterTraining, evaluate_after_training
from .guards import NonFiniteGuard
from .metrics_file import JsonlMetricsCallback
from .resume import (
    RunClockCallback,
    check_resume,
    checkpoint_step,
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


def model_id_of(model_args: ModelConfig) -> str:
    """The recipe's `model_name_or_path` (a recipe without one is refused)."""
    if not model_args.model_name_or_path:
        raise InvalidInput("model_name_or_path is not set: name the base model in the recipe")
    return model_args.model_name_or_path


def load_base_model(model_args: ModelConfig, trust_remote_code: bool = False) -> PreTrainedModel:
    """The recipe's base model, with ModelConfig's `dtype`, `model_revision` and `attn_implementation`."""
    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    model_id = model_id_of(model_args)
    return pretrained(
        AutoModelForCausalLM,
        resolve_model_path(model_id),
        model_id,
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
    output_dir = Path(str(args.output_dir))  # TrainingArguments sets a default: never None once built
    new_dir = not output_dir.exists()
    try:
        with output_lock(output_dir, "train", enabled=main):
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
    out = str(args.output_dir)
    output_dir = Path(out)
    checkpoint = args.resume_from_checkpoint  # resolved by check_resume: a folder, or None
    clock = RunClockCallback(checkpoint)  # the run's wall time starts here, setup included
    if main and not checkpoint:
        start_clean(output_dir)
    if args.run_name is None and recipe:
        args.run_name = Path(recipe).stem
    check_lm_eval_tasks(lm_eval_tasks(args.capability_benchmarks), args.lm_eval_include_path)
    resolved = resolved_recipe((model_args, data_args, args), recipe, overrides)
    inputs = load_inputs(model_args, data_args, args)
    trainer = PreventativeSFTTrainer(
        model=inputs.model,
        args=args,
        train_dataset=inputs.train_dataset,
        eval_dataset=inputs.eval_dataset,
        processing_class=inputs.tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=[
            clock,  # first: it turns the trainer's end-of-training figures into the whole run's
            NonFiniteGuard(out),
            JsonlMetricsCallback(out),
        ],
        model_id=inputs.model_id,
        margin_dataset=(data_args.dataset, data_args.dataset_seed),
        capability_heldout=inputs.heldout,
    )
    if args.process_index == 0:  # the checks have passed: the run directory gets its recipe
        write_run_config(output_dir, resolved, recipe, overrides)
    use_run_wandb_callback(trainer, inputs.model_id, data_args, recipe, resolved, resume=bool(checkpoint))
    if checkpoint and trainer.is_world_process_zero():
        truncate_metrics(output_dir, checkpoint)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(out)
    post = evaluate_after_training(trainer, args, inputs.model_id, inputs.heldout)
    if post.ran:
        trainer.log(post.metrics())
        if trainer.is_world_process_zero():
            log_run_extras(out, post.samples)  # W&B: the answers and their scores, the drift plot
    ended = TrainingEnd(result.training_loss, checkpoint_step(checkpoint), round(clock.elapsed(), 2))
    summary = run_summary(trainer, inputs, data_args, recipe, ended, post)
    if trainer.is_world_process_zero():
        summary.write(output_dir / SUMMARY_FILE)
    finish_wandb_run()
    return summary


@dataclass
class RunInputs:
    """What a run trains: the model and its tokenizer, the datasets and the clean held-out rows."""

    model_id: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    train_dataset: Dataset
    eval_dataset: Dataset | None
    screening: dict[str, Any] | None  # the screening log (screen_vectors), None without screening
    heldout: list[dict] | None  # clean rows for capability/heldout_loss (when a benchmark asks for them)


def load_inputs(model_args: ModelConfig, data_args: DataArguments, args: PreventativeSFTConfig) -> RunInputs:
    """Load the base model and tokenizer, and build (and screen) the run's datasets."""
    model_id = model_id_of(model_args)
    tokenizer = load_tokenizer(model_id, trust_remote_code=args.trust_remote_code)
    model = load_base_model(model_args, args.trust_remote_code)
    set_layers_path(model, args.layers_path)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    screen = None
    if data_args.screen_vectors:
        output_dir = Path(str(args.output_dir))

        def screen(dataset):
            return screen_training_set(dataset, model, tokenizer, data_args, output_dir, model_id)

    train_dataset, eval_dataset, screening = build_datasets(data_args, tokenizer, args.seed, screen)
    heldout = clean_heldout_rows(data_args) if "heldout_loss" in args.capability_benchmarks else None
    return RunInputs(model_id, model, tokenizer, train_dataset, eval_dataset, screening, heldout)


@dataclass
class TrainingEnd:
    """How training ended, as the summary needs it."""

    training_loss: float  # the trainer's mean loss of the steps this process trained
    start_step: int  # the step a resumed run started from (0: a fresh run)
    runtime_s: float  # the whole run's wall time, across resumes


def run_summary(
    trainer: PreventativeSFTTrainer,
    inputs: RunInputs,
    data_args: DataArguments,
    recipe: str | None,
    ended: TrainingEnd,
    post: AfterTraining,
) -> RunSummary:
    """The run's summary.json: its training, the meters' final figures and the evaluation after training."""
    args, state = trainer.args, trainer.state
    mean_loss = whole_run_mean_loss(
        state.log_history, ended.training_loss, ended.start_step, state.global_step
    )
    losses = [row["loss"] for row in state.log_history if "loss" in row]
    if not losses and state.global_step > 0:  # nothing logged (logging_strategy: no)
        losses = [mean_loss]
    known = {f.name for f in dataclasses.fields(RunSummary)}
    meters = trainer.meter_log.summary_fields()  # trait_drift, behaviour, steering_auto, drift_alerts
    main = trainer.is_world_process_zero()
    return RunSummary(
        recipe=recipe,
        model=inputs.model_id,
        cwd=str(Path.cwd()),  # relative paths below are relative to it (export finds them from anywhere)
        config="config.yaml",  # the resolved recipe, in this run directory
        train={
            "steps": state.global_step,
            "final_loss": losses[-1] if losses else ended.training_loss,
            "mean_loss": mean_loss,
            "runtime_s": ended.runtime_s,
            "resumed_from_step": ended.start_step,
            "examples": len(inputs.train_dataset),
            "world_size": trainer.accelerator.num_processes,
            "engine": type(trainer.model_wrapped).__name__,
            "num_layers": len(get_decoder_layers(trainer.model_wrapped)),  # found through the engine
        },
        steering=trainer.steering_summary(),
        persona_vectors=list(args.persona_vectors),
        persona_vector_copies=copy_vectors(str(args.output_dir), list(args.persona_vectors)) if main else [],
        inference_steering_coef=args.inference_steering_coef,
        evaluation={
            "capability_benchmarks": list(args.capability_benchmarks),
            "capability_mc_limit": args.capability_mc_limit,
            "judge_after_training": args.judge_after_training,
            "judge_answer_prefix": args.judge_answer_prefix,
            "judge_questions": judged_questions(args, state),
        },
        dataset={
            "source": data_args.dataset,
            "level": data_args.dataset_level,
            "size": len(inputs.train_dataset),
            "builder_size": data_args.dataset_size,
            "seed": data_args.dataset_seed,
        },
        losses=losses,
        **post.fields,
        screening={k: v for k, v in inputs.screening.items() if k != "dropped_indices"}
        if inputs.screening is not None
        else None,
        **{k: v for k, v in meters.items() if k in known},
        extra={k: v for k, v in meters.items() if k not in known},
    )
