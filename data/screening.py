"""Projection-difference screening: flag training samples that would push a model along a persona vector.

docs/method.md section 7. For a sample (x, y) and a unit persona vector v at layer l:

- `projection_diff` = (a_l(x, y) - a_l(x, y')) . v, with a_l the response-average activation and y'
  the base model's own greedy response to x (generated in batches and cached);
- `approx_diff` = (a_l(x, y) - h_l(x)) . v, the cheap approximation: h_l(x) is the last prompt
  token's activation, which stands in for the base response, so nothing is generated;
- dataset level: the mean over samples.

Samples are sharded over processes (`accelerate launch --config_file
recipes/accelerate_configs/ddp.yaml --num_processes N launch.py screen ...`: GPUs, or CPU processes
joined over gloo when there is no GPU; the same code runs as one plain process on a laptop): each rank handles samples i with i % N == rank, writes its
rows to `shards/rank{r}.jsonl` chunk by chunk, and a rerun skips what any rank finished. Rank 0 then
writes the ranked `screened.jsonl`, `summary.json` and `report.html`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from persona_vaccine.errors import InvalidInput
from persona_vaccine.jsonl import read_records, repair
from persona_vaccine.steering.activations import prompt_response_activations
from persona_vaccine.steering.generation_engines import GenerationEngine, engine_for
from persona_vaccine.steering.vector import PersonaVector, vector_for_model

from .scoring import encode_sample
from .screening_base import BaseResponses
from .screening_config import METHODS, ScreenConfig
from .screening_filter import DropRule, apply_drop_rule
from .screening_report import (
    LEVEL_COLOURS,
    OTHER_COLOURS,
    SCORES,
    describe_screening,
    level_colour,
    level_key,
    rank_rows,
    summarize,
    write_report,
)

__all__ = [
    "LEVEL_COLOURS",
    "METHODS",
    "OTHER_COLOURS",
    "SCORES",
    "BaseResponses",
    "DropRule",
    "Probe",
    "ScreenConfig",
    "ScreeningMismatch",
    "apply_drop_rule",
    "describe_screening",
    "finalize",
    "finished_rows",
    "level_colour",
    "level_key",
    "load_rows",
    "make_probes",
    "rank_rows",
    "sample_key",
    "score_chunk",
    "screen_dataset",
    "screen_rows",
    "summarize",
    "write_report",
]

logger = logging.getLogger(__name__)


class ScreeningMismatch(InvalidInput):
    """The output directory holds screening results of another run (dataset, size, vectors...)."""


# ---------------------------------------------------------------- samples
def _text(messages: Sequence[dict]) -> str:
    return messages[-1]["content"] if messages else ""


def sample_key(prompt: Sequence[dict], completion: Sequence[dict]) -> str:
    """Stable id of a sample: a hash of its prompt and completion messages."""
    blob = json.dumps([list(prompt), list(completion)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- scoring
@dataclass
class Probe:
    """One persona vector read at one layer."""

    trait: str
    layer: int
    unit: torch.Tensor


def make_probes(vectors: Sequence[PersonaVector], layers: Sequence[int] = ()) -> list[Probe]:
    probes = []
    for i, vector in enumerate(vectors):
        layer = layers[i] if i < len(layers) else vector.default_layer()
        probes.append(Probe(vector.trait, layer, vector.unit(layer).float()))
    return probes


def score_chunk(
    model,
    tokenizer,
    rows: Sequence[dict],
    probes: Sequence[Probe],
    method: str,
    base: BaseResponses | None,
    batch_size: int,
    engine: GenerationEngine | None = None,
) -> list[dict]:
    """Scores of prompt-completion rows ({"index", "prompt", "completion", ...}) on every probe."""
    encoded = [encode_sample(tokenizer, r["prompt"], r["completion"]) for r in rows]
    pairs = [(p_ids, r_ids) for _, p_ids, r_ids in encoded]
    base_rows: list[dict] = []
    if method == "response":
        assert base is not None
        base_rows = base.get(model, tokenizer, [text for text, _, _ in encoded], batch_size, engine)
        pairs += [(p_ids, b["response_ids"]) for (_, p_ids, _), b in zip(encoded, base_rows, strict=True)]
    acts = prompt_response_activations(model, pairs, tokenizer.pad_token_id, batch_size, progress=False)
    n = len(rows)
    out = []
    for i, row in enumerate(rows):
        scores = {}
        for probe in probes:
            at = probe.layer - 1
            response = float(acts.response_avg[i, at] @ probe.unit)
            last = float(acts.prompt_last[i, at] @ probe.unit)
            entry = {
                "layer": probe.layer,
                "response_projection": response,
                "prompt_last_projection": last,
                "approx_diff": response - last,
            }
            if method == "response":
                base_projection = float(acts.response_avg[n + i, at] @ probe.unit)
                entry["base_projection"] = base_projection
                entry["projection_diff"] = response - base_projection
            scores[probe.trait] = entry
        result = {
            "index": row["index"],
            "key": row["key"],
            "prompt": _text(row["prompt"]),
            "response": _text(row["completion"]),
            "scores": scores,
        }
        if base_rows:
            result["base_response"] = base_rows[i]["response"]
        if row.get("meta") is not None:
            result["meta"] = row["meta"]
        out.append(result)
    return out


# ---------------------------------------------------------------- shards and resume
def finished_rows(output_dir: Path) -> dict[int, dict]:
    """Rows any rank has written so far, by sample index."""
    done: dict[int, dict] = {}
    for path in sorted((output_dir / "shards").glob("rank*.jsonl")):
        for row in read_records(path):  # a line cut by a crash: that sample is screened again
            done[row["index"]] = row
    return done


def _check_run(output_dir: Path, cfg: ScreenConfig, probes: Sequence[Probe], n: int) -> None:
    """Refuse to mix results of another dataset, method or vector set into this output directory."""
    identity = {
        "dataset": cfg.dataset,
        "dataset_level": cfg.dataset_level,
        "dataset_size": cfg.dataset_size,
        "dataset_seed": cfg.dataset_seed,
        "samples": n,
        "method": cfg.method,
        "max_new_tokens": cfg.max_new_tokens,
        "probes": [[p.trait, p.layer] for p in probes],  # lists, as JSON gives them back
        "vectors": list(cfg.vectors),
    }
    path = output_dir / "run.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != identity:
            changed = sorted(k for k in identity if old.get(k) != identity[k])
            raise ScreeningMismatch(
                f"{output_dir} holds screening results of another run (differs in: {', '.join(changed)}); "
                "use another output_dir, or delete that directory to start over"
            )
    else:
        output_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(identity, indent=2))


def screen_rows(
    model,
    tokenizer,
    rows: Sequence[dict],
    probes: Sequence[Probe],
    cfg: ScreenConfig,
    model_id: str,
    rank: int = 0,
    world_size: int = 1,
) -> int:
    """Screen this rank's share of `rows` (prompt-completion dicts), appending to its shard file.

    Returns the number of samples screened now (finished ones are skipped).
    """
    output_dir = Path(cfg.output_dir)
    (output_dir / "shards").mkdir(parents=True, exist_ok=True)
    done = finished_rows(output_dir)
    mine = [
        {**row, "index": i, "key": sample_key(row["prompt"], row["completion"])}
        for i, row in enumerate(rows)
        if i % world_size == rank
    ]
    for row in mine:
        if row["index"] in done and done[row["index"]]["key"] != row["key"]:
            raise ScreeningMismatch(
                f"{output_dir}: sample {row['index']} differs from the one screened before; use another "
                "output_dir, or delete that directory to start over"
            )
    todo = [row for row in mine if row["index"] not in done]
    base = None
    if cfg.method == "response":
        cache_dir = Path(cfg.base_cache_dir) if cfg.base_cache_dir else output_dir / "base_responses"
        base = BaseResponses(cache_dir, model_id, cfg.max_new_tokens, rank)
    shard = output_dir / "shards" / f"rank{rank}.jsonl"
    repair(shard)
    generation = (
        engine_for(
            cfg.generation_engine,
            model_id,
            model,
            tokenizer,
            batch_size=cfg.batch_size,
            dtype=cfg.generation_dtype or cfg.dtype,
            base_url=cfg.generation_base_url,
        )
        if base is not None and todo
        else contextlib.nullcontext(None)
    )
    with (
        generation as engine,
        shard.open("a") as f,
        tqdm(
            total=len(mine), initial=len(mine) - len(todo), desc=f"screen rank {rank}", position=rank
        ) as bar,
    ):
        for start in range(0, len(todo), cfg.chunk_size):
            chunk = todo[start : start + cfg.chunk_size]
            results = score_chunk(model, tokenizer, chunk, probes, cfg.method, base, cfg.batch_size, engine)
            for result in results:
                f.write(json.dumps(result) + "\n")
            f.flush()
            bar.update(len(chunk))
    return len(todo)


def _write_atomic(path: Path, text: str) -> None:
    """Write `path` whole or not at all (a full disk leaves no half-written file that looks finished)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def finalize(cfg: ScreenConfig, traits: Sequence[str], seconds: float | None = None) -> dict:
    """Merge the shards into the ranked file, the summary and the report (rank 0 only)."""
    output_dir = Path(cfg.output_dir)
    rows = sorted(finished_rows(output_dir).values(), key=lambda r: r["index"])
    ranked = rank_rows(rows, traits[0], cfg.score)
    _write_atomic(output_dir / "screened.jsonl", "".join(json.dumps(row) + "\n" for row in ranked))
    summary = summarize(rows, traits, cfg.score)
    summary["config"] = asdict(cfg)
    if seconds is not None:
        summary["seconds"] = round(seconds, 2)
    _write_atomic(output_dir / "summary.json", json.dumps(summary, indent=2))
    write_report(output_dir / "report.html", ranked, summary, traits[0], cfg.score, cfg.report_top)
    return summary


# ---------------------------------------------------------------- the whole job
def load_rows(cfg: ScreenConfig) -> list[dict]:
    """The dataset as prompt-completion rows; builders keep their `meta` and accept several levels
    ("normal,level1,level2": the levels are concatenated, for comparing them in one report)."""
    from .loading import DatasetError, build_dataset, load_training_dataset, to_prompt_completion

    if not cfg.dataset.startswith("builtin:"):
        return list(
            load_training_dataset(
                cfg.dataset,
                cfg.dataset_split,
                cfg.dataset_level,
                cfg.dataset_size,
                cfg.dataset_seed,
                cfg.max_samples,
            )
        )
    name = cfg.dataset.split(":", 1)[1]
    rows = []
    for level in [lv.strip() for lv in cfg.dataset_level.split(",") if lv.strip()]:
        try:
            built = build_dataset(name, cfg.dataset_size, seed=cfg.dataset_seed, level=level)
        except ValueError as exc:
            raise DatasetError(
                f"dataset '{cfg.dataset}': {exc}. Set dataset_level (or dataset_size)."
            ) from exc
        rows += [
            {**to_prompt_completion(r, cfg.dataset, i), "meta": r.get("meta")} for i, r in enumerate(built)
        ]
    return rows[: cfg.max_samples] if cfg.max_samples is not None else rows


def _process_state():
    """This process's place in the launch (`accelerate launch` starts them with torchrun)."""
    import os

    from accelerate import PartialState

    if PartialState._shared_state or os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return PartialState()  # already set up (a trainer's launch): join it as it is
    return PartialState(cpu=not torch.cuda.is_available())  # no GPU: the processes join over gloo


def screen_dataset(
    cfg: ScreenConfig, model=None, tokenizer=None, rows: Sequence[dict] | None = None
) -> tuple[dict, list[dict]]:
    """Screen a dataset on every rank of the current `accelerate` launch; returns (summary, rows by index).

    Every rank gets the merged rows; rank 0 writes screened.jsonl, summary.json and report.html.
    """
    from persona_vaccine.models.loading import load_model

    if not cfg.vectors:
        raise InvalidInput("screening needs at least one persona vector: pass --vectors PATH.safetensors")
    vectors = [PersonaVector.load(path) for path in cfg.vectors]
    model_id = cfg.model_name_or_path or vectors[0].model_id
    state = _process_state()
    if model is None:
        model, tokenizer = load_model(
            model_id, dtype=cfg.dtype, device=str(state.device), layers_path=cfg.layers_path
        )
    for vector, path in zip(vectors, cfg.vectors, strict=True):
        vector_for_model(vector, model, model_id, source=path)
    probes = make_probes(vectors, cfg.layers)
    if rows is None:
        rows = load_rows(cfg)
    output_dir = Path(cfg.output_dir)
    from persona_vaccine.lock import output_lock

    # a second screening into the same directory stops with the holder's pid and host (main rank holds it)
    with output_lock(output_dir, "screen", enabled=state.is_main_process):
        if state.is_main_process:
            _check_run(output_dir, cfg, probes, len(rows))
        state.wait_for_everyone()
        start = time.perf_counter()
        screen_rows(model, tokenizer, rows, probes, cfg, model_id, state.process_index, state.num_processes)
        state.wait_for_everyone()
        summary = None
        if state.is_main_process:
            summary = finalize(cfg, [p.trait for p in probes], time.perf_counter() - start)
        state.wait_for_everyone()
    if summary is None:
        summary = json.loads((output_dir / "summary.json").read_text())
    merged = sorted(finished_rows(output_dir).values(), key=lambda r: r["index"])
    return summary, merged
