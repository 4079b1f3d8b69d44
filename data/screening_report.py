"""Screening results at the dataset level: per-trait and per-level statistics, ranking, the HTML report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from persona_vaccine.steering.score import auc

SCORES = ("projection_diff", "approx_diff")
# the report's level order and fixed colours (the builders' levels; "evil" is builtin:evil's flawed level)
LEVEL_COLOURS = {"normal": "#1b7837", "level1": "#e08214", "level2": "#b2182b", "evil": "#b2182b"}
OTHER_COLOURS = ("#2166ac", "#762a83", "#525252", "#8c510a")


def level_key(level: str) -> tuple[int, str]:
    """Sort key of levels: normal, level1, level2 (and evil), then any other name alphabetically."""
    order = list(LEVEL_COLOURS)
    return (order.index(level), "") if level in order else (len(order), level)


def level_colour(level: str, others: Sequence[str] = ()) -> str:
    """A level's fixed colour; other names get the next colour of OTHER_COLOURS in their sorted order."""
    if level in LEVEL_COLOURS:
        return LEVEL_COLOURS[level]
    rest = sorted(o for o in others if o not in LEVEL_COLOURS)
    return OTHER_COLOURS[rest.index(level) % len(OTHER_COLOURS)] if level in rest else OTHER_COLOURS[-1]


def _stats(values: Sequence[float]) -> dict:
    t = torch.tensor(list(values), dtype=torch.float64)
    return {
        "n": len(values),
        "mean": float(t.mean()),
        "std": float(t.std()) if len(values) > 1 else 0.0,
        "median": float(t.median()),
        "max": float(t.max()),
    }


def summarize(rows: Sequence[dict], traits: Sequence[str], score: str) -> dict:
    """Dataset-level scores per trait (mean = the dataset's projection difference), and per `meta.level`."""
    summary: dict = {"samples": len(rows), "score": score, "traits": {}}
    for trait in traits:
        per_trait: dict = {}
        for name in (*SCORES, "response_projection", "prompt_last_projection"):
            found = [r["scores"][trait][name] for r in rows if name in r["scores"][trait]]
            if found:
                per_trait[name] = _stats(found)
        levels = sorted({r.get("meta", {}).get("level") for r in rows} - {None}, key=level_key)
        if len(levels) > 1:
            low = "normal" if "normal" in levels else levels[0]

            def values(level: str, name: str, trait: str = trait) -> list[float]:
                return [
                    r["scores"][trait][name]
                    for r in rows
                    if r.get("meta", {}).get("level") == level and name in r["scores"][trait]
                ]

            by_level = {}
            for level in levels:
                by_level[level] = _stats(values(level, score))  # the ranking score, at the top level
                for name in SCORES:
                    if values(level, name):
                        by_level[level][name] = _stats(values(level, name))
                        if level != low:
                            by_level[level][name][f"auc_vs_{low}"] = auc(
                                values(level, name), values(low, name)
                            )
                if level != low:
                    by_level[level][f"auc_vs_{low}"] = by_level[level][score][f"auc_vs_{low}"]
            per_trait["by_level"] = by_level
        summary["traits"][trait] = per_trait
    return summary


def rank_rows(rows: Sequence[dict], trait: str, score: str) -> list[dict]:
    """Rows sorted riskiest first, with their rank (1 = riskiest) and percentile."""
    ranked = sorted(rows, key=lambda r: r["scores"][trait][score], reverse=True)
    n = len(ranked)
    return [{**r, "rank": k + 1, "percentile": 100.0 * (n - k) / n} for k, r in enumerate(ranked)]


def _histogram_png(ranked: Sequence[dict], trait: str, score: str, levels: list) -> str:
    """The scores' histogram (one colour per level when the dataset has levels), base64 PNG."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 3))
    groups = {
        lv: [r["scores"][trait][score] for r in ranked if r.get("meta", {}).get("level") == lv]
        for lv in levels
    }
    if len(groups) < 2:
        groups = {"all samples": [r["scores"][trait][score] for r in ranked]}
    every = [v for values in groups.values() for v in values]
    bins = np.histogram_bin_edges(every, bins=min(30, max(5, len(every) // 3)))  # shared by the levels
    for name, values in groups.items():
        colour = level_colour(name, levels) if name in levels else "#2166ac"
        ax.hist(values, bins=list(bins), alpha=0.55, label=f"{name} (n={len(values)})", color=colour)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"{trait} {score}")
    ax.set_ylabel("samples")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _stats_rows(summary: dict) -> list[str]:
    """Dataset-level table rows: each trait's scores, then per level."""
    import html

    e = html.escape
    stats_rows = []
    for t, per_trait in summary["traits"].items():
        for name in SCORES:
            if name in per_trait:
                s = per_trait[name]
                stats_rows.append(
                    f"<tr><td>{e(t)}</td><td>{name}</td><td>{s['mean']:+.3f}</td><td>{s['std']:.3f}</td>"
                    f"<td>{s['median']:+.3f}</td><td>{s['max']:+.3f}</td><td>{s['n']}</td></tr>"
                )
        by_level = per_trait.get("by_level", {})
        for level in sorted(by_level, key=level_key):
            by_score = by_level[level]
            for name in SCORES:
                if name not in by_score:
                    continue
                s = by_score[name]
                aucs = ", ".join(f"{k} {v:.3f}" for k, v in s.items() if k.startswith("auc"))
                stats_rows.append(
                    f"<tr><td>{e(t)}</td><td>{name} | level {e(level)}</td><td>{s['mean']:+.3f}</td>"
                    f"<td>{s['std']:.3f}</td><td>{s['median']:+.3f}</td><td>{s['max']:+.3f}</td>"
                    f"<td>{s['n']}{' (' + aucs + ')' if aucs else ''}</td></tr>"
                )
    return stats_rows


def _sample_rows(ranked: Sequence[dict], trait: str, score: str, top: int, levels: list) -> list[str]:
    import html

    e = html.escape
    sample_rows = []
    for r in ranked[:top]:
        s = r["scores"][trait]
        base = (
            f"<details><summary>base response</summary><div class='text'>{e(r['base_response'])}</div></details>"
            if "base_response" in r
            else ""
        )
        name = str(r.get("meta", {}).get("level", ""))
        level = (
            f"<span class='level' style='background:{level_colour(name, levels)}'>{e(name)}</span>"
            if name
            else ""
        )
        sample_rows.append(
            f"<tr><td>{r['rank']}</td><td>{r['index']}</td><td>{s[score]:+.3f}</td><td>{level}</td>"
            f"<td><div class='text prompt'>{e(r['prompt'])}</div><div class='text'>{e(r['response'])}</div>{base}</td></tr>"
        )
    return sample_rows


def write_report(path: Path, ranked: Sequence[dict], summary: dict, trait: str, score: str, top: int) -> None:
    """A self-contained HTML page: dataset-level scores, a histogram and the riskiest samples."""
    import html

    levels = sorted({r.get("meta", {}).get("level") for r in ranked} - {None}, key=level_key)
    image = _histogram_png(ranked, trait, score, levels)
    stats_rows = _stats_rows(summary)
    sample_rows = _sample_rows(ranked, trait, score, top, levels)
    e = html.escape
    path.write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>screening: {e(trait)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}td,th{{border-bottom:1px solid #ddd;
padding:4px;vertical-align:top;text-align:left}}table{{border-collapse:collapse;width:100%}}
.text{{white-space:pre-wrap;font-family:monospace;font-size:90%;margin:2px 0}}.prompt{{font-weight:bold}}
.level{{color:white;padding:1px 6px;border-radius:3px}}</style></head><body>
<h1>Projection-difference screening</h1>
<p>{summary["samples"]} samples ranked by <b>{e(trait)} {score}</b> (layer {
            ranked[0]["scores"][trait]["layer"] if ranked else "-"
        }). projection_diff = (response average of the training answer - that of the base model's
own answer) on the unit persona vector; approx_diff uses the last prompt token instead of the base answer.</p>
<h2>Dataset level</h2><table><tr><th>trait</th><th>score</th><th>mean</th><th>std</th><th>median</th>
<th>max</th><th>n</th></tr>{"".join(stats_rows)}</table>
<img src="data:image/png;base64,{image}" alt="histogram">
<h2>Riskiest {min(top, len(ranked))} samples</h2><table><tr><th>rank</th><th>index</th><th>{score}</th>
<th>level</th><th>sample</th></tr>{"".join(sample_rows)}</table></body></html>
"""
    )


def describe_screening(summary: dict, rows: Sequence[dict], output_dir: str | Path) -> str:
    """What `launch.py screen` prints: the dataset-level scores per trait and level, and the files."""
    out = Path(output_dir)
    lines = [
        f"screened {summary['samples']} samples in {summary.get('seconds', 0):.0f}s; ranked by {summary['score']}"
    ]
    for trait, stats in summary["traits"].items():
        line = ", ".join(f"{name} mean {stats[name]['mean']:+.3f}" for name in SCORES if name in stats)
        lines.append(f"  {trait} (layer {rows[0]['scores'][trait]['layer']}): {line}")
        for level, by_score in stats.get("by_level", {}).items():
            parts = []
            for name in SCORES:
                if name in by_score:
                    s = by_score[name]
                    aucs = "".join(f", {k} {v:.3f}" for k, v in s.items() if k.startswith("auc"))
                    parts.append(f"{name} {s['mean']:+.3f} (sd {s['std']:.2f}{aucs})")
            lines.append(f"    {level:8s} n={by_score['n']:<4d} " + "; ".join(parts))
    lines.append(
        f"  {out / 'screened.jsonl'} (riskiest first), {out / 'summary.json'}, {out / 'report.html'}"
    )
    return "\n".join(lines)
