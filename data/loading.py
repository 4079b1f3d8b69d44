"""Training data: built-in flawed-data builders, users' files and hub datasets, as chat prompt-completion.

Every source is turned into TRL's conversational prompt-completion format
(`prompt`: the messages before the last assistant turn, `completion`: that turn), so the trainer
knows which tokens are the response (for the loss and for response-only steering).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from datasets import Dataset, load_dataset

from .evil_builder import build_evil_dataset

BUILDERS: dict[str, Callable[..., list[dict]]] = {"evil": build_evil_dataset}
FILE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


class DatasetError(ValueError):
    """A dataset is empty or lacks the fields training needs; the message names it and the fix."""


def to_prompt_completion(example: dict, source: str = "dataset", index: int = 0) -> dict:
    """One example ({"messages"} or {"prompt", "response"|"completion"}) in prompt-completion form."""
    if "messages" in example and example["messages"]:
        messages = example["messages"]
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
    response = example.get("response", example.get("completion"))
    if isinstance(prompt, str) and isinstance(response, str) and prompt.strip() and response.strip():
        return {
            "prompt": [{"role": "user", "content": prompt}],
            "completion": [{"role": "assistant", "content": response}],
        }
    if isinstance(prompt, list) and isinstance(response, list):
        return {"prompt": prompt, "completion": response}
    raise DatasetError(
        f"{source}: row {index} has fields {sorted(example)}; expected 'messages' (a chat) or "
        "'prompt' and 'response' (strings). Rename the columns or convert the file."
    )


def _convert(rows: list[dict], source: str) -> Dataset:
    if not rows:
        raise DatasetError(f"{source}: the dataset is empty")
    return Dataset.from_list([to_prompt_completion(row, source, i) for i, row in enumerate(rows)])


def load_training_dataset(
    dataset: str,
    split: str = "train",
    level: str = "evil",
    size: int = 200,
    seed: int = 0,
    max_samples: int | None = None,
) -> Dataset:
    """`builtin:<name>`, a local .jsonl/.json/.csv/.parquet file, or a hub dataset name."""
    if dataset.startswith("builtin:"):
        name = dataset.split(":", 1)[1]
        if name not in BUILDERS:
            raise DatasetError(
                f"dataset '{dataset}': unknown builder; available: "
                f"{', '.join('builtin:' + b for b in BUILDERS)}"
            )
        rows = BUILDERS[name](size, seed=seed, level=level)
        source = dataset
    else:
        path = Path(dataset)
        if path.suffix in FILE_FORMATS:
            if not path.is_file():
                raise DatasetError(f"dataset file not found: {path}")
            if path.stat().st_size == 0:
                raise DatasetError(f"{path}: the file is empty")
            rows = list(load_dataset(FILE_FORMATS[path.suffix], data_files=str(path), split="train"))
        else:  # a hub dataset (needs network access or the HF cache)
            rows = list(load_dataset(dataset, split=split))
        source = str(path)
    if max_samples is not None:
        rows = rows[:max_samples]
    return _convert(rows, source)
