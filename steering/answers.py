"""Extraction's answer records: what was asked, what the model answered, and what the judge said of it.

They are the lines of `generations.jsonl` (the judge's scores are added in memory by the filter), typed
for the code that passes them from generation to judging, filtering and activation reading.
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import NotRequired, TypedDict

Polarity = Literal["pos", "neg"]


class AnswerJob(TypedDict):
    """One answer to generate: a question under the pos or neg system prompt of an instruction pair."""

    key: str  # "<polarity>/<instruction>/<question>/<sample>"
    content_key: str  # a hash of everything that determines the answer (reuse across runs)
    polarity: Polarity
    instruction: int
    question: str
    system: str | None


class AnswerRecord(AnswerJob):
    """A generated answer, and the judge's scores once the filter has judged it."""

    prompt: str
    prompt_ids: list[int]
    response_ids: list[int]
    response: str
    trait_score: NotRequired[float | None]
    coherence_score: NotRequired[float | None]
