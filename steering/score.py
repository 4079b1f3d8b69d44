"""Project texts, chats or dataset rows on a persona vector, and flag those above a calibrated threshold.

Two reads per sample at the vector's layer, both on the unit vector: the last prompt token (it
predicts the trait of the coming answer, METHOD.md section 4) and the response average (the trait
expressed in the given answer). Thresholds are calibrated on the vector's own extraction data:
the projections of its pos and neg responses, cut where balanced accuracy is highest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .activations import prompt_response_activations
from .chat import format_chat
from .vector import PersonaVector

logger = logging.getLogger(__name__)


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """Probability that a random pos score exceeds a random neg score (ties count half)."""
    if not pos or not neg:
        raise ValueError("AUC needs at least one pos and one neg score")
    p, n = torch.tensor(list(pos), dtype=torch.float64), torch.tensor(list(neg), dtype=torch.float64)
    greater = (p[:, None] > n[None, :]).double().sum() + 0.5 * (p[:, None] == n[None, :]).double().sum()
    return float(greater / (len(p) * len(n)))


def best_threshold(pos: Sequence[float], neg: Sequence[float]) -> float:
    """The cut maximising balanced accuracy (pos above, neg below); midpoints between sorted scores."""
    values = sorted(set(pos) | set(neg))
    candidates = [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)] or values
    p, n = torch.tensor(list(pos)), torch.tensor(list(neg))

    def balanced(t: float) -> float:
        return float((p > t).double().mean() + (n <= t).double().mean()) / 2

    return max(candidates, key=balanced)


@dataclass
class Calibration:
    layer: int
    prompt_threshold: float
    response_threshold: float
    prompt_auc: float
    response_auc: float
    n_pos: int
    n_neg: int


def encode_sample(
    tokenizer, prompt: Sequence[dict], completion: Sequence[dict] | None = None
) -> tuple[str, list[int], list[int]]:
    """(formatted prompt, prompt ids, response ids) of a chat prompt and an optional assistant completion."""
    prompt_text = format_chat(tokenizer, list(prompt))
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    text = completion[0]["content"] if completion else ""
    response_ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
    return prompt_text, prompt_ids, response_ids


def _samples_to_ids(tokenizer, samples: Sequence[dict]) -> list[tuple[list[int], list[int]]]:
    """Each sample: {"prompt": [messages]} with an optional {"completion": [assistant message]}."""
    return [encode_sample(tokenizer, s["prompt"], s.get("completion"))[1:] for s in samples]


def project(
    model,
    pairs: Sequence[tuple[list[int], list[int]]],
    vector: PersonaVector,
    layer: int,
    pad_id: int,
    batch_size: int = 16,
) -> tuple[list[float], list[float | None]]:
    """(last-prompt-token projection, response-average projection or None when there is no response)."""
    acts = prompt_response_activations(
        model, pairs, pad_id, batch_size=batch_size, progress=len(pairs) > batch_size
    )
    unit = vector.unit(layer)
    prompt = (acts.prompt_last[:, layer - 1] @ unit).tolist()
    response = (acts.response_avg[:, layer - 1] @ unit).tolist()
    return prompt, [r if len(p[1]) else None for r, p in zip(response, pairs, strict=True)]


def calibrate(
    model, tokenizer, vector: PersonaVector, layer: int, generations: Path, batch_size: int = 16
) -> Calibration:
    """Thresholds from the extraction responses in `generations` (generations.jsonl beside the vector)."""
    cache = generations.parent / "thresholds.json"
    key = f"{vector.position}:{layer}"
    cached = json.loads(cache.read_text()) if cache.is_file() else {}
    if key in cached:
        return Calibration(**cached[key])
    records = [json.loads(line) for line in generations.read_text().splitlines() if line.strip()]
    records = [r for r in records if r["response_ids"]]
    pairs = [(r["prompt_ids"], r["response_ids"]) for r in records]
    prompt, response = project(model, pairs, vector, layer, tokenizer.pad_token_id, batch_size)
    is_pos = [r["polarity"] == "pos" for r in records]
    split = {
        name: (
            [v for v, p in zip(vals, is_pos, strict=True) if p],
            [v for v, p in zip(vals, is_pos, strict=True) if not p],
        )
        for name, vals in (("prompt", prompt), ("response", response))
    }
    result = Calibration(
        layer=layer,
        prompt_threshold=best_threshold(*split["prompt"]),
        response_threshold=best_threshold(*split["response"]),
        prompt_auc=auc(*split["prompt"]),
        response_auc=auc(*split["response"]),
        n_pos=sum(is_pos),
        n_neg=len(is_pos) - sum(is_pos),
    )
    cached[key] = result.__dict__
    cache.write_text(json.dumps(cached, indent=2))
    return result


def score_samples(
    model,
    tokenizer,
    vector: PersonaVector,
    layer: int,
    samples: Sequence[dict],
    calibration: Calibration | None = None,
    batch_size: int = 16,
) -> list[dict]:
    """One row per sample: projections and, with a calibration, a flag per read."""
    prompt, response = project(
        model, _samples_to_ids(tokenizer, samples), vector, layer, tokenizer.pad_token_id, batch_size
    )
    rows = []
    for i, (p, r) in enumerate(zip(prompt, response, strict=True)):
        row = {
            "index": i,
            "trait": vector.trait,
            "layer": layer,
            "prompt_projection": p,
            "response_projection": r,
        }
        if calibration is not None:
            row["prompt_flag"] = p > calibration.prompt_threshold
            row["response_flag"] = None if r is None else r > calibration.response_threshold
            row["flagged"] = bool(row["response_flag"]) if r is not None else row["prompt_flag"]
        rows.append(row)
    return rows
