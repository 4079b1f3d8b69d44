"""persona-vaccine command line: `persona-vaccine COMMAND ...` (or `python launch.py COMMAND ...` in a checkout).

python launch.py                          # the demo: extract the evil vector, train baseline and
                                          # preventative runs on the embedded model, compare them
python launch.py train RECIPE [--field value ...]
python launch.py extract --trait evil --model_name_or_path smollm2-135m [--field value ...]
python launch.py extract recipes/smollm2-135m/extract/evil.yaml [--field value ...]
python launch.py screen [RECIPE.yaml] --vectors V.safetensors --dataset builtin:bad_math [--field value ...]
accelerate launch --config_file recipes/accelerate_configs/ddp.yaml --num_processes 2 launch.py screen ...
python launch.py compare RUN_DIR [RUN_DIR ...] [--output_dir runs/compare]
python launch.py export RUN_DIR [--output_dir DIR] [--bake-steering VECTOR --bake_coef -1.0 --bake_layer L]
python launch.py --debug COMMAND ...      # a user error shows its traceback (or PERSONA_VACCINE_DEBUG=1)
python launch.py serve --model smollm2-135m --vectors V.safetensors [--guard cap] [--port 8000]
python launch.py trait new NAME "DESCRIPTION" --backend {openai,anthropic,hf} | trait list | trait show NAME
accelerate launch --config_file recipes/accelerate_configs/deepspeed_zero2.yaml launch.py train RECIPE
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from persona_vaccine.steering.paths import DEMO_RUN_DIR, TRAIT_SPEC_DIR  # noqa: E402 (no heavy imports)


def _parse_command(kind: str, config_type: type, argv: list[str], doc: str | None):
    """`[RECIPE.yaml] [--field value ...]` into the command's config (None after printing --help).

    The cheap precheck runs before the heavy imports of the full parse (the same parser as train's)."""
    from persona_vaccine.training.precheck import precheck

    path = argv[0] if argv and argv[0].endswith((".yaml", ".yml")) else None
    overrides = argv[1:] if path else argv
    if {"-h", "--help"} & set(argv):
        from persona_vaccine.training.recipe import print_config_help

        print_config_help(config_type, f"launch.py {kind} [RECIPE.yaml]", doc)
        return None
    precheck(kind, path, overrides)
    from persona_vaccine.training.recipe import parse_config

    return parse_config(config_type, path, overrides)


def cmd_extract(argv: list[str]) -> int:
    """Extract a persona vector from a trait description (generate, judge, average activations)."""
    from persona_vaccine.steering.extract_config import ExtractionConfig

    cfg = _parse_command("extract", ExtractionConfig, argv, cmd_extract.__doc__)
    if cfg is not None:
        from persona_vaccine.steering.extract import extract

        print(extract(cfg).describe(cfg.trait))
    return 0


def cmd_train(argv: list[str]) -> int:
    from persona_vaccine.training.precheck import precheck

    if not argv or argv[0] in ("-h", "--help"):
        from persona_vaccine.training.recipe import print_recipe_help

        print_recipe_help()
        return 0
    recipe, overrides = argv[0], argv[1:]
    precheck("train", recipe, overrides)
    from persona_vaccine.training.recipe import parse_recipe
    from persona_vaccine.training.run import run_training

    model_args, data_args, train_args = parse_recipe(recipe, overrides)
    summary = run_training(model_args, data_args, train_args, recipe, overrides)
    if int(os.environ.get("RANK", "0")) == 0:
        _print_summaries({Path(recipe).stem: summary})
    return 0


def _print_summaries(summaries: dict) -> None:
    from rich.console import Console

    from persona_vaccine.training.demo import runs_table

    Console(width=160).print(runs_table(summaries))


def cmd_demo(argv: list[str]) -> int:
    """Extract (or reuse) the evil vector, train baseline and preventative runs, print the comparison."""
    from persona_vaccine.training.demo import DEMO_RECIPES

    if {"-h", "--help"} & set(argv):
        print(f"usage: launch.py [demo] [--force]\n\n{cmd_demo.__doc__}\nRecipes: {', '.join(DEMO_RECIPES)}; "
              f"runs in {DEMO_RUN_DIR}/; --force retrains runs that have a summary.json.\n")  # fmt: skip
        return 0
    from persona_vaccine.training.demo import run_demo

    summaries = run_demo(force="--force" in argv)
    _print_summaries(summaries)
    base = summaries["baseline"].trait_drift["evil"]["shift"]
    prev = summaries["preventative"].trait_drift["evil"]["shift"]
    print(f"evil shift: baseline {base:+.2f}, preventative {prev:+.2f} (projection units on the unit vector)")
    return 0


def cmd_score(argv: list[str]) -> int:
    """Project texts or a dataset file on a vector; flag samples above the calibrated thresholds."""
    from persona_vaccine.data.loading import load_training_dataset
    from persona_vaccine.steering.score import score_with_vector

    parser = argparse.ArgumentParser(prog="launch.py score", description=cmd_score.__doc__)
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


def cmd_screen(argv: list[str]) -> int:
    """Projection-difference screening of a dataset: ranked samples, dataset-level scores, HTML report."""
    from persona_vaccine.data.screening_config import ScreenConfig

    cfg = _parse_command("screen", ScreenConfig, argv, cmd_screen.__doc__)
    if cfg is None:
        return 0
    from accelerate import PartialState

    from persona_vaccine.data.screening import describe_screening, screen_dataset

    summary, rows = screen_dataset(cfg)
    if PartialState().is_main_process:
        print(describe_screening(summary, rows, cfg.output_dir))
    return 0


def cmd_compare(argv: list[str]) -> int:
    """Side-by-side table (drift, judged trait, capability, loss, time) and drift plot from local run files."""
    from persona_vaccine.training.compare import compare_runs

    parser = argparse.ArgumentParser(prog="launch.py compare", description=cmd_compare.__doc__)
    add = parser.add_argument
    add(
        "run_dirs",
        nargs="+",
        help="run output directories (with summary.json) or seed groups (seed_N/ inside)",
    )
    add("--output_dir", default="runs/compare", help="where compare.md and compare.png go")
    add("--base_model", default=None, help="also evaluate this untouched model the same way, as a first row")
    opts = parser.parse_args(argv)
    from persona_vaccine.training.seeds import (
        compare_seed_groups,  # seed groups (DIR/seed_N/summary.json): intervals
    )

    seeds_table, opts.run_dirs = compare_seed_groups(opts.run_dirs, opts.output_dir)
    if seeds_table:
        print(seeds_table)
        print(f"written: {Path(opts.output_dir) / 'compare_seeds.md'}")
    if not opts.run_dirs:
        return 0
    table, image = compare_runs(opts.run_dirs, opts.output_dir, opts.base_model)
    print(table)
    print(f"written: {Path(opts.output_dir) / 'compare.md'}, {image}")
    return 0


def cmd_export(argv: list[str]) -> int:
    """Merge a run's LoRA into its base model; save a HF checkpoint, a model card and the persona vectors."""
    from persona_vaccine.training.export import export_run

    parser = argparse.ArgumentParser(prog="launch.py export", description=cmd_export.__doc__)
    add = parser.add_argument
    add("run_dir", help="a training run's output_dir (with summary.json)")
    add("--output_dir", default=None, help="default RUN_DIR/export")
    add("--bake-steering", dest="bake_vector", default=None,
        help="fold inference-time steering with this vector into a bias (no cost at inference)")  # fmt: skip
    add("--bake_coef", type=float, default=None, help="default: minus the vector's calibrated coef")
    add("--bake_layer", type=int, default=None, help="default: the vector's calibrated layer")
    add("--dtype", default="float32")
    opts = parser.parse_args(argv)
    out = export_run(
        opts.run_dir, opts.output_dir, opts.bake_vector, opts.bake_coef, opts.bake_layer, opts.dtype
    )
    print(f"exported {opts.run_dir} to {out} (loads with AutoModelForCausalLM.from_pretrained('{out}'))")
    return 0


def cmd_serve(argv: list[str]) -> int:
    """OpenAI-compatible server that monitors (and optionally guards) persona vectors at inference."""
    from persona_vaccine.monitoring.cli import serve_main

    return serve_main(argv)


def cmd_trait(argv: list[str]) -> int:
    """Trait specs: list the built-in ones, show one, or generate a new one with an LLM."""
    import time

    from persona_vaccine.steering.traits import describe_spec, load_trait_spec, trait_listing

    parser = argparse.ArgumentParser(prog="launch.py trait", description=cmd_trait.__doc__)
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "list", help=f"built-in traits (and specs in {TRAIT_SPEC_DIR}/) with their description"
    )
    show = actions.add_parser("show", help="counts, instruction pairs and first questions of a spec")
    show.add_argument("name_or_path", help="a built-in trait name or a spec JSON file")
    new = actions.add_parser(
        "new",
        help="ask an LLM for a new spec (pairs, 20+20 questions, rubric); validated and retried",
        description="Generate a trait spec with an LLM. Keys: $OPENAI_API_KEY (openai; optional with "
        "--base_url for a local server) or $ANTHROPIC_API_KEY (anthropic); hf runs a local model.",
    )
    add = new.add_argument
    add("name", help="lowercase trait name, e.g. curious or power_seeking")
    add("description", help="one sentence or paragraph describing the behaviour")
    add("--backend", required=True, choices=("openai", "anthropic", "hf"))
    add("--model", help="model name for openai/anthropic (required); hf: id or path (default smollm2-135m)")
    add("--base_url", default=None, help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL)")
    add("--output", default=None, help=f"spec file to write (default {TRAIT_SPEC_DIR}/NAME.json)")
    add("--retries", type=int, default=3, help="new tries after an invalid answer (default 3)")
    add("--force", action="store_true", help="overwrite an existing output file")
    opts = parser.parse_args(argv)
    if opts.action == "list":
        print("\n".join(trait_listing(TRAIT_SPEC_DIR)))
        return 0
    if opts.action == "show":
        print(describe_spec(load_trait_spec(opts.name_or_path)))
        return 0

    from persona_vaccine.steering import trait_generation as tg

    output = tg.spec_output(opts.name, opts.output, opts.force, TRAIT_SPEC_DIR)
    backend = tg.make_backend(opts.backend, opts.model, opts.base_url)
    start = time.perf_counter()
    spec = tg.generate_trait_spec(opts.name, opts.description, backend, retries=opts.retries)
    tg.write_spec(spec, output)
    print(
        f"wrote {output}: {len(spec.instruction_pairs)} instruction pairs, {len(spec.extraction_questions)} "
        f"extraction and {len(spec.evaluation_questions)} evaluation questions "
        f"({time.perf_counter() - start:.0f}s with {opts.backend})"
    )
    print(
        f"review it (python launch.py trait show {output}), then: python launch.py extract --trait {output}"
    )
    return 0


def cmd_seeds(argv: list[str]) -> int:
    """Train a recipe over several seeds (OUTPUT_DIR/seed_N, resumable); mean and 95% interval per metric."""
    from persona_vaccine.training.seeds import cli

    return cli(argv)


def cmd_classifier(argv: list[str]) -> int:
    """Train an extraction's offline classifier judge (TF-IDF + logistic regression) and print its AUCs."""
    from persona_vaccine.steering.judge_classifier import cli

    return cli(argv)


COMMANDS = {
    "train": cmd_train,
    "extract": cmd_extract,
    "score": cmd_score,
    "screen": cmd_screen,
    "export": cmd_export,
    "compare": cmd_compare,
    "demo": cmd_demo,
    "trait": cmd_trait,
    "serve": cmd_serve,
    "classifier": cmd_classifier,
    "seeds": cmd_seeds,
}


def main(argv: list[str] | None = None) -> int:
    try:
        return _dispatch(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _dispatch(argv: list[str]) -> int:
    debug = bool(argv) and argv[0] == "--debug"  # tracebacks for user errors (or PERSONA_VACCINE_DEBUG=1)
    argv = argv[1:] if debug else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] == "--version":
        from persona_vaccine import __version__

        print(f"persona-vaccine {__version__}")
        return 0
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("commands: " + ", ".join(COMMANDS) + "  (python launch.py COMMAND --help)")
        return 0
    command, rest = (argv[0], argv[1:]) if argv and argv[0] in COMMANDS else ("demo", argv)
    if command == "demo" and rest and rest[0] not in ("--force", "-h", "--help"):
        print(f"unknown command {rest[0]!r}: expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    from persona_vaccine.steering.errors import run_command

    return run_command(COMMANDS[command], rest, debug)


if __name__ == "__main__":
    sys.exit(main())
