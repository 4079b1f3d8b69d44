"""The evidence for preventative steering on the embedded model, in one resumable command (finished runs are skipped).

python bench/evidence.py [--out runs/evidence] [--lrs 1e-5 3e-5] [--seeds 0 1 2] [--phases lr sweep seeds corr]

1. lr: the evil baseline at each learning rate (seed 0), and the base model's multiple choice; the
   largest lr whose MC stays within 3 points of the base model's is the capability-keeping one.
2. sweep: preventative steering at coefs 1, 2, 4 (seed 0) at that lr; the coef with the smallest
   |shift| is the preventative group's.
3. seeds: baseline (+ inference-time steering at -2), preventative and auto over the seeds:
   seeds_table.md (mean [95% t interval]).
4. auto: the controller every step (from coef 0, and with a balanced start) over the seeds, with the
   first seed's baseline and fixed coefficient beside it; not in the default phases.
   final: baseline, fixed coefficient and the controller every 2 steps, interleaved seed by seed (the
   side-by-side train times); not in the default phases.
   data: baseline, fixed coefficient 4, and coefficient 2 on every layer, interleaved seed by seed (can
   either remove half of the data-answer margin?); not in the default phases.
5. corr: evil, sycophancy, hallucination and bad-math data at normal/level1/level2 (12 runs, all
   three vectors measured) and the screening dP of each set: correlations.md / correlations.png.

Every run: the recipe recipes/smollm2-135m/evil/baseline.yaml with the overrides of COMMON, so the
groups differ only in their steering settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from persona_vaccine.paths import DEMO_VECTOR_DIR

RECIPE = "recipes/smollm2-135m/evil/baseline.yaml"
TRAITS = {"evil": "evil", "sycophancy": "sycophantic", "hallucination": "hallucinating"}
LEVELS = ("normal", "level1", "level2")
MC_LIMIT = 200
MC_KEY = "capability/mc_chat_cloze_accuracy"  # the choice-text score (the lettered one is at chance)
SWEEP = (1.0, 2.0, 4.0)
INFERENCE_COEF = -2.0


def vector(trait: str) -> str:
    return str(Path(DEMO_VECTOR_DIR) / trait / "response_avg.safetensors")


def common(lr: float, judges: list[str], capability: bool = True) -> list[str]:
    caps = ["--capability_benchmarks", "mc", "heldout_loss", "--capability_mc_limit", str(MC_LIMIT)]
    return [
        "--dataset_size", "160", "--learning_rate", str(lr), "--logging_steps", "5",
        "--drift_max_questions", "10", "--margin_data_pairs", "16", *(caps if capability else []),
        "--judge_after_training", "classifier:" + ",".join(judges),
        "--judge_questions", "10", "--judge_max_new_tokens", "48",
        "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
    ]  # fmt: skip


def train(out: Path, overrides: list[str]) -> dict:
    from persona_vaccine.training.recipe import parse_recipe
    from persona_vaccine.training.run import run_training
    from persona_vaccine.training.summary import RunSummary

    if (out / "summary.json").is_file():
        return RunSummary.read(out).to_dict()
    args = [*overrides, "--output_dir", str(out)]
    start = time.perf_counter()
    summary = run_training(*parse_recipe(RECIPE, args), RECIPE, args)
    logging.info("%s: %.0f s", out, time.perf_counter() - start)
    return summary.to_dict()


def prepare(traits: list[str]) -> list[str]:
    """Classifier judges of the traits (trained once, beside the vectors)."""
    from persona_vaccine.judges.classifier import FILE_NAME, train_from_extraction

    dirs = []
    for trait in traits:
        d = Path(DEMO_VECTOR_DIR) / trait
        if not (d / FILE_NAME).is_file():
            info = train_from_extraction(d).info
            logging.info("classifier judge %s: held-out AUC %s", trait, info.get("heldout_auc"))
        dirs.append(str(d))
    return dirs


def base_capability(out: Path) -> dict:
    path = out / "base_capability.json"
    if path.is_file():
        return json.loads(path.read_text())
    from persona_vaccine.data.loading import builder_name  # noqa: F401 (the data package loads first)
    from persona_vaccine.models.loading import load_model
    from persona_vaccine.training.capability import capability_metrics
    from persona_vaccine.training.config import DataArguments
    from persona_vaccine.training.train_data import clean_heldout_rows

    model, tokenizer = load_model("smollm2-135m")
    rows = clean_heldout_rows(DataArguments(dataset="builtin:evil"))
    caps = capability_metrics(model, tokenizer, ["mc", "heldout_loss"], rows, MC_LIMIT)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(caps, indent=2))
    return caps


def mc(summary: dict) -> float:
    return summary["capability"][MC_KEY]


def pick_lr(keeping: list[float], lrs: list[float]) -> tuple[float, str]:
    """The largest lr that keeps the MC within 3 points; if none does, the smallest, and it says so."""
    if keeping:
        return max(keeping), "largest with MC within 3 points"
    return min(lrs), f"MISSED: no lr of {sorted(lrs)} keeps MC within 3 points; the smallest is used"


def choose_lr(out: Path, lrs: list[float], judges: list[str]) -> float:
    base = base_capability(out)[MC_KEY]
    rows = ["| lr | evil shift | margin shift (evil) | margin shift (data) | MC | MC - base | held-out loss |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    keeping = []  # the lrs whose MC stays within 3 points of the base model's
    for lr in sorted(lrs):
        s = train(out / f"lr_{lr:g}" / "baseline" / "seed_0",
                  [*common(lr, judges), "--inference_steering_coef", str(INFERENCE_COEF), "--seed", "0"])  # fmt: skip
        b = s.get("behaviour") or {}
        rows.append(
            f"| {lr:g} | {s['trait_drift']['evil']['shift']:+.2f} | {b.get('evil', {}).get('margin_shift', 0):+.3f} "
            f"| {b.get('data_evil', {}).get('margin_shift', 0):+.3f} | {mc(s):.3f} | {mc(s) - base:+.3f} "
            f"| {s['capability'].get('capability/heldout_loss', float('nan')):.3f} |"
        )
        if mc(s) >= base - 0.03:
            keeping.append(lr)
    chosen, why = pick_lr(keeping, lrs)
    rows.append(f"\nbase model: MC {base:.3f}; chosen lr {chosen:g} ({why})")
    (out / "lr_table.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))
    return chosen


def choose_coef(out: Path, lr: float, judges: list[str]) -> float:
    shifts = {}
    for coef in SWEEP:
        s = train(out / f"lr_{lr:g}" / f"preventative_{coef:g}" / "seed_0",
                  [*common(lr, judges), "--steering_coefs", str(coef), "--seed", "0"])  # fmt: skip
        shifts[coef] = s["trait_drift"]["evil"]["shift"]
    best = min(shifts, key=lambda c: abs(shifts[c]))
    (out / "sweep.json").write_text(json.dumps({"lr": lr, "shift": shifts, "chosen": best}, indent=2))
    print(f"sweep at lr {lr:g}: shift {shifts}; chosen coef {best:g}")
    return best


def seeds(out: Path, lr: float, coef: float, seed_list: list[int], judges: list[str]) -> None:
    from persona_vaccine.training.seeds import aggregate, seed_runs

    root = out / f"lr_{lr:g}"
    groups = {
        "baseline": [*common(lr, judges), "--inference_steering_coef", str(INFERENCE_COEF)],
        f"preventative_{coef:g}": [*common(lr, judges), "--steering_coefs", str(coef)],
        # the controller from coef 0, every 2 steps
        "auto": [*common(lr, judges), *AUTO_GIVEN],
    }
    for seed in seed_list:
        for group, overrides in groups.items():
            train(root / group / f"seed_{seed}", [*overrides, "--seed", str(seed)])
    stats = {g: aggregate(seed_runs(root / g)) for g in groups}
    (root / "seeds.json").write_text(json.dumps(stats, indent=2))


AUTO_GIVEN = ["--steering_auto", "true", "--steering_auto_start", "given", "--steering_auto_every", "2"]
AUTO_BALANCED = ["--steering_auto", "true", "--steering_auto_every", "1", "--steering_auto_start", "balanced"]
AUTO_EVERY_STEP = ["--steering_auto", "true", "--steering_auto_every", "1"]  # from coef 0
AUTO_EVERY_2 = ["--steering_auto", "true", "--steering_auto_every", "2"]  # from coef 0


def final(out: Path, lr: float, coef: float, seed_list: list[int], judges: list[str]) -> None:
    """Baseline, fixed coefficient and the controller every 2 steps, seed by seed in turn, so that their
    train times are measured side by side on the same machine."""
    root = out / f"lr_{lr:g}"
    groups = {
        "baseline": ["--inference_steering_coef", str(INFERENCE_COEF)],
        f"preventative_{coef:g}": ["--steering_coefs", str(coef)],
        "auto_every_2": AUTO_EVERY_2,
    }
    for seed in seed_list:
        for group, extra in groups.items():
            train(root / group / f"seed_{seed}", [*common(lr, judges), *extra, "--seed", str(seed)])


DATA_GROUPS = {
    "baseline": ["--inference_steering_coef", str(INFERENCE_COEF)],
    "preventative_4": ["--steering_coefs", "4"],
    "all_layers_2": ["--steering_all_layers", "true", "--steering_coefs", "2"],
}


def data_margin(out: Path, lr: float, seed_list: list[int], judges: list[str]) -> None:
    """Two ways to remove more of the Level II vs Normal margin: a fixed coefficient 4, and coefficient 2 on
    every layer (incremental vectors), with the baseline, seed by seed in turn (side-by-side times)."""
    root = out / f"lr_{lr:g}"
    for seed in seed_list:
        for group, extra in DATA_GROUPS.items():
            train(root / group / f"seed_{seed}", [*common(lr, judges), *extra, "--seed", str(seed)])


def auto(out: Path, lr: float, coef: float, seed_list: list[int], judges: list[str]) -> None:
    """The controller every step (with a balanced start, and from coef 0) over the seeds, with the baseline
    and the fixed coefficient of the first seed beside it (the same vector and machine: the reference for shift and train time)."""
    root = out / f"lr_{lr:g}"
    first, *rest = seed_list
    plan = [("auto_balanced", first, AUTO_BALANCED),
            ("baseline", first, ["--inference_steering_coef", str(INFERENCE_COEF)]),
            *[("auto_balanced", seed, AUTO_BALANCED) for seed in rest],
            (f"preventative_{coef:g}", first, ["--steering_coefs", str(coef)]),
            *[("auto_every_step", seed, AUTO_EVERY_STEP) for seed in seed_list]]  # fmt: skip
    for group, seed, extra in plan:
        train(root / group / f"seed_{seed}", [*common(lr, judges), *extra, "--seed", str(seed)])


def corr(out: Path, lr: float, judges: list[str]) -> None:
    from persona_vaccine.data.screening import screen_dataset
    from persona_vaccine.data.screening_config import ScreenConfig

    vectors = [vector(t) for t in TRAITS.values()]
    for builder in (*TRAITS, "bad_math"):
        screen_out = out / "screen" / builder
        if not (screen_out / "summary.json").is_file():
            screen_dataset(
                ScreenConfig(dataset=f"builtin:{builder}", dataset_level=",".join(LEVELS), dataset_size=32,
                             vectors=vectors, max_new_tokens=48, output_dir=str(screen_out),
                             base_cache_dir=str(out / "screen" / "base_responses"))
            )  # fmt: skip
    for level in ("level2", "normal", "level1"):  # a partial run still spans the builders
        for builder in (*TRAITS, "bad_math"):
            overrides = [*common(lr, judges, capability=False), "--dataset", f"builtin:{builder}", "--dataset_level", level,
                         "--persona_vectors", *vectors, "--steering_traits", *TRAITS.values(),
                         "--steering_layers", "20", "20", "20", "--steering_coefs", "0", "0", "0"]  # fmt: skip
            train(out / "corr" / f"{builder}_{level}", overrides)


COLUMNS = {  # seeds.run_metrics name -> column
    "shift{s}/evil": "evil shift",
    "margin_shift{s}/evil": "margin shift, base answers",
    "margin_shift{s}/data_evil": "margin shift, Level II vs Normal",
    "trait{s}/evil": "classifier-judged evil (0-100)",
    f"{MC_KEY}{{s}}": "MC (choice text)",
    "capability/heldout_loss{s}": "held-out loss",
    "time_s": "train time s",
}


def _cell(stats: dict | None) -> str:
    if not stats:
        return "-"
    if stats["low"] is None:
        return f"{stats['mean']:.3g} (n={stats['n']})"
    return f"{stats['mean']:.3g} [{stats['low']:.3g}, {stats['high']:.3g}]"


TARGETS = {  # metric -> (what, target): the fraction of the baseline's mean removed, or MC minus the baseline's
    "shift/evil": ("evil shift removed", 0.80),
    "margin_shift/evil": ("margin shift removed, base answers", 0.50),
    "margin_shift/data_evil": ("margin shift removed, Level II vs Normal", 0.50),
    MC_KEY: ("MC minus the baseline's", -0.01),
}


def targets_table(baseline: dict[str, dict], groups: dict[str, dict[str, dict]]) -> str:
    """Each steered group against the baseline, every target with its 95% interval and the verdict read
    from the interval (Met: all of it at or above the target; Missed: all below; Unresolved: it contains
    the target). Fractions removed: 1 - |steered| / baseline (an overshoot past zero counts as shift
    left) with a Fieller interval; MC: the difference with a t interval (training/seeds.py
    `fraction_removed`, `difference`)."""
    from persona_vaccine.training.seeds import difference, fraction_removed, verdict

    lines = ["| run | target | value [95% interval] | target | verdict |", "|---|---|---|---|---|"]
    for label, stats in groups.items():
        targets = list(TARGETS.items())
        if "auto" in label:  # the controller's own target: the shift within 15 % of zero
            targets.insert(1, ("shift/evil", ("evil shift removed (auto: within 15 % of zero)", 0.85)))
        for key, (what, target) in targets:
            if key not in stats or key not in baseline:
                continue
            if key == MC_KEY:
                d = difference(baseline[key], stats[key])
                value, low, high = d["difference"], d["low"], d["high"]
                fmt, goal = (lambda x: f"{100 * x:+.1f} points"), f">= {100 * target:+.0f} point"
            else:
                d = fraction_removed(baseline[key], stats[key])
                value, low, high = d["removed"], d["low"], d["high"]
                fmt, goal = (lambda x: f"{100 * x:.0f} %"), f">= {100 * target:.0f} %"
            cell = fmt(value) + ("" if low is None else f" [{fmt(low)}, {fmt(high)}]")
            lines.append(f"| {label} | {what} | {cell} | {goal} | {verdict(low, high, target)} |")
    return "\n".join(lines)


HEADER_KEYS = {  # a published table's column (its start) -> the metric
    "evil shift": "shift/evil",
    "margin shift, base answers": "margin_shift/evil",
    "margin shift, Level II vs Normal": "margin_shift/data_evil",
    "MC": MC_KEY,
}


def tables_from_markdown(text: str) -> list[tuple[str, dict[str, dict[str, dict]]]]:
    """Every results table of a markdown file with a `baseline` row of `mean [low, high]` cells (as the
    report prints them): (the heading above it, {row label: {metric: interval dict}})."""
    import re

    from persona_vaccine.training.seeds import from_interval

    cell = re.compile(
        r"^([-+]?[\d.]+(?:e[-+]?\d+)?) \[([-+]?[\d.]+(?:e[-+]?\d+)?), ([-+]?[\d.]+(?:e[-+]?\d+)?)\]$"
    )
    found, heading, header, rows = [], "", None, {}

    def flush():
        if header and any(label.startswith("baseline") for label in rows):
            found.append((heading, dict(rows)))

    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if not line.startswith("|"):
            flush()
            header, rows = None, {}
            continue
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if header is None:
            header = parts if parts and parts[0] == "run" else []
            continue
        if (
            not header
            or set(parts[0]) <= {"-", ":"}
            or parts[-1] != parts[-1].strip()
            or not parts[-1].isdigit()
        ):
            continue
        n = int(parts[-1])
        metrics = {}
        for name, value in zip(header[1:-1], parts[1:-1], strict=False):
            key = next((k for h, k in HEADER_KEYS.items() if name.startswith(h)), None)
            m = cell.match(value)
            if key and m and n >= 2:
                metrics[key] = from_interval(float(m[1]), float(m[2]), float(m[3]), n)
        if metrics:
            rows[parts[0]] = metrics
    return found


def targets_from_markdown(path: Path) -> None:
    """The targets of every seeds table published in a markdown file (recomputed from its printed means
    and intervals with the report's functions)."""
    for heading, rows in tables_from_markdown(path.read_text()):
        base_label = next(label for label in rows if label.startswith("baseline"))
        groups = {k: v for k, v in rows.items() if k != base_label and "inference" not in k}
        print(f"## {heading}\n(baseline row: {base_label!r})\n")
        print(targets_table(rows[base_label], groups) + "\n")


def report(out: Path, lr: float, coef: float) -> None:
    """seeds_table.md, sweep_table.md, correlations.md and correlations.png from the finished runs."""
    from persona_vaccine.training.correlations import correlation_table, scatter
    from persona_vaccine.training.seeds import aggregate, run_metrics, seed_runs
    from persona_vaccine.training.summary import RunSummary

    root = out / f"lr_{lr:g}"
    base = base_capability(out)
    rows = {
        "base model (not fine-tuned)": ({}, ""),
        "baseline": (aggregate(seed_runs(root / "baseline")), ""),
        f"preventative (coef {coef:g})": (aggregate(seed_runs(root / f"preventative_{coef:g}")), ""),
        f"inference-time steering (baseline, coef {INFERENCE_COEF:g})": (
            aggregate(seed_runs(root / "baseline")), "_inference_steered"),
        "auto (PI controller from coef 0, every 2 steps)": (aggregate(seed_runs(root / "auto")), ""),
        "auto (balanced start, every step)": (aggregate(seed_runs(root / "auto_balanced")), ""),
        "auto (from coef 0, every step)": (aggregate(seed_runs(root / "auto_every_step")), ""),
        "auto (from coef 0, every 2 steps)": (aggregate(seed_runs(root / "auto_every_2")), ""),
        "preventative (coef 4)": (aggregate(seed_runs(root / "preventative_4")), ""),
        "preventative (coef 2, every layer)": (aggregate(seed_runs(root / "all_layers_2")), ""),
    }  # fmt: skip
    lines = ["| run | " + " | ".join(COLUMNS.values()) + " | n |", "|---|" + "---|" * (len(COLUMNS) + 1)]
    for label, (stats, suffix) in rows.items():
        if not stats and label != "base model (not fine-tuned)":
            continue
        if not stats:
            cells = ["0", "0", "0", "-", f"{base[MC_KEY]:.3g}", f"{base['capability/heldout_loss']:.3g}", "-"]
            lines.append(f"| {label} | " + " | ".join(cells) + " | 1 |")
            continue
        cells = [_cell(stats.get(k.format(s=suffix) if k != "time_s" else k)) for k in COLUMNS]
        n = max(v["n"] for v in stats.values())
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {n} |")
    lines.append("\nmean [95% t interval] over seeds; the inference-time row is the baseline runs evaluated "
                 "with the hook on (its shift is set by the hook itself).")  # fmt: skip
    (out / "seeds_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    steered = {label: stats for label, (stats, suffix) in rows.items()
               if stats and not suffix and label != "baseline"}  # fmt: skip
    if rows["baseline"][0] and steered:
        targets = targets_table(rows["baseline"][0], steered)
        (out / "targets.md").write_text(targets + "\n")
        print(targets)

    sweep = ["| coef | evil shift | margin shift, base answers | margin shift, data | MC | time s |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for label, d in [("0", root / "baseline"), *[(f"{c:g}", root / f"preventative_{c:g}") for c in SWEEP],
                     ("auto", root / "auto"), ("auto, balanced start", root / "auto_balanced"),
                     ("auto, every step", root / "auto_every_step"),
                     ("auto, every 2 steps", root / "auto_every_2")]:  # fmt: skip
        if not (d / "seed_0" / "summary.json").is_file():
            continue
        m = run_metrics(RunSummary.read(d / "seed_0").to_dict())
        sweep.append(f"| {label} | {m['shift/evil']:+.2f} | {m['margin_shift/evil']:+.3f} | "
                     f"{m['margin_shift/data_evil']:+.3f} | {m[MC_KEY]:.3f} | {m['time_s']:.0f} |")  # fmt: skip
    (out / "sweep_table.md").write_text("\n".join(sweep) + "\n")
    print("\n".join(sweep))

    runs = sorted(p.parent for p in out.glob("lr_*/*/seed_*/summary.json"))  # the steering runs
    measures = {"margin_shift/evil": "margin shift, base answers", "margin_shift/data_evil":
                "margin shift, Level II vs Normal", "trait/evil": "classifier-judged evil"}  # fmt: skip
    points: dict[str, list[tuple[float, float]]] = {v: [] for v in measures.values()}
    labels: dict[str, list[str]] = {v: [] for v in measures.values()}
    for run in runs:
        m = run_metrics(RunSummary.read(run).to_dict())
        for key, name in measures.items():
            if "shift/evil" in m and key in m:
                points[name].append((m["shift/evil"], m[key]))
                labels[name].append(f"{run.parent.parent.name}/{run.parent.name}/{run.name}")
    table = correlation_table(points, "evil shift")
    (out / "correlations.md").write_text(table + f"\n\nruns: {len(runs)}\n")
    png = scatter(points, "evil projection shift", out / "correlations.png")
    print(table, f"\n{len(runs)} runs; plot: {png}")
    corr_report(out)


def corr_report(out: Path) -> None:
    """Over the dataset x level runs: each trait's shift against its margin shift and classifier-judged
    expression, and the training set's screening dP against the later shift (pooled over the traits)."""
    from persona_vaccine.training.correlations import correlation_table, scatter
    from persona_vaccine.training.seeds import run_metrics
    from persona_vaccine.training.summary import RunSummary

    runs = sorted(p.parent for p in (out / "corr").glob("*/summary.json"))
    if not runs:
        return
    points: dict[str, list[tuple[float, float]]] = {"margin shift (own trait's answers)": [],
        "classifier-judged trait": [], "screening dP of the training set": []}  # fmt: skip
    lines = ["| run | trait | shift | margin shift | judged | dP |", "|---|---|---|---|---|---|"]
    for run in runs:
        builder, level = run.name.rsplit("_", 1)
        m = run_metrics(RunSummary.read(run).to_dict())
        screen = json.loads((out / "screen" / builder / "summary.json").read_text())["traits"]
        for trait in TRAITS.values():
            shift = m.get(f"shift/{trait}")
            if shift is None:
                continue
            margin, judged = m.get(f"margin_shift/{trait}"), m.get(f"trait/{trait}")
            dp = screen[trait]["by_level"][level]["projection_diff"]["mean"]
            for name, y in zip(points, (margin, judged, dp), strict=True):
                if y is not None:
                    points[name].append((shift, y) if "dP" not in name else (y, shift))
            lines.append(f"| {run.name} | {trait} | {shift:+.2f} | {margin if margin is None else f'{margin:+.3f}'} "
                         f"| {judged if judged is None else f'{judged:.1f}'} | {dp:+.2f} |")  # fmt: skip
    table = correlation_table({k: v for k, v in points.items() if "dP" not in k}, "shift")
    table += "\n\n" + correlation_table({"shift": points["screening dP of the training set"]}, "dP")
    (out / "correlations_datasets.md").write_text(
        table + "\n\n" + "\n".join(lines) + f"\n\nruns: {len(runs)}\n"
    )
    scatter(points, "shift (dP panel: x = dP, y = shift)", out / "correlations_datasets.png")
    print(table, f"\n{len(runs)} dataset runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/evidence")
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-5, 3e-5])
    parser.add_argument("--lr", type=float, default=None, help="skip the lr phase and use this one")
    parser.add_argument("--coef", type=float, default=None, help="skip the sweep and use this coef")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--phases", nargs="+", default=["lr", "sweep", "seeds", "corr", "report"])
    parser.add_argument("--from-table", dest="from_table", default=None, metavar="MARKDOWN",
                        help="print the targets of the seeds tables published in this file (e.g. docs/RESULTS.md) "
                        "from their printed means and intervals, and exit")  # fmt: skip
    opts = parser.parse_args()
    if opts.from_table:
        targets_from_markdown(Path(opts.from_table))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Path(opts.out)
    judges = prepare(list(TRAITS.values()) if "corr" in opts.phases else ["evil"])
    lr = opts.lr if opts.lr is not None else choose_lr(out, opts.lrs, judges[:1])
    coef = opts.coef
    if coef is None and "sweep" in opts.phases:
        coef = choose_coef(out, lr, judges[:1])
    if "seeds" in opts.phases:
        seeds(out, lr, coef if coef is not None else 2.0, opts.seeds, judges[:1])
    if "auto" in opts.phases:
        auto(out, lr, coef if coef is not None else 2.0, opts.seeds, judges[:1])
    if "final" in opts.phases:
        final(out, lr, coef if coef is not None else 2.0, opts.seeds, judges[:1])
    if "data" in opts.phases:
        data_margin(out, lr, opts.seeds, judges[:1])
    if "corr" in opts.phases:
        corr(out, lr, judges)
    if "report" in opts.phases:
        report(out, lr, coef if coef is not None else 2.0)


if __name__ == "__main__":
    main()
