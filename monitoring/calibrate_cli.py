"""`persona-vaccine calibrate-monitor`: alert thresholds and caps from ordinary traffic, stored beside each vector."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from pathlib import Path

from persona_vaccine.cli_args import ArgumentParser, prog
from persona_vaccine.errors import UserError


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=prog("calibrate-monitor"),
        description="Set each vector's alert thresholds at a false-alert rate on ordinary prompts, and its cap at "
        "a percentile of ordinary answers; `serve` then uses them by default.",
    )
    p.add_argument("--model", required=True, help="the model to monitor (hub id, local folder, smollm2-135m)")
    p.add_argument("--vectors", nargs="+", required=True, help="persona vector files (.safetensors)")
    p.add_argument(
        "--false_alert_rate",
        type=float,
        default=0.01,
        help="share of ordinary requests that may alert (0.01)",
    )
    p.add_argument("--prompts", default=None, help="JSONL of ordinary prompts (default: the shipped set)")
    p.add_argument("--max_new_tokens", type=int, default=48, help="answer length read per prompt (48)")
    p.add_argument(
        "--min_tokens", type=int, default=4, help="answer tokens before the running mean may alert"
    )
    p.add_argument(
        "--cap_percentile", type=float, default=99.0, help="cap = this percentile of answer tokens"
    )
    p.add_argument(
        "--band",
        default=None,
        help="also set caps for the layers FIRST-LAST (e.g. 12-20), each on the vector's own direction there",
    )
    p.add_argument(
        "--generation_engine",
        choices=("auto", "hf", "vllm"),
        default="auto",
        help="who answers the prompts: vllm when it is installed (auto), else Hugging Face",
    )
    p.add_argument("--dtype", default="float32", help="model dtype (float32, bfloat16)")
    return p


def parse_band(text: str | None, n_layers: int) -> list[int]:
    if not text:
        return []
    first, sep, last = text.partition("-")
    try:
        layers = list(range(int(first), int(last if sep else first) + 1))
    except ValueError:
        raise UserError(f"--band {text!r}: expected FIRST-LAST layers, e.g. 12-20") from None
    if not layers or layers[0] < 1 or layers[-1] > n_layers:
        raise UserError(f"--band {text!r}: layers must lie in 1-{n_layers}")
    return layers


def main(argv: list[str]) -> int:
    opts = parser().parse_args(argv)
    from persona_vaccine.models.layers import get_decoder_layers
    from persona_vaccine.models.loading import load_model
    from persona_vaccine.steering.generation_engines import engine_for
    from persona_vaccine.steering.vector import PersonaVector, vector_for_model

    from .ordinary import answer_ordinary_prompts, calibrate_from_reads, load_prompts, read_answers_many

    vectors = [(PersonaVector.load(p), p) for p in opts.vectors]
    tune, heldout = load_prompts(opts.prompts, "tune"), load_prompts(opts.prompts, "heldout")
    model, tokenizer = load_model(opts.model, dtype=opts.dtype)
    band = parse_band(opts.band, len(get_decoder_layers(model)))
    engine_name = opts.generation_engine
    if engine_name == "auto":
        engine_name = "vllm" if importlib.util.find_spec("vllm") is not None else "hf"
    digest = hashlib.sha256(f"{opts.model}|{opts.prompts}".encode()).hexdigest()[:10]
    cache = Path(opts.vectors[0]).parent / f"ordinary_answers-{digest}.jsonl"
    with engine_for(engine_name, opts.model, model, tokenizer, dtype=opts.dtype) as engine:
        answered = answer_ordinary_prompts(
            engine, tokenizer, tune + heldout, opts.max_new_tokens, cache, opts.model
        )
    prompt_ids = [a[0] for a in answered]
    response_ids = [a[1] for a in answered]
    for vector, path in vectors:
        vector_for_model(vector, model, opts.model, source=str(path))
    plan = [(v, [*band, v.default_layer()], v.default_layer()) for v, _ in vectors]
    all_reads = read_answers_many(model, plan, prompt_ids, response_ids, opts.max_new_tokens)
    for (vector, path), reads in zip(vectors, all_reads, strict=True):
        layer = vector.default_layer()
        calibration = calibrate_from_reads(
            vector,
            opts.model,
            reads[: len(tune)],
            reads[len(tune) :],
            layer,
            opts.false_alert_rate,
            opts.cap_percentile,
            opts.min_tokens,
            opts.max_new_tokens,
            opts.prompts or "shipped ordinary prompts",
        )
        saved = calibration.save(path)
        print(
            f"{vector.trait} (layer {layer}): early warning > {calibration.prompt_threshold:.3f}, running mean > "
            f"{calibration.response_threshold:.3f}, cap {calibration.cap:.3f}; {calibration.describe()} -> {saved}"
        )
    return 0
