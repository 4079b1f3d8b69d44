"""Pearson correlations between runs' figures (projection shift against behavioural measures), with a
95% Fisher-z interval, and their scatter plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path


def pearson(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> dict:
    """r, n, the Fisher-z interval of r (None for n < 4) and the two-sided p-value of r = 0."""
    from scipy.stats import norm, pearsonr

    if len(x) != len(y):
        raise ValueError(f"pearson: {len(x)} x values but {len(y)} y values")
    n = len(x)
    if n < 3:
        return {"n": n, "r": None, "low": None, "high": None, "p": None}
    r, p = pearsonr(x, y)
    r = float(r)
    low = high = None
    if n >= 4 and abs(r) < 1:
        z, half = math.atanh(r), float(norm.ppf(0.5 + confidence / 2)) / math.sqrt(n - 3)
        low, high = math.tanh(z - half), math.tanh(z + half)
    return {"n": n, "r": r, "low": low, "high": high, "p": float(p)}


def correlation_table(points: dict[str, list[tuple[float, float]]], x_name: str) -> str:
    """Markdown: one row per measure, r [95% interval] and n, of x_name against it."""
    lines = [f"| {x_name} against | r [95% Fisher interval] | n | p |", "|---|---|---|---|"]
    for name, pairs in points.items():
        c = pearson([a for a, _ in pairs], [b for _, b in pairs])
        cell = "-" if c["r"] is None else f"{c['r']:+.2f}"
        if c["low"] is not None:
            cell += f" [{c['low']:+.2f}, {c['high']:+.2f}]"
        p = "-" if c["p"] is None else f"{c['p']:.2g}"
        lines.append(f"| {name} | {cell} | {c['n']} | {p} |")
    return "\n".join(lines)


def scatter(points: dict[str, list[tuple[float, float]]], x_name: str, path: str | Path,
            labels: dict[str, list[str]] | None = None) -> Path:  # fmt: skip
    """One panel per measure: x_name against it, each run a point (labelled when `labels` are given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(points), figsize=(4.2 * len(points), 3.8), squeeze=False)
    for ax, (name, pairs) in zip(axes[0], points.items(), strict=True):
        xs, ys = [a for a, _ in pairs], [b for _, b in pairs]
        ax.scatter(xs, ys, s=28)
        for i, text in enumerate((labels or {}).get(name, [])):
            ax.annotate(text, (xs[i], ys[i]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        c = pearson(xs, ys)
        r = "r n/a" if c["r"] is None else f"r = {c['r']:+.2f} (n={c['n']})"
        ax.set_title(f"{name}\n{r}", fontsize=9)
        ax.set_xlabel(x_name, fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
