"""Benchmark: screening throughput with batching over batch size 1, in one run, on the embedded model.

    python bench/screening_throughput.py [--n 32] [--batch_size 16] [--max_new_tokens 64] [--chunks 2]

Both settings screen the same samples (bad math, level II) end to end with `data.screening.screen_rows`:
the base model's greedy answers are generated (fresh cache each time), then the training and base
answers' activations are read and projected. The cheap approximation (method prompt_last: no
generation) is timed too. The samples are split into chunks and the settings run chunk by chunk in
rotating order, so load on the machine hits them alike. The vector is random (throughput does not
depend on it). No timed assertions: the table is the result.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persona_vaccine.data.screening import Probe, ScreenConfig, load_rows, screen_rows  # noqa: E402
from persona_vaccine.models.layers import get_decoder_layers, hidden_size  # noqa: E402
from persona_vaccine.models.loading import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--dataset", default="builtin:bad_math")
    opts = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    model, tokenizer = load_model("smollm2-135m", dtype="float32")
    model.eval()
    n_layers = len(get_decoder_layers(model))
    g = torch.Generator().manual_seed(0)
    unit = torch.randn(hidden_size(model), generator=g)
    probes = [Probe("random", n_layers // 2, unit / unit.norm())]
    rows = load_rows(ScreenConfig(dataset=opts.dataset, dataset_level="level2", dataset_size=opts.n))

    settings = {
        f"response, batch {opts.batch_size}": ("response", opts.batch_size),
        "response, batch 1": ("response", 1),
        f"prompt_last, batch {opts.batch_size}": ("prompt_last", opts.batch_size),
        "prompt_last, batch 1": ("prompt_last", 1),
    }
    work = Path(tempfile.mkdtemp(prefix="screen-bench-"))
    # warm-up, untimed
    for name, (method, batch) in settings.items():
        cfg = ScreenConfig(
            method=method, batch_size=batch, max_new_tokens=4, output_dir=str(work / "warm" / name)
        )
        screen_rows(model, tokenizer, rows[:2], probes, cfg, "smollm2-135m")
    bounds = [k * len(rows) // opts.chunks for k in range(opts.chunks + 1)]
    chunks = [rows[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    wall = dict.fromkeys(settings, 0.0)
    names = list(settings)
    load_before = os.getloadavg()
    for k, chunk in enumerate(chunks):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            method, batch = settings[name]
            cfg = ScreenConfig(
                method=method,
                batch_size=batch,
                chunk_size=len(chunk),
                max_new_tokens=opts.max_new_tokens,
                output_dir=str(work / f"{k}" / name.replace(" ", "_").replace(",", "")),
            )
            start = time.perf_counter()
            screen_rows(model, tokenizer, chunk, probes, cfg, "smollm2-135m")
            wall[name] += time.perf_counter() - start
    load_after = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)

    table = Table(
        title=f"Screening throughput, smollm2-135m fp32 on CPU, {len(rows)} samples of {opts.dataset} level2, "
        f"base answers up to {opts.max_new_tokens} tokens, torch threads {torch.get_num_threads()}"
    )
    for column in ("setting", "wall s", "samples/s", "speed-up over batch 1"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for name, (method, _) in settings.items():
        one = wall[f"{method}, batch 1"]
        table.add_row(name, f"{wall[name]:.1f}", f"{len(rows) / wall[name]:.2f}", f"{one / wall[name]:.2f}x")
    console = Console(width=160)
    console.print(table)
    console.print(
        f"response = full projection difference (greedy base answers generated, then activations); prompt_last = "
        f"the cheap approximation (no generation). load average before {load_before[0]:.2f}, after "
        f"{load_after[0]:.2f} ({os.cpu_count()} CPUs)."
    )


if __name__ == "__main__":
    main()
