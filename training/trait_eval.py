"""Judged trait expression of a (fine-tuned) model on a trait's evaluation questions, optionally steered.

The model answers the evaluation questions greedily (no system prompt); a judge scores trait and
coherence 0..100 (docs/method.md section 3). With `steer_coef`, the answers are generated with the
persona vector added at inference (a negative coefficient: the inference-time steering the paper
compares preventative steering against).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from persona_vaccine.judges.judge import COHERENCE_RUBRIC, Judge, JudgeCache, judge_responses
from persona_vaccine.models.chat import build_messages, format_chat
from persona_vaccine.steering.generation_engines import GenerationEngine, HFGeneration, Steering
from persona_vaccine.steering.vector import PersonaVector
from persona_vaccine.traits import load_trait_spec


def _mean(values: Sequence[float | None]) -> float | None:
    scored = [v for v in values if v is not None]
    return sum(scored) / len(scored) if scored else None


def judged_expression(
    model,
    tokenizer,
    vector: PersonaVector,
    judge: Judge | None,
    n_questions: int | None = 10,
    max_new_tokens: int = 48,
    batch_size: int = 16,
    steer_coef: float | None = None,
    steer_layer: int | None = None,
    steer_vector: PersonaVector | None = None,
    cache_path: str | Path | None = None,
    questions: Sequence[str] | None = None,
    progress: str | None = None,
    engine: GenerationEngine | None = None,
) -> dict:
    """{"trait", "coherence" (means), "n_scored", "questions", "answers", "trait_scores",
    "coherence_scores" (one per answer)} on the trait's evaluation questions; with `judge=None`, the
    answers only (scores None).

    `steer_vector` (default: `vector` itself) is added at `steer_layer` with `steer_coef` while answering.
    """
    source = str(vector.extraction.get("spec") or "")
    spec = load_trait_spec(source if source.endswith(".json") and Path(source).is_file() else vector.trait)
    questions = list(questions or spec.evaluation_questions)[:n_questions]
    prompts = [format_chat(tokenizer, build_messages(q)) for q in questions]

    steering = None
    if steer_coef:
        added = steer_vector or vector
        steering = Steering(added, steer_layer or added.default_layer(), steer_coef)
    engine = engine or HFGeneration(model, tokenizer, batch_size)
    gens = engine.generate(prompts, max_new_tokens, temperature=0.0, steering=steering, progress=progress)
    items = [(q, g.response) for q, g in zip(questions, gens, strict=True)]
    if judge is None:
        nothing: list[float | None] = [None] * len(items)
        return _result(questions, gens, nothing, nothing)
    cache = JudgeCache(cache_path) if cache_path else None
    try:
        trait = judge_responses(judge, cache, spec.judge_rubric, items, progress=False)
        coherence = judge_responses(judge, cache, COHERENCE_RUBRIC, items, progress=False)
    finally:
        if cache is not None:
            cache.close()
    return _result(questions, gens, trait, coherence)


def _result(questions: list[str], gens, trait: list, coherence: list) -> dict:
    return {
        "trait": _mean(trait),
        "coherence": _mean(coherence),
        "n_scored": sum(v is not None for v in trait),
        "questions": questions,
        "answers": [g.response for g in gens],
        "trait_scores": list(trait),
        "coherence_scores": list(coherence),
    }
