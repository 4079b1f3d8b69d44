"""`launch.py score`: project texts or a dataset file on a persona vector (data/scoring.py)."""

from __future__ import annotations

from .loading import load_training_dataset
from .scoring import score_with_vector


def cli(argv: list[str]) -> int:
    """`launch.py score`: project texts or a dataset file on a vector; flag samples above the thresholds."""
    from persona_vaccine.cli_args import ArgumentParser, prog

    parser = ArgumentParser(prog=prog("score"), description=(cli.__doc__ or "").split(": ", 1)[-1])
    add = parser.add_argument
    add("--vector", required=True, help="persona vector file (.safetensors)")
    add("--layer", type=int, default=None, help="default: the vector's calibrated or middle layer")
    add("--model", default=None, help="default: the model the vector was extracted from")
    add("--text", action="append", default=[], help="a user message to score (repeatable)")
    add("--file", default=None, help="a .jsonl/.json/.csv/.parquet dataset (messages or prompt/response)")
    add("--output", default=None, help="write one JSON row per sample here")
    add("--no-calibrate", action="store_true", help="skip the threshold (no flags)")
    add("--batch_size", type=int, default=16)
    add("--layers_path", default=None, help="attribute path to the decoder blocks, if not found")
    opts = parser.parse_args(argv)
    if not opts.text and not opts.file:
        parser.error("give --text or --file")
    if any(not t.strip() for t in opts.text):
        parser.error("--text is empty: give the user message to score")
    samples = [{"prompt": [{"role": "user", "content": t}]} for t in opts.text]
    samples += list(load_training_dataset(opts.file)) if opts.file else []
    run = score_with_vector(opts.vector, samples, opts.layer, opts.model, not opts.no_calibrate,
                            opts.batch_size, opts.layers_path, opts.output)  # fmt: skip
    print(run.describe(not opts.no_calibrate))
    return 0
