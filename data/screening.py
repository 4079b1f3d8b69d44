"""Projection-difference screening: flag training samples that would push a model along a persona vector.

METHOD.md section 7. For a sample (x, y) and a unit persona vector v at layer l:

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

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from steering.activations import prompt_response_activations
from steering.errors import InvalidInput
from steering.generate import generate
from steering.jsonl import read_records, repair
from steering.score import auc, encode_sample
from steering.vector import PersonaVector
from steering.vocabulary import SCREEN_METHODS, ScreenMethod

logger = logging.getLogger(__name__)

SCORES = ("projection_diff", "approx_diff")
# the report's level order and fixed colours (the builders' levels; "evil" is builtin:evil's flawed level)
LEVEL_COLOURS = {"normal": "#1b7837", "level1": "#e08214", "level2": "#b2182b", "evil": "#b2182b"}
OTHER_COLOURS = ("#2166ac", "#762a83", "#525252", "#8c510a")


def level_key(level: str) -> tuple[int, str]:
    """Sort key of levels: normal, level1, level2 (and evil), then any other name alphabetically."""
    order = list(LEVEL_COLOURS)
    return (order.index(level), "") if level in order else (len(order), level)


def level_colour(level: str, others: Sequence[str] = ()) -> str:
    """A level's fixed colour; other names get the next colour of OTHER_COLOURS in their sorted order."""
    if level in LEVEL_COLOURS:
        return LEVEL_COLOURS[level]
    rest = sorted(o for o in others if o not in LEVEL_COLOURS)
    return OTHER_COLOURS[rest.index(level) % len(OTHER_COLOURS)] if level in rest else OTHER_COLOURS[-1]


METHODS = SCREEN_METHODS


class ScreeningMismatch(InvalidInput):
    """The output directory holds screening results of another run (dataset, size, vectors...)."""


@dataclass
class ScreenConfig:
    """What to screen, against which vectors, and how (`launch.py screen --field value`)."""

    dataset: str = field(
        default="builtin:evil",
        metadata={"help": "builtin:<name>, a .jsonl/.json/.csv/.parquet file or a hub dataset"},
    )
    dataset_level: str = field(default="level2", metadata={"help": "builder level: normal, level1, level2"})
    dataset_size: int = field(default=200, metadata={"help": "examples a builder makes"})
    dataset_seed: int = field(default=0, metadata={"help": "seed of the builder"})
    dataset_split: str = field(default="train", metadata={"help": "split of a hub dataset"})
    max_samples: int | None = field(default=None, metadata={"help": "screen at most this many samples"})
    vectors: list[str] = field(default_factory=list, metadata={"help": "persona vector files (.safetensors)"})
    layers: list[int] = field(
        default_factory=list, metadata={"help": "layer per vector (default: calibrated or middle layer)"}
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "the base model (default: the first vector's model)"}
    )
    method: ScreenMethod = field(
        default="response",
        metadata={
            "help": "response: generate base responses (projection_diff and approx_diff); "
            "prompt_last: the cheap approximation only (approx_diff, nothing generated)"
        },
    )
    layers_path: str | None = field(
        default=None,
        metadata={"help": "attribute path to the decoder blocks (e.g. 'model.layers') if not found"},
    )
    max_new_tokens: int = field(default=96, metadata={"help": "length of the base model's greedy responses"})
    batch_size: int = field(default=16, metadata={"help": "generation and activation batch size"})
    chunk_size: int = field(default=64, metadata={"help": "samples per written chunk (resume granularity)"})
    output_dir: str = field(default="runs/screen", metadata={"help": "where results and the report go"})
    base_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "base responses cache, shareable between datasets (default OUTPUT_DIR/base_responses)"
        },
    )
    report_top: int = field(default=30, metadata={"help": "riskiest samples shown in report.html"})
    dtype: str = field(default="float32", metadata={"help": "model dtype"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r}: expected one of {', '.join(METHODS)}")
        if self.batch_size < 1 or self.chunk_size < 1:
            raise ValueError("batch_size and chunk_size must be positive")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens!r}: must be a positive number of tokens")

    @property
    def score(self) -> str:
        """The score samples are ranked by."""
        return "projection_diff" if self.method == "response" else "approx_diff"


# ---------------------------------------------------------------- samples
def _text(messages: Sequence[dict]) -> str:
    return messages[-1]["content"] if messages else ""


def sample_key(prompt: Sequence[dict], completion: Sequence[dict]) -> str:
    """Stable id of a sample: a hash of its prompt and completion messages."""
    blob = json.dumps([list(prompt), list(completion)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- base responses
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

    def get(self, model, tokenizer, prompt_texts: Sequence[str], batch_size: int) -> list[dict]:
        """{"response", "response_ids"} per prompt; missing ones generated greedily and appended."""
        todo = list(dict.fromkeys(p for p in prompt_texts if self.key(p) not in self.cache))
        if todo:
            with self.path.open("a") as f:
                for start in range(0, len(todo), batch_size):
                    batch = todo[start : start + batch_size]
                    for gen in generate(
                        model, tokenizer, batch, self.max_new_tokens, 0.0, batch_size=batch_size
                    ):
                        row = {
                            "key": self.key(gen.prompt),
                            "response": gen.response,
                            "response_ids": gen.response_ids,
                        }
                        self.cache[row["key"]] = row
                        f.write(json.dumps(row) + "\n")
                    f.flush()
        return [self.cache[self.key(p)] for p in prompt_texts]


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
) -> list[dict]:
    """Scores of prompt-completion rows ({"index", "prompt", "completion", ...}) on every probe."""
    encoded = [encode_sample(tokenizer, r["prompt"], r["completion"]) for r in rows]
    pairs = [(p_ids, r_ids) for _, p_ids, r_ids in encoded]
    base_rows: list[dict] = []
    if method == "response":
        assert base is not None
        base_rows = base.get(model, tokenizer, [text for text, _, _ in encoded], batch_size)
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
    with (
        shard.open("a") as f,
        tqdm(
            total=len(mine), initial=len(mine) - len(todo), desc=f"screen rank {rank}", position=rank
        ) as bar,
    ):
        for start in range(0, len(todo), cfg.chunk_size):
            chunk = todo[start : start + cfg.chunk_size]
            for result in score_chunk(model, tokenizer, chunk, probes, cfg.method, base, cfg.batch_size):
                f.write(json.dumps(result) + "\n")
            f.flush()
            bar.update(len(chunk))
    return len(todo)


# ---------------------------------------------------------------- dataset level
def _stats(values: Sequence[float]) -> dict:
    t = torch.tensor(list(values), dtype=torch.float64)
    return {
        "n": len(values),
        "mean": float(t.mean()),
        "std": float(t.std()) if len(values) > 1 else 0.0,
        "median": float(t.median()),
        "max": float(t.max()),
    }


def summarize(rows: Sequence[dict], traits: Sequence[str], score: str) -> dict:
    """Dataset-level scores per trait (mean = the dataset's projection difference), and per `meta.level`."""
    summary: dict = {"samples": len(rows), "score": score, "traits": {}}
    for trait in traits:
        per_trait: dict = {}
        for name in (*SCORES, "response_projection", "prompt_last_projection"):
            found = [r["scores"][trait][name] for r in rows if name in r["scores"][trait]]
            if found:
                per_trait[name] = _stats(found)
        levels = sorted({r.get("meta", {}).get("level") for r in rows} - {None}, key=level_key)
        if len(levels) > 1:
            low = "normal" if "normal" in levels else levels[0]

            def values(level: str, name: str, trait: str = trait) -> list[float]:
                return [
                    r["scores"][trait][name]
                    for r in rows
                    if r.get("meta", {}).get("level") == level and name in r["scores"][trait]
                ]

            by_level = {}
            for level in levels:
                by_level[level] = _stats(values(level, score))  # the ranking score, at the top level
                for name in SCORES:
                    if values(level, name):
                        by_level[level][name] = _stats(values(level, name))
                        if level != low:
                            by_level[level][name][f"auc_vs_{low}"] = auc(
                                values(level, name), values(low, name)
                            )
                if level != low:
                    by_level[level][f"auc_vs_{low}"] = by_level[level][score][f"auc_vs_{low}"]
            per_trait["by_level"] = by_level
        summary["traits"][trait] = per_trait
    return summary


def rank_rows(rows: Sequence[dict], trait: str, score: str) -> list[dict]:
    """Rows sorted riskiest first, with their rank (1 = riskiest) and percentile."""
    ranked = sorted(rows, key=lambda r: r["scores"][trait][score], reverse=True)
    n = len(ranked)
    return [{**r, "rank": k + 1, "percentile": 100.0 * (n - k) / n} for k, r in enumerate(ranked)]


# ---------------------------------------------------------------- filtering (the recipe stage)
@dataclass
class DropRule:
    """Drop samples whose score on `trait` is above `threshold`, or the top `top_pct` percent."""

    trait: str
    score: str = "projection_diff"
    threshold: float | None = None
    top_pct: float | None = None

    def __post_init__(self) -> None:
        if (self.threshold is None) == (self.top_pct is None):
            raise ValueError("a screening drop rule needs exactly one of threshold or top_pct")
        if self.top_pct is not None and not 0 <= self.top_pct <= 100:
            raise ValueError(f"top_pct must be within 0..100, got {self.top_pct}")

    def describe(self) -> str:
        if self.threshold is not None:
            return f"{self.trait} {self.score} > {self.threshold:g}"
        return f"top {self.top_pct:g}% by {self.trait} {self.score}"


def apply_drop_rule(rows: Sequence[dict], rule: DropRule) -> tuple[set[int], dict]:
    """Indices of the samples to drop, and a log entry saying how many and why."""
    values = {r["index"]: r["scores"][rule.trait][rule.score] for r in rows}
    if rule.threshold is not None:
        dropped = {i for i, v in values.items() if v > rule.threshold}
        cut: float | None = rule.threshold
    else:
        k = math.floor(len(values) * (rule.top_pct or 0.0) / 100)  # DropRule: top_pct is set here
        order = sorted(values, key=lambda i: values[i], reverse=True)
        dropped = set(order[:k])
        cut = values[order[k - 1]] if k else None
    return dropped, {
        "rule": rule.describe(),
        "screened": len(values),
        "dropped": len(dropped),
        "kept": len(values) - len(dropped),
        "cut": cut,
        "dropped_indices": sorted(dropped),
    }


# ---------------------------------------------------------------- report
def write_report(path: Path, ranked: Sequence[dict], summary: dict, trait: str, score: str, top: int) -> None:
    """A self-contained HTML page: dataset-level scores, a histogram and the riskiest samples."""
    import base64
    import html
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    levels = sorted({r.get("meta", {}).get("level") for r in ranked} - {None}, key=level_key)
    groups = {
        lv: [r["scores"][trait][score] for r in ranked if r.get("meta", {}).get("level") == lv]
        for lv in levels
    }
    if len(groups) < 2:
        groups = {"all samples": [r["scores"][trait][score] for r in ranked]}
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    every = [v for values in groups.values() for v in values]
    bins = np.histogram_bin_edges(every, bins=min(30, max(5, len(every) // 3)))  # shared by the levels
    for name, values in groups.items():
        colour = level_colour(name, levels) if name in levels else "#2166ac"
        ax.hist(values, bins=list(bins), alpha=0.55, label=f"{name} (n={len(values)})", color=colour)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"{trait} {score}")
    ax.set_ylabel("samples")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    image = base64.b64encode(buffer.getvalue()).decode()

    e = html.escape
    stats_rows = []
    for t, per_trait in summary["traits"].items():
        for name in SCORES:
            if name in per_trait:
                s = per_trait[name]
                stats_rows.append(
                    f"<tr><td>{e(t)}</td><td>{name}</td><td>{s['mean']:+.3f}</td><td>{s['std']:.3f}</td>"
                    f"<td>{s['median']:+.3f}</td><td>{s['max']:+.3f}</td><td>{s['n']}</td></tr>"
                )
        by_level = per_trait.get("by_level", {})
        for level in sorted(by_level, key=level_key):
            by_score = by_level[level]
            for name in SCORES:
                if name not in by_score:
                    continue
                s = by_score[name]
                aucs = ", ".join(f"{k} {v:.3f}" for k, v in s.items() if k.startswith("auc"))
                stats_rows.append(
                    f"<tr><td>{e(t)}</td><td>{name} | level {e(level)}</td><td>{s['mean']:+.3f}</td>"
                    f"<td>{s['std']:.3f}</td><td>{s['median']:+.3f}</td><td>{s['max']:+.3f}</td>"
                    f"<td>{s['n']}{' (' + aucs + ')' if aucs else ''}</td></tr>"
                )
    sample_rows = []
    for r in ranked[:top]:
        s = r["scores"][trait]
        base = (
            f"<details><summary>base response</summary><div class='text'>{e(r['base_response'])}</div></details>"
            if "base_response" in r
            else ""
        )
        name = str(r.get("meta", {}).get("level", ""))
        level = (
            f"<span class='level' style='background:{level_colour(name, levels)}'>{e(name)}</span>"
            if name
            else ""
        )
        sample_rows.append(
            f"<tr><td>{r['rank']}</td><td>{r['index']}</td><td>{s[score]:+.3f}</td><td>{level}</td>"
            f"<td><div class='text prompt'>{e(r['prompt'])}</div><div class='text'>{e(r['response'])}</div>{base}</td></tr>"
        )
    path.write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>screening: {e(trait)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}td,th{{border-bottom:1px solid #ddd;
padding:4px;vertical-align:top;text-align:left}}table{{border-collapse:collapse;width:100%}}
.text{{white-space:pre-wrap;font-family:monospace;font-size:90%;margin:2px 0}}.prompt{{font-weight:bold}}
.level{{color:white;padding:1px 6px;border-radius:3px}}</style></head><body>
<h1>Projection-difference screening</h1>
<p>{summary["samples"]} samples ranked by <b>{e(trait)} {score}</b> (layer {
            ranked[0]["scores"][trait]["layer"] if ranked else "-"
        }). projection_diff = (response average of the training answer - that of the base model's
own answer) on the unit persona vector; approx_diff uses the last prompt token instead of the base answer.</p>
<h2>Dataset level</h2><table><tr><th>trait</th><th>score</th><th>mean</th><th>std</th><th>median</th>
<th>max</th><th>n</th></tr>{"".join(stats_rows)}</table>
<img src="data:image/png;base64,{image}" alt="histogram">
<h2>Riskiest {min(top, len(ranked))} samples</h2><table><tr><th>rank</th><th>index</th><th>{score}</th>
<th>level</th><th>sample</th></tr>{"".join(sample_rows)}</table></body></html>
"""
    )


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
    from steering.layers import get_decoder_layers, hidden_size
    from steering.models import load_model

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
        vector.check_model(hidden_size(model), len(get_decoder_layers(model)), model_id, source=path)
    probes = make_probes(vectors, cfg.layers)
    if rows is None:
        rows = load_rows(cfg)
    output_dir = Path(cfg.output_dir)
    from steering.lock import output_lock

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
