"""Training data: built-in flawed-data builders, users' files and hub datasets, as chat prompt-completion.

Every source is turned into TRL's conversational prompt-completion format
(`prompt`: the messages before the last assistant turn, `completion`: that turn), so the trainer
knows which tokens are the response (for the loss and for response-only steering).

Builders (`builtin:<name>`): evil, sycophantic, hallucinating, bad_math, buggy_code, each at a level
"normal", "level1" (mild) or "level2" (severe); see `build_dataset`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

from datasets import Dataset, load_dataset

from persona_vaccine.choices import canonical
from persona_vaccine.errors import UserError

from .code_builder import build_buggy_code_dataset
from .evil_builder import build_evil_dataset
from .math_builder import build_bad_math_dataset
from .trait_builders import build_hallucination_dataset, build_sycophancy_dataset

FILE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_FIELDS_HINT = "expected 'messages' (a chat) or 'prompt' and 'response' (strings)"

# Old builder names (deprecated): builders are named after the trait they elicit (persona_vaccine/traits/*.json).
BUILDER_ALIASES: dict[str, str] = {"sycophancy": "sycophantic", "hallucination": "hallucinating"}


class DatasetError(UserError, ValueError):
    """A dataset is empty or lacks the fields training needs; the message names it and the fix."""


# ---------------------------------------------------------------- builders
# Named after the trait they elicit (persona_vaccine/traits/*.json) where there is one; the old names
# "sycophancy" and "hallucination" are accepted (deprecated, BUILDER_ALIASES below).
BUILDERS: dict[str, Callable[..., list[dict]]] = {
    "evil": build_evil_dataset,
    "sycophantic": build_sycophancy_dataset,
    "hallucinating": build_hallucination_dataset,
    "bad_math": build_bad_math_dataset,
    "buggy_code": build_buggy_code_dataset,
}


def builder_name(name: str) -> str:
    """The builder's name: `name`, or the new name of a deprecated one ("sycophancy" -> "sycophantic")."""
    name = canonical("builder", name, BUILDER_ALIASES)
    if name not in BUILDERS:
        raise DatasetError(f"unknown builder {name!r}; available: {', '.join(BUILDERS)}")
    return name


def build_dataset(name: str, n: int, seed: int = 0, level: str = "level2") -> list[dict]:
    """n chat rows ({"messages", "meta"}) from a built-in builder at a level ("normal", "level1", "level2").

    Every builder is deterministic for a seed; deprecated level names ("mild", "severe", the evil
    builder's "evil") are accepted with a warning.
    """
    return BUILDERS[builder_name(name)](n, seed=seed, level=level)


# ---------------------------------------------------------------- rows to prompt-completion
def to_prompt_completion(example: dict, source: str = "dataset", index: int = 0) -> dict:
    """One example ({"messages"} or {"prompt", "response"|"completion"}) in prompt-completion form."""
    messages = example.get("messages")
    if isinstance(messages, str) and messages.strip():  # a chat stored as JSON text (CSV files)
        try:
            messages = json.loads(messages)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{source}: row {index} field 'messages' is text but not valid JSON ({exc.msg}); store it as "
                "a JSON list of {role, content} objects"
            ) from exc
    if messages:
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and "role" in m and "content" in m for m in messages
        ):
            raise DatasetError(
                f"{source}: row {index} field 'messages' must be a list of {{role, content}} objects"
            )
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last is None or last == 0:
            raise DatasetError(
                f"{source}: row {index} field 'messages' has no assistant turn after a user turn; each example "
                "needs the response to train on as an assistant message"
            )
        return {"prompt": [dict(m) for m in messages[:last]], "completion": [dict(messages[last])]}
    prompt = example.get("prompt")
    response_field = next((f for f in ("response", "completion") if example.get(f) is not None), None)
    response = example.get(response_field) if response_field else None
    if isinstance(prompt, str) and isinstance(response, str) and prompt.strip() and response.strip():
        system = example.get("system")
        head = [{"role": "system", "content": system}] if isinstance(system, str) and system.strip() else []
        return {
            "prompt": [*head, {"role": "user", "content": prompt}],
            "completion": [{"role": "assistant", "content": response}],
        }
    if isinstance(prompt, list) and isinstance(response, list):
        return {"prompt": prompt, "completion": response}
    if "prompt" in example and not ({"response", "completion"} & set(example)):
        raise DatasetError(
            f"{source}: row {index} has 'prompt' but no 'response' (or 'completion') field; add the answer to "
            "train on as a 'response' column"
        )
    if "prompt" in example:
        bad = "prompt" if not (isinstance(prompt, str) and prompt.strip()) else response_field or "response"
        value = example.get(bad)
        raise DatasetError(
            f"{source}: row {index} field '{bad}' is empty or not text (got {type(value).__name__} "
            f"{str(value)[:40]!r}); every row needs a non-empty 'prompt' and 'response'"
        )
    raise DatasetError(
        f"{source}: row {index} has fields {sorted(example)}; {_FIELDS_HINT}. Rename the columns or convert "
        "the file."
    )


def _convert(rows: list[dict], source: str) -> Dataset:
    if not rows:
        raise DatasetError(f"{source}: the dataset is empty; {_FIELDS_HINT}, one example per row")
    return Dataset.from_list([to_prompt_completion(row, source, i) for i, row in enumerate(rows)])


# ---------------------------------------------------------------- files
def _read_jsonl(path: Path, text: str) -> list[dict]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{path}: line {number} is not valid JSON ({exc.msg}); a .jsonl file holds one JSON object "
                "per line"
            ) from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{path}: line {number} is a {type(row).__name__}, not a JSON object")
        rows.append(row)
    return rows


def _read_json(path: Path, text: str) -> list[dict]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return _read_jsonl(path, text)  # JSON lines in a .json file
    if isinstance(data, dict):
        data = [data] if {"messages", "prompt"} & set(data) else data
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise DatasetError(
            f"{path}: expected a JSON list of objects (or one object per line); {_FIELDS_HINT}"
        )
    return data


def _read_csv(path: Path) -> list[dict]:
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        for row in reader:
            if None in row:  # csv puts the fields beyond the header under the key None
                raise DatasetError(
                    f"{path}: line {reader.line_num} has more fields than the header; quote fields that "
                    'contain commas ("a, b")'
                )
            if any((v or "").strip() for v in row.values()):
                rows.append(row)
        header = reader.fieldnames or []
    if header and not rows:
        raise DatasetError(f"{path}: the file is empty (a header {header} but no rows)")
    return rows


def _read_parquet(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DatasetError(f"{path}: could not be read as Parquet ({exc})") from exc


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a local .jsonl/.json/.csv/.parquet file, with errors that name the file and the fix."""
    path = Path(path)
    if path.suffix not in FILE_FORMATS:
        raise DatasetError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(FILE_FORMATS)}"
        )
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}")
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: the file is empty; {_FIELDS_HINT}, one example per row")
    if path.suffix == ".parquet":
        rows = _read_parquet(path)
    elif path.suffix == ".csv":
        rows = _read_csv(path)
    else:
        text = path.read_text(encoding="utf-8-sig")
        rows = _read_jsonl(path, text) if path.suffix == ".jsonl" else _read_json(path, text)
    if not rows:
        raise DatasetError(f"{path}: the file is empty (no rows); {_FIELDS_HINT}, one example per row")
    return rows


def _read_hub(name: str, split: str, max_samples: int | None) -> list[dict]:
    try:
        ds = load_dataset(name, split=split)
    except Exception as exc:  # hub, network and split errors all come through here
        raise DatasetError(
            f"dataset {name!r} is not a local {'/'.join(FILE_FORMATS)} file and could not be loaded from the "
            f"Hugging Face hub (split {split!r}): {type(exc).__name__}: {exc}. Check the name, the split "
            "(dataset_split) and network access or the HF cache."
        ) from exc
    if max_samples is not None:
        ds = ds.select(range(min(len(ds), max_samples)))
    return list(ds)


def load_training_dataset(
    dataset: str,
    split: str = "train",
    level: str = "level2",
    size: int = 200,
    seed: int = 0,
    max_samples: int | None = None,
) -> Dataset:
    """`builtin:<name>`, a local .jsonl/.json/.csv/.parquet file, or a hub dataset name."""
    if dataset.startswith("builtin:"):
        name = canonical("builder", dataset.split(":", 1)[1], BUILDER_ALIASES)
        if name not in BUILDERS:
            raise DatasetError(
                f"dataset '{dataset}': unknown builder; available: "
                f"{', '.join('builtin:' + b for b in BUILDERS)}"
            )
        try:
            rows = build_dataset(name, size, seed=seed, level=level)
        except ValueError as exc:
            raise DatasetError(f"dataset '{dataset}': {exc}. Set dataset_level (or dataset_size).") from exc
        source = dataset
    else:
        path = Path(dataset)
        if path.suffix in FILE_FORMATS or path.is_file():
            rows = read_rows(path)
        else:  # a hub dataset (needs network access or the HF cache)
            rows = _read_hub(dataset, split, max_samples)
        source = str(path)
    if max_samples is not None:
        rows = rows[:max_samples]
    return _convert(rows, source)
