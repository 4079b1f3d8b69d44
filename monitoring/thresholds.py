"""Per-trait thresholds: from ordinary traffic, from the vector's own extraction data, or set by hand.

`ordinary` (the default when `calibrate-monitor` has written `NAME.ordinary.json` beside the vector): the
thresholds that keep alerts on ordinary prompts at the requested rate, and the cap at a high percentile of
ordinary answers (`monitoring.ordinary`). `extraction`: `steering.score.calibrate` on the vector's pos and
neg extraction responses (`generations.jsonl` beside the vector file), cut where balanced accuracy is
highest, for the last prompt token (early warning) and the response average (running mean and cap).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from persona_vaccine.errors import UserError
from persona_vaccine.steering.score import calibrate
from persona_vaccine.steering.vector import PersonaVector

from .ordinary import calibration_path, find_calibration

logger = logging.getLogger(__name__)


@dataclass
class Thresholds:
    prompt: float | None
    response: float | None
    source: str  # "extraction (N pos / M neg)", "manual" or "none"
    prompt_auc: float | None = None
    response_auc: float | None = None
    cap: float | None = None  # None: the cap is the response threshold
    band_caps: dict[int, float] = field(default_factory=dict)  # layer -> cap, for a cap over a band of layers
    false_alert_rate: float | None = None  # expected share of ordinary requests that alert


SOURCES = ("auto", "ordinary", "extraction")


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
    source: str = "auto",
) -> Thresholds:
    """Hand-set values win; then (source `auto` or `ordinary`) the ordinary-traffic calibration beside the
    vector file; then (`auto` or `extraction`) calibration on the extraction responses beside it."""
    if source not in SOURCES:
        raise UserError(f"--thresholds {source!r}: expected one of {', '.join(SOURCES)}")
    if manual is not None:
        return Thresholds(manual[0], manual[1], "manual")
    if source != "extraction":
        ordinary = find_calibration(vector_path)
        if ordinary is not None:
            return Thresholds(
                ordinary.prompt_threshold,
                ordinary.response_threshold,
                ordinary.describe(),
                cap=ordinary.cap,
                band_caps=dict(ordinary.band_caps),
                false_alert_rate=ordinary.false_alert_rate,
            )
        if source == "ordinary":
            raise UserError(
                f"{vector_path}: no {calibration_path(vector_path).name} beside it; run "
                f"`persona-vaccine calibrate-monitor --model MODEL --vectors {vector_path}` first"
            )
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
