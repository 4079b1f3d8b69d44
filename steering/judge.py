"""LLM judge: 0..100 scores for trait expression and coherence (METHOD.md section 3).

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
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from steering.chat import format_chat
from steering.llm_http import LLMRequestError, post_json

logger = logging.getLogger(__name__)

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


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Judges
# ---------------------------------------------------------------------------------------------


@runtime_checkable
class Judge(Protocol):
    """Anything that scores filled rubrics: one score (0..100, or None for no score) per prompt."""

    model_id: str

    def score(self, prompts: list[str]) -> list[float | None]: ...


def score_from_number_probs(probs: torch.Tensor, min_mass: float = MIN_NUMBER_MASS) -> float | None:
    """Weighted mean of 0..100 from P(answer == n); None when the numbers hold less than `min_mass`."""
    mass = float(probs.sum())
    if mass < min_mass or mass <= 0.0:
        return None
    return float((probs * torch.arange(len(probs), dtype=probs.dtype)).sum()) / mass


def _last_logits_only(model: PreTrainedModel) -> dict:
    """`logits_to_keep=1` where the model takes it: no [batch, length, vocab] logits for a judge's prompt."""
    import inspect

    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}


def _output_cache(output: object) -> object:
    cache = getattr(output, "cache", None)  # transformers >= 5.2x; `past_key_values` before
    return cache if cache is not None else output.past_key_values


def _cache_kwarg(model: PreTrainedModel, cache: object) -> dict:
    import inspect

    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    return {name: cache}


def _digit_token_ids(tokenizer: PreTrainedTokenizerBase, model_id: str) -> torch.Tensor:
    ids = [tokenizer.encode(str(d), add_special_tokens=False) for d in range(10)]
    if any(len(i) != 1 for i in ids):
        raise ValueError(
            f"Tokenizer of judge '{model_id}' has no single-token digits 0..9; use mode='sample'."
        )
    return torch.tensor([i[0] for i in ids])


def has_single_token_numbers(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether each of "0".."100" (or " 0".." 100") encodes to exactly one token."""
    for n in range(101):
        variants = (str(n), f" {n}")
        if not any(len(tokenizer.encode(v, add_special_tokens=False)) == 1 for v in variants):
            return False
    return True


class HFJudge:
    """A local transformers causal LM as judge.

    mode "logprobs" (tokenizer has single-token numbers 0..100): one forward pass over the
    chat-formatted prompt, top-20 next-token probabilities -> `score_from_probs`.
    mode "numbers" (digits split, e.g. Llama 2, Qwen2.5, SmolLM2): the exact probability of each
    answer "0".."100" from the digit tokens (a prompt pass, then one token for each first digit,
    sharing the prompt's KV cache) -> the same weighted mean and 0.25 mass rule. The default for
    digit-splitting tokenizers.
    mode "sample": greedy generation of `max_new_tokens` tokens, first number parsed.
    `answer_prefix` is appended after the assistant header (e.g. "Score: "): small models that
    do not answer with a bare number can be held to one. The mode is detected from the tokenizer
    unless given; `self.mode` says which is used. A tokenizer without a pad token gets its eos
    token as pad token.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        model_id: str | None = None,
        mode: JudgeMode | None = None,
        batch_size: int = 8,
        top_k: int = TOP_LOGPROBS,
        max_new_tokens: int = 4,
        answer_prefix: str = "",
        min_mass: float = MIN_NUMBER_MASS,
    ) -> None:
        self.model = model.eval()
        self.min_mass = min_mass
        self.tokenizer = tokenizer
        self.model_id = model_id or getattr(model.config, "name_or_path", "") or "hf-judge"
        self.single_token_numbers = has_single_token_numbers(tokenizer)
        if mode is None:
            mode = "logprobs" if self.single_token_numbers else "numbers"
        elif mode == "logprobs" and not self.single_token_numbers:
            raise ValueError(
                f"Tokenizer of judge '{self.model_id}' splits the numbers 0..100 into several tokens, so "
                "logprob scoring is impossible; use mode='numbers' or 'sample' (or leave mode unset)."
            )
        if mode not in ("logprobs", "numbers", "sample"):
            raise ValueError(f"mode must be 'logprobs', 'numbers' or 'sample', got {mode!r}")
        if mode == "numbers":
            self.digit_ids = _digit_token_ids(tokenizer, self.model_id)
        self.mode: JudgeMode = mode
        self.batch_size = batch_size
        self.top_k = top_k
        self.max_new_tokens = max_new_tokens
        self.answer_prefix = answer_prefix
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        logger.info("Judge %s scores by %s", self.model_id, mode)

    @property
    def cache_id(self) -> str:
        """Cache key part: the model and how it is asked (different schemes must not share scores)."""
        mass = (
            ""
            if self.mode == "sample" or self.min_mass == MIN_NUMBER_MASS
            else f"|min_mass={self.min_mass:g}"
        )
        return f"{self.model_id}|{self.mode}|{self.answer_prefix}{mass}"

    def _encode(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        texts = [
            format_chat(self.tokenizer, [{"role": "user", "content": p}]) + self.answer_prefix
            for p in prompts
        ]
        batch = self.tokenizer(
            texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        )
        return {k: v.to(self.model.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}

    @torch.inference_mode()
    def top_tokens(self, prompts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Top-k next-token (text, probability) pairs after each chat-formatted prompt."""
        batch = self._encode(prompts)
        mask = batch["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: real tokens start at 0
        logits = (
            self.model(**batch, position_ids=positions, **_last_logits_only(self.model)).logits[:, -1].float()
        )
        probs, ids = logits.softmax(-1).topk(self.top_k, dim=-1)
        out = []
        for row_p, row_ids in zip(probs.tolist(), ids.tolist(), strict=True):
            texts = self.tokenizer.batch_decode([[i] for i in row_ids])
            out.append(list(zip(texts, row_p, strict=True)))
        return out

    @torch.inference_mode()
    def number_probs(self, prompts: Sequence[str]) -> torch.Tensor:
        """[len(prompts), 101]: the probability that the answer is exactly the number n, for n = 0..100.

        P("57") = P(5) P(7 | 5) (three-digit answers other than 100 are counted by their first two
        digits); P("7") = P(7) (1 - P(digit | 7)); P("100") = P(1) P(0 | 1) P(0 | 10).
        """
        batch = self._encode(prompts)
        mask = batch["attention_mask"]
        n, digits = mask.shape[0], self.digit_ids.to(mask.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(**batch, position_ids=positions, use_cache=True, **_last_logits_only(self.model))
        p_first = out.logits[:, -1].float().softmax(-1)[:, digits]  # [n, 10]
        cache = _output_cache(out)
        cache.batch_repeat_interleave(10)  # one row per (prompt, first digit)
        ones = torch.ones(n * 10, 1, dtype=mask.dtype, device=mask.device)
        mask1 = torch.cat([mask.repeat_interleave(10, 0), ones], 1)
        pos1 = positions[:, -1:].repeat_interleave(10, 0) + 1
        out1 = self.model(
            input_ids=digits.repeat(n)[:, None],
            attention_mask=mask1,
            position_ids=pos1,
            **_cache_kwarg(self.model, cache),
        )
        p_second = out1.logits[:, -1].float().softmax(-1)[:, digits].view(n, 10, 10)  # [n, first, second]
        rows = torch.arange(n, device=mask.device) * 10 + 1  # the "1" rows, continued with "0"
        cache.batch_select_indices(rows)
        out2 = self.model(
            input_ids=digits[:1].repeat(n)[:, None],
            attention_mask=torch.cat([mask1[rows], ones[:n]], 1),
            position_ids=pos1[rows] + 1,
            **_cache_kwarg(self.model, cache),
        )
        p_third_zero = out2.logits[:, -1].float().softmax(-1)[:, digits[0]]  # P("0" | "10")
        probs = torch.zeros(n, 101, device=mask.device)
        probs[:, :10] = p_first * (1 - p_second.sum(-1))
        probs[:, 10:100] = (p_first[:, 1:, None] * p_second[:, 1:, :]).reshape(n, 90)
        probs[:, 100] = p_first[:, 1] * p_second[:, 1, 0] * p_third_zero
        probs[:, 10] -= probs[:, 100]
        return probs.clamp_min(0).cpu()

    @torch.inference_mode()
    def sample(self, prompts: Sequence[str]) -> list[str]:
        """Greedy answers (up to `max_new_tokens` tokens) to the chat-formatted prompts."""
        batch = self._encode(prompts)
        generated = self.model.generate(
            **batch,
            do_sample=False,
            max_new_tokens=self.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        new = generated[:, batch["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)

    def score(self, prompts: list[str]) -> list[float | None]:
        """One score per filled rubric (None: refusal or no number)."""
        scores: list[float | None] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            if self.mode == "logprobs":
                scores.extend(score_from_probs(pairs, self.min_mass) for pairs in self.top_tokens(chunk))
            elif self.mode == "numbers":
                scores.extend(score_from_number_probs(row, self.min_mass) for row in self.number_probs(chunk))
            else:
                scores.extend(parse_sampled_score(text) for text in self.sample(chunk))
        return scores


class JudgeRequestError(LLMRequestError):
    """A judge endpoint failed after all retries, or with a status that is not worth retrying."""


class OpenAIJudge:
    """Any OpenAI-compatible /v1/chat/completions endpoint (OpenAI, vLLM, llama.cpp, `transformers serve`).

    `base_url` includes the version prefix, e.g. "https://api.openai.com/v1" or
    "http://127.0.0.1:8000/v1". The API key is read from $`api_key_env` at each request (optional
    for local servers) and never logged or put in exception messages.

    Each prompt is one request: temperature 0, max_tokens 1, logprobs with top-20; the score needs
    `min_mass` of the probability on numbers. When the server returns choices without logprobs
    (mode "auto"), the judge switches to `mode == "sample"`: max_tokens `sample_max_tokens`, first
    number parsed. Connection errors, 408/409/425/429, 5xx and malformed replies (not UTF-8, not
    JSON, no `choices`) are retried with exponential backoff (honouring Retry-After); a malformed
    reply never switches the mode. `concurrency` requests run in parallel.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        max_retries: int = 5,
        timeout: float = 60.0,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        mode: Literal["auto", "logprobs", "sample"] = "auto",
        sample_max_tokens: int = 5,
        top_logprobs: int = TOP_LOGPROBS,
        model_id: str | None = None,
        min_mass: float = MIN_NUMBER_MASS,
    ) -> None:
        if mode not in ("auto", "logprobs", "sample"):
            raise ValueError(f"mode must be 'auto', 'logprobs' or 'sample', got {mode!r}")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.min_mass = min_mass
        self.requested_mode = mode
        self.model = model
        self.model_id = model_id or model
        self.api_key_env = api_key_env
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.auto = mode == "auto"
        self.mode: JudgeMode = "sample" if mode == "sample" else "logprobs"
        self.sample_max_tokens = sample_max_tokens
        self.top_logprobs = top_logprobs
        self._mode_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIJudge(url={self.url!r}, model={self.model!r}, mode={self.mode!r})"

    @property
    def cache_id(self) -> str:
        """Cache key part: backend, base URL, model and scoring scheme (never the API key)."""
        scheme = f"{self.requested_mode}|min_mass={self.min_mass:g}|top={self.top_logprobs}|sample={self.sample_max_tokens}"
        return f"openai|{self.base_url}|{self.model}|{scheme}"

    def _post(self, payload: dict) -> dict:
        key = os.environ.get(self.api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            return post_json(
                self.url,
                payload,
                headers,
                self.timeout,
                self.max_retries,
                self.backoff,
                secret=key,
                max_backoff=self.max_backoff,
                require="choices",
            )
        except LLMRequestError as e:
            raise JudgeRequestError(str(e)) from None

    @staticmethod
    def _top_logprobs(response: dict) -> dict[str, float] | None:
        """Token -> logprob of the first generated token, or None when the server sent none."""
        try:
            content = response["choices"][0]["logprobs"]["content"]
            first = content[0]
        except (KeyError, IndexError, TypeError):
            return None
        top = first.get("top_logprobs") or [{"token": first.get("token"), "logprob": first.get("logprob")}]
        probs: dict[str, float] = {}
        for entry in top:
            token, lp = entry.get("token"), entry.get("logprob")
            if isinstance(token, str) and isinstance(lp, int | float):
                probs[token] = probs.get(token, 0.0) + math.exp(lp)  # distinct ids, same text
        if not probs:
            return None
        return {t: math.log(p) if p > 0 else -math.inf for t, p in probs.items()}

    def _sample_one(self, prompt: str) -> float | None:
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": self.sample_max_tokens,
        }
        response = self._post(payload)
        try:
            text = response["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise JudgeRequestError(f"unexpected answer shape from {self.url}") from None
        return parse_sampled_score(text)

    def _switch_to_sampling(self, why: str) -> None:
        with self._mode_lock:
            if self.mode != "sample":
                logger.warning("Judge %s: %s; falling back to sampling and parsing", self.model_id, why)
                self.mode = "sample"

    def _score_one(self, prompt: str) -> float | None:
        if self.mode == "sample":
            return self._sample_one(prompt)
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }
        try:
            response = self._post(payload)
        except JudgeRequestError as e:
            if self.auto and "HTTP 400" in str(e) and "logprob" in str(e).lower():
                self._switch_to_sampling("the server rejects logprobs")
                return self._sample_one(prompt)
            raise
        top = self._top_logprobs(response)
        if top is None:
            if not self.auto:
                raise JudgeRequestError(f"{self.url} returned no logprobs for model {self.model!r}")
            self._switch_to_sampling("the server returned no logprobs")
            return self._sample_one(prompt)
        return score_from_logprobs(top, self.min_mass)

    def score(self, prompts: list[str]) -> list[float | None]:
        """One score per filled rubric, `concurrency` requests at a time, in the prompts' order."""
        if not prompts:
            return []
        if len(prompts) == 1 or self.concurrency == 1:
            return [self._score_one(p) for p in prompts]
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts)))
        try:
            futures = [pool.submit(self._score_one, p) for p in prompts]
            wait(futures, return_when=FIRST_EXCEPTION)
            for f in futures:
                if f.done() and f.exception() is not None:
                    raise f.exception()
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------
# Cache and driver
# ---------------------------------------------------------------------------------------------


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

    "self": the given model judges (its own answers, in extraction); "classifier:PATH": a trained
    TF-IDF classifier judge file or trait directory (trait only, offline); "openai:MODEL": an
    OpenAI-compatible endpoint (`base_url` or $OPENAI_BASE_URL, key from $OPENAI_API_KEY); anything
    else: a local HF model id or path (or "smollm2-135m"), loaded with `steering.models.load_model`.
    """
    if name.startswith("classifier:"):  # an offline TF-IDF trait classifier (steering/judge_classifier.py)
        from .judge_classifier import ClassifierJudge

        return ClassifierJudge.load(name.split(":", 1)[1])
    if name.startswith("openai:"):
        url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        return OpenAIJudge(url, name.split(":", 1)[1], mode=mode, min_mass=min_mass)  # type: ignore[arg-type]
    if name != "self":
        from steering.models import load_model

        model, tokenizer = load_model(name)
        model_id = name
    if model is None or tokenizer is None:
        raise ValueError("judge 'self' needs the model and tokenizer being extracted from")
    return HFJudge(
        model,
        tokenizer,
        model_id=model_id,
        mode=None if mode == "auto" else mode,
        batch_size=batch_size,
        answer_prefix=answer_prefix,
        min_mass=min_mass,
    )
