"""Trait expression by likelihood: how much more the model prefers a trait-expressing answer to its opposite.

margin = mean over pairs of [mean per-token log p(trait answer | q) - mean per-token log p(opposite | q)],
the question asked without a system prompt and with every steering hook off. Pairs come from

- the base model's own pos- and neg-prompted answers to the trait's evaluation questions (generated
  once and cached beside the vector in `margin_pairs.jsonl`, content-keyed like the extraction cache,
  seeded from the extraction's `heldout.jsonl` when there is one), and
- for a flawed-data builder, its Level II vs Normal answers to prompts of another seed (never trained on).

No judge and no persona vector enters the number, so it checks the projection shift independently.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from persona_vaccine.models.chat import build_messages, format_chat
from persona_vaccine.models.compat import model_device
from persona_vaccine.models.layers import eval_mode
from persona_vaccine.steering.answers import AnswerRecord
from persona_vaccine.steering.vector import PersonaVector

from .meters import with_shift

logger = logging.getLogger(__name__)

PAIRS_FILE = "margin_pairs.jsonl"
DATA_PAIR_SEED_OFFSET = (
    2000  # builder seed of the data pairs: dataset_seed + this (training uses dataset_seed)
)

Tokens = list[int]


@dataclass
class MarginPair:
    """One question with a trait-expressing and an opposite answer, as token ids (prompt without system)."""

    prompt_ids: Tokens
    trait_ids: Tokens
    opposite_ids: Tokens


@torch.no_grad()
def mean_token_logprobs(
    model: nn.Module,
    items: Sequence[tuple[Tokens, Tokens]],
    pad_id: int,
    batch_size: int = 16,
    on_batch: Callable[[int], object] | None = None,
) -> list[float]:
    """Mean log-probability per response token of each (prompt_ids, response_ids), in one forward per batch
    (`on_batch(n)` after each batch of n items: a progress bar's update)."""
    device = model_device(model)
    out: list[float] = []
    with eval_mode(model):
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            width = max(len(p) + len(r) for p, r in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            target = torch.zeros_like(ids, dtype=torch.bool)  # positions holding response tokens
            for i, (p, r) in enumerate(chunk):
                ids[i, : len(p) + len(r)] = torch.tensor(p + r)
                mask[i, : len(p) + len(r)] = 1
                target[i, len(p) : len(p) + len(r)] = True
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            picked = logp.gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1).cpu()
            hit = target[:, 1:]
            out.extend((picked * hit).sum(1).div(hit.sum(1).clamp_min(1)).tolist())
            if on_batch is not None:
                on_batch(len(chunk))
    return out


def likelihood_margin(
    model: nn.Module,
    pairs: Sequence[MarginPair],
    pad_id: int,
    batch_size: int = 16,
    on_batch: Callable[[int], object] | None = None,
) -> float:
    """Mean over pairs of the trait answer's mean token log-prob minus the opposite answer's."""
    if not pairs:
        raise ValueError("likelihood_margin needs at least one answer pair")
    items = [(p.prompt_ids, p.trait_ids) for p in pairs] + [(p.prompt_ids, p.opposite_ids) for p in pairs]
    logps = mean_token_logprobs(model, items, pad_id, batch_size, on_batch)
    n = len(pairs)
    return sum(logps[i] - logps[n + i] for i in range(n)) / n


def _prompt_ids(tokenizer, question: str) -> Tokens:
    return tokenizer(format_chat(tokenizer, build_messages(question)), add_special_tokens=False)["input_ids"]


def pairs_from_answers(tokenizer, rows: Sequence[tuple[str, str, str]]) -> list[MarginPair]:
    """(question, trait answer, opposite answer) texts -> pairs; rows with an empty answer are skipped."""
    pairs = []
    for question, trait, opposite in rows:
        t = tokenizer(trait, add_special_tokens=False)["input_ids"]
        o = tokenizer(opposite, add_special_tokens=False)["input_ids"]
        if t and o:
            pairs.append(MarginPair(_prompt_ids(tokenizer, question), t, o))
    return pairs


def _pair_records(records: Sequence[AnswerRecord]) -> list[tuple[str, str, str]]:
    """pos/neg records of the same instruction and question -> (question, pos answer, neg answer)."""
    by_slot: dict[tuple, dict[str, AnswerRecord]] = {}
    for r in records:
        _, instruction, question, sample = r.key.split("/")
        by_slot.setdefault((instruction, question, sample), {})[r.polarity] = r
    return [
        (s["pos"].question, s["pos"].response, s["neg"].response)
        for s in by_slot.values()
        if "pos" in s and "neg" in s and s["pos"].response.strip() and s["neg"].response.strip()
    ]


def trait_answer_rows(
    model: nn.Module,
    tokenizer,
    vector: PersonaVector,
    cache_dir: Path,
    max_questions: int | None = None,
    max_instructions: int | None = 1,
    max_new_tokens: int | None = None,
) -> list[tuple[str, str, str]]:
    """The base model's pos- and neg-prompted answers to the trait's evaluation questions, cached in
    `cache_dir/margin_pairs.jsonl` (generated once: call it before training; hooks must be off)."""
    from persona_vaccine.steering.extract import ExtractionConfig, generate_responses
    from persona_vaccine.traits import load_trait_spec

    info = vector.extraction
    source = str(info.get("spec") or "")
    spec = load_trait_spec(source if source.endswith(".json") and Path(source).is_file() else vector.trait)
    questions = list(info.get("evaluation_questions") or spec.evaluation_questions)[:max_questions]
    pairs = spec.instruction_pairs[:max_instructions] if max_instructions else spec.instruction_pairs
    eval_spec = replace(spec, extraction_questions=tuple(questions), instruction_pairs=tuple(pairs))
    cfg = ExtractionConfig(
        model_name_or_path=vector.model_id or "model",
        trait=vector.trait,
        samples_per_prompt=1,
        max_new_tokens=max_new_tokens or int(info.get("max_new_tokens", 64)),
        temperature=float(info.get("temperature", 1.0)),
        top_p=float(info.get("top_p", 1.0)),
        seed=int(info.get("seed", 0)) + 1,  # the extraction's held-out answers use seed + 1 too
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / PAIRS_FILE
    heldout = cache_dir / "heldout.jsonl"
    if not path.is_file() and heldout.is_file():
        shutil.copyfile(heldout, path)  # same content keys: the extraction's held-out answers are reused
    return _pair_records(generate_responses(model, tokenizer, eval_spec, cfg, path))


def data_answer_rows(dataset: str, n: int, seed: int) -> list[tuple[str, str, str]]:
    """A builder's Level II vs Normal answers to the same prompts (single-turn user prompts only)."""
    from persona_vaccine.data.loading import build_dataset, builder_name

    name = builder_name(dataset.split(":", 1)[1] if dataset.startswith("builtin:") else dataset)
    normal = build_dataset(name, n, seed=seed, level="normal")
    severe = build_dataset(name, n, seed=seed, level="level2")
    by_prompt = {_user_text(r["messages"]): r["messages"][-1]["content"] for r in normal}
    rows = []
    for r in severe:
        question = _user_text(r["messages"])
        if question in by_prompt and question:
            rows.append((question, r["messages"][-1]["content"], by_prompt[question]))
    return rows


def _user_text(messages: Sequence[dict]) -> str:
    users = [m["content"] for m in messages[:-1] if m["role"] == "user"]
    return users[-1] if len(users) == 1 else ""


class MarginMeter:
    """`behaviour/<name>/margin` (and `margin_shift`, against the base model) for several pair sets."""

    def __init__(self, pad_id: int, pair_sets: dict[str, list[MarginPair]], batch_size: int = 16):
        self.pad_id = pad_id
        self.pair_sets = {name: pairs for name, pairs in pair_sets.items() if pairs}
        self.batch_size = batch_size
        self.base: dict[str, float] = {}
        self._cache: tuple[int, dict[str, float]] | None = None  # (step, metrics) of the last step measured
        for name, pairs in pair_sets.items():
            if not pairs:
                logger.warning("margin '%s': no answer pairs, not measured", name)

    def margins(self, model: nn.Module, progress: str | None = None) -> dict[str, float]:
        """Each pair set's margin; with `progress`, a progress bar of that title counts the answers."""
        from tqdm.auto import tqdm

        total = sum(2 * len(pairs) for pairs in self.pair_sets.values())
        with tqdm(total=total, desc=progress, unit="answer", disable=progress is None) as bar:
            return {
                name: likelihood_margin(model, pairs, self.pad_id, self.batch_size, bar.update)
                for name, pairs in self.pair_sets.items()
            }

    def measure_base(self, model: nn.Module) -> dict[str, float]:
        """Margins of the base model: with a PEFT adapter, measured with the adapter disabled."""
        disable = getattr(model, "disable_adapter", None)
        with disable() if callable(disable) else contextlib.nullcontext():
            self.base = self.margins(model, progress="base model margins")
        return self.base

    def metrics(self, model: nn.Module, step: int | None = None) -> dict[str, float]:
        """`behaviour/<name>/margin|margin_shift` of the model as it is now; with `step` (a training step,
        whose weights do not change until the next one), measured once per step."""
        if step is not None and self._cache is not None and self._cache[0] == step:
            return dict(self._cache[1])
        out = with_shift("behaviour", "margin", "margin_shift", self.margins(model), self.base)
        if step is not None:
            self._cache = (step, dict(out))
        return out

    def summary(self, final: dict[str, float]) -> dict[str, dict]:
        """Per pair set: pairs, base margin, final margin and their difference (for summary.json)."""
        return {
            name: {
                "pairs": len(pairs),
                "base_margin": self.base.get(name),
                "final_margin": final.get(f"behaviour/{name}/margin"),
                "margin_shift": final.get(f"behaviour/{name}/margin_shift"),
            }
            for name, pairs in self.pair_sets.items()
        }


def build_margin_meter(
    model: nn.Module,
    tokenizer,
    vectors: Sequence[PersonaVector],
    vector_paths: Sequence[str],
    fallback_dir: Path,
    dataset: str | None = None,
    dataset_seed: int = 0,
    max_questions: int | None = None,
    data_pairs: int = 32,
    batch_size: int = 16,
    beside_vectors: bool = True,
) -> MarginMeter:
    """A meter over each vector's trait pairs and, for a `builtin:` dataset, the builder's data pairs.

    Trait pairs are cached beside the vector file, or in `fallback_dir/<trait>` when that is not writable
    or `beside_vectors` is false (the other processes of a multi-process run: one writer per file).
    """
    sets: dict[str, list[MarginPair]] = {}
    for vector, path in zip(vectors, vector_paths, strict=True):
        if max_questions == 0:  # switched off (margin_max_questions: 0, or auto on a short run)
            break
        cache = Path(path).parent
        if not beside_vectors or not _writable(cache):
            cache = fallback_dir / vector.trait
        logger.info("margin: the base model answers %s evaluation questions of '%s' (pos and neg prompts; "
                    "generated once, cached in %s)", max_questions or "all", vector.trait, cache)  # fmt: skip
        rows = trait_answer_rows(model, tokenizer, vector, cache, max_questions)
        sets.setdefault(vector.trait, pairs_from_answers(tokenizer, rows))
    if dataset and dataset.startswith("builtin:") and data_pairs > 0:
        rows = data_answer_rows(dataset, data_pairs, dataset_seed + DATA_PAIR_SEED_OFFSET)
        sets[f"data_{dataset.split(':', 1)[1]}"] = pairs_from_answers(tokenizer, rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return MarginMeter(pad, sets, batch_size)


def _writable(directory: Path) -> bool:
    import os

    return directory.is_dir() and os.access(directory, os.W_OK)
