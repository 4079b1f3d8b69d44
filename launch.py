"""persona-vaccine command line.

python launch.py                          # the demo: extract the evil vector, train baseline and
                                          # preventative runs on the embedded model, compare them
python launch.py train RECIPE [--field value ...]
python launch.py extract --trait evil --model smollm2-135m [--output_dir runs/vectors/...]
accelerate launch --config_file recipes/accelerate_configs/deepspeed_zero2.yaml launch.py train RECIPE
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEMO_DIR = "runs/demo"
DEMO_VECTORS = "runs/vectors/smollm2-135m"  # where the smollm2-135m recipes look for their vectors
DEMO_RECIPES = ("recipes/smollm2-135m/evil/baseline.yaml", "recipes/smollm2-135m/evil/preventative.yaml")


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _extract_parser() -> argparse.ArgumentParser:
    from steering.extract import ExtractionConfig

    parser = argparse.ArgumentParser(prog="launch.py extract", description="Extract a persona vector.")
    for f in dataclasses.fields(ExtractionConfig):
        kind = {"int": int, "float": float, "bool": _bool}.get(str(f.type).split(" ")[0], str)
        flag = "--model" if f.name == "model_name_or_path" else f"--{f.name}"
        parser.add_argument(flag, dest=f.name, type=kind, default=f.default, help=f"(default: {f.default})")
    return parser


def cmd_extract(argv: list[str]) -> int:
    from steering.extract import ExtractionConfig, extract

    cfg = ExtractionConfig(**vars(_extract_parser().parse_args(argv)))
    result = extract(cfg)
    print(f"trait '{cfg.trait}': {result.n_pos} pos / {result.n_neg} neg responses, {result.seconds:.0f}s")
    for position, path in result.paths.items():
        print(f"  {position:13s} {path}")
    return 0


def cmd_train(argv: list[str]) -> int:
    from training.recipe import parse_recipe
    from training.run import run_training

    if not argv or argv[0] in ("-h", "--help"):
        from training.recipe import RECIPE_TYPES, _Parser

        print(
            "usage: launch.py train RECIPE.yaml [--field value ...]\n\nAny field below can be set in the "
            "recipe or overridden on the command line.\n"
        )
        _Parser(RECIPE_TYPES).print_help()
        return 0
    recipe, overrides = argv[0], argv[1:]
    model_args, data_args, train_args = parse_recipe(recipe, overrides)
    summary = run_training(model_args, data_args, train_args, recipe)
    if int(os.environ.get("RANK", "0")) == 0:
        _print_summaries({Path(recipe).stem: summary})
    return 0


def _print_summaries(summaries: dict[str, dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="persona-vaccine runs")
    for column in (
        "run",
        "steering",
        "steps",
        "final loss",
        "trait",
        "base proj",
        "final proj",
        "shift",
        "time (s)",
    ):
        table.add_column(column)
    for name, s in summaries.items():
        steering = (
            ", ".join(f"{x['trait']}@{x['layer']} x{x['coef']:g} {x['mode']}" for x in s["steering"])
            or "none"
        )
        for trait, d in (s["trait_drift"] or {"-": {}}).items():
            fmt = lambda x: "-" if x is None else f"{x:+.2f}"  # noqa: E731
            table.add_row(
                name,
                steering,
                str(s["train"]["steps"]),
                f"{s['train']['final_loss']:.3f}",
                trait,
                fmt(d.get("base_projection")),
                fmt(d.get("final_projection")),
                fmt(d.get("shift")),
                f"{s['train']['runtime_s']:.0f}",
            )
    Console(width=160).print(table)


def cmd_demo(argv: list[str]) -> int:
    """Extract (or reuse) the evil vector, train baseline and preventative runs, print the comparison."""
    import json

    from steering.extract import ExtractionConfig, extract
    from training.recipe import parse_recipe
    from training.run import run_training

    vector_dir = DEMO_VECTORS
    vector = Path(vector_dir) / "evil" / "response_avg.safetensors"
    if vector.is_file():
        print(f"reusing {vector}")
    else:
        extract(ExtractionConfig(trait="evil", model_name_or_path="smollm2-135m", output_dir=vector_dir))
    summaries = {}
    for recipe in DEMO_RECIPES:
        name = Path(recipe).stem
        out = Path(DEMO_DIR) / name
        if (out / "summary.json").is_file() and "--force" not in argv:
            print(f"reusing {out}/summary.json (pass --force to retrain)")
            summaries[name] = json.loads((out / "summary.json").read_text())
            continue
        overrides = ["--output_dir", str(out)]
        model_args, data_args, train_args = parse_recipe(recipe, overrides)
        summaries[name] = run_training(model_args, data_args, train_args, recipe)
    _print_summaries(summaries)
    base = summaries["baseline"]["trait_drift"]["evil"]["shift"]
    prev = summaries["preventative"]["trait_drift"]["evil"]["shift"]
    print(f"evil shift: baseline {base:+.2f}, preventative {prev:+.2f} (projection units on the unit vector)")
    return 0


def cmd_score(argv: list[str]) -> int:
    """Project texts or a dataset file on a vector; flag samples above the calibrated thresholds."""
    import json

    from steering.models import load_model
    from steering.score import calibrate, score_samples
    from steering.vector import PersonaVector

    parser = argparse.ArgumentParser(prog="launch.py score", description=cmd_score.__doc__)
    parser.add_argument("--vector", required=True, help="persona vector file (.safetensors)")
    parser.add_argument(
        "--layer", type=int, default=None, help="default: the vector's calibrated or middle layer"
    )
    parser.add_argument("--model", default=None, help="default: the model the vector was extracted from")
    parser.add_argument("--text", action="append", default=[], help="a user message to score (repeatable)")
    parser.add_argument(
        "--file", default=None, help="a .jsonl/.json/.csv/.parquet dataset (messages or prompt/response)"
    )
    parser.add_argument("--output", default=None, help="write one JSON row per sample here")
    parser.add_argument("--no-calibrate", action="store_true", help="skip the threshold (no flags)")
    parser.add_argument("--batch_size", type=int, default=16)
    opts = parser.parse_args(argv)
    if not opts.text and not opts.file:
        parser.error("give --text or --file")
    from data.loading import load_training_dataset

    vector = PersonaVector.load(opts.vector)
    layer = opts.layer or vector.default_layer()
    model, tokenizer = load_model(opts.model or vector.model_id)
    from steering.layers import get_decoder_layers, hidden_size

    vector.check_model(
        hidden_size(model), len(get_decoder_layers(model)), opts.model or vector.model_id, opts.vector
    )
    samples = [{"prompt": [{"role": "user", "content": t}]} for t in opts.text]
    if opts.file:
        samples += list(load_training_dataset(opts.file))
    calibration = None
    generations = Path(opts.vector).parent / "generations.jsonl"
    if not opts.no_calibrate:
        if generations.is_file():
            calibration = calibrate(model, tokenizer, vector, layer, generations, opts.batch_size)
            print(
                f"thresholds from {calibration.n_pos} pos / {calibration.n_neg} neg extraction responses at layer "
                f"{layer}: prompt {calibration.prompt_threshold:+.2f} (AUC {calibration.prompt_auc:.3f}), "
                f"response {calibration.response_threshold:+.2f} (AUC {calibration.response_auc:.3f})"
            )
        else:
            print(f"no {generations}: projections only, no flags")
    rows = score_samples(model, tokenizer, vector, layer, samples, calibration, opts.batch_size)
    if opts.output:
        Path(opts.output).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.output).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for row, sample in zip(rows[:20], samples, strict=False):
        text = sample["prompt"][-1]["content"][:60]
        resp = "-" if row["response_projection"] is None else f"{row['response_projection']:+.2f}"
        flag = {True: "FLAG", False: "ok", None: ""}[row.get("flagged")]
        print(
            f"{row['index']:>4}  prompt {row['prompt_projection']:+8.2f}  response {resp:>8}  {flag:4}  {text}"
        )
    if calibration is not None:
        print(f"{sum(r['flagged'] for r in rows)} of {len(rows)} samples flagged")
    return 0


COMMANDS = {"train": cmd_train, "extract": cmd_extract, "score": cmd_score, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("commands: " + ", ".join(COMMANDS) + "  (python launch.py COMMAND --help)")
        return 0
    command, rest = (argv[0], argv[1:]) if argv and argv[0] in COMMANDS else ("demo", argv)
    if command == "demo" and rest and rest != ["--force"]:
        print(f"unknown command {rest[0]!r}: expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[command](rest)
    except _user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors caused by input (recipes, vectors, specs, data, models): printed without a traceback."""
    from data.loading import DatasetError
    from steering.layers import UnsupportedArchitecture
    from steering.models import EmbeddedModelMissing
    from steering.traits import TraitSpecError
    from steering.vector import VectorMismatch
    from training.recipe import RecipeError

    return (
        RecipeError,
        VectorMismatch,
        TraitSpecError,
        DatasetError,
        EmbeddedModelMissing,
        UnsupportedArchitecture,
        FileNotFoundError,
    )


if __name__ == "__main__":
    sys.exit(main())
