"""Layer and coefficient calibration (docs/method.md section 2, "Layer choice").

Steer with each candidate layer's vector over a coefficient grid while answering the trait's
evaluation questions, judge trait expression and coherence, and pick the layer whose steering
raises the trait most while coherence stays above a threshold; at that layer, the largest grid
coefficient that keeps coherence there. Both go into the vector's metadata (`layer`, `coef`,
`calibration`). Answers and scores are appended to `calibration.jsonl` as each grid cell is done,
judgments are cached in SQLite: a rerun after a crash redoes nothing finished.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from persona_vaccine.errors import InvalidInput
from persona_vaccine.jsonl import repair
from persona_vaccine.judges.judge import COHERENCE_RUBRIC, Judge, JudgeCache, judge_responses
from persona_vaccine.models.chat import build_messages, format_chat
from persona_vaccine.steering.extract_config import ExtractionConfig
from persona_vaccine.steering.generation_engines import GenerationEngine, HFGeneration, Steering
from persona_vaccine.steering.vector import PersonaVector
from persona_vaccine.traits import TraitSpec

logger = logging.getLogger(__name__)


@dataclass
class CalibrationConfig:
    layers: Sequence[int] | None = None  # None: every ~10% of the stack from 20% to the top
    coefs: Sequence[float] = (1.0, 2.0, 4.0)
    coef_unit: str = "raw"  # raw | relative (fraction of the layer's mean activation norm)
    positions: str = "all"
    n_questions: int = 10
    max_new_tokens: int = 48
    coherence_threshold: float = 50.0
    batch_size: int = 16
    judge_batch_size: int = 8


@dataclass
class Cell:
    layer: int  # 0 with coef 0: the unsteered model
    coef: float
    trait: float | None  # mean judged trait score over the scored answers
    coherence: float | None
    n_scored: int
    trait_se: float | None = None  # standard error of the mean over the scored answers
    coherence_se: float | None = None


@dataclass
class CalibrationResult:
    layer: int
    coef: float
    coherent: bool  # False: no steered cell kept coherence >= threshold (fallback choice)
    baseline: Cell
    cells: list[Cell] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def default_layers(num_layers: int) -> list[int]:
    step = max(1, round(num_layers / 10))
    return list(range(max(1, round(num_layers / 5)), num_layers + 1, step))


def _mean(values: Sequence[float | None]) -> tuple[float | None, int]:
    scored = [v for v in values if v is not None]
    return (sum(scored) / len(scored) if scored else None), len(scored)


def _standard_error(values: Sequence[float | None]) -> float | None:
    scored = [v for v in values if v is not None]
    if len(scored) < 2:
        return None
    mean = sum(scored) / len(scored)
    return (sum((v - mean) ** 2 for v in scored) / (len(scored) - 1) / len(scored)) ** 0.5


def choose(cells: Sequence[Cell], coherence_threshold: float) -> tuple[int, float, bool]:
    """(layer, coef, coherent): best trait among coherent cells, then the largest coherent coef there."""
    coherent = [
        c
        for c in cells
        if c.coherence is not None and c.trait is not None and c.coherence >= coherence_threshold
    ]
    if not coherent:
        best = max(cells, key=lambda c: (c.coherence or -1.0, -abs(c.coef)))
        return best.layer, best.coef, False
    layer = max(coherent, key=lambda c: (c.trait, c.coherence)).layer
    coef = max((c.coef for c in coherent if c.layer == layer), key=abs)
    return layer, coef, True


def _done_cells(path: Path) -> dict[tuple[int, float], dict]:
    """Finished grid cells; a line cut by a crash is dropped (and that cell redone)."""
    return {(row["layer"], row["coef"]): row for row in repair(path) if "layer" in row and "coef" in row}


def calibrate_vector(
    model,
    tokenizer,
    vector: PersonaVector,
    spec: TraitSpec,
    judge: Judge,
    cfg: CalibrationConfig,
    out_dir: str | Path,
    progress: bool = True,
    engine: GenerationEngine | None = None,
) -> CalibrationResult:
    """Run the grid (resuming from `out_dir/calibration.jsonl`) and return the choice; writes nothing else."""
    start = time.perf_counter()
    engine = engine or HFGeneration(model, tokenizer, cfg.batch_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layers = list(cfg.layers or default_layers(vector.num_layers))
    questions = list(spec.evaluation_questions[: cfg.n_questions])
    prompts = [format_chat(tokenizer, build_messages(q)) for q in questions]
    grid = [(0, 0.0)] + [(layer, float(coef)) for layer in layers for coef in cfg.coefs]
    log = out_dir / "calibration.jsonl"
    done = _done_cells(log)
    with JudgeCache(out_dir / "judgments.sqlite") as cache, log.open("a") as f:
        for layer, coef in tqdm(grid, desc=f"{spec.trait}: calibrate", disable=not progress):
            if (layer, coef) in done:
                continue
            steering = None if layer == 0 else Steering(vector, layer, coef, cfg.positions, cfg.coef_unit)
            gens = engine.generate(prompts, cfg.max_new_tokens, temperature=0.0, steering=steering)
            items = [(q, g.response) for q, g in zip(questions, gens, strict=True)]
            trait = judge_responses(
                judge, cache, spec.judge_rubric, items, cfg.judge_batch_size, progress=False
            )
            coherence = judge_responses(
                judge, cache, COHERENCE_RUBRIC, items, cfg.judge_batch_size, progress=False
            )
            row = {
                "layer": layer,
                "coef": coef,
                "answers": [g.response for g in gens],
                "trait": trait,
                "coherence": coherence,
            }
            f.write(json.dumps(row) + "\n")
            f.flush()
            done[(layer, coef)] = row
    cells = []
    for layer, coef in grid:
        row = done[(layer, coef)]
        trait_mean, n = _mean(row["trait"])
        coherence_mean, _ = _mean(row["coherence"])
        cells.append(
            Cell(
                layer, coef, trait_mean, coherence_mean, n,
                _standard_error(row["trait"]), _standard_error(row["coherence"]),
            )
        )  # fmt: skip
    baseline, steered = cells[0], cells[1:]
    layer, coef, ok = choose(steered, cfg.coherence_threshold)
    if not ok:
        logger.warning(
            "calibration of '%s': no steered cell kept coherence >= %.0f; chose the most coherent (layer %d, "
            "coef %g). Try smaller --coefs or a stronger judge.",
            spec.trait,
            cfg.coherence_threshold,
            layer,
            coef,
        )
    return CalibrationResult(layer, coef, ok, baseline, steered, time.perf_counter() - start)


def apply_calibration(
    vector_path: str | Path, result: CalibrationResult, cfg: CalibrationConfig, judge_id: str
) -> None:
    """Record the chosen layer and coefficient (and the grid summary) in the vector file's metadata."""
    calibration = {
        "layer": result.layer,
        "coef": result.coef,
        "coef_unit": cfg.coef_unit,
        "coherent": result.coherent,
        "coherence_threshold": cfg.coherence_threshold,
        "judge": judge_id,
        "n_questions": cfg.n_questions,
        "baseline": asdict(result.baseline),
        "cells": [asdict(c) for c in result.cells],
    }
    vector = PersonaVector.load(vector_path)
    replace(vector, layer=result.layer, coef=result.coef, calibration=calibration).save(vector_path)


def write_report(
    result: CalibrationResult, trait: str, out_dir: str | Path, coherence_threshold: float
) -> tuple[Path, Path]:
    """calibration.md (a table) and calibration.png (trait and coherence against layer, one line per coef)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    fmt = lambda x: "-" if x is None else f"{x:.1f}"  # noqa: E731
    lines = [
        f"# Calibration of '{trait}'",
        "",
        f"Unsteered: trait {fmt(result.baseline.trait)}, coherence {fmt(result.baseline.coherence)}.",
        f"Chosen: layer {result.layer}, coef {result.coef:g}"
        + ("" if result.coherent else f" (no cell kept coherence >= {coherence_threshold:g}: most coherent)"),
        "",
        "| layer | coef | trait | coherence | scored |",
        "|---:|---:|---:|---:|---:|",
    ]
    for c in result.cells:
        mark = " **" if (c.layer, c.coef) == (result.layer, result.coef) else ""
        lines.append(f"| {c.layer}{mark} | {c.coef:g} | {fmt(c.trait)} | {fmt(c.coherence)} | {c.n_scored} |")
    table = out_dir / "calibration.md"
    table.write_text("\n".join(lines) + "\n")
    fig = calibration_figure(result, trait, coherence_threshold)
    plot = out_dir / "calibration.png"
    fig.savefig(plot, dpi=110)
    plt.close(fig)
    return table, plot


def calibration_figure(result: CalibrationResult, trait: str, coherence_threshold: float):
    """The figure of calibration.png: judged trait and coherence against layer, one line per coef with its
    standard errors as error bars, the unsteered level, the chosen cell (a star and a vertical line) and
    the coherence threshold; n scored answers per point in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    coefs = sorted({c.coef for c in result.cells})
    layers = sorted({c.layer for c in result.cells})
    gap = min((b - a for a, b in zip(layers, layers[1:], strict=False)), default=1)
    for k, coef in enumerate(coefs):
        cells = [c for c in result.cells if c.coef == coef]
        shift = (k - (len(coefs) - 1) / 2) * 0.06 * gap  # error bars side by side
        xs = [c.layer + shift for c in cells]
        for ax, value, se in ((axes[0], "trait", "trait_se"), (axes[1], "coherence", "coherence_se")):
            ys = [getattr(c, value) for c in cells]
            errs = [getattr(c, se) or 0.0 for c in cells]
            ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=f"coef {coef:g}")
    chosen = next((c for c in result.cells if (c.layer, c.coef) == (result.layer, result.coef)), None)
    n = sorted({c.n_scored for c in result.cells})
    n_text = f"n = {n[0]}" if len(n) == 1 else f"n = {n[0]}-{n[-1]}"
    for ax, name, base in (
        (axes[0], "trait", result.baseline.trait),
        (axes[1], "coherence", result.baseline.coherence),
    ):
        if base is not None:
            ax.axhline(base, color="grey", linestyle="--", label="unsteered")
        ax.axvline(result.layer, color="black", alpha=0.35)
        if chosen is not None and getattr(chosen, name) is not None:
            ax.plot([chosen.layer], [getattr(chosen, name)], marker="*", markersize=16, color="black",
                    linestyle="none", label=f"chosen: layer {result.layer}, coef {result.coef:g}")  # fmt: skip
        ax.set_xlabel("layer (block output, 1-based)")
        ax.set_ylabel(f"judged {name} (0..100), mean ± s.e.")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
    axes[1].axhline(coherence_threshold, color="red", linestyle=":", label="coherence threshold")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    fig.suptitle(
        f"'{trait}': steering each layer on the evaluation questions ({n_text} scored answers per point)"
    )
    fig.tight_layout()
    return fig


def calibrate_extracted(
    cfg: ExtractionConfig,
    spec: TraitSpec,
    model,
    tokenizer,
    response_filter,
    path: Path,
    out_dir: Path,
    engine: GenerationEngine | None = None,
) -> None:
    """Calibrate the extracted vector at `path` (layer and coef) with the response filter's judge."""
    judge = getattr(response_filter, "judge", None)
    if judge is None:
        raise InvalidInput(
            "calibrate=true needs a judge: pass --judge self (or an HF model, or openai:MODEL)"
        )
    ccfg = CalibrationConfig(
        layers=[int(x) for x in cfg.calibration_layers.split(",") if x.strip()] or None,
        coefs=[float(x) for x in cfg.calibration_coefs.split(",") if x.strip()],
        coef_unit=cfg.calibration_coef_unit,
        n_questions=cfg.calibration_questions,
        max_new_tokens=cfg.calibration_max_new_tokens,
        coherence_threshold=getattr(response_filter, "coherence_threshold", cfg.coherence_threshold),
        judge_batch_size=cfg.judge_batch_size,
    )
    vector = PersonaVector.load(path)
    result = calibrate_vector(model, tokenizer, vector, spec, judge, ccfg, out_dir, engine=engine)
    apply_calibration(path, result, ccfg, getattr(judge, "cache_id", judge.model_id))
    table, plot = write_report(result, spec.trait, out_dir, ccfg.coherence_threshold)
    logger.info(
        "calibrated '%s': layer %d, coef %g (%s, %s)", spec.trait, result.layer, result.coef, table, plot
    )
