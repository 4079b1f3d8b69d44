"""Which generated responses count as showing (pos) or avoiding (neg) the trait.

`KeepAll` keeps every non-empty response. `JudgeFilter` is docs/method.md section 2: an LLM judge
scores trait expression and coherence (0..100) and keeps pos responses with trait >= threshold,
neg responses with trait < threshold, both with coherence >= its threshold. Judgments go to a
SQLite cache as they are made (an interrupted run resumes without asking again) and to
`judgments.jsonl` beside the generations.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from persona_vaccine.judges.judge import COHERENCE_RUBRIC, Judge, JudgeCache, judge_responses, make_judge
from persona_vaccine.steering.answers import AnswerRecord
from persona_vaccine.steering.extract_config import ExtractionConfig
from persona_vaccine.steering.score import auc
from persona_vaccine.traits import TraitSpec

logger = logging.getLogger(__name__)


class ResponseFilter(Protocol):
    name: str

    def prepare(self, records: Sequence[AnswerRecord]) -> None:
        """Called once with every record before `keep` (judging happens here)."""
        ...

    def keep(self, record: AnswerRecord) -> bool:
        """Whether to build the vector from `record` (its polarity, question, system prompt, response)."""
        ...

    def summary(self) -> dict:
        """Counts and settings for the extraction report."""
        ...


class KeepAll:
    """No filtering: every non-empty response is kept."""

    name = "keep_all"

    def prepare(self, records: Sequence[AnswerRecord]) -> None:
        pass

    def keep(self, record: AnswerRecord) -> bool:
        return bool(record.response.strip())

    def summary(self) -> dict:
        return {"filter": self.name}


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def auto_thresholds(trait: Sequence[float | None], coherence: Sequence[float | None]) -> tuple[float, float]:
    """For weak judges with a compressed scale: trait at the pooled median, coherence at the lower quartile."""
    t = [x for x in trait if x is not None]
    c = [x for x in coherence if x is not None]
    if not t or not c:
        return 50.0, 50.0
    return _quantile(t, 0.5), _quantile(c, 0.25)


class JudgeFilter:
    """Keep responses by judged trait expression and coherence (thresholds on the 0..100 scale)."""

    name = "judge"

    def __init__(
        self,
        judge: Judge,
        rubric: str,
        cache_path: str | Path,
        trait_threshold: float = 50.0,
        coherence_threshold: float = 50.0,
        batch_size: int = 8,
        judgments_path: str | Path | None = None,
        auto_thresholds: bool = False,
    ) -> None:
        self.judge, self.rubric = judge, rubric
        self.cache_path = Path(cache_path)
        self.trait_threshold, self.coherence_threshold = trait_threshold, coherence_threshold
        self.batch_size = batch_size
        self.judgments_path = Path(judgments_path) if judgments_path else None
        self.auto_thresholds = auto_thresholds
        self._counts: dict = {}

    def prepare(self, records: Sequence[AnswerRecord]) -> None:
        items = [(r.question, r.response) for r in records]
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        with JudgeCache(self.cache_path) as cache:
            trait = judge_responses(
                self.judge, cache, self.rubric, items, self.batch_size, desc="judge: trait"
            )
            coherence = judge_responses(
                self.judge, cache, COHERENCE_RUBRIC, items, self.batch_size, desc="judge: coherence"
            )
        for record, t, c in zip(records, trait, coherence, strict=True):
            record.trait_score, record.coherence_score = t, c
        if self.auto_thresholds:
            self.trait_threshold, self.coherence_threshold = auto_thresholds(trait, coherence)
            logger.info(
                "auto thresholds: trait %.2f (pooled median), coherence %.2f (pooled lower quartile)",
                self.trait_threshold,
                self.coherence_threshold,
            )
        if self.judgments_path is not None:
            self.judgments_path.write_text(
                "".join(
                    json.dumps(
                        {k: getattr(r, k) for k in ("key", "polarity", "trait_score", "coherence_score")}
                    )
                    + "\n"
                    for r in records
                )
            )
        self._counts = self._count(records)

    def keep(self, record: AnswerRecord) -> bool:
        trait, coherence = record.trait_score, record.coherence_score
        if trait is None or coherence is None or coherence < self.coherence_threshold:
            return False
        return trait >= self.trait_threshold if record.polarity == "pos" else trait < self.trait_threshold

    def _count(self, records: Sequence[AnswerRecord]) -> dict:
        counts: dict = {
            "filter": self.name,
            "judge": getattr(self.judge, "cache_id", self.judge.model_id),
            "trait_threshold": self.trait_threshold,
            "coherence_threshold": self.coherence_threshold,
            "auto_thresholds": self.auto_thresholds,
        }
        scores = {}
        for polarity in ("pos", "neg"):
            rs = [r for r in records if r.polarity == polarity]
            traits = [r.trait_score for r in rs if r.trait_score is not None]
            scores[polarity] = traits
            counts[polarity] = {
                "generated": len(rs),
                "no_score": sum(r.trait_score is None or r.coherence_score is None for r in rs),
                "coherent": sum((r.coherence_score or 0) >= self.coherence_threshold for r in rs),
                "kept": sum(self.keep(r) for r in rs),
                "mean_trait": sum(traits) / len(traits) if traits else None,
            }
        # how well the judge tells the system prompts apart: 0.5 = not at all
        counts["judge_auc_pos_vs_neg"] = (
            auc(scores["pos"], scores["neg"]) if scores["pos"] and scores["neg"] else None
        )
        return counts

    def summary(self) -> dict:
        return self._counts

    def explain(self) -> str:
        """One line with the counts, for messages."""
        c = self._counts
        parts = [
            f"{p}: {c[p]['kept']}/{c[p]['generated']} kept ({c[p]['coherent']} coherent, mean trait "
            f"{c[p]['mean_trait'] if c[p]['mean_trait'] is None else round(c[p]['mean_trait'], 1)}, "
            f"{c[p]['no_score']} unscored)"
            for p in ("pos", "neg")
            if p in c
        ]
        return "; ".join(parts)


def make_filter(
    cfg: ExtractionConfig, spec: TraitSpec, model, tokenizer, out_dir: Path, engine: Any = None
) -> ResponseFilter:
    """The response filter the config asks for: KeepAll, or a JudgeFilter with its cache in `out_dir`.

    With the vLLM generation engine, judge "self" scores on that engine too."""
    if cfg.judge in ("none", "", None):
        return KeepAll()
    judge: Judge
    if cfg.judge == "self" and getattr(engine, "llm", None) is not None:
        from persona_vaccine.judges.vllm_judge import VllmJudge

        judge = VllmJudge(
            engine.llm,
            tokenizer,
            model_id=cfg.model_name_or_path,
            mode=None if cfg.judge_mode == "auto" else cfg.judge_mode,  # type: ignore[arg-type]
            answer_prefix=cfg.judge_answer_prefix,
            min_mass=cfg.judge_min_mass,
        )
    else:
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
