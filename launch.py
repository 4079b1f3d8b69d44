"""persona-vaccine command line.

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

DEMO_DIR = "runs/demo"
DEMO_VECTORS = "runs/vectors/smollm2-135m"  # where the smollm2-135m recipes look for their vectors
DEMO_RECIPES = ("recipes/smollm2-135m/evil/baseline.yaml", "recipes/smollm2-135m/evil/preventative.yaml")


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def cmd_extract(argv: list[str]) -> int:
    """Extract a persona vector from a trait description (generate, judge, average activations)."""
    from training.precheck import precheck

    recipe = argv[0] if argv and argv[0].endswith((".yaml", ".yml")) else None
    precheck("extract", recipe, argv[1:] if recipe else argv)
    from steering.extract import ExtractionConfig, extract
    from training.recipe import parse_config, print_config_help

    if {"-h", "--help"} & set(argv):
        print_config_help(ExtractionConfig, "launch.py extract [RECIPE.yaml]", cmd_extract.__doc__)
        return 0
    path, overrides = (recipe, argv[1:]) if recipe else (None, argv)
    cfg = parse_config(ExtractionConfig, path, overrides)
    result = extract(cfg)
    vector = result.vector()
    print(
        f"trait '{cfg.trait}': {result.n_pos} pos / {result.n_neg} neg responses kept, {result.seconds:.0f}s"
    )
    if result.filter and "pos" in result.filter:
        f = result.filter
        print(
            f"  judge {f['judge']}: pos {f['pos']['kept']}/{f['pos']['generated']}, neg {f['neg']['kept']}/"
            f"{f['neg']['generated']} kept (trait threshold {f['trait_threshold']:g}, coherence "
            f"{f['coherence_threshold']:g}); judge AUC pos vs neg {f['judge_auc_pos_vs_neg'] or float('nan'):.3f}"
        )
    if vector.layer is not None:
        print(
            f"  calibrated: layer {vector.layer}, coef {vector.coef:g} (report: calibration.md, calibration.png)"
        )
    if result.heldout:
        h = result.heldout
        print(
            f"  held-out evaluation questions, layer {h['layer']}: AUC response {h['response_auc']:.3f}, "
            f"last prompt token {h['prompt_last_auc']:.3f} ({h['n_pos']} pos / {h['n_neg']} neg)"
        )
    for position, path in result.paths.items():
        print(f"  {position:24s} {path}")
    return 0


def cmd_train(argv: list[str]) -> int:
    from training.precheck import precheck

    if not argv or argv[0] in ("-h", "--help"):
        from training.recipe import RECIPE_TYPES, _Parser

        print(
            "usage: launch.py train RECIPE.yaml [--field value ...]\n\nAny field below can be set in the "
            "recipe or overridden on the command line.\n"
        )
        _Parser(RECIPE_TYPES).print_help()
        return 0
    recipe, overrides = argv[0], argv[1:]
    precheck("train", recipe, overrides)
    from training.recipe import parse_recipe
    from training.run import run_training

    model_args, data_args, train_args = parse_recipe(recipe, overrides)
    summary = run_training(model_args, data_args, train_args, recipe, overrides)
    if int(os.environ.get("RANK", "0")) == 0:
        _print_summaries({Path(recipe).stem: summary})
    return 0


def _print_summaries(summaries: dict) -> None:
    """A table of RunSummary objects by run name."""
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
            ", ".join(f"{x['trait']}@{x['layer']} x{x['coef']:g} {x['mode']}" for x in s.steering) or "none"
        )
        for trait, d in (s.trait_drift or {"-": {}}).items():
            fmt = lambda x: "-" if x is None else f"{x:+.2f}"  # noqa: E731
            table.add_row(
                name,
                steering,
                str(s.train["steps"]),
                f"{s.train['final_loss']:.3f}",
                trait,
                fmt(d.get("base_projection")),
                fmt(d.get("final_projection")),
                fmt(d.get("shift")),
                f"{s.train['runtime_s']:.0f}",
            )
    Console(width=160).print(table)


def cmd_demo(argv: list[str]) -> int:
    """Extract (or reuse) the evil vector, train baseline and preventative runs, print the comparison."""
    if {"-h", "--help"} & set(argv):
        print(f"usage: launch.py [demo] [--force]\n\n{cmd_demo.__doc__}\nRecipes: {', '.join(DEMO_RECIPES)}; "
              f"runs in {DEMO_DIR}/; --force retrains runs that have a summary.json.\n")  # fmt: skip
        return 0

    from steering.extract import ExtractionConfig, extract
    from training.recipe import parse_recipe
    from training.run import run_training
    from training.summary import RunSummary

    vector_dir = DEMO_VECTORS
    vector = Path(vector_dir) / "evil" / "response_avg.safetensors"
    if vector.is_file():
        print(f"reusing {vector}")
    else:
        extract(
            ExtractionConfig(
                trait="evil", model_name_or_path="smollm2-135m", output_dir=vector_dir, heldout_eval=False
            )
        )
    summaries = {}
    for recipe in DEMO_RECIPES:
        name = Path(recipe).stem
        out = Path(DEMO_DIR) / name
        if (out / "summary.json").is_file() and "--force" not in argv:
            print(f"reusing {out}/summary.json (pass --force to retrain)")
            summaries[name] = RunSummary.read(out / "summary.json")
            continue
        overrides = ["--output_dir", str(out)]
        model_args, data_args, train_args = parse_recipe(recipe, overrides)
        summaries[name] = run_training(model_args, data_args, train_args, recipe, overrides)
    _print_summaries(summaries)
    base = summaries["baseline"].trait_drift["evil"]["shift"]
    prev = summaries["preventative"].trait_drift["evil"]["shift"]
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
    parser.add_argument(
        "--layers_path", default=None, help="attribute path to the decoder blocks, if not found"
    )
    opts = parser.parse_args(argv)
    if not opts.text and not opts.file:
        parser.error("give --text or --file")
    if any(not t.strip() for t in opts.text):
        parser.error("--text is empty: give the user message to score")
    from data.loading import load_training_dataset
    from steering.layers import check_layer

    vector = PersonaVector.load(opts.vector)
    layer = vector.default_layer() if opts.layer is None else opts.layer
    try:
        check_layer(layer, vector.num_layers, where="--layer")
    except ValueError as e:
        parser.error(str(e))
    model, tokenizer = load_model(opts.model or vector.model_id, layers_path=opts.layers_path)
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


def cmd_screen(argv: list[str]) -> int:
    """Projection-difference screening of a dataset: ranked samples, dataset-level scores, HTML report."""
    from training.precheck import precheck

    if argv and argv[0] in ("-h", "--help"):
        from data.screening import ScreenConfig
        from training.recipe import print_config_help

        print_config_help(ScreenConfig, "launch.py screen [RECIPE.yaml]", cmd_screen.__doc__)
        return 0
    path, overrides = (argv[0], argv[1:]) if argv and argv[0].endswith((".yaml", ".yml")) else (None, argv)
    precheck("screen", path, overrides)
    from data.screening import ScreenConfig, screen_dataset
    from training.recipe import parse_config

    cfg = parse_config(ScreenConfig, path, overrides)
    summary, rows = screen_dataset(cfg)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return 0
    out = Path(cfg.output_dir)
    print(f"screened {summary['samples']} samples in {summary.get('seconds', 0):.0f}s; ranked by {cfg.score}")
    for trait, stats in summary["traits"].items():
        line = ", ".join(
            f"{name} mean {stats[name]['mean']:+.3f}"
            for name in ("projection_diff", "approx_diff")
            if name in stats
        )
        print(f"  {trait} (layer {rows[0]['scores'][trait]['layer']}): {line}")
        for level, by_score in stats.get("by_level", {}).items():
            parts = []
            for name in ("projection_diff", "approx_diff"):
                if name in by_score:
                    s = by_score[name]
                    aucs = "".join(f", {k} {v:.3f}" for k, v in s.items() if k.startswith("auc"))
                    parts.append(f"{name} {s['mean']:+.3f} (sd {s['std']:.2f}{aucs})")
            print(f"    {level:8s} n={by_score['n']:<4d} " + "; ".join(parts))
    print(f"  {out / 'screened.jsonl'} (riskiest first), {out / 'summary.json'}, {out / 'report.html'}")
    return 0


def cmd_compare(argv: list[str]) -> int:
    """Side-by-side table (drift, judged trait, capability, loss, time) and drift plot from local run files."""
    from training.compare import compare_runs

    parser = argparse.ArgumentParser(prog="launch.py compare", description=cmd_compare.__doc__)
    parser.add_argument(
        "run_dirs",
        nargs="+",
        help="run output directories (with summary.json) or seed groups (seed_N/ inside)",
    )
    parser.add_argument("--output_dir", default="runs/compare", help="where compare.md and compare.png go")
    parser.add_argument(
        "--base_model", default=None, help="also evaluate this untouched model the same way, as a first row"
    )
    opts = parser.parse_args(argv)
    from training.seeds import compare_seed_groups  # seed groups (DIR/seed_N/summary.json): intervals

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
    from training.export import export_run

    parser = argparse.ArgumentParser(prog="launch.py export", description=cmd_export.__doc__)
    parser.add_argument("run_dir", help="a training run's output_dir (with summary.json)")
    parser.add_argument("--output_dir", default=None, help="default RUN_DIR/export")
    parser.add_argument(
        "--bake-steering",
        dest="bake_vector",
        default=None,
        help="fold inference-time steering with this vector into a bias (no cost at inference)",
    )
    parser.add_argument(
        "--bake_coef", type=float, default=None, help="default: minus the vector's calibrated coef"
    )
    parser.add_argument("--bake_layer", type=int, default=None, help="default: the vector's calibrated layer")
    parser.add_argument("--dtype", default="float32")
    opts = parser.parse_args(argv)
    out = export_run(
        opts.run_dir, opts.output_dir, opts.bake_vector, opts.bake_coef, opts.bake_layer, opts.dtype
    )
    print(f"exported {opts.run_dir} to {out} (loads with AutoModelForCausalLM.from_pretrained('{out}'))")
    return 0


def cmd_serve(argv: list[str]) -> int:
    """OpenAI-compatible server that monitors (and optionally guards) persona vectors at inference."""
    from monitoring.cli import serve_main

    return serve_main(argv)


def cmd_trait(argv: list[str]) -> int:
    """Trait specs: list the built-in ones, show one, or generate a new one with an LLM."""
    import textwrap
    import time

    from steering.traits import builtin_traits, load_trait_spec

    parser = argparse.ArgumentParser(prog="launch.py trait", description=cmd_trait.__doc__)
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="built-in traits (and specs in runs/traits/) with their description")
    show = actions.add_parser("show", help="counts, instruction pairs and first questions of a spec")
    show.add_argument("name_or_path", help="a built-in trait name or a spec JSON file")
    new = actions.add_parser(
        "new",
        help="ask an LLM for a new spec (pairs, 20+20 questions, rubric); validated and retried",
        description="Generate a trait spec with an LLM. Keys: $OPENAI_API_KEY (openai; optional with "
        "--base_url for a local server) or $ANTHROPIC_API_KEY (anthropic); hf runs a local model.",
    )
    new.add_argument("name", help="lowercase trait name, e.g. curious or power_seeking")
    new.add_argument("description", help="one sentence or paragraph describing the behaviour")
    new.add_argument("--backend", required=True, choices=("openai", "anthropic", "hf"))
    new.add_argument(
        "--model",
        default=None,
        help="model name for openai/anthropic (required); hf: id or path (default smollm2-135m)",
    )
    new.add_argument("--base_url", default=None, help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL)")
    new.add_argument("--output", default=None, help="spec file to write (default runs/traits/NAME.json)")
    new.add_argument("--retries", type=int, default=3, help="new tries after an invalid answer (default 3)")
    new.add_argument("--force", action="store_true", help="overwrite an existing output file")
    opts = parser.parse_args(argv)

    if opts.action == "list":
        for name in builtin_traits():
            description = load_trait_spec(name).description
            print(f"{name:16s} {textwrap.shorten(description.split('. ')[0].rstrip('.'), 90)}")
        for path in sorted(Path("runs/traits").glob("*.json")):
            print(f"{path.stem:16s} {path}")
        return 0
    if opts.action == "show":
        spec = load_trait_spec(opts.name_or_path)
        print(f"{spec.trait} ({spec.source})\n  {spec.description}")
        print(
            f"{len(spec.instruction_pairs)} instruction pairs, {len(spec.extraction_questions)} extraction "
            f"and {len(spec.evaluation_questions)} evaluation questions"
        )
        for i in range(len(spec.instruction_pairs)):
            print(f"  pos: {spec.pos_system_prompt(i)}\n  neg: {spec.neg_system_prompt(i)}")
        for label, questions in (
            ("extraction", spec.extraction_questions),
            ("evaluation", spec.evaluation_questions),
        ):
            print(f"first {label} questions:")
            for question in questions[:5]:
                print(f"  - {question}")
        return 0

    from steering import trait_generation as tg
    from steering.llm_http import AnthropicChat, OpenAICompatibleChat

    tg.check_trait_name(opts.name)
    output = Path(opts.output or f"runs/traits/{opts.name}.json")
    if output.exists() and not opts.force:
        print(
            f"error: {output} exists; pass --force to overwrite it (or --output elsewhere)", file=sys.stderr
        )
        return 2
    if opts.backend == "hf":
        from steering.models import load_model

        model, tokenizer = load_model(opts.model or "smollm2-135m")
        backend = tg.hf_backend(model, tokenizer)
    else:
        if not opts.model:
            print(f"error: --model is required with --backend {opts.backend}", file=sys.stderr)
            return 2
        if opts.backend == "openai":
            client = OpenAICompatibleChat(opts.model, base_url=opts.base_url)
            if not os.environ.get("OPENAI_API_KEY") and "api.openai.com" in client.base_url:
                print(
                    "error: set $OPENAI_API_KEY, or pass --base_url (or $OPENAI_BASE_URL) for a local "
                    "OpenAI-compatible server",
                    file=sys.stderr,
                )
                return 2
            backend = tg.openai_backend(client)
        else:
            if not os.environ.get("ANTHROPIC_API_KEY"):
                print("error: set $ANTHROPIC_API_KEY to use --backend anthropic", file=sys.stderr)
                return 2
            backend = tg.anthropic_backend(AnthropicChat(opts.model, base_url=opts.base_url))
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
    from training.seeds import cli

    return cli(argv)


def cmd_classifier(argv: list[str]) -> int:
    """Train an extraction's offline classifier judge (TF-IDF + logistic regression) and print its AUCs."""
    from steering.judge_classifier import cli

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
    argv = sys.argv[1:] if argv is None else argv
    debug = bool(argv) and argv[0] == "--debug"  # tracebacks for user errors (or PERSONA_VACCINE_DEBUG=1)
    argv = argv[1:] if debug else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] == "--version":
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"persona-vaccine {version('persona-vaccine')}")
        except PackageNotFoundError:
            print("persona-vaccine (not installed: version unknown)")
        return 0
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("commands: " + ", ".join(COMMANDS) + "  (python launch.py COMMAND --help)")
        return 0
    command, rest = (argv[0], argv[1:]) if argv and argv[0] in COMMANDS else ("demo", argv)
    if command == "demo" and rest and rest[0] not in ("--force", "-h", "--help"):
        print(f"unknown command {rest[0]!r}: expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    from steering.errors import run_command

    return run_command(COMMANDS[command], rest, debug)


if __name__ == "__main__":
    sys.exit(main())
