"""Alert thresholds and caps from ordinary traffic: how a model's everyday answers read on a persona vector.

Ordinary prompts (the shipped set, `monitoring/traffic/ordinary_prompts.jsonl`, or a team's own) are
answered greedily by the model, and the answers are read back at the vector's layer exactly as the monitor
reads them: the early warning (last prompt token) and the running mean of the answer after `min_tokens`
answer tokens. Each trait's thresholds are set on the `tune` split so that at most the requested share of
ordinary requests would alert (half of the budget to each read), the held-out split reports the rate those
thresholds give, and the cap is a high percentile of ordinary answer tokens, at the vector's layer and
optionally at each layer of a band. The result is stored beside the vector file (`NAME.ordinary.json`);
`serve` uses it by default.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from persona_vaccine.errors import UserError
from persona_vaccine.jsonl import repair
from persona_vaccine.models.chat import build_messages, format_chat
from persona_vaccine.steering import residual_ops
from persona_vaccine.steering.hook_core import attach
from persona_vaccine.steering.vector import PersonaVector

logger = logging.getLogger(__name__)

SPLITS = ("tune", "heldout", "all")
SUFFIX = ".ordinary.json"


def shipped_prompts() -> Path:
    """The ordinary prompts written for this project (200 tune, 200 held out)."""
    return Path(str(resources.files(str(__package__)).joinpath("traffic").joinpath("ordinary_prompts.jsonl")))


def load_prompts(path: str | Path | None = None, split: str = "tune") -> list[str]:
    """Prompts of one split; a file without `split` fields counts every line as `tune` and `heldout` alike."""
    if split not in SPLITS:
        raise UserError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    path = Path(path) if path is not None else shipped_prompts()
    if not path.is_file():
        raise UserError(f"{path}: no such prompts file (JSONL with a 'prompt' field per line)")
    prompts = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompt = row["prompt"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UserError(f"{path}:{n}: expected a JSON object with a 'prompt' field") from None
        if split == "all" or row.get("split", split) == split:
            prompts.append(str(prompt))
    if not prompts:
        raise UserError(f"{path}: no prompts in split {split!r}")
    return prompts


@dataclass
class AnswerReads:
    """One ordinary request read on one vector: the early warning and each answer token, per layer."""

    prompt_last: float
    answer: dict[int, list[float]]  # layer -> projection at each answer position the monitor reads

    def running_max(self, layer: int, min_tokens: int) -> float | None:
        """The largest running mean the monitor would see once `min_tokens` answer tokens are in."""
        values, best, total = self.answer[layer], None, 0.0
        for k, value in enumerate(values, 1):
            total += value
            if k >= min_tokens:
                best = total / k if best is None else max(best, total / k)
        return best


@dataclass
class OrdinaryCalibration:
    """A trait's thresholds and caps from ordinary traffic, as stored beside its vector."""

    trait: str
    model: str
    layer: int
    false_alert_rate: float  # requested: share of ordinary requests allowed to alert
    prompt_threshold: float
    response_threshold: float
    cap: float
    cap_percentile: float
    band_caps: dict[int, float] = field(default_factory=dict)  # layer -> cap, the vector's layer included
    min_tokens: int = 4
    max_new_tokens: int = 48
    n_tune: int = 0
    tune_false_alert_rate: float = 0.0
    n_heldout: int = 0
    heldout_false_alert_rate: float | None = None
    prompts: str = ""

    def save(self, vector_path: str | Path) -> Path:
        path = calibration_path(vector_path)
        data = asdict(self)
        data["band_caps"] = {str(k): v for k, v in self.band_caps.items()}
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> OrdinaryCalibration:
        data = json.loads(Path(path).read_text())
        data["band_caps"] = {int(k): float(v) for k, v in data.get("band_caps", {}).items()}
        return cls(**data)

    def describe(self) -> str:
        held = (
            f", {self.heldout_false_alert_rate:.1%} of {self.n_heldout} held-out"
            if self.heldout_false_alert_rate is not None
            else ""
        )
        return (
            f"ordinary traffic of {self.model} ({self.n_tune} prompts): expected false alerts "
            f"{self.false_alert_rate:.1%} of ordinary requests (tune {self.tune_false_alert_rate:.1%}{held})"
        )


def calibration_path(vector_path: str | Path) -> Path:
    path = Path(vector_path)
    return path.with_name(path.name.removesuffix(".safetensors") + SUFFIX)


def find_calibration(vector_path: str | Path) -> OrdinaryCalibration | None:
    path = calibration_path(vector_path)
    return OrdinaryCalibration.load(path) if path.is_file() else None


def threshold_at_rate(values: Sequence[float], rate: float) -> float:
    """The smallest observed value with at most `rate` of `values` strictly above it."""
    if not values:
        raise ValueError("no values to set a threshold on")
    ordered = sorted(values, reverse=True)
    allowed = math.floor(rate * len(ordered) + 1e-9)  # values that may lie above the threshold
    return ordered[min(allowed, len(ordered) - 1)]


def alert_rate(
    reads: Sequence[AnswerReads], layer: int, prompt: float, response: float, min_tokens: int
) -> float:
    """Share of requests whose early warning or running mean would cross its threshold."""
    if not reads:
        return 0.0
    alerts = 0
    for r in reads:
        running = r.running_max(layer, min_tokens)
        alerts += r.prompt_last > prompt or (running is not None and running > response)
    return alerts / len(reads)


def percentile(values: Sequence[float], q: float) -> float:
    return float(torch.quantile(torch.tensor(list(values), dtype=torch.float64), q / 100.0))


def _fed_positions(response_ids: Sequence[int], max_new_tokens: int) -> int:
    """Answer tokens the monitor reads: each one fed back to the model (a cut-off answer's last is not)."""
    n = len(response_ids)
    return n - 1 if n >= max_new_tokens else n


@torch.no_grad()
def read_answers(
    model: torch.nn.Module,
    vector: PersonaVector,
    layers: Sequence[int],
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    max_new_tokens: int,
    read_layer: int | None = None,
    batch_size: int = 16,
) -> list[AnswerReads]:
    """Teacher-forced reads of prompt + answer, as the monitor reads them while the answer is generated."""
    read_layer = read_layer if read_layer is not None else vector.default_layer()
    return read_answers_many(
        model,
        [(vector, [*layers, read_layer], read_layer)],
        prompt_ids,
        response_ids,
        max_new_tokens,
        batch_size,
    )[0]


@torch.no_grad()
def read_answers_many(
    model: torch.nn.Module,
    reads: Sequence[tuple[PersonaVector, Sequence[int], int]],
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    max_new_tokens: int,
    batch_size: int = 16,
) -> list[list[AnswerReads]]:
    """`read_answers` for several (vector, layers, read layer) at once: one batched forward per chunk of
    requests (right padding, which leaves every real token's stream as it is alone)."""
    units = [{layer: v.unit(layer) for layer in {*layers, read}} for v, layers, read in reads]
    wanted = sorted({layer for u in units for layer in u})
    device = next(model.parameters()).device
    out: list[list[AnswerReads]] = [[] for _ in reads]
    for begin in range(0, len(prompt_ids), max(1, batch_size)):
        rows = [
            list(p) + list(a)
            for p, a in zip(
                prompt_ids[begin : begin + batch_size], response_ids[begin : begin + batch_size], strict=True
            )
        ]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
        hidden: dict[int, torch.Tensor] = {}

        def keep(layer: int, h: torch.Tensor, hidden: dict[int, torch.Tensor] = hidden) -> None:
            hidden[layer] = h.detach().float()

        with attach(model, {layer: [keep] for layer in wanted}):
            model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
        for i in range(len(rows)):
            start = len(prompt_ids[begin + i])
            fed = _fed_positions(response_ids[begin + i], max_new_tokens)
            for k, ((_, _, read), unit_at) in enumerate(zip(reads, units, strict=True)):
                proj = {
                    layer: residual_ops.read(hidden[layer][i], unit.to(hidden[layer].device)[None])[:, 0]
                    for layer, unit in unit_at.items()
                }
                answer = {layer: p[start : start + fed].tolist() for layer, p in proj.items()}
                out[k].append(AnswerReads(float(proj[read][start - 1]), answer))
    return out


def answer_ordinary_prompts(
    engine: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, cache: Path, model_id: str
) -> list[tuple[list[int], list[int]]]:
    """Greedy answers (prompt ids, answer ids) to `prompts`, reusing those already in `cache`."""

    def key(prompt: str) -> str:
        return hashlib.sha256(json.dumps([model_id, prompt, max_new_tokens]).encode()).hexdigest()[:16]

    done = {r["key"]: r for r in repair(cache) if "key" in r} if cache.is_file() else {}
    todo = [p for p in dict.fromkeys(prompts) if key(p) not in done]
    if todo:
        logger.info(
            "answering %d ordinary prompts (%d reused from %s)", len(todo), len(prompts) - len(todo), cache
        )
    batch = max(1, getattr(engine, "batch_size", 32))
    with cache.open("a") as f, tqdm(total=len(todo), desc="ordinary prompts: answer") as bar:
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            texts = [format_chat(tokenizer, build_messages(p)) for p in chunk]
            for prompt, gen in zip(chunk, engine.generate(texts, max_new_tokens), strict=True):
                row = {"key": key(prompt), "prompt": prompt, "prompt_ids": gen.prompt_ids}
                row["response_ids"], row["response"] = gen.response_ids, gen.response
                f.write(json.dumps(row) + "\n")
                done[row["key"]] = row
            f.flush()
            bar.update(len(chunk))
    return [(done[key(p)]["prompt_ids"], done[key(p)]["response_ids"]) for p in prompts]


def calibrate_from_reads(
    vector: PersonaVector,
    model_id: str,
    tune: Sequence[AnswerReads],
    heldout: Sequence[AnswerReads],
    layer: int,
    false_alert_rate: float = 0.01,
    cap_percentile: float = 99.0,
    min_tokens: int = 4,
    max_new_tokens: int = 48,
    prompts: str = "",
) -> OrdinaryCalibration:
    """Thresholds at the requested false-alert rate (half to each read) and caps at the percentile."""
    if not 0.0 < false_alert_rate < 1.0:
        raise UserError(f"false_alert_rate={false_alert_rate}: expected a share between 0 and 1, e.g. 0.01")
    if not 50.0 <= cap_percentile < 100.0:
        raise UserError(f"cap_percentile={cap_percentile}: expected a percentile in [50, 100), e.g. 99")
    early = [r.prompt_last for r in tune]
    running = [m for r in tune if (m := r.running_max(layer, min_tokens)) is not None]
    prompt_threshold = threshold_at_rate(early, false_alert_rate / 2)
    response_threshold = threshold_at_rate(running, false_alert_rate / 2) if running else math.inf
    band_caps = {
        band_layer: percentile([v for r in tune for v in r.answer[band_layer]], cap_percentile)
        for band_layer in sorted(tune[0].answer)
    }
    return OrdinaryCalibration(
        trait=vector.trait,
        model=model_id,
        layer=layer,
        false_alert_rate=false_alert_rate,
        prompt_threshold=prompt_threshold,
        response_threshold=response_threshold,
        cap=band_caps[layer],
        cap_percentile=cap_percentile,
        band_caps=band_caps,
        min_tokens=min_tokens,
        max_new_tokens=max_new_tokens,
        n_tune=len(tune),
        tune_false_alert_rate=alert_rate(tune, layer, prompt_threshold, response_threshold, min_tokens),
        n_heldout=len(heldout),
        heldout_false_alert_rate=(
            alert_rate(heldout, layer, prompt_threshold, response_threshold, min_tokens) if heldout else None
        ),
        prompts=prompts,
    )
