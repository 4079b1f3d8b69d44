"""Any OpenAI-compatible chat endpoint as judge: top-20 logprobs of one token, or a sampled number."""

from __future__ import annotations

import logging
import math
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Literal

from persona_vaccine.judges.scores import (
    MIN_NUMBER_MASS,
    TOP_LOGPROBS,
    JudgeMode,
    parse_sampled_score,
    score_from_logprobs,
)
from persona_vaccine.llm_http import LLMRequestError, OpenAICompatibleChat

logger = logging.getLogger(__name__)


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
        self.client = OpenAICompatibleChat(
            model, self.base_url, api_key_env, timeout, max_retries, backoff, max_backoff
        )

    def __repr__(self) -> str:
        return f"OpenAIJudge(url={self.url!r}, model={self.model!r}, mode={self.mode!r})"

    @property
    def cache_id(self) -> str:
        """Cache key part: backend, base URL, model and scoring scheme (never the API key)."""
        scheme = f"{self.requested_mode}|min_mass={self.min_mass:g}|top={self.top_logprobs}|sample={self.sample_max_tokens}"
        return f"openai|{self.base_url}|{self.model}|{scheme}"

    def _post(self, max_tokens: int, prompt: str, **extra) -> dict:
        try:
            return self.client.complete(
                [{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0, **extra
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
        response = self._post(self.sample_max_tokens, prompt)
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
        try:
            response = self._post(1, prompt, logprobs=True, top_logprobs=self.top_logprobs)
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
                error = f.exception() if f.done() else None
                if error is not None:
                    raise error
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
