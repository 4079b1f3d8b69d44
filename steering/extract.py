"""Persona vector extraction: trait spec -> responses -> (filter) -> activations -> difference of means.

Generations are appended to `generations.jsonl` as they are made, each with a content key: a hash of
what produced it (model, system prompt, question, sampling settings, sample index, seed). A rerun
reuses the records whose key still matches and regenerates the rest, so an edited spec or setting
redoes exactly what changed; each sample is drawn with a seed derived from its key, so a run resumed
after a crash gives the same answers as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .activations import prompt_response_activations
from .chat import build_messages, format_chat
from .errors import InvalidInput, UserError
from .filtering import JudgeFilter, KeepAll, ResponseFilter
from .generate import check_new_tokens, generate
from .jsonl import repair
from .judge import make_judge
from .layers import get_decoder_layers, hidden_size
from .lock import output_lock
from .models import load_model
from .traits import TraitSpec, load_trait_spec
from .vector import POSITIONS, PersonaVector

logger = logging.getLogger(__name__)


class TooFewResponses(UserError, RuntimeError):
    """Too few responses survived the filter; the message has the counts and what to change."""


class ExtractionConfigError(UserError, ValueError):
    """A setting of the extraction is out of range; the message names the field and what it takes."""


JUDGE_MODES = ("auto", "logprobs", "numbers", "sample")


@dataclass
class ExtractionConfig:
    trait: str = field(
        default="evil",
        metadata={"help": "A built-in trait name (`launch.py trait list`) or a trait spec JSON file."},
    )
    model_name_or_path: str = field(
        default="smollm2-135m",
        metadata={"help": "HF id, local path, or 'smollm2-135m' (the embedded model); --model works too."},
    )
    output_dir: str = field(
        default="runs/vectors",
        metadata={"help": "Vectors go to OUTPUT_DIR/TRAIT/ (response_avg.safetensors, ...)."},
    )
    samples_per_prompt: int = field(
        default=1, metadata={"help": "Responses per (instruction, question) pair and polarity."}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "Length of each generated response."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the responses."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling of the responses."})
    batch_size: int = field(default=32, metadata={"help": "Generation batch size."})
    activation_batch_size: int = field(
        default=16, metadata={"help": "Batch size of the activation forwards."}
    )
    max_questions: int | None = field(
        default=None, metadata={"help": "Use at most this many extraction questions (default: all)."}
    )
    dtype: str = field(default="float32", metadata={"help": "Model dtype (float32, bfloat16, float16)."})
    seed: int = field(default=0, metadata={"help": "Random seed of the sampling."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow the model's own code from the hub."}
    )
    layers_path: str | None = field(
        default=None,
        metadata={
            "help": "Attribute path to the decoder blocks (e.g. 'model.layers'), where structure can't tell."
        },
    )
    # judge filtering (METHOD.md section 2); judge "none" keeps every response
    judge: str = field(
        default="none",
        metadata={
            "help": "Filter responses with a judge: none (keep all), self, an HF id or path, or openai:MODEL."
        },
    )
    judge_base_url: str | None = field(
        default=None, metadata={"help": "OpenAI-compatible endpoint of an openai:MODEL judge."}
    )
    judge_mode: str = field(
        default="auto", metadata={"help": "auto, logprobs, numbers or sample: how the judge's score is read."}
    )
    judge_answer_prefix: str = field(
        default="",
        metadata={"help": "Assistant prefix before the judge's score (e.g. 'Score: ' for small judges)."},
    )
    judge_batch_size: int = field(default=8, metadata={"help": "Judge batch size."})
    judge_min_mass: float = field(
        default=0.25,
        metadata={"help": "A local judge's score counts only if this much probability falls on numbers."},
    )
    trait_threshold: float = field(
        default=50.0,
        metadata={"help": "Keep positive responses judged above (negative: below) this trait score."},
    )
    coherence_threshold: float = field(
        default=50.0, metadata={"help": "Keep responses judged at least this coherent."}
    )
    auto_thresholds: bool = field(
        default=False,
        metadata={"help": "Weak judges: trait threshold = pooled median, coherence = lower quartile."},
    )
    min_kept: int = field(
        default=5, metadata={"help": "Fail when fewer responses than this are kept per polarity."}
    )
    # calibration (needs a judge): steer each layer over a coefficient grid on the evaluation questions
    calibrate: bool = field(
        default=False,
        metadata={
            "help": "Steer each layer over a coefficient grid on the evaluation questions (needs a judge)."
        },
    )
    calibration_layers: str = field(
        default="",
        metadata={"help": "Comma-separated 1-based layers to calibrate; empty: every tenth of the stack."},
    )
    calibration_coefs: str = field(
        default="1,2,4", metadata={"help": "Comma-separated coefficients of the calibration grid."}
    )
    calibration_coef_unit: str = field(
        default="raw", metadata={"help": "raw or norm_fraction: units of the calibration coefficients."}
    )
    calibration_questions: int = field(
        default=10, metadata={"help": "Evaluation questions answered per calibration point."}
    )
    calibration_max_new_tokens: int = field(
        default=48, metadata={"help": "Length of the calibration answers."}
    )
    heldout_eval: bool = field(
        default=True,
        metadata={
            "help": "Projection AUC of pos/neg answers to the evaluation questions at the vector's layer."
        },
    )
    incremental: bool = field(
        default=False,
        metadata={"help": "Also save v_l - v_(l-1) (all-layer steering) as response_avg_incremental."},
    )

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            problems.append(f"max_new_tokens={self.max_new_tokens!r}: must be a positive number of tokens")
        for name in ("samples_per_prompt", "batch_size", "activation_batch_size", "judge_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)!r}: must be a positive integer")
        if self.max_questions is not None and self.max_questions < 1:
            problems.append(f"max_questions={self.max_questions!r}: must be a positive integer (or unset)")
        if self.temperature < 0:
            problems.append(f"temperature={self.temperature!r}: must be >= 0 (0 decodes greedily)")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p={self.top_p!r}: must be within (0, 1]")
        if self.judge_mode not in JUDGE_MODES:
            problems.append(f"judge_mode={self.judge_mode!r}: expected one of {', '.join(JUDGE_MODES)}")
        if str(self.judge).startswith("openai:") and self.judge_mode == "numbers":
            problems.append(
                "judge_mode='numbers' is for local judges; openai: judges take auto, logprobs, sample"
            )
        if not 0 <= self.judge_min_mass <= 1:
            problems.append(f"judge_min_mass={self.judge_min_mass!r}: must be within 0..1")
        if problems:
            raise ExtractionConfigError("; ".join(problems))

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


def content_key(cfg: ExtractionConfig, system: str, question: str, sample: int) -> str:
    """Hash of everything that produces one generation: a record is reused only when it matches."""
    identity = {
        "model": cfg.model_name_or_path,
        "system": system,
        "question": question,
        "max_new_tokens": cfg.max_new_tokens,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "sample": sample,
        "seed": cfg.seed,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def sample_seed(key: str) -> int:
    """The sampling seed of one generation, from its content key (which includes cfg.seed)."""
    return int(key[:15], 16)


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
                            "content_key": content_key(cfg, system, question, s),
                            "polarity": polarity,
                            "instruction": i,
                            "question": question,
                            "system": system,
                        }
                    )
    return jobs


def _load_done(path: Path) -> dict[str, dict]:
    """Finished records of earlier runs by content key; a line cut by a crash is dropped (and regenerated).

    Records without a content key (files written before keys existed) can't be matched to what
    produced them, so they are not reused.
    """
    return {r["content_key"]: r for r in repair(path) if isinstance(r.get("content_key"), str)}


def _rewrite(path: Path, records: list[dict]) -> None:
    """Replace the file atomically by exactly `records` (what the vector is built from)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, path)


@dataclass
class GenerationCounts:
    """What a `generate_responses` call did with the cache file."""

    reused: int = 0
    generated: int = 0
    dropped: int = 0  # records of an earlier spec or setting (or without a content key) removed


def generate_responses(
    model,
    tokenizer,
    spec: TraitSpec,
    cfg: ExtractionConfig,
    out: Path,
    counts: GenerationCounts | None = None,
) -> list[dict]:
    """Generate (or reuse) responses for every question x instruction x polarity x sample.

    Batches are fixed slices of the full job list, so a resumed run generates the same batches as
    an uninterrupted one. Afterwards the file holds exactly the returned records, in job order
    (records of an edited spec or setting are dropped); `counts`, if given, is filled in.
    """
    counts = counts if counts is not None else GenerationCounts()
    jobs = _jobs(spec, cfg)
    n_lines = len(repair(out))
    done = _load_done(out)
    todo = {job["content_key"] for job in jobs} - set(done)
    counts.reused = sum(job["content_key"] in done for job in jobs)
    if todo:
        logger.info("generating %d responses (%d reused from %s)", len(todo), counts.reused, out)
    batches = [jobs[i : i + cfg.batch_size] for i in range(0, len(jobs), cfg.batch_size)]
    with (
        out.open("a") as f,
        tqdm(total=len(jobs), initial=counts.reused, desc=f"{spec.trait}: generate") as bar,
    ):
        for whole in batches:
            batch = list({j["content_key"]: j for j in whole if j["content_key"] not in done}.values())
            if not batch:
                continue
            prompts = [format_chat(tokenizer, build_messages(j["question"], j["system"])) for j in batch]
            seeds = [sample_seed(j["content_key"]) for j in batch]
            gens = generate(
                model,
                tokenizer,
                prompts,
                cfg.max_new_tokens,
                cfg.temperature,
                cfg.top_p,
                cfg.batch_size,
                seeds=seeds,
            )
            for job, gen in zip(batch, gens, strict=True):
                record = {
                    **job,
                    "prompt": gen.prompt,
                    "prompt_ids": gen.prompt_ids,
                    "response_ids": gen.response_ids,
                    "response": gen.response,
                }
                f.write(json.dumps(record) + "\n")
                done[job["content_key"]] = record
            f.flush()
            counts.generated += len(batch)
            bar.update(len(batch))
    records = [{**done[job["content_key"]], **_position(job)} for job in jobs]
    counts.dropped = max(0, n_lines + counts.generated - len(records))
    if counts.dropped:
        logger.info("%s: dropped %d records that do not match the spec or settings", out, counts.dropped)
    _rewrite(out, records)
    return records


def _position(job: dict) -> dict:
    return {k: job[k] for k in ("key", "polarity", "instruction")}


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
            cfg.model_name_or_path,
            dtype=cfg.dtype,
            trust_remote_code=cfg.trust_remote_code,
            layers_path=cfg.layers_path,
        )
    capped = check_new_tokens(model, cfg.max_new_tokens)
    if capped != cfg.max_new_tokens:
        cfg = replace(cfg, max_new_tokens=capped)
    out_dir = cfg.trait_dir(spec.trait)
    out_dir.mkdir(parents=True, exist_ok=True)
    with output_lock(out_dir, "extract"):
        return _extract_locked(cfg, spec, model, tokenizer, out_dir, response_filter, start)


def _extract_locked(
    cfg, spec, model, tokenizer, out_dir: Path, response_filter, start: float
) -> ExtractionResult:
    response_filter = response_filter or make_filter(cfg, spec, model, tokenizer, out_dir)
    gen_counts = GenerationCounts()
    generations = out_dir / "generations.jsonl"
    records = generate_responses(model, tokenizer, spec, cfg, generations, gen_counts)

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
        "top_p": cfg.top_p,
        "seed": cfg.seed,
        "generations": {
            "file": str(generations),
            # the content keys the vector was built from, hashed in file order
            "digest": hashlib.sha256("".join(r["content_key"] for r in records).encode()).hexdigest(),
            **asdict(gen_counts),
        },
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
