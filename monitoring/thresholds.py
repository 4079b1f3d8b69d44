"""Per-trait thresholds: calibrated on the vector's own extraction data, or set by hand.

Calibration is `steering.score.calibrate`: the vector's pos and neg extraction responses
(`generations.jsonl` beside the vector file) projected at the layer, cut where balanced accuracy is
highest, for the last prompt token (early warning) and the response average (running mean and cap).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from persona_vaccine.steering.score import calibrate
from persona_vaccine.steering.vector import PersonaVector

logger = logging.getLogger(__name__)


@dataclass
class Thresholds:
    prompt: float | None
    response: float | None
    source: str  # "extraction (N pos / M neg)", "manual" or "none"
    prompt_auc: float | None = None
    response_auc: float | None = None


def parse_manual(specs: list[str] | None) -> dict[str, tuple[float | None, float | None]]:
    """`["evil=1.5"]` (both reads) or `["evil=1.5,0.8"]` (prompt, response) -> {trait: (prompt, response)}."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for spec in specs or []:
        trait, sep, values = spec.partition("=")
        try:
            parts = [float(v) for v in values.split(",")]
        except ValueError:
            parts = []
        if not sep or not trait or len(parts) not in (1, 2):
            raise ValueError(f"--threshold {spec!r}: expected TRAIT=VALUE or TRAIT=PROMPT,RESPONSE (numbers)")
        out[trait] = (parts[0], parts[-1])
    return out


def thresholds_for(
    model,
    tokenizer,
    vector: PersonaVector,
    layer: int,
    vector_path: str | Path,
    manual: tuple[float | None, float | None] | None = None,
) -> Thresholds:
    """Hand-set values win; else calibrate on the extraction responses beside the vector file."""
    if manual is not None:
        return Thresholds(manual[0], manual[1], "manual")
    generations = Path(vector_path).parent / "generations.jsonl"
    if not generations.is_file():
        logger.warning(
            "%s: no %s to calibrate '%s' on: readings only, no alerts (set --threshold %s=VALUE)",
            vector_path,
            generations.name,
            vector.trait,
            vector.trait,
        )
        return Thresholds(None, None, "none")
    cal = calibrate(model, tokenizer, vector, layer, generations)
    return Thresholds(
        cal.prompt_threshold,
        cal.response_threshold,
        f"extraction ({cal.n_pos} pos / {cal.n_neg} neg)",
        cal.prompt_auc,
        cal.response_auc,
    )
