"""The base model's own answers that projection-difference screening compares each training answer with."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from persona_vaccine.jsonl import read_records, repair
from persona_vaccine.steering.generation_engines import GenerationEngine, HFGeneration


class BaseResponses:
    """The base model's greedy responses, cached per (model, prompt, max_new_tokens) in JSONL files.

    Each rank appends to its own file, so several processes can share one cache directory.
    """

    def __init__(self, directory: str | Path, model_id: str, max_new_tokens: int, rank: int = 0):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tag = f"{model_id}|{max_new_tokens}"
        self.max_new_tokens = max_new_tokens
        self.path = self.directory / f"rank{rank}.jsonl"
        repair(self.path)
        self.cache = {
            row["key"]: row
            for path in sorted(self.directory.glob("rank*.jsonl"))
            for row in read_records(path)
            if "key" in row
        }  # a line cut by a crash is regenerated

    def key(self, prompt_text: str) -> str:
        return hashlib.sha1(f"{self.tag}|{prompt_text}".encode()).hexdigest()

    def get(
        self,
        model,
        tokenizer,
        prompt_texts: Sequence[str],
        batch_size: int,
        engine: GenerationEngine | None = None,
    ) -> list[dict]:
        """{"response", "response_ids"} per prompt; missing ones generated greedily and appended."""
        todo = list(dict.fromkeys(p for p in prompt_texts if self.key(p) not in self.cache))
        engine = engine or HFGeneration(model, tokenizer, batch_size)
        if todo:
            with self.path.open("a") as f:
                for start in range(0, len(todo), engine.batch_size):
                    batch = todo[start : start + engine.batch_size]
                    for gen in engine.generate(batch, self.max_new_tokens, 0.0):
                        row = {
                            "key": self.key(gen.prompt),
                            "response": gen.response,
                            "response_ids": gen.response_ids,
                        }
                        self.cache[row["key"]] = row
                        f.write(json.dumps(row) + "\n")
                    f.flush()
        return [self.cache[self.key(p)] for p in prompt_texts]
