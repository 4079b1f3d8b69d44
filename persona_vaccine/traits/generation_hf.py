"""A local HF model as trait-spec backend: sampling constrained to the spec's JSON shape."""

from __future__ import annotations

import inspect
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol, cast

from persona_vaccine.models.chat import format_chat
from persona_vaccine.traits import load_trait_spec, question_key
from persona_vaccine.traits.prompts import INSTRUCTIONS, RUBRIC_TEMPLATE

logger = logging.getLogger(__name__)


def _token_masks(model, tokenizer):
    """Over the model's output vocabulary: tokens that close a JSON string here (`"` or a line break) and
    tokens never to sample (special tokens, ids the tokenizer does not have)."""
    import torch

    size = model.get_output_embeddings().weight.shape[0]
    vocab = tokenizer.batch_decode([[i] for i in range(min(len(tokenizer), size))])
    closes = torch.zeros(size, dtype=torch.bool)
    closes[: len(vocab)] = torch.tensor(['"' in v or "\n" in v or "\r" in v for v in vocab])
    banned = torch.zeros(size, dtype=torch.bool)
    banned[len(vocab) :] = True
    banned[[i for i in tokenizer.all_special_ids if i < size]] = True
    return closes, banned


class _StringSampler:
    """Incremental sampling of JSON string values after a growing context, with a KV cache.

    `commit(text)` appends fixed text (the skeleton we write, or an accepted value); `sample()` draws one
    string value token by token until the model closes the string (a token containing `"` or a newline)
    or `max_tokens` is reached, then rolls the cache back to the committed context. Special tokens are
    never sampled and the first token may not close the string, so a value is never empty.
    """

    def __init__(self, model, tokenizer, masks, generator=None):
        import torch

        self.torch, self.model, self.tokenizer, self.generator = torch, model, tokenizer, generator
        self.closes, self.banned = masks
        self.cache = None
        self.length = 0  # tokens in the committed context
        self.logits = None  # next-token logits after the committed context
        params = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.2x

    def _forward(self, ids: list[int]):
        from transformers import DynamicCache

        if self.cache is None:
            try:
                self.cache = DynamicCache(config=self.model.config)
            except TypeError:
                self.cache = DynamicCache()
        with self.torch.no_grad():
            out = self.model(
                input_ids=self.torch.tensor([ids], device=self.model.device),
                use_cache=True,
                **{self.cache_arg: self.cache},
            )
        return out.logits[0, -1].float().cpu()

    def _rollback(self) -> None:
        extra = self.cache.get_seq_length() - self.length
        if extra > 0:
            self.cache.crop(-extra)

    def commit(self, text: str) -> None:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if ids:
            self.logits = self._forward(ids)
            self.length += len(ids)

    def sample(
        self, max_tokens: int, temperature: float, top_p: float = 0.95, top_k: int = 100, end: str = ""
    ) -> tuple[str, bool]:
        """One string value and whether it was closed (False: cut at `max_tokens`).

        Top-k then top-p sampling. The model closes a string with a token containing `"` or a newline;
        `end` (e.g. "?") also ends it, kept in the value.
        """
        torch, ids, logits = self.torch, [], self.logits
        first = self.banned | self.closes
        try:
            for step in range(max_tokens):
                logits = logits.masked_fill(first if step == 0 else self.banned, -float("inf"))
                top, order = logits.topk(min(top_k, logits.numel()))  # sorted, largest first
                probs = torch.softmax(top / max(temperature, 1e-3), dim=-1)
                probs = probs.masked_fill(probs.cumsum(0) - probs > top_p, 0.0)
                token = int(order[torch.multinomial(probs, 1, generator=self.generator)])
                ids.append(token)
                value = re.split(r'["\r\n]', self.tokenizer.decode(ids, skip_special_tokens=True))[0]
                if end and end in value:
                    return value[: value.index(end) + len(end)], True
                if self.closes[token]:
                    return value, True
                if step + 1 < max_tokens:
                    logits = self._forward([token])
            return self.tokenizer.decode(ids, skip_special_tokens=True), False
        finally:
            self._rollback()


_NUMBERING = re.compile(r"^(?:\d+\s*[.):]\s*|(?:question|q)\s*\d*\s*[:.)-]\s*|[-*\u2022]\s*)+", re.IGNORECASE)


def _clean(text: str, question: bool = False) -> str:
    text = re.sub(r"\s+", " ", text).strip().rstrip("\\").strip()
    return _NUMBERING.sub("", text) if question else text


def _sentence_ok(text: str, min_words: int) -> bool:
    return len(text.split()) >= min_words and len(text) >= 12 and any(c.isalpha() for c in text)


def _strict_ok(text: str, closed: bool, question: bool) -> bool:
    return closed and text[:1].isupper() and text.endswith("?") == question


def _repair(text: str, question: bool) -> str:
    """Capitalise; a question ends with '?', a sentence cut short ends at its last full stop."""
    text = text[:1].upper() + text[1:]
    if question:
        return text if text.endswith("?") else text.rstrip(" .,;:!") + "?"
    whole = re.match(r"(.*[.!])(?:\s|$)", text)
    return whole.group(1) if whole and len(whole.group(1).split()) >= 3 else text


def _example_turns(name: str, pairs: int = 2, questions: int = 4) -> tuple[list[dict], set[str]]:
    """A worked example (a cut-down built-in spec of another trait) and the keys of all its strings."""

    spec = load_trait_spec("evil" if name == "humorous" else "humorous")
    prompt = INSTRUCTIONS.format(
        name=spec.trait,
        description=spec.description.split(". ")[0].rstrip(".") + ".",
        pairs=pairs,
        questions=questions,
    )
    answer = {
        "trait": spec.trait,
        "description": spec.description.split(". ")[0].rstrip(".") + ".",
        "instruction_pairs": [{"pos": p.pos, "neg": p.neg} for p in spec.instruction_pairs[:pairs]],
        "extraction_questions": list(spec.extraction_questions[:questions]),
        "evaluation_questions": list(spec.evaluation_questions[:questions]),
    }
    turns = [{"role": "user", "content": prompt}, {"role": "assistant", "content": json.dumps(answer)}]
    pairs_text = [t for p in spec.instruction_pairs for t in (p.pos, p.neg)]
    return turns, {
        question_key(t) for t in (*spec.extraction_questions, *spec.evaluation_questions, *pairs_text)
    }


class HFBackend(Protocol):
    """`(prompt, feedback) -> spec dict`, with `stats`: the counts of its last call."""

    stats: dict[str, int]

    def __call__(self, prompt: str, feedback: str) -> dict: ...


def _prompt_field(pattern: str, prompt: str, flags: int = 0) -> str:
    match = re.search(pattern, prompt, flags)
    assert match is not None  # the prompt is built from INSTRUCTIONS, which holds every field
    return match.group(1)


@dataclass(frozen=True)
class _Sampling:
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    tries: int


class _SchemaFiller:
    """Fills the JSON skeleton's strings one at a time, with the resampling and repair rules of `hf_backend`."""

    def __init__(self, sampler: _StringSampler, sampling: _Sampling):
        self.sampler, self.sampling = sampler, sampling
        self.stats = {"resampled": 0, "repaired": 0, "skipped": 0}

    def fill(self, prefix: str, avoid: set[str], question: bool, min_words: int) -> str | None:
        """Sample the string after `prefix` + '"'; commit it with its closing quote if one is kept."""
        sp, sampler = self.sampling, self.sampler
        sampler.commit(prefix + '"')
        candidates = []
        for attempt in range(sp.tries):
            text, closed = sampler.sample(
                sp.max_tokens, sp.temperature + 0.2 * attempt, sp.top_p, sp.top_k, end="?" if question else ""
            )
            text = _clean(text, question)
            if _sentence_ok(text, min_words) and question_key(text) not in avoid:
                if _strict_ok(text, closed, question):
                    break
                candidates.append(text)
            self.stats["resampled"] += attempt < sp.tries - 1
        else:
            if not candidates:
                return None
            text = _repair(candidates[0], question)
            self.stats["repaired"] += 1
        sampler.commit(json.dumps(text)[1:-1] + '"')
        return text

    def sentence(self, prefix: str, fallback: str, avoid: set[str]) -> str:
        text = self.fill(prefix, avoid, question=False, min_words=3)
        if text is None:  # nothing usable: write the fallback so the context stays well-formed
            self.sampler.commit(json.dumps(fallback)[1:-1] + '"')
        return text or fallback

    def pairs(self, name: str, n_pairs: int, used: set[str]) -> list[dict[str, str]]:
        pairs = []
        self.sampler.commit(', "instruction_pairs": [')
        for i in range(n_pairs):
            pos = self.sentence(("{" if i == 0 else ", {") + '"pos": ', f"Be very {name}.", used)
            neg = self.sentence(', "neg": ', f"Never be {name}.", used | {question_key(pos)})
            used |= {question_key(pos), question_key(neg)}
            self.sampler.commit("}")
            pairs.append({"pos": pos, "neg": neg})
        self.sampler.commit("]")
        return pairs

    def questions(self, key: str, n_questions: int, seen: set[str]) -> list[str]:
        """Up to n distinct questions; up to n // 2 extra slots make up for skipped ones."""
        self.sampler.commit(f', "{key}": [')
        questions: list[str] = []
        for slot in range(n_questions + n_questions // 2):
            text = self.fill(", " if slot else "", seen, question=True, min_words=4)
            if text is None:
                self.stats["skipped"] += 1
                self.sampler.commit('"')  # close the abandoned string (the context only)
                continue
            seen.add(question_key(text))
            questions.append(text)
            if len(questions) == n_questions:
                break
        self.sampler.commit("]")
        return questions


def hf_backend(
    model,
    tokenizer,
    max_tokens: int = 40,
    temperature: float = 0.8,
    top_p: float = 0.95,
    top_k: int = 100,
    tries: int = 4,
    example: bool = True,
    seed: int | None = None,
) -> HFBackend:
    """Schema-constrained decoding on a local model: we write the JSON skeleton, the model fills each string.

    The trait name and the user's description are written as given; every other string is sampled after
    everything written so far (KV-cached), after a worked example of another built-in trait when `example`
    is set (it helps small models; a copy of its strings is never kept). The judge rubric is a fixed
    template around the description. `feedback` is not used: the output always fits the schema.

    A candidate is resampled (at most `tries` times, temperature +0.2 each time) unless the model closed it
    within `max_tokens`, it starts with a capital letter and has enough words; a question must also end
    with its first '?' and repeat no earlier question of either list (case and punctuation ignored), and
    an instruction must not be a question. When no try passes, the first sentence-like candidate that is
    not a repeat is kept, capitalised (a question gets its '?'). A question slot with no such candidate
    is skipped, and up to `n // 2` extra slots make up for skipped ones, so that even a weak model fills
    both lists with distinct questions.
    """
    import torch

    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    masks = _token_masks(model, tokenizer)
    sampling = _Sampling(max_tokens, temperature, top_p, top_k, tries)

    def ask(prompt: str, feedback: str) -> dict:
        name = _prompt_field(r'Trait name: "([^"]+)"', prompt)
        description = _prompt_field(r"Description: (.*?)\n\nReturn ONLY", prompt, re.DOTALL)
        n_pairs = int(_prompt_field(r"exactly (\d+) objects", prompt))
        n_questions = int(_prompt_field(r"exactly (\d+) distinct", prompt))
        turns, seen = _example_turns(name) if example else ([], set())
        messages = [*turns, {"role": "user", "content": prompt}]
        filler = _SchemaFiller(_StringSampler(model, tokenizer, masks, generator), sampling)
        filler.sampler.commit(format_chat(tokenizer, messages) + "{")
        # the user's description, not a small model's
        data: dict[str, Any] = {"trait": name, "description": description}
        filler.sampler.commit(f'"trait": "{name}", "description": {json.dumps(description)}')
        data["instruction_pairs"] = filler.pairs(name, n_pairs, set(seen))  # no copies of the example
        for key in ("extraction_questions", "evaluation_questions"):
            data[key] = filler.questions(key, n_questions, seen)
        data["judge_rubric"] = RUBRIC_TEMPLATE.format(name=name, explanation=data["description"])
        backend.stats = filler.stats
        logger.info(
            "hf backend: %d candidates resampled, %d kept after repair, %d question slots skipped",
            filler.stats["resampled"],
            filler.stats["repaired"],
            filler.stats["skipped"],
        )
        return data

    backend = cast(HFBackend, ask)  # a function with a `stats` attribute
    backend.stats = {}  # counts of the last call: resampled candidates, repaired ones, skipped question slots
    return backend
