"""The evaluation after training: capability benchmarks and judged trait expression of the fine-tuned
model (unsteered, and with `inference_steering_coef` also steered at inference), and the same
evaluation of the untouched base model, the reference row of `launch.py compare`."""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persona_vaccine.steering.generation_engines import GenerationEngine, HFGeneration, VllmGeneration
from persona_vaccine.steering.hooks import steer

from .callbacks import DriftCallback, MarginCallback, callback_of
from .capability import capability_metrics
from .config import DataArguments, PreventativeSFTConfig
from .sizing import answer_questions
from .summary import DriftRecord, RunSummary
from .tracking import reports_to_wandb
from .train_data import clean_heldout_rows
from .trait_eval import judged_expression

if TYPE_CHECKING:
    from persona_vaccine.judges.judge import Judge

logger = logging.getLogger(__name__)

ZERO3_SKIPPED = "skipped under multi-process ZeRO-3 (export the run and evaluate it)"


@dataclass
class AfterTraining:
    """What the evaluation after training found."""

    # RunSummary fields: capability[_inference_steered], trait_expression[_inference_steered],
    # capability_errors, or post_training_eval (why it was skipped)
    fields: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, dict] = field(default_factory=dict)  # "variant:trait" -> judged_expression result
    ran: bool = False  # False: nothing was evaluated, so nothing is logged

    def metrics(self) -> dict[str, float]:
        """The figures as `post_training/...` metrics (capability/x -> post_training/capability.../x)."""
        flat = {}
        for key, values in self.fields.items():
            if key.startswith(("behaviour", "trait_drift")):  # {name: {"margin_shift": x, ...}}
                for name, record in values.items():
                    for stat, value in record.items():
                        if stat in ("final_margin", "margin_shift", "shift") and value is not None:
                            flat[f"post_training/{key}/{name}/{stat}"] = value
                continue
            if not key.startswith(("capability", "trait_expression")) or key == "capability_errors":
                continue
            for name, value in values.items():
                if value is not None:
                    name = (
                        name.replace("capability/", f"{key}/")
                        if key.startswith("capability")
                        else f"{key}/{name}"
                    )
                    flat[f"post_training/{name}"] = value
        return flat


def _judged_variant(
    trainer, args, vectors, judge, n_questions: int | None, suffix: str, coef, engine, progress, samples: dict
) -> dict[str, float]:
    """Each vector's answers (judged when there is a judge) for one variant: unsteered or steered."""
    model, tokenizer = trainer.model, trainer.processing_class
    first, first_layer = vectors[0], trainer.steering[0].layer
    scores = {}
    for vector in vectors:
        progress.set_postfix_str(f"answers{suffix} {vector.trait}")
        result = judged_expression(
            model, tokenizer, vector, judge, n_questions, args.judge_max_new_tokens,
            steer_coef=coef, steer_layer=first_layer, steer_vector=first,
            cache_path=Path(str(args.output_dir)) / "judgments.sqlite",
            progress=None if args.disable_tqdm else f"answering{suffix} ({vector.trait})",
            engine=engine,
        )  # fmt: skip
        progress.update()
        samples[f"{suffix.lstrip('_') or 'unsteered'}:{vector.trait}"] = result
        if judge is None:
            continue
        scores[vector.trait] = result["trait"]
        scores[f"{vector.trait}_coherence"] = result["coherence"]
        if trainer.is_world_process_zero():
            path = Path(str(args.output_dir)) / f"samples{suffix}_{vector.trait}.json"
            path.write_text(json.dumps(result, indent=2))
    return scores


def evaluate_after_training(
    trainer, args: PreventativeSFTConfig, model_id: str, heldout: Sequence[dict] | None = None
) -> AfterTraining:
    """Capability benchmarks (`heldout`: the clean rows of `heldout_loss`) and judged trait expression of
    the fine-tuned model, unsteered and (with `inference_steering_coef`) with the first vector added at
    inference. Writes the judged answers to OUTPUT_DIR/samples[_inference_steered]_<trait>.json (main
    process)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    vectors = [s.vector for s in trainer.steering]
    wants_judge = args.judge_after_training != "none" and bool(vectors)
    wants_samples = bool(vectors) and reports_to_wandb(args)  # answers only, without a judge
    n_questions = answer_questions(args, trainer.state, wants_judge) if wants_judge or wants_samples else 0
    wants_samples = wants_samples and n_questions != 0  # `auto` on a short run: none (an INFO line says so)
    if not (args.capability_benchmarks or wants_judge or wants_samples):
        return AfterTraining()
    if is_deepspeed_zero3_enabled() and trainer.accelerator.num_processes > 1:
        logger.warning(
            "post-training evaluation is skipped under multi-process ZeRO-3: export the run, evaluate it"
        )
        return AfterTraining({"post_training_eval": ZERO3_SKIPPED})
    model, tokenizer = trainer.model, trainer.processing_class
    judge = run_judge(args, model_id) if wants_judge else None
    variants: list[tuple[str, float | None]] = [("", None)]
    if args.inference_steering_coef and vectors:
        variants.append(("_inference_steered", args.inference_steering_coef))
    out: dict = {}
    errors: dict[str, str] = {}
    samples: dict[str, dict] = {}
    first, first_layer = (vectors[0], trainer.steering[0].layer) if vectors else (None, None)
    progress = post_training_progress(args, len(variants), len(vectors), wants_judge or wants_samples)
    engines = contextlib.ExitStack()
    engine = (
        engines.enter_context(answer_engine(trainer, args, model_id))
        if wants_judge or wants_samples
        else None
    )
    for suffix, coef in variants:
        context = (  # coef is set only when the run has vectors
            steer(model, first, layer=first_layer, coef=coef)
            if coef and first is not None
            else contextlib.nullcontext()
        )
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
            if coef:
                out.update(steered_behaviour(trainer, suffix))
        if judge is not None or wants_samples:
            scores = _judged_variant(
                trainer, args, vectors, judge, n_questions, suffix, coef, engine, progress, samples
            )
            if judge is not None:
                out[f"trait_expression{suffix}"] = scores
    progress.close()
    engines.close()
    if errors:
        out["capability_errors"] = errors
    return AfterTraining(out, samples, ran=True)


def run_judge(args: PreventativeSFTConfig, model_id: str) -> Judge:
    """The judge of `judge_after_training` (`base`: the run's base model)."""
    from persona_vaccine.judges.judge import make_judge

    name = model_id if args.judge_after_training == "base" else args.judge_after_training
    return make_judge(name, answer_prefix=args.judge_answer_prefix, min_mass=args.judge_min_mass)


@contextlib.contextmanager
def answer_engine(trainer, args: PreventativeSFTConfig, model_id: str) -> Iterator[GenerationEngine]:
    """Who writes the judged answers: the trained model itself (hf), or vLLM on a saved copy of it."""
    model, tokenizer = trainer.model, trainer.processing_class
    if args.generation_engine != "vllm" or trainer.accelerator.num_processes > 1:
        if args.generation_engine == "vllm":
            logger.warning("generation_engine vllm runs in single-process runs only: answering with hf")
        yield HFGeneration(model, tokenizer, 16)
        return
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    with tempfile.TemporaryDirectory(prefix="persona-eval-") as tmp:
        if hasattr(model, "peft_config"):  # LoRA: the adapter on the base checkpoint, through vLLM's LoRA
            model.save_pretrained(tmp)
            rank = max(int(getattr(c, "r", 16)) for c in model.peft_config.values())
            engine = VllmGeneration(model_id, model, tokenizer, dtype=dtype, lora=tmp, lora_rank=rank)
        else:  # a full fine-tune: a saved copy of the weights
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            engine = VllmGeneration(tmp, model, tokenizer, dtype=dtype)
        try:
            yield engine
        finally:
            engine.close()


def steered_behaviour(trainer, suffix: str) -> dict[str, dict]:
    """Margin and projection shift of the model as it is now (under the inference-time steering hook):
    `behaviour<suffix>` and `trait_drift<suffix>`, against the same base values as the run's own."""
    out: dict[str, dict] = {}
    margin, drift = callback_of(trainer, MarginCallback), callback_of(trainer, DriftCallback)
    if margin is not None and margin.meter is not None:
        out[f"behaviour{suffix}"] = margin.meter.summary(margin.meter.metrics(trainer.model))
    if drift is not None:
        out[f"trait_drift{suffix}"] = drift.meter.records(drift.meter.metrics(trainer.model))
    return out


def post_training_progress(args: PreventativeSFTConfig, n_variants: int, n_vectors: int, answers: bool):
    """A progress bar over the evaluation after training (capability, then answers per vector)."""
    from tqdm.auto import tqdm

    total = n_variants * (bool(args.capability_benchmarks) + (n_vectors if answers else 0))
    return tqdm(total=total, desc="evaluation after training", disable=args.disable_tqdm or not total)


BASE_MODEL_FILE = "base_model.json"


def base_model_row(
    model_id: str,
    vector_paths: list[str],
    output_dir: str | Path,
    mc_limit: int | None = 200,
    judge_answer_prefix: str = "Score: ",
    judge_questions: int | None = 10,
    heldout_dataset: str = "builtin:evil",
) -> RunSummary:
    """The untouched base model evaluated like the runs (capability, judged trait): a reference row.

    Cached in OUTPUT_DIR/base_model.json.
    """
    cache = Path(output_dir) / BASE_MODEL_FILE
    if cache.is_file():
        return RunSummary.read(cache)
    from persona_vaccine.judges.judge import make_judge
    from persona_vaccine.models.loading import load_model
    from persona_vaccine.steering.vector import PersonaVector

    model, tokenizer = load_model(model_id)
    rows = clean_heldout_rows(DataArguments(dataset=heldout_dataset))
    capability = capability_metrics(model, tokenizer, ["mc", "heldout_loss"], rows, mc_limit)
    expression: dict[str, float | None] = {}
    drift: dict[str, DriftRecord] = {}
    judge = make_judge(model_id, model=model, tokenizer=tokenizer, answer_prefix=judge_answer_prefix)
    for path in vector_paths:
        vector = PersonaVector.load(path)
        result = judged_expression(model, tokenizer, vector, judge, judge_questions)
        expression[vector.trait] = result["trait"]
        expression[f"{vector.trait}_coherence"] = result["coherence"]
        drift[vector.trait] = {"shift": 0.0}
    summary = RunSummary(
        train={"steps": 0}, capability=capability, trait_expression=expression, trait_drift=drift
    )
    summary.write(cache)
    return summary
