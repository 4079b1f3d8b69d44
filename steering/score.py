"""Project prompt/response pairs on a persona vector, and calibrate thresholds on its extraction answers.

Two reads per pair at the vector's layer, both on the unit vector: the last prompt token (it
predicts the trait of the coming answer, docs/method.md section 4) and the response average (the trait
expressed in the given answer). Thresholds are calibrated on the vector's own extraction data:
the projections of its pos and neg responses, cut where balanced accuracy is highest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch

from persona_vaccine.steering.activations import prompt_response_activations
from persona_vaccine.steering.answers import AnswerRecord
from persona_vaccine.steering.vector import PersonaVector

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


def project_by_polarity(
    model, records: Sequence[AnswerRecord], vector: PersonaVector, layer: int, pad_id: int, batch_size: int
) -> dict[str, tuple[list[float], list[float]]]:
    """{"prompt" | "response": (projections of the pos answers, of the neg answers)}; empty answers skipped."""
    records = [r for r in records if r.response_ids]
    pairs = [(r.prompt_ids, r.response_ids) for r in records]
    prompt, response = project(model, pairs, vector, layer, pad_id, batch_size)
    is_pos = [r.polarity == "pos" for r in records]
    return {
        name: (
            [v for v, p in zip(vals, is_pos, strict=True) if p],
            [v for v, p in zip(vals, is_pos, strict=True) if not p],
        )
        # every record kept has response_ids, so no response projection is None
        for name, vals in (("prompt", prompt), ("response", cast(list[float], response)))
    }


def calibrate(
    model, tokenizer, vector: PersonaVector, layer: int, generations: Path, batch_size: int = 16
) -> Calibration:
    """Thresholds from the extraction responses in `generations` (generations.jsonl beside the vector)."""
    cache = generations.parent / "thresholds.json"
    key = f"{vector.position}:{layer}"
    cached = json.loads(cache.read_text()) if cache.is_file() else {}
    if key in cached:
        return Calibration(**cached[key])
    records = [
        AnswerRecord.from_json(json.loads(line)) for line in generations.read_text().splitlines() if line
    ]
    split = project_by_polarity(model, records, vector, layer, tokenizer.pad_token_id, batch_size)
    result = Calibration(
        layer=layer,
        prompt_threshold=best_threshold(*split["prompt"]),
        response_threshold=best_threshold(*split["response"]),
        prompt_auc=auc(*split["prompt"]),
        response_auc=auc(*split["response"]),
        n_pos=len(split["prompt"][0]),
        n_neg=len(split["prompt"][1]),
    )
    cached[key] = result.__dict__
    cache.write_text(json.dumps(cached, indent=2))
    return result
