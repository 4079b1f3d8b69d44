"""Benchmark: measured per-rank memory under DeepSpeed ZeRO-3 against ZeRO-2, 2 processes, in one run.

    python bench/zero_memory.py [--hidden 1024 --layers 16 --intermediate 2816] [--num_processes 2]

Launches `accelerate launch --config_file recipes/accelerate_configs/deepspeed_zero{2,3}.yaml` on this
script in worker mode, once per stage. Each rank builds a randomly initialised Llama from a config (no
download; large enough for sharding to show: ~255M parameters with the defaults; under ZeRO-3 it is built
inside `zero.Init`, so each rank only ever holds its partition), prepares it for full fine-tuning with
AdamW in fp32, and runs one training step with a random persona vector added at the middle layer (the
steering hook on the sharded model). Every figure is measured, none is derived from the partition sizes:
the process's resident memory (RSS, from the OS) before the model is built, after `prepare`, and after
the step (right after `optimizer.step()` and `zero_grad()`, the same point for both stages), and the peak
RSS over the whole process (`ru_maxrss`). On GPUs the allocator's figures would be the ones to read; on
CPUs (gloo) RSS is what the process costs. No timed assertions: the table is the result.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_bytes() -> int:
    """This process's resident memory now (after a garbage collection)."""
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


def worker(opts: argparse.Namespace, out: Path) -> None:
    import torch
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM, LlamaConfig
    from transformers.integrations import HfDeepSpeedConfig

    from persona_vaccine.steering.hooks import steer
    from persona_vaccine.steering.vector import PersonaVector

    accelerator = Accelerator()
    plugin = accelerator.state.deepspeed_plugin
    plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1
    plugin.deepspeed_config["gradient_accumulation_steps"] = 1
    world = int(os.environ.get("WORLD_SIZE", "1"))  # on CPUs accelerate counts one process; DeepSpeed all
    plugin.deepspeed_config["train_batch_size"] = world
    keep = HfDeepSpeedConfig(plugin.deepspeed_config) if plugin.zero_stage == 3 else None  # noqa: F841 (zero.Init)
    config = LlamaConfig(
        vocab_size=opts.vocab,
        hidden_size=opts.hidden,
        intermediate_size=opts.intermediate,
        num_hidden_layers=opts.layers,
        num_attention_heads=opts.hidden // 64,
        num_key_value_heads=max(1, opts.hidden // 256),  # a quarter of the heads (grouped-query attention)
        tie_word_embeddings=True,
    )
    rss_before = rss_bytes()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    n_params = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    engine, optimizer = accelerator.prepare(model, optimizer)
    rss_prepared = rss_bytes()
    g = torch.Generator().manual_seed(0)
    size, n_layers = opts.hidden, opts.layers
    vector = PersonaVector(
        "random",
        "random-llama",
        size,
        n_layers,
        {layer: torch.randn(size, generator=g) for layer in range(1, n_layers + 1)},
    )
    ids = torch.randint(0, opts.vocab, (1, opts.seq), generator=g).to(accelerator.device)
    with steer(engine, vector, layer=n_layers // 2, coef=1.0):
        loss = engine(input_ids=ids, labels=ids).loss
        accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad()
    rss_step = rss_bytes()
    row = {
        "stage": plugin.zero_stage,
        "rank": int(os.environ.get("RANK", accelerator.process_index)),
        "world": world,
        "n_params": n_params,
        "rss_before_model": rss_before,
        "rss_prepared": rss_prepared,
        "rss_after_step": rss_step,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "loss": float(loss),
    }
    (out / f"stage{plugin.zero_stage}_rank{row['rank']}.json").write_text(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--intermediate", type=int, default=2816)
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--seq", type=int, default=64, help="tokens of the one training example")
    parser.add_argument("--num_processes", type=int, default=2)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        worker(opts, Path(opts.worker))
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
    shape = [
        "--hidden", str(opts.hidden), "--layers", str(opts.layers), "--intermediate", str(opts.intermediate),
        "--vocab", str(opts.vocab), "--seq", str(opts.seq),
    ]  # fmt: skip
    for stage in (2, 3):
        cmd = [
            "accelerate", "launch", "--config_file", str(ROOT / f"recipes/accelerate_configs/deepspeed_zero{stage}.yaml"),
            "--num_processes", str(opts.num_processes), __file__, *shape, "--worker", str(out),
        ]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            sys.exit(f"ZeRO-{stage} run failed:\n{proc.stderr[-3000:]}")
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    n_params = rows[0]["n_params"]
    table = Table(
        title=f"Measured per-rank memory (RSS), random Llama of {n_params / 1e6:.0f}M parameters "
        f"(hidden {opts.hidden}, {opts.layers} layers), full fine-tuning, AdamW fp32, "
        f"{opts.num_processes} processes, one step"
    )
    for column in (
        "stage",
        "rank",
        "RSS before model MB",
        "RSS after prepare MB",
        "RSS after step MB",
        "growth MB (after step - before model)",
        "peak RSS MB",
        "loss",
    ):
        table.add_column(column, justify="right")
    mb = 1 / 2**20
    for r in rows:
        table.add_row(
            f"ZeRO-{r['stage']}", str(r["rank"]), f"{r['rss_before_model'] * mb:.0f}", f"{r['rss_prepared'] * mb:.0f}",
            f"{r['rss_after_step'] * mb:.0f}", f"{(r['rss_after_step'] - r['rss_before_model']) * mb:.0f}",
            f"{r['peak_rss_bytes'] * mb:.0f}", f"{r['loss']:.4f}",
        )  # fmt: skip
    console = Console(width=160)
    console.print(table)
    by_stage = {s: [r for r in rows if r["stage"] == s] for s in (2, 3)}

    def ratio(key) -> float:  # the worst rank of each stage
        return max(key(r) for r in by_stage[3]) / max(key(r) for r in by_stage[2])

    console.print(
        "measured ZeRO-3 / ZeRO-2 (max over ranks): "
        f"RSS after step {ratio(lambda r: r['rss_after_step']):.3f}, "
        f"growth {ratio(lambda r: r['rss_after_step'] - r['rss_before_model']):.3f}, "
        f"peak RSS {ratio(lambda r: r['peak_rss_bytes']):.3f}"
    )
    console.print(
        f"fp32 weights alone: {n_params * 4 * mb:.0f} MB; weights + grads + Adam state unsharded: "
        f"{n_params * 16 * mb:.0f} MB (arithmetic, for scale: not measured)"
    )


if __name__ == "__main__":
    main()
