"""Score texts, chats or dataset rows on a persona vector, and flag those above its calibrated thresholds.

The projections and thresholds are `steering.score`'s; this module turns samples into token ids, rows and
the report `launch.py score` prints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from persona_vaccine.models.chat import format_chat
from persona_vaccine.steering.score import Calibration, calibrate, project
from persona_vaccine.steering.vector import PersonaVector


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
