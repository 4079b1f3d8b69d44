"""Run one training job from parsed recipe configs and write OUTPUT_DIR/summary.json."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, set_seed
from trl import ModelConfig, get_peft_config

from data.loading import load_training_dataset
from steering.chat import prepare_messages
from steering.layers import get_decoder_layers
from steering.models import load_tokenizer, resolve_model_path

from .config import DataArguments, PreventativeSFTConfig
from .drift_alerts import DriftAlertCallback
from .tracking import JsonlMetricsCallback, configure_wandb, read_metrics
from .trainer import PreventativeSFTTrainer

logger = logging.getLogger(__name__)


def _reports_to_wandb(args: PreventativeSFTConfig) -> bool:
    report = args.report_to if isinstance(args.report_to, list) else [args.report_to]
    return "wandb" in report or "all" in report


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
        raise ValueError(
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
    return AutoModelForCausalLM.from_pretrained(
        resolve_model_path(model_args.model_name_or_path),
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

    wants_judge = args.judge_after_training != "none" and trainer.vectors
    if not (args.capability_benchmarks or wants_judge):
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
    samples: dict[str, dict] = {}
    first, first_layer = (trainer.vectors[0], trainer.layers[0]) if trainer.vectors else (None, None)
    for suffix, coef in variants:
        context = steer(model, first, layer=first_layer, coef=coef) if coef else contextlib.nullcontext()
        with context:
            if args.capability_benchmarks:
                caps = capability_metrics(
                    model, tokenizer, list(args.capability_benchmarks), heldout, args.capability_mc_limit
                )
                out[f"capability{suffix}"] = caps
        if judge is not None:
            from .trait_eval import judged_expression

            scores = {}
            for vector in trainer.vectors:
                result = judged_expression(
                    model, tokenizer, vector, judge, args.judge_questions, args.judge_max_new_tokens,
                    steer_coef=coef, steer_layer=first_layer, steer_vector=first,
                    cache_path=Path(args.output_dir) / "judgments.sqlite",
                )  # fmt: skip
                scores[vector.trait] = result["trait"]
                scores[f"{vector.trait}_coherence"] = result["coherence"]
                samples[f"{suffix.lstrip('_') or 'unsteered'}:{vector.trait}"] = result
                if trainer.is_world_process_zero():
                    path = Path(args.output_dir) / f"samples{suffix}_{vector.trait}.json"
                    path.write_text(json.dumps(result, indent=2))
            out[f"trait_expression{suffix}"] = scores
    flat = {}
    for key, values in out.items():
        for name, value in values.items():
            if value is not None:
                flat[
                    name.replace("capability/", f"{key}/")
                    if key.startswith("capability")
                    else f"{key}/{name}"
                ] = value
    trainer.log(flat)
    if trainer.is_world_process_zero() and samples:
        from .tracking import log_run_extras

        log_run_extras(args.output_dir, samples)  # W&B: a table of the judged answers, the drift plot
    return out


def _truncate_metrics(output_dir: Path, checkpoint: str | bool) -> None:
    """On resume, drop metrics.jsonl rows logged after the checkpoint (they are logged again)."""
    if checkpoint is True:
        from transformers.trainer_utils import get_last_checkpoint

        checkpoint = get_last_checkpoint(str(output_dir))
    state = Path(str(checkpoint)) / "trainer_state.json"
    metrics = output_dir / "metrics.jsonl"
    if not (checkpoint and state.is_file() and metrics.is_file()):
        return
    step = json.loads(state.read_text())["global_step"]
    kept = [row for row in read_metrics(output_dir) if row.get("step", 0) <= step]  # torn lines go too
    metrics.write_text("".join(json.dumps(row) + "\n" for row in kept))


def run_training(
    model_args: ModelConfig, data_args: DataArguments, args: PreventativeSFTConfig, recipe: str | None = None
) -> dict:
    """Train, save the (unsteered) weights or adapter, and return the run summary."""
    set_seed(args.seed)
    output_dir = Path(args.output_dir)
    if _reports_to_wandb(args):
        family = str(Path(recipe).parent) if recipe else None
        configure_wandb(args.output_dir, group=family)
    if args.run_name is None and recipe:
        args.run_name = Path(recipe).stem
    model_id = model_args.model_name_or_path
    tokenizer = load_tokenizer(model_id, trust_remote_code=args.trust_remote_code)
    model = load_base_model(model_args, args.trust_remote_code)
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
        callbacks=[JsonlMetricsCallback(args.output_dir), drift_alerts],
        model_id=model_id,
    )
    if "heldout_loss" in args.capability_benchmarks:
        trainer.capability_heldout = clean_heldout_rows(data_args)
    if args.resume_from_checkpoint and trainer.is_world_process_zero():
        _truncate_metrics(output_dir, args.resume_from_checkpoint)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    runtime = time.perf_counter() - start
    trainer.save_model(args.output_dir)
    post = evaluate_after_training(trainer, args, model_id, data_args)
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    summary = {
        "recipe": recipe,
        "model": model_id,
        "train": {
            "steps": trainer.state.global_step,
            "final_loss": losses[-1] if losses else result.training_loss,
            "mean_loss": result.training_loss,
            "runtime_s": round(runtime, 2),
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
        "steering": trainer.steering_summary(),
        "persona_vectors": list(args.persona_vectors),
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
    return summary
