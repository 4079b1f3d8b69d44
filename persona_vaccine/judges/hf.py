"""A local transformers causal LM as judge: next-token, exact-number or sampled scores."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

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
from persona_vaccine.models.compat import cache_kwargs, last_logits_only, output_cache

logger = logging.getLogger(__name__)


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
        return local_cache_id(self.model_id, self.mode, self.answer_prefix, self.min_mass)

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
            self.model(**batch, position_ids=positions, **last_logits_only(self.model)).logits[:, -1].float()
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
        out = self.model(**batch, position_ids=positions, use_cache=True, **last_logits_only(self.model))
        p_first = out.logits[:, -1].float().softmax(-1)[:, digits]  # [n, 10]
        cache = output_cache(out)
        cache.batch_repeat_interleave(10)  # one row per (prompt, first digit)
        ones = torch.ones(n * 10, 1, dtype=mask.dtype, device=mask.device)
        mask1 = torch.cat([mask.repeat_interleave(10, 0), ones], 1)
        pos1 = positions[:, -1:].repeat_interleave(10, 0) + 1
        out1 = self.model(
            input_ids=digits.repeat(n)[:, None],
            attention_mask=mask1,
            position_ids=pos1,
            **cache_kwargs(self.model, cache),
        )
        p_second = out1.logits[:, -1].float().softmax(-1)[:, digits].view(n, 10, 10)  # [n, first, second]
        rows = torch.arange(n, device=mask.device) * 10 + 1  # the "1" rows, continued with "0"
        cache.batch_select_indices(rows)
        out2 = self.model(
            input_ids=digits[:1].repeat(n)[:, None],
            attention_mask=torch.cat([mask1[rows], ones[:n]], 1),
            position_ids=pos1[rows] + 1,
            **cache_kwargs(self.model, cache),
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
