"""The drift plot of one or more runs: trait drift and loss over training steps, capability after training.

Each run is {"name", "history": drift_history, "loss": loss_history, "summary": RunSummary} (loss and
summary optional), as `training.compare.load_run` reads it.
"""

from __future__ import annotations

from pathlib import Path


def _capability(run: dict) -> dict[str, float]:
    summary = run.get("summary")
    return (summary.capability or {}) if summary is not None else {}


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
    capability = sorted({c for r in runs for c in _capability(r)})
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
            values = [_capability(run).get(c) for c in capability]
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
