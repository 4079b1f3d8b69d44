"""Seeds and uncertainty: one recipe over several seeds, with mean and a 95% t confidence interval.

`python launch.py seeds RECIPE --seeds 0 1 2 [--field value ...]` trains OUTPUT_DIR/seed_N for each
seed (`--seed N`; finished seeds, those with a summary.json, are skipped, so a rerun resumes) and
writes OUTPUT_DIR/seeds.json and seeds.md: per metric (shift, margin, judged trait, capability, time)
the mean, the standard deviation and the 95% interval mean +- t(0.975, n-1) * sd / sqrt(n).
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from .summary import RunSummary

logger = logging.getLogger(__name__)

SEED_PREFIX = "seed_"
CONFIDENCE = 0.95


def seed_dir(output_dir: str | Path, seed: int) -> Path:
    return Path(output_dir) / f"{SEED_PREFIX}{seed}"


def seed_runs(group: str | Path) -> list[Path]:
    """The finished seed runs of a group directory (seed_N/summary.json), in seed order."""
    runs = [p.parent for p in Path(group).glob(f"{SEED_PREFIX}*/summary.json")]
    return sorted(
        runs, key=lambda p: int(p.name[len(SEED_PREFIX) :]) if p.name[len(SEED_PREFIX) :].isdigit() else 0
    )


def is_seed_group(path: str | Path) -> bool:
    return not (Path(path) / "summary.json").is_file() and bool(seed_runs(path))


def run_metrics(summary: dict) -> dict[str, float]:
    """The numbers a seed table reports, flat, from one run's summary.json."""
    out: dict[str, float] = {}
    for suffix in ("", "_inference_steered"):
        for trait, d in (summary.get(f"trait_drift{suffix}") or {}).items():
            if d.get("shift") is not None:
                out[f"shift{suffix}/{trait}"] = d["shift"]
        for name, d in (summary.get(f"behaviour{suffix}") or {}).items():
            for key in ("final_margin", "margin_shift"):
                if d.get(key) is not None:
                    out[f"{key.replace('final_', '')}{suffix}/{name}"] = d[key]
    for section in ("trait_expression", "trait_expression_inference_steered"):
        suffix = section.removeprefix("trait_expression")
        for name, value in (summary.get(section) or {}).items():
            if value is not None and not name.endswith("_coherence"):
                out[f"trait{suffix}/{name}"] = value
    for section in ("capability", "capability_inference_steered"):
        suffix = section.removeprefix("capability")
        for name, value in (summary.get(section) or {}).items():
            if isinstance(value, (int, float)):
                out[f"{name}{suffix}"] = value
    for trait, coef in (summary.get("steering_auto") or {}).items():
        out[f"final_{trait}"] = coef  # steering/coef/<trait> at the end of an auto run
    runtime = (summary.get("train") or {}).get("runtime_s")
    if runtime is not None:
        out["time_s"] = runtime
    return out


def interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """Mean, sd, n and the t confidence interval (None for n < 2)."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "low": None, "high": None}
    from scipy.stats import t

    sd = statistics.stdev(values)
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half}


def from_interval(mean: float, low: float, high: float, n: int, confidence: float = CONFIDENCE) -> dict:
    """The `interval` dict back from a printed mean [low, high] t interval over n runs (sd recovered from
    the half-width; as exact as the printed digits)."""
    from scipy.stats import t

    sd = (high - low) / 2 * math.sqrt(n) / float(t.ppf(0.5 + confidence / 2, n - 1))
    return {"n": n, "mean": mean, "sd": sd, "low": low, "high": high}


def fraction_removed(baseline: dict, steered: dict, confidence: float = CONFIDENCE) -> dict:
    """How much of the baseline's mean a steered group removes, 1 - |steered| / baseline (an overshoot past
    zero is shift left, on the other side), with a Fieller interval for the ratio of two independent means
    (`interval` dicts: mean, sd, n).

    The ratio q = m_s / m_b has the interval of the q for which |m_s - q m_b| <= t * sqrt(se_s^2 +
    q^2 se_b^2), t the two-sided t quantile at df = min(n_s, n_b) - 1 (conservative); solved as a
    quadratic in q. It is bounded only when the baseline's mean is significantly non-zero; else the
    interval is None (so is it for groups of one run). The groups are treated as independent although
    they share seeds, which can only widen the interval."""
    from scipy.stats import t as student_t

    ms, mb = steered["mean"], baseline["mean"]
    point = 1 - abs(ms / mb)
    out = {"removed": point, "low": None, "high": None}
    if not steered.get("sd") or not baseline.get("sd") or min(steered["n"], baseline["n"]) < 2:
        return out
    t = float(student_t.ppf(0.5 + confidence / 2, min(steered["n"], baseline["n"]) - 1))
    vs, vb = (steered["sd"] ** 2) / steered["n"], (baseline["sd"] ** 2) / baseline["n"]
    a = mb * mb - t * t * vb
    b = -2 * ms * mb
    c = ms * ms - t * t * vs
    disc = b * b - 4 * a * c
    if a <= 0 or disc < 0:
        return out
    q_low, q_high = (-b - math.sqrt(disc)) / (2 * a), (-b + math.sqrt(disc)) / (2 * a)
    if q_low >= 0:  # |q| over the interval of q
        left_low, left_high = q_low, q_high
    elif q_high <= 0:
        left_low, left_high = -q_high, -q_low
    else:
        left_low, left_high = 0.0, max(-q_low, q_high)
    return {"removed": point, "low": 1 - left_high, "high": 1 - left_low}


def difference(baseline: dict, steered: dict, confidence: float = CONFIDENCE) -> dict:
    """steered - baseline mean with a t interval (independent groups, se of the difference from both
    groups' sd, df = min(n) - 1 as in `fraction_removed`)."""
    from scipy.stats import t as student_t

    point = steered["mean"] - baseline["mean"]
    if not steered.get("sd") or not baseline.get("sd") or min(steered["n"], baseline["n"]) < 2:
        return {"difference": point, "low": None, "high": None}
    t = float(student_t.ppf(0.5 + confidence / 2, min(steered["n"], baseline["n"]) - 1))
    half = t * math.sqrt(steered["sd"] ** 2 / steered["n"] + baseline["sd"] ** 2 / baseline["n"])
    return {"difference": point, "low": point - half, "high": point + half}


def verdict(low: float | None, high: float | None, target: float) -> str:
    """Met when the whole interval is at or above the target, Missed when it is all below, Unresolved
    when it contains the target; without an interval, no verdict."""
    if low is None or high is None:
        return "no interval"
    if low >= target:
        return "Met"
    if high < target:
        return "Missed"
    return "Unresolved"


def aggregate(run_dirs: Sequence[str | Path]) -> dict[str, dict]:
    """Per metric, its interval over the runs that report it (with the per-run values)."""
    per_run = [run_metrics(RunSummary.read(d).to_dict()) for d in run_dirs]
    names = sorted({k for m in per_run for k in m})
    out = {}
    for name in names:
        values = [m[name] for m in per_run if name in m]
        out[name] = {**interval(values), "values": values}
    return out


def _cell(stats: dict | None) -> str:
    if stats is None:
        return ""
    if stats["low"] is None:
        return f"{stats['mean']:.4g} (n={stats['n']})"
    return f"{stats['mean']:.4g} [{stats['low']:.4g}, {stats['high']:.4g}]"


def groups_table(groups: dict[str, dict[str, dict]]) -> str:
    """Markdown: one row per metric, one column per group, `mean [95% CI]`."""
    names = sorted({k for g in groups.values() for k in g})
    lines = [
        "| metric | " + " | ".join(groups) + " |",
        "|---|" + "---|" * len(groups),
    ]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(_cell(g.get(name)) for g in groups.values()) + " |")
    n = {label: max((s["n"] for s in g.values()), default=0) for label, g in groups.items()}
    lines.append("")
    lines.append(
        f"mean [{CONFIDENCE:.0%} t interval] over seeds; n per group: "
        + ", ".join(f"{k} {v}" for k, v in n.items())
    )
    return "\n".join(lines)


def write_report(output_dir: str | Path, stats: dict[str, dict], runs: Sequence[Path]) -> tuple[Path, Path]:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "seeds.json").write_text(json.dumps({"runs": [str(r) for r in runs], "metrics": stats}, indent=2))
    (out / "seeds.md").write_text(groups_table({out.name: stats}) + "\n")
    return out / "seeds.json", out / "seeds.md"


def run_seeds(
    recipe: str, seeds: Sequence[int], overrides: Sequence[str] = ()
) -> tuple[dict[str, dict], Path]:
    """Train the recipe once per seed into OUTPUT_DIR/seed_N (finished seeds skipped); returns the
    intervals and OUTPUT_DIR."""
    from .recipe import parse_recipe
    from .run import run_training

    overrides = list(overrides)
    _, _, base = parse_recipe(recipe, overrides)
    if not base.output_dir:
        raise ValueError(f"{recipe}: field 'output_dir' is required for seeds (the seed_N runs go inside it)")
    group = Path(base.output_dir)
    runs = []
    for seed in seeds:
        out = seed_dir(group, seed)
        runs.append(out)
        if (out / "summary.json").is_file():
            logger.info("seed %d: %s/summary.json exists, skipped", seed, out)
            continue
        extra = [*overrides, "--seed", str(seed), "--output_dir", str(out)]
        model_args, data_args, args = parse_recipe(recipe, extra)
        logger.info("seed %d: training into %s", seed, out)
        run_training(model_args, data_args, args, recipe, extra)
    stats = aggregate(runs)
    write_report(group, stats, runs)
    return stats, group


def cli(argv: list[str]) -> int:
    """`persona-vaccine seeds RECIPE --seeds 0 1 2 [--field value ...]`."""
    from persona_vaccine.cli_args import ArgumentParser, prog

    from .precheck import precheck

    parser = ArgumentParser(prog=prog("seeds"), description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", help="a training recipe (YAML)")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="training seeds, e.g. 0 1 2")
    opts, overrides = parser.parse_known_args(argv)
    precheck("train", opts.recipe, overrides)  # the recipe's fields, before the heavy imports
    stats, group = run_seeds(opts.recipe, opts.seeds, overrides)
    print(groups_table({group.name: stats}))
    print(f"written: {group / 'seeds.json'}, {group / 'seeds.md'}")
    return 0


def compare_seed_groups(dirs: Sequence[str | Path], output_dir: str | Path) -> tuple[str | None, list[str]]:
    """For `compare`: the interval table of the seed-group directories among `dirs` (also written to
    OUTPUT_DIR/compare_seeds.md), and the other (single-run) directories."""
    groups = [d for d in dirs if is_seed_group(d)]
    rest = [str(d) for d in dirs if d not in groups]
    if not groups:
        return None, rest
    labels = [
        Path(g).name if [Path(x).name for x in groups].count(Path(g).name) == 1 else str(g) for g in groups
    ]
    table = groups_table({label: aggregate(seed_runs(g)) for label, g in zip(labels, groups, strict=True)})
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare_seeds.md").write_text(table + "\n")
    return table, rest
