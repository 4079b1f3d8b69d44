"""Benchmark: training step time with preventative steering over without, drift cost, and the cost of
steering_auto (its balanced-start scan and per-step drift), in one run.

    python bench/step_time.py [--model smollm2-135m] [--batch 8] [--repeats 12]

Both variants run on the same trainer, model and batch, interleaved (A B A B ...) so that machine
load hits them alike; the table shows medians and the ratios (target: steering/plain <= 1.03). The
auto rows put the measured parts together for a run of --steps steps logged every --logging_steps:
auto / fixed = (steps x step + scan + drifts of auto) / (steps x step + drifts of the log)
(target: <= 1.15).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from trainer_steps import prepare_steps, train_step

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persona_vaccine.data.loading import load_training_dataset  # noqa: E402
from persona_vaccine.steering.extract import ExtractionConfig, extract  # noqa: E402
from persona_vaccine.training.callbacks import (  # noqa: E402
    DriftCallback,
    callback_of,
    probe_batches,
    probe_loss,
)
from persona_vaccine.training.coef_controller import balanced_start  # noqa: E402
from persona_vaccine.training.config import PreventativeSFTConfig  # noqa: E402
from persona_vaccine.training.run import load_base_model  # noqa: E402
from persona_vaccine.training.trainer import PreventativeSFTTrainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument(
        "--vector", default=None, help="vector file; default: extract a small one for the model"
    )
    parser.add_argument("--layer", type=int, default=20)
    parser.add_argument("--coef", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--lora", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--steps", type=int, default=20, help="run length for the auto rows")
    parser.add_argument("--logging_steps", type=int, default=5)
    opts = parser.parse_args()

    from peft import LoraConfig
    from trl import ModelConfig

    from persona_vaccine.models.loading import load_tokenizer

    vector = opts.vector
    if vector is None:
        out = "runs/bench/vectors"
        vector = str(
            extract(
                ExtractionConfig(
                    model_name_or_path=opts.model, output_dir=out, max_questions=2, max_new_tokens=16
                )
            ).paths["response_avg"]
        )
    tokenizer = load_tokenizer(opts.model)
    model = load_base_model(ModelConfig(model_name_or_path=opts.model, dtype="float32"))
    args = PreventativeSFTConfig(
        output_dir="runs/bench/out",
        report_to="none",
        per_device_train_batch_size=opts.batch,
        max_length=256,
        persona_vectors=[vector],
        steering_layers=[opts.layer],
        steering_coefs=[opts.coef],
        use_cpu=True,
        learning_rate=1e-5,
    )
    peft = (
        LoraConfig(r=32, lora_alpha=64, use_rslora=True, target_modules="all-linear") if opts.lora else None
    )
    trainer = PreventativeSFTTrainer(
        model=model,
        args=args,
        train_dataset=load_training_dataset("builtin:evil", size=opts.batch * 4),
        processing_class=tokenizer,
        peft_config=peft,
        model_id=opts.model,
    )
    model, batch = prepare_steps(trainer)
    steerer = trainer.steerer
    assert steerer is not None
    drift_callback = callback_of(trainer, DriftCallback)
    assert drift_callback is not None
    meter = drift_callback.meter
    specs = [s.spec for s in trainer.steering if s.spec is not None]
    model.train()

    def step(steering: bool) -> float:
        start = time.perf_counter()
        train_step(trainer, model, batch, steerer if steering else None)
        return time.perf_counter() - start

    def drift() -> float:
        start = time.perf_counter()
        meter.metrics(model)
        return time.perf_counter() - start

    meter.measure_base(model)
    step(True), step(False), drift()  # warm-up
    times = {"plain": [], "steered": [], "drift": []}
    for _ in range(opts.repeats):
        times["steered"].append(step(True))
        times["plain"].append(step(False))
        times["drift"].append(drift())
    trainer.steerer = steerer
    scans = {}
    for n in (16, 8):  # steering_auto_probe_examples
        batches = probe_batches(trainer, n)
        start = time.perf_counter()
        balanced_start(lambda b=batches: probe_loss(model, steerer, b), steerer, specs, 8.0)
        scans[n] = time.perf_counter() - start
    med = {k: statistics.median(v) for k, v in times.items()}
    tokens = int(batch["attention_mask"].sum())
    print(
        f"\nmodel {opts.model}, LoRA {opts.lora}, batch {opts.batch} ({tokens} tokens), layer {opts.layer}, "
        f"coef {opts.coef}, {opts.repeats} interleaved repeats, torch threads {torch.get_num_threads()}"
    )
    print(f"{'measure':<34}{'median s':>10}{'min s':>10}")
    for name, label in (
        ("plain", "train step, no steering"),
        ("steered", "train step, preventative steering"),
        ("drift", f"drift measurement ({len(meter.probes[0].prompts)} prompts)"),
    ):
        print(f"{label:<34}{med[name]:>10.3f}{min(times[name]):>10.3f}")
    print(f"{'ratio steered / plain (target <= 1.03)':<44}{med['steered'] / med['plain']:>10.3f}")
    print(f"{'ratio drift / train step':<44}{med['drift'] / med['plain']:>10.3f}")
    n, logged = opts.steps, opts.steps // opts.logging_steps
    fixed = n * med["steered"] + logged * med["drift"]
    for examples, scan in scans.items():
        print(f"{f'balanced-start scan ({examples} examples, 8 coefs)':<44}{scan:>10.3f}")
    for every in (1, 2):
        measured = len({*range(every, n + 1, every), *range(opts.logging_steps, n + 1, opts.logging_steps)})
        for examples, scan in scans.items():
            auto = n * med["steered"] + scan + measured * med["drift"]
            label = f"auto / fixed, every {every}, probe {examples} ({n} steps)"
            print(f"{label:<44}{auto / fixed:>10.3f}")


if __name__ == "__main__":
    main()
