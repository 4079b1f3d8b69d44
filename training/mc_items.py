"""The built-in multiple-choice items of the `mc` capability benchmark (`data/capability/items.jsonl`):
loaded and validated, sampled across categories, and put in chat-formatted prompts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from persona_vaccine.data.capability import ITEMS_PATH as CAPABILITY_ITEMS_PATH
from persona_vaccine.models.chat import format_chat

from .capability_error import CapabilityError

ITEMS_PATH = CAPABILITY_ITEMS_PATH
LETTERS = "ABCD"
ANSWER_PREFIX = "Answer:"
_FIELDS = ("id", "category", "question", "choices", "answer")


def _check_item(item: object, where: str) -> dict:
    if not isinstance(item, dict):
        raise CapabilityError(f"{where}: expected a JSON object, got {type(item).__name__}")
    for field in _FIELDS:
        if field not in item:
            raise CapabilityError(f"{where}: field '{field}' is missing (needed: {', '.join(_FIELDS)})")
    for field in ("id", "category", "question"):
        if not isinstance(item[field], str) or not item[field].strip():
            raise CapabilityError(f"{where}: field '{field}' must be a non-empty string, got {item[field]!r}")
    choices = item["choices"]
    if (
        not isinstance(choices, list)
        or len(choices) != len(LETTERS)
        or not all(isinstance(c, str) and c.strip() for c in choices)
    ):
        raise CapabilityError(
            f"{where}: field 'choices' must be a list of {len(LETTERS)} non-empty strings, got {choices!r}"
        )
    if len(set(choices)) != len(choices):
        raise CapabilityError(f"{where}: field 'choices' has duplicate choices: {choices!r}")
    answer = item["answer"]
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(LETTERS):
        raise CapabilityError(
            f"{where}: field 'answer' must be an integer index 0-{len(LETTERS) - 1}, got {answer!r}"
        )
    return {field: item[field] for field in _FIELDS}


def load_items(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """Validated multiple-choice items from a JSONL file (default: the built-in benchmark).

    Each line: {"id", "category", "question", "choices": [4 strings], "answer": index}. `limit`
    keeps `limit` items sampled across categories (`stratified`). Errors name the file, line and field.
    """
    path = Path(path) if path is not None else ITEMS_PATH
    if limit is not None and limit < 1:
        raise CapabilityError(f"limit={limit}: expected a positive number of items or None")
    if not path.is_file():
        raise CapabilityError(f"Capability items file {path} does not exist")
    items: list[dict] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {lineno}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CapabilityError(f"{where}: not valid JSON ({exc})") from exc
            item = _check_item(raw, where)
            if item["id"] in seen:
                raise CapabilityError(
                    f"{where}: field 'id' {item['id']!r} repeats the id on line {seen[item['id']]}"
                )
            seen[item["id"]] = lineno
            items.append(item)
    if not items:
        raise CapabilityError(f"Capability items file {path} has no items")
    return stratified(items, limit)


def stratified(items: Sequence[dict], limit: int | None) -> list[dict]:
    """`limit` items taken in turn from each category (in file order within a category, categories in
    order of first appearance), so every category is represented; deterministic. None keeps all."""
    if limit is None or limit >= len(items):
        return list(items)
    by_category: dict[str, list[dict]] = {}
    for item in items:
        by_category.setdefault(item["category"], []).append(item)
    picked: list[dict] = []
    for rank in range(max(len(v) for v in by_category.values())):
        for group in by_category.values():
            if rank < len(group) and len(picked) < limit:
                picked.append(group[rank])
    return picked


def mc_prompt(tokenizer: PreTrainedTokenizerBase, item: dict) -> str:
    """The chat-formatted question with lettered choices, ending in the assistant prefix "Answer:"."""
    lines = [f"Question: {item['question']}"]
    lines += [f"{letter}. {choice}" for letter, choice in zip(LETTERS, item["choices"], strict=True)]
    lines.append("Answer with the letter.")
    content = "\n".join(lines)
    return format_chat(tokenizer, [{"role": "user", "content": content}]) + ANSWER_PREFIX


def cloze_prompt(tokenizer: PreTrainedTokenizerBase, item: dict) -> str:
    """The chat-formatted question alone (no choices listed), ending in the assistant prefix "Answer:"."""
    return format_chat(tokenizer, [{"role": "user", "content": item["question"]}]) + ANSWER_PREFIX
