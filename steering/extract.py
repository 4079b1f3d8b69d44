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
from .filtering import KeepAll, ResponseFilter
from .generate import generate
from .layers import get_decoder_layers, hidden_size
from .models import load_model
from .traits import TraitSpec, load_trait_spec
from .vector import POSITIONS, PersonaVector

logger = logging.getLogger(__name__)


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

    def trait_dir(self, trait: str) -> Path:
        return Path(self.output_dir) / trait


@dataclass
class ExtractionResult:
    paths: dict[str, Path]  # position -> vector file
    n_pos: int
    n_neg: int
    seconds: float
    separation: list[float]  # per layer, Cohen's d of pos vs neg projections (response_avg)

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
    done, valid = {}, []
    if not path.is_file():
        return done
    text = path.read_text()
    for line in text.splitlines():
        try:
            record = json.loads(line)
            done[record["key"]] = record
            valid.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    if len(valid) != len(text.splitlines()) or (text and not text.endswith("\n")):
        path.write_text("".join(line + "\n" for line in valid))  # so appends start on a fresh line
    return done


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


def extract(
    cfg: ExtractionConfig,
    response_filter: ResponseFilter | None = None,
    model=None,
    tokenizer=None,
) -> ExtractionResult:
    """Run the whole extraction for one trait and save one vector file per read position."""
    start = time.perf_counter()
    spec = load_trait_spec(cfg.trait)
    response_filter = response_filter or KeepAll()
    if model is None:
        model, tokenizer = load_model(
            cfg.model_name_or_path, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code
        )
    out_dir = cfg.trait_dir(spec.trait)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = generate_responses(model, tokenizer, spec, cfg, out_dir / "generations.jsonl")

    kept = [r for r in records if response_filter.keep(r)]
    pos = [r for r in kept if r["polarity"] == "pos"]
    neg = [r for r in kept if r["polarity"] == "neg"]
    if len(pos) < 2 or len(neg) < 2:
        raise RuntimeError(
            f"trait '{spec.trait}': only {len(pos)} pos and {len(neg)} neg responses of {len(records)} survived "
            f"the '{response_filter.name}' filter; at least 2 of each are needed. Raise samples_per_prompt or "
            "max_questions, or loosen the filter thresholds."
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
        "filter": response_filter.name,
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
    seconds = time.perf_counter() - start
    result = ExtractionResult(paths, len(pos), len(neg), seconds, separation)
    summary = {**asdict(result), "paths": {k: str(v) for k, v in paths.items()}, "config": asdict(cfg)}
    (out_dir / "extraction.json").write_text(json.dumps(summary, indent=2))
    return result
