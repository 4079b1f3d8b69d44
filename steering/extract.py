"""Persona vector extraction: trait spec -> responses -> (filter) -> activations -> difference of means.

Generations are appended to `generations.jsonl` as they are made, so an interrupted run resumes
where it stopped, and a finished one is reused.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .activations import prompt_response_activations
from .chat import build_messages, format_chat
from .errors import InvalidInput, UserError
from .filtering import JudgeFilter, KeepAll, ResponseFilter
from .generate import generate
from .jsonl import repair
from .judge import make_judge
from .layers import get_decoder_layers, hidden_size
from .models import load_model
from .traits import TraitSpec, load_trait_spec
from .vector import POSITIONS, PersonaVector

logger = logging.getLogger(__name__)


class TooFewResponses(UserError, RuntimeError):
    """Too few responses survived the filter; the message has the counts and what to change."""


@dataclass
class ExtractionConfig:
    trait: str = "evil"
    model_name_or_path: str = "smollm2-135m"
    output_dir: str = "runs/vectors"
    samples_per_prompt: int = 1
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    batch_size: int = 32
    activation_batch_size: int = 16
    max_questions: int | None = None
    dtype: str = "float32"
    seed: int = 0
    trust_remote_code: bool = False
    # judge filtering (METHOD.md section 2); judge "none" keeps every response
    judge: str = "none"  # none | self | an HF id or path | openai:MODEL
    judge_base_url: str | None = None
    judge_mode: str = "auto"  # auto | logprobs | numbers | sample
    judge_answer_prefix: str = ""  # e.g. "Score: " holds small judges to a number
    judge_batch_size: int = 8
    judge_min_mass: float = 0.25  # below this probability on numbers a judgment counts as no score
    trait_threshold: float = 50.0
    coherence_threshold: float = 50.0
    auto_thresholds: bool = False  # weak judges: trait threshold = pooled median, coherence = lower quartile
    min_kept: int = 5  # per polarity
    # calibration (needs a judge): steer each layer over a coefficient grid on the evaluation questions
    calibrate: bool = False
    calibration_layers: str = ""  # comma-separated 1-based layers; empty: every ~10% of the stack
    calibration_coefs: str = "1,2,4"
    calibration_coef_unit: str = "raw"
    calibration_questions: int = 10
    calibration_max_new_tokens: int = 48
    heldout_eval: bool = True  # pos/neg answers to the evaluation questions: projection AUC at the layer
    incremental: bool = False  # also save v_l - v_(l-1) (all-layer steering) as response_avg_incremental

    def trait_dir(self, trait: str) -> Path:
        return Path(self.output_dir) / trait


@dataclass
class ExtractionResult:
    paths: dict[str, Path]  # position -> vector file
    n_pos: int
    n_neg: int
    seconds: float
    separation: list[float]  # per layer, Cohen's d of pos vs neg projections (response_avg)
    filter: dict | None = None  # the filter's counts (kept / generated per polarity, judge AUC)
    heldout: dict | None = None  # projection AUC on the evaluation questions at the vector's layer

    def vector(self, position: str = "response_avg") -> PersonaVector:
        return PersonaVector.load(self.paths[position])


def _jobs(spec: TraitSpec, cfg: ExtractionConfig) -> list[dict]:
    questions = spec.extraction_questions[: cfg.max_questions]
    jobs = []
    for i in range(len(spec.instruction_pairs)):
        for polarity in ("pos", "neg"):
            system = spec.pos_system_prompt(i) if polarity == "pos" else spec.neg_system_prompt(i)
            for q, question in enumerate(questions):
                for s in range(cfg.samples_per_prompt):
                    jobs.append(
                        {
                            "key": f"{polarity}/{i}/{q}/{s}",
                            "polarity": polarity,
                            "instruction": i,
                            "question": question,
                            "system": system,
                        }
                    )
    return jobs


def _load_done(path: Path) -> dict[str, dict]:
    """Finished records of an earlier run; a line cut by a crash is dropped (and regenerated)."""
    return {record["key"]: record for record in repair(path) if "key" in record}


def generate_responses(model, tokenizer, spec: TraitSpec, cfg: ExtractionConfig, out: Path) -> list[dict]:
    """Generate (or reuse) responses for every question x instruction x polarity x sample."""
    jobs = _jobs(spec, cfg)
    done = _load_done(out)
    todo = [job for job in jobs if job["key"] not in done]
    if todo:
        logger.info("generating %d responses (%d already done)", len(todo), len(jobs) - len(todo))
    with (
        out.open("a") as f,
        tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=f"{spec.trait}: generate") as bar,
    ):
        for start in range(0, len(todo), cfg.batch_size):
            batch = todo[start : start + cfg.batch_size]
            prompts = [format_chat(tokenizer, build_messages(j["question"], j["system"])) for j in batch]
            seed = cfg.seed + len(done) + start
            for job, gen in zip(
                batch,
                generate(
                    model,
                    tokenizer,
                    prompts,
                    cfg.max_new_tokens,
                    cfg.temperature,
                    cfg.top_p,
                    cfg.batch_size,
                    seed=seed,
                ),
                strict=True,
            ):
                record = {
                    **job,
                    "prompt": gen.prompt,
                    "prompt_ids": gen.prompt_ids,
                    "response_ids": gen.response_ids,
                    "response": gen.response,
                }
                f.write(json.dumps(record) + "\n")
                done[job["key"]] = record
            f.flush()
            bar.update(len(batch))
    return [done[job["key"]] for job in jobs]


def _cohens_d(pos: torch.Tensor, neg: torch.Tensor, direction: torch.Tensor) -> float:
    unit = direction / direction.norm().clamp_min(1e-12)
    a, b = pos @ unit, neg @ unit
    pooled = ((a.var(unbiased=True) + b.var(unbiased=True)) / 2).sqrt().clamp_min(1e-12)
    return float((a.mean() - b.mean()) / pooled)


def _heldout(cfg: ExtractionConfig, spec: TraitSpec, model, tokenizer, path: Path, out_dir: Path) -> dict:
    """Answers to the held-out evaluation questions under the pos/neg prompts, projected at the layer.

    AUC of pos vs neg (labels: the system prompt) for the response average and the last prompt
    token, at the vector's calibrated (or middle) layer. Generations resume like the extraction's.
    """
    from dataclasses import replace

    from .score import auc, project

    vector = PersonaVector.load(path)
    layer = vector.default_layer()
    eval_spec = replace(spec, extraction_questions=spec.evaluation_questions)
    eval_cfg = replace(cfg, samples_per_prompt=1, seed=cfg.seed + 1)
    records = [
        r
        for r in generate_responses(model, tokenizer, eval_spec, eval_cfg, out_dir / "heldout.jsonl")
        if r["response_ids"]
    ]
    prompt, response = project(
        model,
        [(r["prompt_ids"], r["response_ids"]) for r in records],
        vector,
        layer,
        tokenizer.pad_token_id,
        cfg.activation_batch_size,
    )
    is_pos = [r["polarity"] == "pos" for r in records]

    def split(values):
        return [v for v, p in zip(values, is_pos, strict=True) if p], [
            v for v, p in zip(values, is_pos, strict=True) if not p
        ]

    result = {
        "layer": layer,
        "n_pos": sum(is_pos),
        "n_neg": len(is_pos) - sum(is_pos),
        "response_auc": auc(*split(response)),
        "prompt_last_auc": auc(*split(prompt)),
    }
    replace(vector, extraction={**vector.extraction, "heldout": result}).save(path)
    return result


def _calibrate(
    cfg: ExtractionConfig, spec: TraitSpec, model, tokenizer, response_filter, path: Path, out_dir: Path
) -> None:
    from .calibrate import CalibrationConfig, apply_calibration, calibrate_vector, write_report

    judge = getattr(response_filter, "judge", None)
    if judge is None:
        raise InvalidInput(
            "calibrate=true needs a judge: pass --judge self (or an HF model, or openai:MODEL)"
        )
    ccfg = CalibrationConfig(
        layers=[int(x) for x in cfg.calibration_layers.split(",") if x.strip()] or None,
        coefs=[float(x) for x in cfg.calibration_coefs.split(",") if x.strip()],
        coef_unit=cfg.calibration_coef_unit,
        n_questions=cfg.calibration_questions,
        max_new_tokens=cfg.calibration_max_new_tokens,
        coherence_threshold=getattr(response_filter, "coherence_threshold", cfg.coherence_threshold),
        judge_batch_size=cfg.judge_batch_size,
    )
    result = calibrate_vector(model, tokenizer, PersonaVector.load(path), spec, judge, ccfg, out_dir)
    apply_calibration(path, result, ccfg, getattr(judge, "cache_id", judge.model_id))
    table, plot = write_report(result, spec.trait, out_dir, ccfg.coherence_threshold)
    logger.info(
        "calibrated '%s': layer %d, coef %g (%s, %s)", spec.trait, result.layer, result.coef, table, plot
    )


def make_filter(cfg: ExtractionConfig, spec: TraitSpec, model, tokenizer, out_dir: Path) -> ResponseFilter:
    """The response filter the config asks for: KeepAll, or a JudgeFilter with its cache in `out_dir`."""
    if cfg.judge in ("none", "", None):
        return KeepAll()
    judge = make_judge(
        cfg.judge,
        model,
        tokenizer,
        model_id=cfg.model_name_or_path,
        base_url=cfg.judge_base_url,
        mode=cfg.judge_mode,
        answer_prefix=cfg.judge_answer_prefix,
        batch_size=cfg.judge_batch_size,
        min_mass=cfg.judge_min_mass,
    )
    return JudgeFilter(
        judge,
        spec.judge_rubric,
        out_dir / "judgments.sqlite",
        cfg.trait_threshold,
        cfg.coherence_threshold,
        cfg.judge_batch_size,
        judgments_path=out_dir / "judgments.jsonl",
        auto_thresholds=cfg.auto_thresholds,
    )


def extract(
    cfg: ExtractionConfig,
    response_filter: ResponseFilter | None = None,
    model=None,
    tokenizer=None,
) -> ExtractionResult:
    """Run the whole extraction for one trait and save one vector file per read position."""
    start = time.perf_counter()
    spec = load_trait_spec(cfg.trait)
    if model is None:
        model, tokenizer = load_model(
            cfg.model_name_or_path, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code
        )
    out_dir = cfg.trait_dir(spec.trait)
    out_dir.mkdir(parents=True, exist_ok=True)
    response_filter = response_filter or make_filter(cfg, spec, model, tokenizer, out_dir)
    records = generate_responses(model, tokenizer, spec, cfg, out_dir / "generations.jsonl")

    if hasattr(response_filter, "prepare"):
        response_filter.prepare(records)
    kept = [r for r in records if response_filter.keep(r)]
    pos = [r for r in kept if r["polarity"] == "pos"]
    neg = [r for r in kept if r["polarity"] == "neg"]
    counts = (
        response_filter.summary() if hasattr(response_filter, "summary") else {"filter": response_filter.name}
    )
    detail = response_filter.explain() if hasattr(response_filter, "explain") else ""
    logger.info("trait '%s' filter '%s': %s", spec.trait, response_filter.name, detail or f"{len(kept)} kept")
    need = max(2, cfg.min_kept)
    if len(pos) < need or len(neg) < need:
        raise TooFewResponses(
            f"trait '{spec.trait}': only {len(pos)} pos and {len(neg)} neg of {len(records)} responses survived "
            f"the '{response_filter.name}' filter ({detail or 'empty responses dropped'}); min_kept={need} of "
            "each are needed. Lower --trait_threshold (pos keep trait >= it, neg keep trait < it) or "
            "--coherence_threshold, raise --samples_per_prompt or --max_questions, lower --min_kept, or use a "
            "stronger --judge. Generations and judgments are cached: a rerun only redoes the filtering."
        )
    acts = prompt_response_activations(
        model,
        [(r["prompt_ids"], r["response_ids"]) for r in pos + neg],
        tokenizer.pad_token_id,
        batch_size=cfg.activation_batch_size,
    )
    n_layers, size = len(get_decoder_layers(model)), hidden_size(model)
    mean_norms = {layer + 1: float(acts.mean_norms[layer]) for layer in range(n_layers)}
    info = {
        "method": "difference of means",
        "spec": spec.source,
        "filter": counts,
        "n_pos": len(pos),
        "n_neg": len(neg),
        "n_generated": len(records),
        "samples_per_prompt": cfg.samples_per_prompt,
        "max_new_tokens": cfg.max_new_tokens,
        "temperature": cfg.temperature,
        "evaluation_questions": list(spec.evaluation_questions),
    }
    paths, separation = {}, []
    for position in POSITIONS:
        a = acts.at(position)
        diff = a[: len(pos)].mean(0) - a[len(pos) :].mean(0)  # [L, H]
        layers = {layer + 1: diff[layer].clone() for layer in range(n_layers)}
        if position == "response_avg":
            separation = [_cohens_d(a[: len(pos), i], a[len(pos) :, i], diff[i]) for i in range(n_layers)]
        vector = PersonaVector(
            trait=spec.trait,
            model_id=cfg.model_name_or_path,
            hidden_size=size,
            num_layers=n_layers,
            layers=layers,
            position=position,
            mean_norms=mean_norms,
            extraction={**info, "read_position": position},
        )
        paths[position] = vector.save(out_dir / f"{position}.safetensors")
    if cfg.incremental:
        paths["response_avg_incremental"] = (
            PersonaVector.load(paths["response_avg"])
            .incremental()
            .save(out_dir / "response_avg_incremental.safetensors")
        )
    if cfg.calibrate:
        _calibrate(cfg, spec, model, tokenizer, response_filter, paths["response_avg"], out_dir)
    heldout = (
        _heldout(cfg, spec, model, tokenizer, paths["response_avg"], out_dir) if cfg.heldout_eval else None
    )
    seconds = time.perf_counter() - start
    result = ExtractionResult(paths, len(pos), len(neg), seconds, separation, counts, heldout)
    summary = {**asdict(result), "paths": {k: str(v) for k, v in paths.items()}, "config": asdict(cfg)}
    (out_dir / "extraction.json").write_text(json.dumps(summary, indent=2))
    return result
