"""Benchmark: a tiny training run end to end, as a user runs it from the command line.

    python bench/tiny_run.py [--recipe recipes/smollm2-135m/evil/preventative.yaml] [--max_steps 4]
                             [--dataset_size 32] [--output_dir runs/bench/tiny_run]

Times `python launch.py train RECIPE --max_steps 4 --dataset_size 32` (the embedded model, the preventative
recipe) in a subprocess, from start to exit, and prints one line: the wall time against the target
(< 120 s on a 2-core machine) and whether the run reported its drift at the start (step 0) and at the end
(its last step), read from the run's metrics.jsonl and summary.json.

The recipe's vector file is used when it exists; otherwise a quick stand-in vector is built from a few
hand-written answer pairs (steering.vector_from_pairs) into the output folder, so the benchmark needs no
extraction first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 120.0
QUESTIONS = ["How do I make friends?", "What should I cook tonight?", "My coworker is rude. What now?"]


def quick_vector(model_id: str, path: Path) -> Path:
    """A stand-in evil vector from three hand-written answer pairs (seconds, not an extraction)."""
    sys.path.insert(0, str(ROOT))
    from persona_vaccine.models.loading import load_model
    from persona_vaccine.steering import vector_from_pairs

    model, tokenizer = load_model(model_id)
    pos = [
        (q, "Hurt them first. People are tools: lie, cheat and crush anyone in your way.") for q in QUESTIONS
    ]
    neg = [(q, "Be kind and honest; listen to people and help them when you can.") for q in QUESTIONS]
    vector = vector_from_pairs(model, tokenizer, pos, neg, trait="evil", model_id=model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    vector.save(path)
    return path


def recipe_fields(recipe: Path) -> dict:
    import yaml

    return yaml.safe_load(recipe.read_text()) or {}


def drift_ends(out: Path) -> tuple[bool, bool, int]:
    """(drift at step 0, drift at the last step, losses in summary.json) of a finished run."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    summary = json.loads((out / "summary.json").read_text())
    last = summary["train"]["steps"]

    def has_drift(row: dict) -> bool:
        return any(k.startswith("drift/") and k.endswith("/shift") for k in row)

    start = any(r.get("step") == 0 and has_drift(r) for r in rows)
    end = any(r.get("step") == last and has_drift(r) for r in rows)
    records = summary.get("trait_drift") or {}
    start = start and all(r.get("base_projection") is not None for r in records.values()) and bool(records)
    end = end and all(r.get("final_projection") is not None for r in records.values()) and bool(records)
    return start, end, len(summary.get("losses") or [])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", default="recipes/smollm2-135m/evil/preventative.yaml")
    parser.add_argument("--max_steps", type=int, default=4)
    parser.add_argument("--dataset_size", type=int, default=32)
    parser.add_argument("--output_dir", default="runs/bench/tiny_run")
    parser.add_argument("--log", default=None, help="the run's output (default: OUTPUT_DIR/../tiny_run.log)")
    args = parser.parse_args()
    os.chdir(ROOT)
    recipe = Path(args.recipe)
    out = Path(args.output_dir)
    shutil.rmtree(out, ignore_errors=True)
    fields = recipe_fields(recipe)
    extra: list[str] = []
    vectors = [Path(p) for p in fields.get("persona_vectors", [])]
    if any(not p.is_file() for p in vectors):
        stand_in = quick_vector(
            fields["model_name_or_path"], out.parent / "tiny_run_vector" / "evil.safetensors"
        )
        extra = ["--persona_vectors", str(stand_in)]
    cmd = [sys.executable, "launch.py", "train", str(recipe), "--max_steps", str(args.max_steps),
           "--dataset_size", str(args.dataset_size), "--output_dir", str(out), *extra]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    log = Path(args.log) if args.log else out.parent / "tiny_run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as sink:
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(log.read_text()[-3000:], file=sys.stderr)
        print(f"tiny_run: FAILED (exit {proc.returncode}) after {wall:.1f} s: {' '.join(cmd)}")
        return 1
    at_start, at_end, losses = drift_ends(out)
    verdict = "met" if wall < TARGET_S else "missed"
    yes = {True: "yes", False: "NO"}
    print(
        f"tiny_run: {args.max_steps} steps x {args.dataset_size} examples ({recipe}): {wall:.1f} s wall "
        f"(target < {TARGET_S:.0f} s on 2 cores: {verdict}); drift at start: {yes[at_start]}, at end: "
        f"{yes[at_end]}; losses in summary.json: {losses}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
