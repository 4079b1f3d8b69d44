"""LLM judge: 0..100 scores for trait expression and coherence (docs/method.md section 3).

A judge reads a filled rubric (question and answer inserted) and answers with one number. With a
tokenizer whose numbers "0".."100" are single tokens, one forward pass (or one API call with
`max_tokens=1`, top-20 logprobs) gives the score as the probability-weighted mean of the number
tokens; when they hold less than 0.25 of the probability the answer counts as a refusal (None).
Judges that cannot give logprobs (digit-splitting tokenizers, servers without logprobs) sample a
few tokens greedily and parse the first number instead.

Scores are cached in SQLite, keyed by (judge identity, rubric hash, question, answer), so an
interrupted run resumes without asking the judge again. The judge identity (`cache_id`) names the
backend, base URL, model, scoring mode and min_mass: scores of one scheme are never served to another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from persona_vaccine.judges.hf import HFJudge, has_single_token_numbers
from persona_vaccine.judges.openai_api import JudgeRequestError, OpenAIJudge
from persona_vaccine.judges.scores import (
    COHERENCE_RUBRIC,
    MIN_NUMBER_MASS,
    TOP_LOGPROBS,
    Judge,
    JudgeMode,
    check_rubric,
    fill_rubric,
    parse_sampled_score,
    rubric_id,
    score_from_logprobs,
    score_from_number_probs,
    score_from_probs,
)

__all__ = [
    "COHERENCE_RUBRIC",
    "MIN_NUMBER_MASS",
    "TOP_LOGPROBS",
    "HFJudge",
    "Judge",
    "JudgeCache",
    "JudgeMode",
    "JudgeRequestError",
    "OpenAIJudge",
    "check_rubric",
    "fill_rubric",
    "has_single_token_numbers",
    "judge_responses",
    "make_judge",
    "parse_sampled_score",
    "rubric_id",
    "score_from_logprobs",
    "score_from_number_probs",
    "score_from_probs",
]

logger = logging.getLogger(__name__)


class JudgeCache:
    """Persistent SQLite cache: (judge model id, rubric id, question, answer) -> score.

    A judged item with no score is stored with score NULL and `judged = 1`, so it is not asked
    again. Safe to share between threads; WAL mode lets several processes use one file.
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False, isolation_level=None)
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS judgments ("
                " key TEXT PRIMARY KEY, judge TEXT NOT NULL, rubric TEXT NOT NULL,"
                " question TEXT NOT NULL, answer TEXT NOT NULL, score REAL,"
                " judged INTEGER NOT NULL DEFAULT 1, created REAL NOT NULL)"
            )

    @staticmethod
    def key(judge_id: str, rubric: str, question: str, answer: str) -> str:
        """Row key: a hash of judge id, rubric id and the exact question and answer texts."""
        return hashlib.sha256(json.dumps([judge_id, rubric, question, answer]).encode()).hexdigest()

    def get_many(
        self, judge_id: str, rubric: str, items: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], float | None]:
        """The cached scores of those items that were judged before (missing items are absent)."""
        keys = {self.key(judge_id, rubric, q, a): (q, a) for q, a in items}
        found: dict[tuple[str, str], float | None] = {}
        key_list = list(keys)
        with self._lock:
            for start in range(0, len(key_list), 500):
                chunk = key_list[start : start + 500]
                rows = self._conn.execute(
                    f"SELECT key, score FROM judgments WHERE judged = 1 AND key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, score in rows:
                    found[keys[key]] = score
        return found

    def get(self, judge_id: str, rubric: str, question: str, answer: str) -> tuple[bool, float | None]:
        """(judged before?, score)."""
        found = self.get_many(judge_id, rubric, [(question, answer)])
        return ((question, answer) in found, found.get((question, answer)))

    def put_many(
        self, judge_id: str, rubric: str, results: Iterable[tuple[tuple[str, str], float | None]]
    ) -> None:
        """Store ((question, answer), score) results in one transaction."""
        now = time.time()
        rows = [(self.key(judge_id, rubric, q, a), judge_id, rubric, q, a, s, now) for (q, a), s in results]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO judgments (key, judge, rubric, question, answer, score, judged,"
                    " created) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                    rows,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def put(self, judge_id: str, rubric: str, question: str, answer: str, score: float | None) -> None:
        self.put_many(judge_id, rubric, [((question, answer), score)])

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def judge_responses(
    judge: Judge,
    cache: JudgeCache | None,
    rubric: str,
    items: Sequence[tuple[str, str]],
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "judging",
    on_batch: Callable[[int], None] | None = None,
) -> list[float | None]:
    """Score (question, answer) items with `rubric`; one score (or None) per item, in order.

    Only items missing from the cache are sent to the judge (duplicates once), `batch_size` per
    call; each batch's scores are written to the cache as soon as they arrive, so an interrupted
    run resumes where it stopped.
    """
    check_rubric(rubric)
    batch_size = max(1, batch_size)
    rid = rubric_id(rubric)
    pairs = [(str(q), str(a)) for q, a in items]
    unique = list(dict.fromkeys(pairs))
    judge_id = getattr(judge, "cache_id", judge.model_id)
    known = cache.get_many(judge_id, rid, unique) if cache is not None else {}
    todo = [qa for qa in unique if qa not in known]
    if known:
        logger.info("%d of %d judgments cached; asking the judge for %d", len(known), len(unique), len(todo))
    with tqdm(total=len(todo), desc=desc, disable=not progress or not todo, leave=False) as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            scores = judge.score([fill_rubric(rubric, q, a) for q, a in chunk])
            if len(scores) != len(chunk):
                raise RuntimeError(f"judge {judge.model_id} returned {len(scores)} scores for {len(chunk)}")
            results = list(zip(chunk, scores, strict=True))
            if cache is not None:
                cache.put_many(judge_id, rid, results)
            known.update(results)
            bar.update(len(chunk))
            if on_batch is not None:
                on_batch(len(chunk))
    return [known[qa] for qa in pairs]


def make_judge(
    name: str,
    model: PreTrainedModel | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    model_id: str | None = None,
    base_url: str | None = None,
    mode: str = "auto",
    answer_prefix: str = "",
    batch_size: int = 8,
    min_mass: float = MIN_NUMBER_MASS,
) -> Judge:
    """A judge from a short name.

    "self": the given model judges (its own answers, in extraction); "classifier:PATH[,PATH...]": trained
    TF-IDF classifier judge files or trait directories (one per trait, trait only, offline); "openai:MODEL": an
    OpenAI-compatible endpoint (`base_url` or $OPENAI_BASE_URL, key from $OPENAI_API_KEY); anything
    else: a local HF model id or path (or "smollm2-135m"), loaded with `persona_vaccine.models.loading.load_model`.
    """
    if name.startswith(
        "classifier:"
    ):  # an offline TF-IDF trait classifier (persona_vaccine/judges/classifier.py)
        from persona_vaccine.judges.classifier import ClassifierJudge, ClassifierJudges

        paths = [p for p in name.split(":", 1)[1].split(",") if p]
        return ClassifierJudge.load(paths[0]) if len(paths) == 1 else ClassifierJudges(paths)
    if name.startswith("openai:"):
        url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        return OpenAIJudge(url, name.split(":", 1)[1], mode=mode, min_mass=min_mass)  # type: ignore[arg-type]
    if name != "self":
        from persona_vaccine.models.loading import load_model

        model, tokenizer = load_model(name)
        model_id = name
    if model is None or tokenizer is None:
        raise ValueError("judge 'self' needs the model and tokenizer being extracted from")
    return HFJudge(
        model,
        tokenizer,
        model_id=model_id,
        mode=None if mode == "auto" else mode,  # type: ignore[arg-type]
        batch_size=batch_size,
        answer_prefix=answer_prefix,
        min_mass=min_mass,
    )
