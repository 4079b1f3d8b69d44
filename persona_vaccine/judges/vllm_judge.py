"""The local judge on vLLM: the same scoring schemes as `HFJudge`, from vLLM's top-k log-probabilities.

"numbers" (digit-splitting tokenizers, SmolLM2's): P(answer == n) for n = 0..100 from the digit tokens'
probabilities after the prompt, after each first digit, and after "10", as `HFJudge.number_probs` does,
all asked in one batch (the shared prompt is computed once with prefix caching). A digit outside the top
k counts as probability 0. "logprobs" (single-token numbers): the top-k next tokens. "sample": greedy
answers, first number parsed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import torch

from persona_vaccine.judges.hf import _digit_token_ids, has_single_token_numbers
from persona_vaccine.judges.scores import (
    MIN_NUMBER_MASS,
    TOP_LOGPROBS,
    JudgeMode,
    local_cache_id,
    parse_sampled_score,
    score_from_number_probs,
    score_from_probs,
)
from persona_vaccine.models.chat import format_chat


class VllmJudge:
    """A judge running on an already started vLLM engine (`vllm.LLM`), e.g. the generation engine's."""

    def __init__(
        self,
        llm: Any,
        tokenizer: Any,
        model_id: str,
        mode: JudgeMode | None = None,
        top_k: int = TOP_LOGPROBS,
        max_new_tokens: int = 4,
        answer_prefix: str = "",
        min_mass: float = MIN_NUMBER_MASS,
    ) -> None:
        self.llm, self.tokenizer, self.model_id = llm, tokenizer, model_id
        single = has_single_token_numbers(tokenizer)
        self.mode: JudgeMode = mode or ("logprobs" if single else "numbers")
        if self.mode == "logprobs" and not single:
            raise ValueError(f"Tokenizer of judge '{model_id}' splits the numbers 0..100: use mode 'numbers'")
        self.digits = _digit_token_ids(tokenizer, model_id).tolist() if self.mode == "numbers" else []
        self.top_k, self.max_new_tokens = top_k, max_new_tokens
        self.answer_prefix, self.min_mass = answer_prefix, min_mass

    @property
    def cache_id(self) -> str:
        """Not shared with `HFJudge`: top-k truncation and another engine's numerics change the scores."""
        return local_cache_id(self.model_id, self.mode, self.answer_prefix, self.min_mass) + "|vllm"

    def _ids(self, prompts: Sequence[str]) -> list[list[int]]:
        texts = [
            format_chat(self.tokenizer, [{"role": "user", "content": p}]) + self.answer_prefix
            for p in prompts
        ]
        return [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    def _next(self, prompts: list[list[int]], max_tokens: int = 1, logprobs: int | None = None) -> list[Any]:
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=max_tokens, temperature=0, logprobs=logprobs)
        inputs = [cast(Any, {"prompt_token_ids": p}) for p in prompts]
        return [o.outputs[0] for o in self.llm.generate(inputs, params, use_tqdm=False)]

    def _digit_probs(self, completion: Any) -> list[float]:
        top = completion.logprobs[0]
        return [math.exp(top[t].logprob) if t in top else 0.0 for t in self.digits]

    def number_probs(self, prompts: Sequence[str]) -> torch.Tensor:
        """[len(prompts), 101]: P(answer == n), as `HFJudge.number_probs` defines it."""
        d = self.digits
        asked = []
        for ids in self._ids(prompts):
            asked += [ids] + [ids + [digit] for digit in d] + [ids + [d[1], d[0]]]
        answers = self._next(asked, logprobs=self.top_k)
        n, per = len(prompts), 12
        rows = torch.tensor([self._digit_probs(a) for a in answers]).view(n, per, 10)
        p_first, p_second, p_third_zero = rows[:, 0], rows[:, 1:11], rows[:, 11, 0]
        probs = torch.zeros(n, 101)
        probs[:, :10] = p_first * (1 - p_second.sum(-1))
        probs[:, 10:100] = (p_first[:, 1:, None] * p_second[:, 1:, :]).reshape(n, 90)
        probs[:, 100] = p_first[:, 1] * p_second[:, 1, 0] * p_third_zero
        probs[:, 10] -= probs[:, 100]
        return probs.clamp_min(0)

    def top_tokens(self, prompts: Sequence[str]) -> list[list[tuple[str, float]]]:
        out = []
        for answer in self._next(self._ids(prompts), logprobs=self.top_k):
            top = answer.logprobs[0]
            out.append([(self.tokenizer.decode([t]), math.exp(lp.logprob)) for t, lp in top.items()])
        return out

    def score(self, prompts: list[str]) -> list[float | None]:
        """One score per filled rubric (None: refusal or no number)."""
        if self.mode == "numbers":
            return [score_from_number_probs(row, self.min_mass) for row in self.number_probs(prompts)]
        if self.mode == "logprobs":
            return [score_from_probs(pairs, self.min_mass) for pairs in self.top_tokens(prompts)]
        answers = self._next(self._ids(prompts), max_tokens=self.max_new_tokens)
        return [parse_sampled_score(a.text) for a in answers]
