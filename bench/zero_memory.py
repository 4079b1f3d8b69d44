"""Benchmark: per-rank parameter memory under DeepSpeed ZeRO-3 against ZeRO-2, 2 processes, in one run.

    python bench/zero_memory.py [--model smollm2-135m] [--num_processes 2]

Launches `accelerate launch --config_file recipes/accelerate_configs/deepspeed_zero{2,3}.yaml` on this
script in worker mode, once per stage. Each rank loads the model (full fine-tuning: every parameter
trains), prepares it with an AdamW optimizer, runs one training step with a persona vector added at the
middle layer (the steering hook on the sharded model), and reports the bytes of parameters it holds
(ZeRO-3: its partition `ds_tensor`; ZeRO-2: every parameter), of optimizer state, and its peak RSS.
Runs on CPUs (gloo) as on GPUs. No timed assertions: the table is the result.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker(model_id: str, out: Path) -> None:
    import torch
    from accelerate import Accelerator
    from persona_vaccine.steering.hooks import steer
    from persona_vaccine.steering.layers import get_decoder_layers, hidden_size
    from persona_vaccine.steering.models import resolve_model_path
    from persona_vaccine.steering.vector import PersonaVector
    from transformers import AutoModelForCausalLM
    from transformers.integrations import HfDeepSpeedConfig

    accelerator = Accelerator()
    plugin = accelerator.state.deepspeed_plugin
    plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1
    plugin.deepspeed_config["gradient_accumulation_steps"] = 1
    world = int(os.environ.get("WORLD_SIZE", "1"))  # on CPUs accelerate counts one process; DeepSpeed all
    plugin.deepspeed_config["train_batch_size"] = world
    keep = HfDeepSpeedConfig(plugin.deepspeed_config) if plugin.zero_stage == 3 else None  # noqa: F841 (zero.Init)
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(model_id), dtype=torch.float32)
    n_layers, size = len(get_decoder_layers(model)), hidden_size(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    engine, optimizer = accelerator.prepare(model, optimizer)
    g = torch.Generator().manual_seed(0)
    vector = PersonaVector(
        "random",
        model_id,
        size,
        n_layers,
        {layer: torch.randn(size, generator=g) for layer in range(1, n_layers + 1)},
    )
    ids = torch.randint(0, 1000, (1, 64), generator=g).to(accelerator.device)
    with steer(engine, vector, layer=n_layers // 2, coef=1.0):
        loss = engine(input_ids=ids, labels=ids).loss
        accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad()

    def nbytes(t) -> int:
        return t.numel() * t.element_size()

    params = sum(
        nbytes(p.ds_tensor) if hasattr(p, "ds_tensor") else nbytes(p.data) for p in model.parameters()
    )
    full = sum(
        p.ds_numel * p.element_size() if hasattr(p, "ds_numel") else nbytes(p.data)
        for p in model.parameters()
    )
    state = 0
    inner = getattr(optimizer, "optimizer", optimizer)
    for group_state in getattr(inner, "state", {}).values():
        state += sum(nbytes(v) for v in group_state.values() if torch.is_tensor(v))
    for opt in (inner, getattr(inner, "optimizer", None)):  # DeepSpeed's fp32 partitions
        for name in ("single_partition_of_fp32_groups", "fp32_partitioned_groups_flat"):
            state += sum(nbytes(t) for t in getattr(opt, name, []) or [] if torch.is_tensor(t))
    row = {
        "stage": plugin.zero_stage,
        "rank": int(os.environ.get("RANK", accelerator.process_index)),
        "world": world,
        "param_bytes": params,
        "model_bytes": full,
        "optimizer_bytes": state,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "loss": float(loss),
    }
    (out / f"stage{plugin.zero_stage}_rank{row['rank']}.json").write_text(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--num_processes", type=int, default=2)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        worker(opts.model, Path(opts.worker))
        return

    from rich.console import Console
    from rich.table import Table

    out = Path(tempfile.mkdtemp(prefix="zero-mem-"))
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }
    for stage in (2, 3):
        cmd = [
            "accelerate", "launch", "--config_file", str(ROOT / f"recipes/accelerate_configs/deepspeed_zero{stage}.yaml"),
            "--num_processes", str(opts.num_processes), __file__, "--model", opts.model, "--worker", str(out),
        ]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            sys.exit(f"ZeRO-{stage} run failed:\n{proc.stderr[-3000:]}")
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    table = Table(
        title=f"Per-rank memory, {opts.model} full fine-tuning, {opts.num_processes} processes (AdamW, fp32)"
    )
    for column in (
        "stage",
        "rank",
        "params held MB",
        "model MB",
        "optimizer state MB",
        "peak RSS MB",
        "loss",
    ):
        table.add_column(column, justify="right")
    mb = 1 / 2**20
    for r in rows:
        table.add_row(
            f"ZeRO-{r['stage']}", str(r["rank"]), f"{r['param_bytes'] * mb:.1f}", f"{r['model_bytes'] * mb:.1f}",
            f"{r['optimizer_bytes'] * mb:.1f}", f"{r['peak_rss_bytes'] * mb:.0f}", f"{r['loss']:.4f}",
        )  # fmt: skip
    console = Console(width=140)
    console.print(table)
    by_stage = {s: [r for r in rows if r["stage"] == s] for s in (2, 3)}
    p2 = max(r["param_bytes"] for r in by_stage[2])
    p3 = max(r["param_bytes"] for r in by_stage[3])
    console.print(f"per-rank parameter memory, ZeRO-3 / ZeRO-2: {p3 / p2:.3f} (ideal 1/{opts.num_processes})")


if __name__ == "__main__":
    main()
