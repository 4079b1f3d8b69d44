"""The demo (`persona-vaccine` alone): the evil vector of the embedded model, a baseline and a preventative run,
and the table of their drift. Also the run table that the train command prints."""

from __future__ import annotations

from pathlib import Path

from persona_vaccine.paths import DEMO_RUN_DIR, DEMO_VECTOR_DIR

from .summary import RunSummary

DEMO_RECIPES = ("recipes/smollm2-135m/evil/baseline.yaml", "recipes/smollm2-135m/evil/preventative.yaml")
COLUMNS = ("run", "steering", "steps", "final loss", "trait", "base proj", "final proj", "shift", "time (s)")


def runs_table(summaries: dict[str, RunSummary]):
    """A rich table of runs by name: steering, steps, loss and each trait's projection shift."""
    from rich.table import Table

    table = Table(title="persona-vaccine runs")
    for column in COLUMNS:
        table.add_column(column)

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:+.2f}"

    for name, s in summaries.items():
        steering = (
            ", ".join(f"{x['trait']}@{x['layer']} x{x['coef']:g} {x['mode']}" for x in s.steering) or "none"
        )
        for trait, d in (s.trait_drift or {"-": {}}).items():
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
    return table


def run_demo(force: bool = False) -> dict[str, RunSummary]:
    """Extract (or reuse) the vector, train (or reuse) each demo run; their summaries by run name."""
    from persona_vaccine.steering.extract import extract_unless_done
    from persona_vaccine.steering.extract_config import ExtractionConfig

    from .recipe import parse_recipe
    from .run import run_training

    cfg = ExtractionConfig(
        trait="evil", model_name_or_path="smollm2-135m", output_dir=DEMO_VECTOR_DIR, heldout_eval=False
    )
    vector, reused = extract_unless_done(cfg)
    if reused:
        print(f"reusing {vector}")
    summaries: dict[str, RunSummary] = {}
    for recipe in DEMO_RECIPES:
        name = Path(recipe).stem
        out = Path(DEMO_RUN_DIR) / name
        if (out / "summary.json").is_file() and not force:
            print(f"reusing {out}/summary.json (pass --force to retrain)")
            summaries[name] = RunSummary.read(out / "summary.json")
            continue
        overrides = ["--output_dir", str(out), "--measure_margin", "false"]  # keeps the demo under 15 min
        model_args, data_args, train_args = parse_recipe(recipe, overrides)
        summaries[name] = run_training(model_args, data_args, train_args, recipe, overrides)
    return summaries


def print_runs(summaries: dict[str, RunSummary]) -> None:
    from rich.console import Console

    Console(width=160).print(runs_table(summaries))


def cli(argv: list[str]) -> int:
    """`persona-vaccine [demo] [--force]`: extract (or reuse) the evil vector, train baseline and
    preventative runs, print the comparison."""
    from persona_vaccine.cli_args import ArgumentParser, prog

    parser = ArgumentParser(
        prog=prog("[demo]"),
        description=(cli.__doc__ or "").split(": ", 1)[-1],
        epilog=f"Recipes: {', '.join(DEMO_RECIPES)}; runs in {DEMO_RUN_DIR}/.",
    )
    parser.add_argument("--force", action="store_true", help="retrain runs that have a summary.json")
    summaries = run_demo(force=parser.parse_args(argv).force)
    print_runs(summaries)
    base = summaries["baseline"].trait_drift["evil"]["shift"]
    prev = summaries["preventative"].trait_drift["evil"]["shift"]
    print(f"evil shift: baseline {base:+.2f}, preventative {prev:+.2f} (projection units on the unit vector)")
    return 0
