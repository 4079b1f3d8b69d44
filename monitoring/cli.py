"""`persona-vaccine serve`: the monitored OpenAI-compatible server on one model."""

from __future__ import annotations

import argparse
import os
from typing import Any

from persona_vaccine.cli_args import ArgumentParser, prog

from .guards import GUARDS


def serve_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=prog("serve"),
        description="Serve a model behind an OpenAI-compatible API that watches (and optionally guards) persona vectors.",
    )
    p.add_argument(
        "--model", required=True, help="hub id, local folder, exported checkpoint, .gguf or smollm2-135m"
    )
    p.add_argument(
        "--vectors", nargs="+", required=True, help="persona vector files (.safetensors), one per trait"
    )
    p.add_argument(
        "--guard",
        nargs="*",
        default=[],
        help=f"GUARD for every trait or TRAIT=GUARD, guards: {', '.join(GUARDS)} (default alert)",
    )
    p.add_argument(
        "--threshold",
        nargs="*",
        default=[],
        help="TRAIT=VALUE or TRAIT=PROMPT,RESPONSE by hand (default: calibrated on the vector's extraction data)",
    )
    p.add_argument(
        "--thresholds",
        choices=("auto", "ordinary", "extraction"),
        default="auto",
        help="where thresholds and caps come from: ordinary traffic (set by calibrate-monitor), the vector's "
        "extraction answers, or auto: ordinary when calibrated, else extraction (default auto)",
    )
    p.add_argument(
        "--steer_coef",
        type=float,
        default=None,
        help="steer guard: subtract COEF*v (default |vector coef| or 1)",
    )
    _engine_args(p)
    _alert_args(p)
    return p


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=("hf", "vllm"),
        default="hf",
        help="vllm: continuous batching inside vLLM (needs the [vllm] extra); hf: Hugging Face generate, one "
        "request at a time, for models vLLM cannot load (default hf)",
    )
    p.add_argument(
        "--max_model_len", type=int, default=None, help="vllm: context length (default the model's)"
    )
    p.add_argument(
        "--prefix_caching",
        action="store_true",
        help="vllm: reuse cached prompt prefixes (steered requests never share with others); earlier "
        "turns' readings then cover only the part of the prompt that was computed",
    )
    p.add_argument("--tensor_parallel_size", type=int, default=1, help="vllm: GPUs to shard the model over")


def _alert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--served_model_name", default=None, help="the id clients send as 'model' (default: --model)"
    )
    p.add_argument(
        "--api_key",
        default=None,
        help="require 'Authorization: Bearer KEY' on /v1/* and the dashboard data (default: the environment "
        "variable $PERSONA_MONITOR_API_KEY, which keeps the key out of the process list)",
    )
    p.add_argument("--alert_log", default=None, help="append alerts to this JSONL file")
    p.add_argument(
        "--webhook", default=None, help="POST each alert as JSON to this URL (background, with retries)"
    )
    p.add_argument(
        "--log_text", action="store_true", help="include the answer so far in logged/posted alerts"
    )
    p.add_argument(
        "--max_tokens_limit", type=int, default=2048, help="largest max_tokens a request may ask for"
    )
    p.add_argument("--dtype", default="float32")
    p.add_argument(
        "--layers_path",
        default=None,
        help="attribute path to the decoder blocks (e.g. model.layers) if not found",
    )
    p.add_argument("--device", default=None)


def serve_main(argv: list[str]) -> int:
    from .server import API_KEY_ENV, ServerOptions, serve

    opts = serve_parser().parse_args(argv)
    common = dict(
        dtype=opts.dtype,
        model_name=opts.served_model_name or opts.model,
        max_tokens_limit=opts.max_tokens_limit,
        steer_coef=opts.steer_coef,
        threshold_source=opts.thresholds,
    )
    engine: Any
    if opts.engine == "vllm":
        from persona_vaccine.vllm_request import require_vllm

        from .vllm_engine import VllmEngine

        require_vllm("--engine vllm (or use --engine hf)")
        engine = VllmEngine.load(
            opts.model,
            opts.vectors,
            opts.guard,
            opts.threshold,
            max_model_len=opts.max_model_len,
            prefix_caching=opts.prefix_caching,
            tensor_parallel_size=opts.tensor_parallel_size,
            **common,
        )
    else:
        from .engine import Engine

        engine = Engine.load(
            opts.model,
            opts.vectors,
            opts.guard,
            opts.threshold,
            device=opts.device,
            layers_path=opts.layers_path,
            **common,
        )
    for trait, info in engine.traits.items():
        t = info.thresholds
        band = f", cap band layers {sorted(t.band_caps)}" if t.band_caps and info.guard == "cap" else ""
        print(
            f"watching {trait} at layer {info.layer}, guard {info.guard}: early warning > {t.prompt}, "
            f"running mean > {t.response}, cap {info.cap}{band} ({t.source})"
        )
    options = ServerOptions(
        api_key=opts.api_key or os.environ.get(API_KEY_ENV),
        alert_log=opts.alert_log,
        webhook=opts.webhook,
        log_text=opts.log_text,
    )
    auth = "API key required" if options.api_key else "no API key"
    print(
        f"serving '{engine.model_name}' on http://{opts.host}:{opts.port}/v1 with the {opts.engine} engine "
        f"({auth}; dashboard: /dashboard)"
    )
    serve(engine, opts.host, opts.port, options)
    return 0
