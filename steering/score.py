"""Project texts, chats or dataset rows on a persona vector, and flag those above a calibrated threshold.

Two reads per sample at the vector's layer, both on the unit vector: the last prompt token (it
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

from persona_vaccine.models.chat import format_chat
from persona_vaccine.steering.activations import prompt_response_activations
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
        # every record kept has response_ids, so no response projection is None
        for name, vals in (("prompt", prompt), ("response", cast(list[float], response)))
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


@dataclass
class ScoreRun:
    """What `score_with_vector` did: the rows, the samples they score and the calibration, if any."""

    rows: list[dict]
    samples: list[dict]
    layer: int
    calibration: Calibration | None
    generations: Path  # the extraction responses the thresholds come from (may not exist)

    def describe(self, calibrate_thresholds: bool = True, show: int = 20) -> str:
        """What `launch.py score` prints: the thresholds, the first `show` rows, the flagged count."""
        lines = []
        c = self.calibration
        if c is not None:
            lines.append(
                f"thresholds from {c.n_pos} pos / {c.n_neg} neg extraction responses at layer {self.layer}: "
                f"prompt {c.prompt_threshold:+.2f} (AUC {c.prompt_auc:.3f}), response "
                f"{c.response_threshold:+.2f} (AUC {c.response_auc:.3f})"
            )
        elif calibrate_thresholds:
            lines.append(f"no {self.generations}: projections only, no flags")
        for row, sample in zip(self.rows[:show], self.samples, strict=False):
            text = sample["prompt"][-1]["content"][:60]
            resp = "-" if row["response_projection"] is None else f"{row['response_projection']:+.2f}"
            flag = {True: "FLAG", False: "ok", None: ""}[row.get("flagged")]
            lines.append(
                f"{row['index']:>4}  prompt {row['prompt_projection']:+8.2f}  response {resp:>8}  {flag:4}  {text}"
            )
        if c is not None:
            lines.append(f"{sum(r['flagged'] for r in self.rows)} of {len(self.rows)} samples flagged")
        return "\n".join(lines)


def score_with_vector(
    vector_path: str,
    samples: list[dict],
    layer: int | None = None,
    model_id: str | None = None,
    calibrate_thresholds: bool = True,
    batch_size: int = 16,
    layers_path: str | None = None,
    output: str | None = None,
) -> ScoreRun:
    """Score samples (chats or prompt/response rows) on a vector file (`launch.py score`).

    The model defaults to the one the vector was extracted from, the layer to the vector's calibrated
    (or middle) layer; thresholds come from generations.jsonl beside the vector when it exists.
    `output` gets one JSON row per sample.
    """
    from persona_vaccine.errors import InvalidInput
    from persona_vaccine.models.layers import check_layer
    from persona_vaccine.models.loading import load_model
    from persona_vaccine.steering.vector import vector_for_model

    vector = PersonaVector.load(vector_path)
    layer = vector.default_layer() if layer is None else layer
    try:
        check_layer(layer, vector.num_layers, where="--layer")
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    model, tokenizer = load_model(model_id or vector.model_id, layers_path=layers_path)
    vector_for_model(vector, model, model_id or vector.model_id, source=vector_path, layers_path=layers_path)
    generations = Path(vector_path).parent / "generations.jsonl"
    calibration = None
    if calibrate_thresholds and generations.is_file():
        calibration = calibrate(model, tokenizer, vector, layer, generations, batch_size)
    rows = score_samples(model, tokenizer, vector, layer, samples, calibration, batch_size)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ScoreRun(rows, samples, layer, calibration, generations)
