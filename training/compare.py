"""Compare training runs side by side from their local files (summary.json, metrics.jsonl): no W&B needed."""

from __future__ import annotations

import json
from pathlib import Path

from steering.errors import UserError


class CompareError(UserError, ValueError):
    """A run directory can't be compared; the message names it."""


def drift_history(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """{trait: [(step, shift), ...]} from a run's metrics.jsonl (empty when there is none), starting with
    (0, 0.0): the base model, against which the shift is measured."""
    from .tracking import read_metrics

    by_step: dict[str, dict[int, float]] = {}
    for row in read_metrics(run_dir):
        for key, value in row.items():
            if key.startswith("drift/") and key.endswith("/shift"):
                by_step.setdefault(key.split("/")[1], {0: 0.0})[int(row.get("step", 0))] = float(value)
    return _sorted(by_step)


def loss_history(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """{"train": [(step, loss), ...], "eval": [(step, eval_loss), ...]} from a run's metrics.jsonl."""
    from .tracking import read_metrics

    by_step: dict[str, dict[int, float]] = {}
    for row in read_metrics(run_dir):
        for key, name in (("loss", "train"), ("eval_loss", "eval")):
            if isinstance(row.get(key), (int, float)):
                by_step.setdefault(name, {})[int(row.get("step", 0))] = float(row[key])
    return _sorted(by_step)


def _sorted(by_step: dict[str, dict[int, float]]) -> dict[str, list[tuple[int, float]]]:
    """Points in step order; a step logged twice (a rerun into the same directory) keeps its last value."""
    return {name: sorted(points.items()) for name, points in by_step.items()}


def load_run(run_dir: str | Path) -> dict:
    """A run's summary plus its drift history ({trait: [(step, shift), ...]}) from metrics.jsonl."""
    run_dir = Path(run_dir)
    path = run_dir / "summary.json"
    if not path.is_file():
        raise CompareError(f"{run_dir}: no summary.json (not a finished training run directory)")
    summary = json.loads(path.read_text())
    return {
        "dir": str(run_dir),
        "name": run_dir.name,
        "summary": summary,
        "history": drift_history(run_dir),
        "loss": loss_history(run_dir),
    }


def _fmt(value, spec: str = "+.2f") -> str:
    return "-" if value is None else format(value, spec)


def comparison_rows(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per run; drift shift, judged trait and capability per trait/benchmark."""
    traits = sorted({t for r in runs for t in r["summary"].get("trait_drift", {})})
    judged = sorted({t for r in runs for t in r["summary"].get("trait_expression", {})})
    capability = sorted({c for r in runs for c in r["summary"].get("capability", {})})
    header = ["run", "steering", "steps", "final loss", "time s"]
    header += [f"{t} shift" for t in traits] + [f"{t} judged" for t in judged] + list(capability)
    rows = []
    expanded = []
    for run in runs:  # a run evaluated with inference-time steering too gets a second row for it
        expanded.append(run)
        s = run["summary"]
        if "trait_expression_inference_steered" in s or "capability_inference_steered" in s:
            steered = {
                **s,
                "trait_expression": s.get("trait_expression_inference_steered", {}),
                "capability": s.get("capability_inference_steered", {}),
                "trait_drift": {},  # drift is measured on the unsteered model
                "steering": [],
            }
            expanded.append({**run, "name": f"{run['name']} + inference steering", "summary": steered})
    for run in expanded:
        s = run["summary"]
        groups: dict[tuple, list] = {}
        for x in s.get("steering", []):
            if x.get("coef"):
                groups.setdefault((x["trait"], x["mode"], x["coef"]), []).append(x["layer"])
        steering = ", ".join(
            f"{trait}@{layers[0] if len(layers) == 1 else f'{layers[0]}-{layers[-1]}'} {mode} {coef:g}"
            for (trait, mode, coef), layers in groups.items()
        )
        if run["name"].endswith("+ inference steering"):
            coef = s.get("inference_steering_coef")
            steering = f"at inference{'' if coef is None else f' {coef:g}'}"
        train = s.get("train", {})
        row = [
            run["name"],
            steering or "none",
            str(train.get("steps", "-")),
            _fmt(train.get("final_loss"), ".3f"),
            _fmt(train.get("runtime_s"), ".0f"),
        ]
        row += [_fmt(s.get("trait_drift", {}).get(t, {}).get("shift")) for t in traits]
        row += [_fmt(s.get("trait_expression", {}).get(t), ".1f") for t in judged]
        row += [_fmt(s.get("capability", {}).get(c), ".3f") for c in capability]
        rows.append(row)
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


SHIFT_LABEL = "shift vs base model\n(projection on the unit vector)"


def plot(runs: list[dict], path: Path) -> Path:
    """Drift shift over training steps (one panel per trait, one line per run, from step 0 = the base
    model), training loss over steps, and the capability figures after training (when there are any)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    traits = sorted({t for r in runs for t in r["history"]}) or ["(no drift logged)"]
    has_loss = any(r.get("loss") for r in runs)
    capability = sorted({c for r in runs for c in (r.get("summary") or {}).get("capability", {})})
    panels = len(traits) + has_loss + bool(capability)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2), squeeze=False)
    colours = {r["name"]: f"C{i}" for i, r in enumerate(runs)}
    for ax, trait in zip(axes[0], traits, strict=False):
        for run in runs:
            points = run["history"].get(trait, [])
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=run["name"],
                        color=colours[run["name"]])  # fmt: skip
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(f"{trait}: trait drift")
        ax.set_ylabel(SHIFT_LABEL)
    step_axes = list(axes[0][: len(traits)])
    if has_loss:
        ax = axes[0][len(traits)]
        for run in runs:
            for name, points in (run.get("loss") or {}).items():
                ax.plot([p[0] for p in points], [p[1] for p in points], marker=".",
                        linestyle="-" if name == "train" else "--", color=colours[run["name"]],
                        label=f"{run['name']} ({name})")  # fmt: skip
        ax.set_title("loss")
        ax.set_ylabel("cross-entropy (nats per token)")
        step_axes.append(ax)
    for ax in step_axes:
        ax.set_xlabel("training step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(left=0)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if capability:
        ax = axes[0][-1]
        width = 0.8 / max(1, len(runs))
        for i, run in enumerate(runs):
            values = [(run.get("summary") or {}).get("capability", {}).get(c) for c in capability]
            xs = [k + i * width for k in range(len(capability))]
            bars = ax.bar(xs, [v or 0 for v in values], width, label=run["name"], color=colours[run["name"]])
            for bar, value in zip(bars, values, strict=True):
                if value is not None:
                    ax.annotate(f"{value:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                ha="center", va="bottom", fontsize=7)  # fmt: skip
        ax.set_xticks([k + width * (len(runs) - 1) / 2 for k in range(len(capability))])
        ax.set_xticklabels(
            [c.removeprefix("capability/") for c in capability], rotation=20, ha="right", fontsize=7
        )
        ax.set_title("capability after training")
        ax.set_ylabel("accuracy (0..1)\nheldout_loss: nats per token")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def compare_runs(
    run_dirs: list[str | Path], output_dir: str | Path = "runs/compare", base_model: str | None = None
) -> tuple[str, Path]:
    """The side-by-side table (markdown, also written to OUTPUT/compare.md) and the drift plot's path.

    With `base_model`, a first row evaluates the untouched base model the same way (vectors of the first run).
    """
    if not run_dirs:
        raise CompareError("give at least one run directory")
    runs = [load_run(d) for d in run_dirs]
    if base_model:
        first = runs[0]["summary"]
        evaluation = first.get("evaluation") or {}
        base = base_model_row(
            base_model,
            first.get("persona_vectors", []),
            output_dir,
            evaluation.get("capability_mc_limit", 200),
            evaluation.get("judge_answer_prefix", "Score: "),
            evaluation.get("judge_questions", 10),
            (first.get("dataset") or {}).get("source", "builtin:evil"),
        )
        runs.insert(
            0, {"dir": "", "name": f"{base_model} (base, not fine-tuned)", "summary": base, "history": {}}
        )
    table = markdown_table(*comparison_rows(runs))
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(table)
    return table, plot(runs, out / "compare.png")


def base_model_row(
    model_id: str,
    vector_paths: list[str],
    output_dir: str | Path,
    mc_limit: int | None = 200,
    judge_answer_prefix: str = "Score: ",
    judge_questions: int = 10,
    heldout_dataset: str = "builtin:evil",
) -> dict:
    """The untouched base model evaluated like the runs (capability, judged trait): a reference row.

    Cached in OUTPUT_DIR/base_model.json.
    """
    cache = Path(output_dir) / "base_model.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    from steering.judge import make_judge
    from steering.models import load_model
    from steering.vector import PersonaVector

    from .capability import capability_metrics
    from .config import DataArguments
    from .run import clean_heldout_rows
    from .trait_eval import judged_expression

    model, tokenizer = load_model(model_id)
    rows = clean_heldout_rows(DataArguments(dataset=heldout_dataset))
    summary: dict = {
        "train": {"steps": 0},
        "capability": capability_metrics(model, tokenizer, ["mc", "heldout_loss"], rows, mc_limit),
        "trait_expression": {},
        "trait_drift": {},
        "steering": [],
    }
    judge = make_judge(model_id, model=model, tokenizer=tokenizer, answer_prefix=judge_answer_prefix)
    for path in vector_paths:
        vector = PersonaVector.load(path)
        result = judged_expression(model, tokenizer, vector, judge, judge_questions)
        summary["trait_expression"][vector.trait] = result["trait"]
        summary["trait_expression"][f"{vector.trait}_coherence"] = result["coherence"]
        summary["trait_drift"][vector.trait] = {"shift": 0.0}
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(summary, indent=2))
    return summary
