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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from persona_vaccine.errors import UserError
from persona_vaccine.jsonl import repair
from persona_vaccine.lock import output_lock
from persona_vaccine.models.chat import build_messages, format_chat
from persona_vaccine.models.generate import check_new_tokens
from persona_vaccine.models.layers import get_decoder_layers, hidden_size
from persona_vaccine.models.loading import load_model
from persona_vaccine.steering.activations import prompt_response_activations
from persona_vaccine.steering.answers import AnswerJob, AnswerRecord, Polarity
from persona_vaccine.steering.calibrate import calibrate_extracted
from persona_vaccine.steering.extract_config import JUDGE_MODES, ExtractionConfig, ExtractionConfigError
from persona_vaccine.steering.filtering import ResponseFilter, make_filter
from persona_vaccine.steering.generation_engines import GenerationEngine, HFGeneration, engine_for
from persona_vaccine.steering.vector import VECTOR_POSITIONS, PersonaVector
from persona_vaccine.traits import TraitSpec, load_trait_spec

__all__ = [
    "JUDGE_MODES",
    "ExtractionConfig",
    "ExtractionConfigError",
    "ExtractionResult",
    "GenerationCounts",
    "TooFewResponses",
    "content_key",
    "extract",
    "extract_unless_done",
    "generate_responses",
    "make_filter",
    "sample_seed",
]

logger = logging.getLogger(__name__)
POLARITIES: tuple[Polarity, ...] = ("pos", "neg")


class TooFewResponses(UserError, RuntimeError):
    """Too few responses survived the filter; the message has the counts and what to change."""


@dataclass
class ExtractionResult:
    paths: dict[str, Path]  # position -> vector file
    n_pos: int
    n_neg: int
    seconds: float
    separation: list[float]  # per layer, Cohen's d of pos vs neg projections (response_avg)
    filter: dict | None = None  # the filter's counts (kept / generated per polarity, judge AUC)
    heldout: dict | None = None  # projection AUC on the evaluation questions at the vector's layer
    generation_seconds: float = 0.0  # of `seconds`, the time spent generating answers

    def vector(self, position: str = "response_avg") -> PersonaVector:
        return PersonaVector.load(self.paths[position])

    def describe(self, trait: str) -> str:
        """What `launch.py extract` prints: counts, the filter, calibration, held-out AUCs, the files."""
        vector = self.vector()
        lines = [f"trait '{trait}': {self.n_pos} pos / {self.n_neg} neg responses kept, {self.seconds:.0f}s"]
        if self.filter and "pos" in self.filter:
            f = self.filter
            lines.append(
                f"  judge {f['judge']}: pos {f['pos']['kept']}/{f['pos']['generated']}, neg {f['neg']['kept']}/"
                f"{f['neg']['generated']} kept (trait threshold {f['trait_threshold']:g}, coherence "
                f"{f['coherence_threshold']:g}); judge AUC pos vs neg {f['judge_auc_pos_vs_neg'] or float('nan'):.3f}"
            )
        if vector.layer is not None:
            lines.append(
                f"  calibrated: layer {vector.layer}, coef {vector.coef:g} (report: calibration.md, calibration.png)"
            )
        if self.heldout:
            h = self.heldout
            lines.append(
                f"  held-out evaluation questions, layer {h['layer']}: AUC response {h['response_auc']:.3f}, "
                f"last prompt token {h['prompt_last_auc']:.3f} ({h['n_pos']} pos / {h['n_neg']} neg)"
            )
        lines += [f"  {position:24s} {path}" for position, path in self.paths.items()]
        return "\n".join(lines)


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


def _jobs(spec: TraitSpec, cfg: ExtractionConfig) -> list[AnswerJob]:
    questions = spec.extraction_questions[: cfg.max_questions]
    jobs: list[AnswerJob] = []
    for i in range(len(spec.instruction_pairs)):
        for polarity in POLARITIES:
            system = spec.pos_system_prompt(i) if polarity == "pos" else spec.neg_system_prompt(i)
            for q, question in enumerate(questions):
                for s in range(cfg.samples_per_prompt):
                    key = content_key(cfg, system, question, s)
                    jobs.append(AnswerJob(f"{polarity}/{i}/{q}/{s}", key, polarity, i, question, system))
    return jobs


def _load_done(path: Path) -> dict[str, AnswerRecord]:
    """Finished records of earlier runs by content key; a line cut by a crash is dropped (and regenerated).

    Records without a content key (files written before keys existed) can't be matched to what
    produced them, so they are not reused; nor are lines that lack a field.
    """
    done = {}
    for row in repair(path):
        try:
            record = AnswerRecord.from_json(row)
        except TypeError:
            continue
        if isinstance(record.content_key, str):
            done[record.content_key] = record
    return done


def _rewrite(path: Path, records: list[AnswerRecord]) -> None:
    """Replace the file atomically by exactly `records` (what the vector is built from)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
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
    engine: GenerationEngine | None = None,
) -> list[AnswerRecord]:
    """Generate (or reuse) responses for every question x instruction x polarity x sample.

    Batches are fixed slices of the full job list, so a resumed run generates the same batches as
    an uninterrupted one. Afterwards the file holds exactly the returned records, in job order
    (records of an edited spec or setting are dropped); `counts`, if given, is filled in.
    """
    counts = counts if counts is not None else GenerationCounts()
    jobs = _jobs(spec, cfg)
    n_lines = len(repair(out))
    done = _load_done(out)
    todo = {job.content_key for job in jobs} - set(done)
    counts.reused = sum(job.content_key in done for job in jobs)
    if todo:
        logger.info("generating %d responses (%d reused from %s)", len(todo), counts.reused, out)
    engine = engine or HFGeneration(model, tokenizer, cfg.batch_size)
    batches = [jobs[i : i + engine.batch_size] for i in range(0, len(jobs), engine.batch_size)]
    with (
        out.open("a") as f,
        tqdm(total=len(jobs), initial=counts.reused, desc=f"{spec.trait}: generate") as bar,
    ):
        for whole in batches:
            batch = list({j.content_key: j for j in whole if j.content_key not in done}.values())
            if not batch:
                continue
            prompts = [format_chat(tokenizer, build_messages(j.question, j.system)) for j in batch]
            seeds = [sample_seed(j.content_key) for j in batch]
            gens = engine.generate(
                prompts,
                cfg.max_new_tokens,
                cfg.temperature,
                cfg.top_p,
                seeds=seeds,
                progress=f"{spec.trait}: decoding",  # a batch can take minutes on CPU
            )
            for job, gen in zip(batch, gens, strict=True):
                record = AnswerRecord(
                    **asdict(job),
                    prompt=gen.prompt,
                    prompt_ids=gen.prompt_ids,
                    response_ids=gen.response_ids,
                    response=gen.response,
                )
                f.write(json.dumps(record.to_json()) + "\n")
                done[job.content_key] = record
            f.flush()
            counts.generated += len(batch)
            bar.update(len(batch))
    # a reused answer takes the job's place (its key, polarity and instruction) in the current spec
    records = [
        replace(done[j.content_key], key=j.key, polarity=j.polarity, instruction=j.instruction) for j in jobs
    ]
    counts.dropped = max(0, n_lines + counts.generated - len(records))
    if counts.dropped:
        logger.info("%s: dropped %d records that do not match the spec or settings", out, counts.dropped)
    _rewrite(out, records)
    return records


def _cohens_d(pos: torch.Tensor, neg: torch.Tensor, direction: torch.Tensor) -> float:
    unit = direction / direction.norm().clamp_min(1e-12)
    a, b = pos @ unit, neg @ unit
    pooled = ((a.var(unbiased=True) + b.var(unbiased=True)) / 2).sqrt().clamp_min(1e-12)
    return float((a.mean() - b.mean()) / pooled)


def _heldout(
    cfg: ExtractionConfig,
    spec: TraitSpec,
    model,
    tokenizer,
    path: Path,
    out_dir: Path,
    engine: GenerationEngine,
) -> dict:
    """Answers to the held-out evaluation questions under the pos/neg prompts, projected at the layer.

    AUC of pos vs neg (labels: the system prompt) for the response average and the last prompt
    token, at the vector's calibrated (or middle) layer. Generations resume like the extraction's.
    """
    from persona_vaccine.steering.score import auc, project_by_polarity

    vector = PersonaVector.load(path)
    layer = vector.default_layer()
    eval_spec = replace(spec, extraction_questions=spec.evaluation_questions)
    eval_cfg = replace(cfg, samples_per_prompt=1, seed=cfg.seed + 1)
    records = generate_responses(
        model, tokenizer, eval_spec, eval_cfg, out_dir / "heldout.jsonl", engine=engine
    )
    split = project_by_polarity(
        model, records, vector, layer, tokenizer.pad_token_id, cfg.activation_batch_size
    )
    result = {
        "layer": layer,
        "n_pos": len(split["prompt"][0]),
        "n_neg": len(split["prompt"][1]),
        "response_auc": auc(*split["response"]),
        "prompt_last_auc": auc(*split["prompt"]),
    }
    replace(vector, extraction={**vector.extraction, "heldout": result}).save(path)
    return result


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
    with (
        output_lock(out_dir, "extract"),
        engine_for(
            cfg.generation_engine,
            cfg.model_name_or_path,
            model,
            tokenizer,
            batch_size=cfg.batch_size,
            dtype=cfg.generation_dtype or cfg.dtype,
            base_url=cfg.generation_base_url,
            seed=cfg.seed,
        ) as engine,
    ):
        return _extract_locked(cfg, spec, model, tokenizer, out_dir, response_filter, start, engine)


def extract_unless_done(cfg: ExtractionConfig) -> tuple[Path, bool]:
    """The trait's response_avg vector in cfg.output_dir: (path, True) when the file exists, else extracted."""
    path = cfg.trait_dir(load_trait_spec(cfg.trait).trait) / "response_avg.safetensors"
    if path.is_file():
        return path, True
    return extract(cfg).paths["response_avg"], False


def _kept_pairs(
    records: list[AnswerRecord], response_filter, spec, cfg
) -> tuple[list[AnswerRecord], list[AnswerRecord], dict]:
    """The pos and neg answers the filter keeps, and its counts; too few of either is an error."""
    if hasattr(response_filter, "prepare"):
        response_filter.prepare(records)
    kept = [r for r in records if response_filter.keep(r)]
    pos = [r for r in kept if r.polarity == "pos"]
    neg = [r for r in kept if r.polarity == "neg"]
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
    return pos, neg, counts


def _extraction_info(cfg, spec, counts: dict, pos, neg, records, generations: Path, gen_counts) -> dict:
    """What a vector file records about how it was extracted."""
    return {
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
            "digest": hashlib.sha256("".join(r.content_key for r in records).encode()).hexdigest(),
            **asdict(gen_counts),
        },
        "evaluation_questions": list(spec.evaluation_questions),
    }


def _save_vectors(cfg, spec, model, acts, n_pos: int, info: dict, out_dir: Path) -> tuple[dict, list[float]]:
    """One difference-of-means vector per read position; the per-layer separation of `response_avg`."""
    n_layers, size = len(get_decoder_layers(model)), hidden_size(model)
    mean_norms = {layer + 1: float(acts.mean_norms[layer]) for layer in range(n_layers)}
    paths: dict[str, Path] = {}
    separation: list[float] = []
    for position in VECTOR_POSITIONS:
        a = acts.at(position)
        diff = a[:n_pos].mean(0) - a[n_pos:].mean(0)  # [L, H]
        layers = {layer + 1: diff[layer].clone() for layer in range(n_layers)}
        if position == "response_avg":
            separation = [_cohens_d(a[:n_pos, i], a[n_pos:, i], diff[i]) for i in range(n_layers)]
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
    return paths, separation


def _extract_locked(
    cfg, spec, model, tokenizer, out_dir: Path, response_filter, start: float, engine: GenerationEngine
) -> ExtractionResult:
    response_filter = response_filter or make_filter(cfg, spec, model, tokenizer, out_dir, engine)
    gen_counts = GenerationCounts()
    generations = out_dir / "generations.jsonl"
    generation_start = time.perf_counter()
    records = generate_responses(model, tokenizer, spec, cfg, generations, gen_counts, engine)
    generation_seconds = time.perf_counter() - generation_start
    pos, neg, counts = _kept_pairs(records, response_filter, spec, cfg)
    acts = prompt_response_activations(
        model,
        [(r.prompt_ids, r.response_ids) for r in pos + neg],
        tokenizer.pad_token_id,
        batch_size=cfg.activation_batch_size,
    )
    info = _extraction_info(cfg, spec, counts, pos, neg, records, generations, gen_counts)
    paths, separation = _save_vectors(cfg, spec, model, acts, len(pos), info, out_dir)
    if cfg.calibrate:
        calibrate_extracted(
            cfg, spec, model, tokenizer, response_filter, paths["response_avg"], out_dir, engine
        )
    heldout = (
        _heldout(cfg, spec, model, tokenizer, paths["response_avg"], out_dir, engine)
        if cfg.heldout_eval
        else None
    )
    seconds = time.perf_counter() - start
    result = ExtractionResult(
        paths, len(pos), len(neg), seconds, separation, counts, heldout, generation_seconds
    )
    summary = {**asdict(result), "paths": {k: str(v) for k, v in paths.items()}, "config": asdict(cfg)}
    (out_dir / "extraction.json").write_text(json.dumps(summary, indent=2))
    return result
