"""Extraction's answer records: what was asked, what the model answered, and what the judge said of it.

A record's `to_json()` is one line of `generations.jsonl` (the judge's scores stay in memory: they have
their own file, `judgments.jsonl`); `AnswerRecord.from_json` reads such a line back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Polarity = Literal["pos", "neg"]


@dataclass
class AnswerJob:
    """One answer to generate: a question under the pos or neg system prompt of an instruction pair."""

    key: str  # "<polarity>/<instruction>/<question>/<sample>"
    content_key: str  # a hash of everything that determines the answer (reuse across runs)
    polarity: Polarity
    instruction: int
    question: str
    system: str | None


@dataclass
class AnswerRecord(AnswerJob):
    """A generated answer, and the judge's scores once a filter has judged it."""

    prompt: str
    prompt_ids: list[int]
    response_ids: list[int]
    response: str
    trait_score: float | None = None
    coherence_score: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The `generations.jsonl` line: every field but the judge's scores."""
        row = asdict(self)
        del row["trait_score"], row["coherence_score"]
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> AnswerRecord:
        """A record from a `generations.jsonl` line (keys it doesn't know are ignored)."""
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})
