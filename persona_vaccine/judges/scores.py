"""Judge scores: numbers 0..100 from token probabilities or sampled text, rubrics, the Judge protocol.

A filled rubric (question and answer inserted) asks for one number. With probabilities of the number
tokens the score is their probability-weighted mean; when they hold less than `min_mass` (0.25) of the
probability the answer counts as a refusal (None).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from typing import Literal, Protocol, runtime_checkable

import torch

MIN_NUMBER_MASS = 0.25
TOP_LOGPROBS = 20
JudgeMode = Literal["logprobs", "numbers", "sample"]

COHERENCE_RUBRIC = """I am evaluating a language model's answer. Rate how coherent the answer is, setting \
aside whether it is correct, helpful or appropriate.

Prompt:
[QUESTION START]
{question}
[QUESTION END]

Model response:
[ANSWER START]
{answer}
[ANSWER END]

Rate the answer on a scale of 0 to 100 for coherence only:
- 0 means "makes absolutely no sense; the model produced gibberish, unrelated text or endless repetition."
- 50 means "the answer kind of makes sense but seems a bit confused; the model is rambling or only \
partly follows the thread."
- 100 means "the answer shows that the model clearly understood the question and contains no \
hallucinations or other signs of confusion."

Judge coherence, not correctness: an answer that is wrong, or that you disagree with, can still be \
fully coherent.

Respond with a number between 0 and 100. Don't say anything else, just the number."""

_PLACEHOLDER = re.compile(r"\{(question|answer)\}")
_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?")


def _as_number(token: str) -> int | None:
    """The integer 0..100 a token stands for (surrounding whitespace ignored), else None."""
    text = token.strip()
    if not text or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= 100 else None


def score_from_probs(pairs: Iterable[tuple[str, float]], min_mass: float = MIN_NUMBER_MASS) -> float | None:
    """sum(k * p_k) / sum(p_k) over (token, probability) pairs whose token is an integer 0..100.

    None (refusal / no score) when the number tokens hold less than `min_mass` of the probability.
    """
    mass = weighted = 0.0
    for token, prob in pairs:
        value = _as_number(token)
        if value is not None:
            mass += prob
            weighted += value * prob
    if mass < min_mass or mass <= 0.0:
        return None
    return weighted / mass


def score_from_logprobs(top: dict[str, float], min_mass: float = MIN_NUMBER_MASS) -> float | None:
    """Judge score from top tokens mapped to their log-probabilities (as APIs return them).

    Tokens that parse as integers 0..100 after stripping whitespace are averaged, weighted by
    probability; None when their total probability is below `min_mass` (0.25).
    """
    return score_from_probs(((token, math.exp(lp)) for token, lp in top.items()), min_mass)


def parse_sampled_score(text: str | None) -> float | None:
    """The first number in a sampled judge answer if it lies in 0..100; None for REFUSAL or no number."""
    if not text:
        return None
    stripped = text.strip()
    if stripped.upper().startswith("REFUSAL"):
        return None
    match = _NUMBER.search(stripped)
    if match is None:
        return None
    value = float(match.group())
    return value if 0.0 <= value <= 100.0 else None


def fill_rubric(rubric: str, question: str, answer: str) -> str:
    """Insert question and answer into a rubric's {question} and {answer} (other braces left alone)."""
    values = {"question": question, "answer": answer}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], rubric)


def check_rubric(rubric: str) -> None:
    """Raise ValueError unless the rubric has both {question} and {answer}."""
    missing = [p for p in ("{question}", "{answer}") if p not in rubric]
    if missing:
        raise ValueError(f"Judge rubric lacks the placeholder(s) {', '.join(missing)}: {rubric[:80]!r}...")


def rubric_id(rubric: str) -> str:
    """Short stable hash of a rubric's text (part of the cache key: editing a rubric re-judges)."""
    return hashlib.sha256(rubric.encode()).hexdigest()[:16]


@runtime_checkable
class Judge(Protocol):
    """Anything that scores filled rubrics: one score (0..100, or None for no score) per prompt."""

    model_id: str

    def score(self, prompts: list[str]) -> list[float | None]: ...


def local_cache_id(model_id: str, mode: str, answer_prefix: str, min_mass: float) -> str:
    """A local judge's cache key part: the model and how it is asked (different schemes never share scores)."""
    mass = "" if mode == "sample" or min_mass == MIN_NUMBER_MASS else f"|min_mass={min_mass:g}"
    return f"{model_id}|{mode}|{answer_prefix}{mass}"


def score_from_number_probs(probs: torch.Tensor, min_mass: float = MIN_NUMBER_MASS) -> float | None:
    """Weighted mean of 0..100 from P(answer == n); None when the numbers hold less than `min_mass`."""
    mass = float(probs.sum())
    if mass < min_mass or mass <= 0.0:
        return None
    return float((probs * torch.arange(len(probs), dtype=probs.dtype)).sum()) / mass
