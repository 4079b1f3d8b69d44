"""Benchmark on one GPU: the speed cost of this project's residual-stream operations on random-init models of
real shapes (SmolLM2-135M, Qwen2.5-7B) in bf16, each variant interleaved with its plain twin.

    python bench/gpu_speed.py [--shapes smollm2-135m,qwen2.5-7b] [--repeats 10] [--gen_reps 5] [--out F]
    python bench/gpu_speed.py --smoke   # tiny configs of the same architectures, on the CPU, float32

Sections, per shape (each one guarded: a failure prints its traceback and the run goes on; the JSON is
rewritten after every section, so partial results survive):
1. train: `PreventativeSFTTrainer.training_step` + `optimizer.step` as bench/step_time.py drives it,
   plain vs preventative steering at the middle layer (coef 2.0) vs all-layer steering
   (`steering_all_layers`: incremental vectors at every layer), LoRA r=32 alpha=64 all-linear (and full
   fine-tuning for smollm2-135m); plus the drift measurement (`DriftCallback`'s meter) once per repeat;
2. generate: greedy `model.generate` of exactly --gen_tokens new tokens at batch 1 and 16, plain vs
   `monitor(...)` with an "alert" watch vs a "cap" watch (cap 0.0: it clamps the answer tokens that
   read above 0 on a random model: about 40 % on the 7B shape, none on the 135M); a plain row with any
   hook attached aborts the section;
3. activations: `prompt_response_activations` (extraction's reader, every layer) over 64 x 256 tokens vs a
   plain forward of the same batches (full, with logits, and the decoder alone, which is what the reader
   runs: it stops after the last block).
The persona vector is a random unit vector per layer (trait "evil", so the drift meter finds its
questions), saved with PersonaVector.save. The tokenizer is the embedded SmolLM2's (saved to .gpu_tok for
machines without the model), used for both shapes: its ids (< 49152) fit Qwen2.5's larger vocabulary.

On a GPU machine that has torch, transformers, peft and accelerate but no network, no trl, datasets or
jsonschema, and no model weights: download those as wheels here (trl, datasets, dill, multiprocess,
jsonschema, jsonschema-specifications, referencing, rpds-py; `pip download --no-deps --only-binary=:all:
--python-version 3.12 --platform manylinux_2_17_x86_64 -d .whl NAME==VERSION`), save the tokenizer with
`load_tokenizer("smollm2-135m").save_pretrained(".gpu_tok")`, copy the checkout there and run

    pip install --no-index --no-deps --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site:$PWD \
        python3 bench/gpu_speed.py --out gpu_speed.json
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from questions import MORE_QUESTIONS, QUESTIONS
from trainer_steps import prepare_steps, train_step

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]

# name -> (architecture, real config, tiny config of the same architecture for --smoke, settings)
SHAPES: dict[str, dict] = {
    "smollm2-135m": {
        "arch": "llama",
        "config": dict(
            hidden_size=576,
            intermediate_size=1536,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            vocab_size=49152,
            max_position_embeddings=8192,
            rope_theta=100000.0,
            tie_word_embeddings=True,
            rms_norm_eps=1e-5,
        ),
        "smoke": dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=49152,
            max_position_embeddings=2048,
            rope_theta=100000.0,
            tie_word_embeddings=True,
            rms_norm_eps=1e-5,
        ),
        "batch": 8,
        "length": 256,
        "full_ft": True,
    },
    "qwen2.5-7b": {
        "arch": "qwen2",
        "config": dict(
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            vocab_size=152064,
            max_position_embeddings=32768,
            rope_theta=1e6,
            tie_word_embeddings=False,
            rms_norm_eps=1e-6,
        ),
        "smoke": dict(
            hidden_size=64,
            intermediate_size=160,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=49280,
            max_position_embeddings=4096,
            rope_theta=1e6,
            tie_word_embeddings=False,
            rms_norm_eps=1e-6,
        ),
        "batch": 4,
        "length": 512,
        "full_ft": False,
    },
}

RESULTS: dict = {"env": {}, "settings": {}, "sections": {}, "errors": {}, "elapsed_s": {}}


# --- helpers ----------------------------------------------------------------------------------------
def save(out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(RESULTS, indent=2, default=str))
    tmp.replace(out)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def interleave(
    variants: dict[str, Callable[[], object]], repeats: int, device: torch.device, warmup: int = 1
) -> tuple[dict[str, list[float]], dict[str, float | None]]:
    """Seconds per call of each variant, run A B C A B C ... after `warmup` rounds; the peak memory (MiB)
    of each variant's call in the first timed round (CUDA only)."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in variants}
    peaks: dict[str, float | None] = dict.fromkeys(variants)
    for rep in range(repeats):
        for name, fn in variants.items():
            if rep == 0 and device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
            if rep == 0 and device.type == "cuda":
                peaks[name] = torch.cuda.max_memory_allocated(device) / 2**20
    return times, peaks


def stats(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "min_s": min(times), "n": len(times)}


def paired(times: dict[str, list[float]], name: str, base: str) -> float:
    """Median over repeats of time(name) / time(base) (the pairs ran side by side)."""
    return statistics.median(a / b for a, b in zip(times[name], times[base], strict=True))


def hooks_attached(model: torch.nn.Module) -> list[str]:
    """Every module of `model` that carries a forward or forward-pre hook (none may, for a plain row)."""
    return [
        name or "(model)"
        for name, module in model.named_modules()
        if module._forward_hooks or module._forward_pre_hooks
    ]


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [f"{c:.4g}" if isinstance(c, float) else ("" if c is None else str(c)) for c in row]
        print("| " + " | ".join(cells) + " |")


def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict:
    env = {
        "python": platform.python_version(),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        **{p: version(p) for p in ("torch", "transformers", "peft", "trl", "accelerate", "datasets")},
        "cuda": torch.version.cuda,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env |= {
            "gpu": torch.cuda.get_device_name(device),
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "cudnn": torch.backends.cudnn.version(),
        }
    return env


# --- models, vectors, data ----------------------------------------------------------------------------
def build_model(shape: str, opts, tokenizer):
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    spec = SHAPES[shape]
    cls = LlamaConfig if spec["arch"] == "llama" else Qwen2Config
    ids = {
        "bos_token_id": tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 1,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    cfg = cls(**spec["smoke" if opts.smoke else "config"], **ids)
    if opts.attn:
        cfg._attn_implementation = opts.attn
    torch.manual_seed(opts.seed)
    with torch.device(opts.device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=opts.dtype)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    sync(opts.device)
    return model


def model_facts(model) -> dict:
    return {
        "class": type(model).__name__,
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "dtype": str(next(model.parameters()).dtype),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "num_layers": model.config.num_hidden_layers,
        "hidden_size": model.config.hidden_size,
    }


def random_vector(shape: str, model, path: Path):
    from persona_vaccine.steering.vector import PersonaVector

    n, h = model.config.num_hidden_layers, model.config.hidden_size
    gen = torch.Generator().manual_seed(1234)
    layers = {}
    for layer in range(1, n + 1):
        v = torch.randn(h, generator=gen)
        layers[layer] = v / v.norm()
    vector = PersonaVector(trait="evil", model_id=shape, hidden_size=h, num_layers=n, layers=layers)
    vector.save(path)
    return vector


def long_dataset(tokenizer, rows: int, length: int):
    """Prompt/completion rows (the builtin evil data's questions and answers) whose chat text is longer
    than `length` tokens, so every row of a batch fills max_length."""
    from datasets import Dataset

    from persona_vaccine.data.loading import load_training_dataset

    base = load_training_dataset("builtin:evil", size=max(rows, 32))
    answers = [r["completion"][0]["content"] for r in base]
    out, counts = [], []
    for i in range(rows):
        prompt = base[i % len(base)]["prompt"]
        parts, k = [], i
        while True:
            parts.append(answers[k % len(answers)])
            k += 1
            completion = [{"role": "assistant", "content": " ".join(parts)}]
            text = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
            n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            if n >= length + 16:
                break
        out.append({"prompt": prompt, "completion": completion})
        counts.append(n)
    return Dataset.from_list(out), counts


def token_rows(tokenizer, n: int, length: int) -> list[list[int]]:
    """n rows of `length` ids cut from chat-formatted text of the builtin evil data."""
    from persona_vaccine.data.loading import load_training_dataset

    base = load_training_dataset("builtin:evil", size=64)
    stream: list[int] = []
    while len(stream) < n * length:
        for r in base:
            text = tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=False)
            stream += tokenizer(text, add_special_tokens=False)["input_ids"]
    return [stream[i * length : (i + 1) * length] for i in range(n)]


# --- sections -------------------------------------------------------------------------------------------
def section_train(shape: str, lora: bool, opts, tokenizer, workdir: Path) -> dict:
    from peft import LoraConfig

    from persona_vaccine.steering.hooks import Steerer
    from persona_vaccine.training.callbacks import DriftCallback, callback_of
    from persona_vaccine.training.config import PreventativeSFTConfig
    from persona_vaccine.training.trainer import PreventativeSFTTrainer
    from persona_vaccine.training.vector_steering import steering_from_config

    spec = SHAPES[shape]
    batch_size, length = (2, 64) if opts.smoke else (spec["batch"], spec["length"])
    model = build_model(shape, opts, tokenizer)
    facts = model_facts(model)
    n_layers = facts["num_layers"]
    layer = max(1, round(n_layers / 2))
    vector_path = workdir / f"{shape}-evil.safetensors"
    random_vector(shape, model, vector_path)
    dataset, counts = long_dataset(tokenizer, batch_size * 4, length)
    print(
        f"training rows: {len(counts)}, chat tokens per row {min(counts)}..{max(counts)} (max_length {length})"
    )
    on_cuda = opts.device.type == "cuda"
    args = PreventativeSFTConfig(
        output_dir=str(workdir / f"out-{shape}"),
        report_to="none",
        per_device_train_batch_size=batch_size,
        max_length=length,
        persona_vectors=[str(vector_path)],
        steering_layers=[layer],
        steering_coefs=[2.0],
        use_cpu=not on_cuda,
        bf16=opts.dtype == torch.bfloat16,
        learning_rate=1e-5,
        **(
            {}
            if opts.gradient_checkpointing is None
            else {"gradient_checkpointing": opts.gradient_checkpointing}
        ),
    )
    peft = LoraConfig(r=32, lora_alpha=64, use_rslora=True, target_modules="all-linear") if lora else None
    trainer = PreventativeSFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft,
        model_id=shape,
    )
    model, batch = prepare_steps(trainer)
    steerer = trainer.steerer
    assert steerer is not None
    all_args = copy.copy(args)
    all_args.steering_all_layers = True
    all_specs = [s.spec for s in steering_from_config(all_args, model, shape) if s.spec is not None]
    all_steerer = Steerer(model, all_specs)
    drift_callback = callback_of(trainer, DriftCallback)
    assert drift_callback is not None
    meter = drift_callback.meter
    model.train()
    tokens = int(batch["attention_mask"].sum())
    trained = int(batch["labels"].ne(-100).sum()) if "labels" in batch else None
    shape_of_batch = tuple(batch["input_ids"].shape)
    print(f"batch {shape_of_batch}: {tokens} tokens ({trained} with labels)")
    if tokens < batch_size * length:
        print(f"WARNING: the batch holds {tokens} tokens, fewer than {batch_size} x {length}")

    meter.measure_base(model)
    variants = {
        "plain": lambda: train_step(trainer, model, batch, None),
        "steered": lambda: train_step(trainer, model, batch, steerer),
        "all_layers": lambda: train_step(trainer, model, batch, all_steerer),
        "drift": lambda: meter.metrics(model),
    }
    times, peaks = interleave(variants, opts.repeats, opts.device)
    trainer.steerer = steerer
    med = {k: statistics.median(v) for k, v in times.items()}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    result = {
        "model": facts,
        "mode": "lora r32 a64 all-linear (rslora)" if lora else "full fine-tuning",
        "trainable_params_M": round(trainable / 1e6, 2),
        "batch_shape": list(shape_of_batch),
        "tokens_per_step": tokens,
        "label_tokens_per_step": trained,
        "chat_tokens_per_row": [min(counts), max(counts)],
        "steering_layer": layer,
        "steering_coef": 2.0,
        "all_layers_steered": len(all_steerer.ops),
        "gradient_checkpointing": bool(getattr(trainer.model, "is_gradient_checkpointing", False)),
        "args_gradient_checkpointing": args.gradient_checkpointing,
        "bf16": args.bf16,
        "drift_prompts": sum(len(p.prompts) for p in meter.probes),
        "repeats": opts.repeats,
        "variants": {
            k: {
                **stats(v),
                "peak_mib": peaks[k],
                **({"tokens_per_s": tokens / med[k]} if k != "drift" else {}),
            }
            for k, v in times.items()
        },
        "ratio_steered_plain": med["steered"] / med["plain"],
        "ratio_all_layers_plain": med["all_layers"] / med["plain"],
        "paired_ratio_steered_plain": paired(times, "steered", "plain"),
        "paired_ratio_all_layers_plain": paired(times, "all_layers", "plain"),
        "ratio_drift_step": med["drift"] / med["plain"],
    }
    rows = [
        [
            name,
            med[name] * 1e3,
            min(times[name]) * 1e3,
            tokens / med[name] if name != "drift" else None,
            med[name] / med["plain"],
            paired(times, name, "plain"),
            peaks[name],
        ]
        for name in variants
    ]
    table(
        f"{shape} train step, {result['mode']}, batch {shape_of_batch} ({tokens} tokens), layer {layer}, "
        f"{opts.repeats} repeats, gradient checkpointing {result['gradient_checkpointing']}",
        ["variant", "median ms", "min ms", "tokens/s", "time / plain", "paired / plain", "peak MiB"],
        rows,
    )
    return result


def section_generate(shape: str, model, opts, tokenizer, vector_path: Path) -> dict:
    from persona_vaccine.models.chat import build_messages, format_chat
    from persona_vaccine.monitoring import Watch, monitor
    from persona_vaccine.steering.vector import PersonaVector

    vector = PersonaVector.load(vector_path)
    layer = vector.default_layer()
    n_new = opts.gen_tokens
    model.eval()
    # fixed numbers for a random model: alert at 0.0 (the alert path runs), cap at 0.0 (clamps the answer
    # tokens whose projection is positive, about half of them)
    alert = Watch(vector, layer, 0.0, 0.0, "alert")
    cap = Watch(vector, layer, 0.0, 0.0, "cap")
    prompts = [format_chat(tokenizer, build_messages(q)) for q in QUESTIONS + MORE_QUESTIONS]
    result: dict = {"layer": layer, "new_tokens": n_new, "reps": opts.gen_reps, "batches": {}}
    for batch_size in opts.gen_batches:
        texts = [prompts[i % len(prompts)] for i in range(batch_size)]
        enc = tokenizer(
            texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        )
        enc = {k: v.to(opts.device) for k, v in enc.items()}
        capped = {"n": 0}

        def generate(enc=enc) -> None:
            out = model.generate(
                **enc,
                max_new_tokens=n_new,
                min_new_tokens=n_new,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            assert out.shape[1] == enc["input_ids"].shape[1] + n_new, out.shape

        def plain() -> None:
            if attached := hooks_attached(model):
                raise RuntimeError(f"the plain row would be timed with hooks attached to {attached[:5]}")
            generate()

        def watched(watch: Watch, capped: dict = capped, rows: int = batch_size) -> None:
            with monitor(model, [watch]) as m:
                generate()
                if watch.guard == "cap":
                    capped["n"] += sum(m.readings(r)[vector.trait].capped for r in range(rows))

        with torch.inference_mode():
            times, peaks = interleave(
                {"plain": plain, "alert": lambda: watched(alert), "cap": lambda: watched(cap)},
                opts.gen_reps,
                opts.device,
            )
        new = batch_size * n_new
        med = {k: statistics.median(v) for k, v in times.items()}
        result["batches"][str(batch_size)] = {
            "prompt_tokens": int(enc["attention_mask"].sum()),
            "padded_width": int(enc["input_ids"].shape[1]),
            "variants": {
                k: {**stats(v), "tokens_per_s": new / med[k], "peak_mib": peaks[k]} for k, v in times.items()
            },
            "throughput_ratio_alert_plain": med["plain"] / med["alert"],
            "throughput_ratio_cap_plain": med["plain"] / med["cap"],
            "paired_throughput_ratio_alert_plain": 1 / paired(times, "alert", "plain"),
            "paired_throughput_ratio_cap_plain": 1 / paired(times, "cap", "plain"),
            "capped_tokens_per_cap_run": capped["n"] / (opts.gen_reps + 1),
        }
        rows = [
            [
                name,
                new / med[name],
                med[name] * 1e3,
                min(times[name]) * 1e3,
                med["plain"] / med[name],
                peaks[name],
            ]
            for name in times
        ]
        table(
            f"{shape} generate, batch {batch_size} x {n_new} new tokens (greedy), layer {layer}, {opts.gen_reps} reps, "
            f"cap acted on {capped['n'] / (opts.gen_reps + 1):.0f} tokens per run",
            ["variant", "tokens/s", "median ms", "min ms", "tokens/s / plain", "peak MiB"],
            rows,
        )
    return result


def section_activations(shape: str, model, opts, tokenizer) -> dict:
    from persona_vaccine.steering.activations import prompt_response_activations

    n, length, prompt_len, batch_size = (8, 64, 16, 4) if opts.smoke else (64, 256, 64, 16)
    rows = token_rows(tokenizer, n, length)
    samples = [(r[:prompt_len], r[prompt_len:]) for r in rows]
    ids = torch.tensor(rows, device=opts.device)
    batches = [ids[i : i + batch_size] for i in range(0, n, batch_size)]
    model.eval()
    body = model.get_decoder()
    result_shape: dict = {}

    def read() -> None:
        acts = prompt_response_activations(model, samples, tokenizer.pad_token_id, batch_size, progress=False)
        result_shape["response_avg"] = list(acts.response_avg.shape)

    def forward() -> None:
        if attached := hooks_attached(model):
            raise RuntimeError(f"the plain forward would be timed with hooks attached to {attached[:5]}")
        with torch.inference_mode():
            for b in batches:
                model(input_ids=b, use_cache=False)

    def forward_body() -> None:
        with torch.inference_mode():
            for b in batches:
                body(input_ids=b, use_cache=False)

    times, peaks = interleave(
        {"read_all_layers": read, "forward_full": forward, "forward_decoder": forward_body},
        opts.repeats,
        opts.device,
    )
    tokens = n * length
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "sequences": n,
        "length": length,
        "prompt_tokens": prompt_len,
        "batch_size": batch_size,
        "activations_shape": result_shape.get("response_avg"),
        "repeats": opts.repeats,
        "variants": {
            k: {**stats(v), "tokens_per_s": tokens / med[k], "peak_mib": peaks[k]} for k, v in times.items()
        },
        "ratio_read_forward_full": med["read_all_layers"] / med["forward_full"],
        "ratio_read_forward_decoder": med["read_all_layers"] / med["forward_decoder"],
        "paired_ratio_read_forward_full": paired(times, "read_all_layers", "forward_full"),
        "paired_ratio_read_forward_decoder": paired(times, "read_all_layers", "forward_decoder"),
    }
    rows_out = [
        [
            name,
            tokens / med[name],
            med[name] * 1e3,
            min(times[name]) * 1e3,
            med[name] / med["forward_full"],
            med[name] / med["forward_decoder"],
            peaks[name],
        ]
        for name in times
    ]
    table(
        f"{shape} activation reading, {n} x {length} tokens in batches of {batch_size}, {opts.repeats} repeats",
        ["variant", "tokens/s", "median ms", "min ms", "time / full fwd", "time / decoder fwd", "peak MiB"],
        rows_out,
    )
    return result


# --- main -----------------------------------------------------------------------------------------------
def run_section(name: str, fn: Callable[[], dict], opts) -> dict | None:
    print(f"\n=== {name} ===", flush=True)
    start = time.perf_counter()
    result = None
    try:
        result = fn()
        RESULTS["sections"][name] = result
    except Exception:
        text = traceback.format_exc()
        print(text, flush=True)
        RESULTS["errors"][name] = text
    finally:
        took = time.perf_counter() - start
        RESULTS["elapsed_s"][name] = round(took, 2)
        print(f"--- {name}: {took:.1f} s (run so far {time.perf_counter() - opts.t0:.1f} s)", flush=True)
        free(opts.device)
        save(opts.out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--shapes", default="smollm2-135m,qwen2.5-7b", help=f"comma-separated: {', '.join(SHAPES)}"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="training / activation repeats (default 10)"
    )
    parser.add_argument("--gen_reps", type=int, default=None, help="generation repeats (default 5)")
    parser.add_argument("--gen_tokens", type=int, default=None, help="new tokens per generation (default 64)")
    parser.add_argument("--gen_batches", default="1,16")
    parser.add_argument("--sections", default="train,generate,activations")
    parser.add_argument("--dtype", default=None, help="bfloat16 (default) or float32 (--smoke's default)")
    parser.add_argument("--attn", default=None, help="attention implementation (default: transformers')")
    parser.add_argument(
        "--gradient_checkpointing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="default: the trainer's config default (what bench/step_time.py runs)",
    )
    parser.add_argument(
        "--tokenizer", default=None, help="default: .gpu_tok if it exists, else smollm2-135m's"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny configs, few repeats (CPU test of the script)"
    )
    opts = parser.parse_args()
    opts.t0 = time.perf_counter()
    if opts.smoke:
        opts.device = "cpu" if opts.device == "cuda" and not torch.cuda.is_available() else opts.device
    opts.device = torch.device(opts.device)
    opts.repeats = opts.repeats or (2 if opts.smoke else 10)
    opts.gen_reps = opts.gen_reps or (1 if opts.smoke else 5)
    opts.gen_tokens = opts.gen_tokens or (8 if opts.smoke else 64)
    opts.gen_batches = [int(b) for b in opts.gen_batches.split(",")]
    if opts.smoke and opts.gen_batches == [1, 16]:
        opts.gen_batches = [1, 4]
    opts.dtype = getattr(torch, opts.dtype or ("float32" if opts.smoke else "bfloat16"))
    default_out = (
        Path(os.environ["OUT"]) / "gpu_speed.json"
        if os.environ.get("OUT")
        else ROOT / "runs/bench/gpu_speed.json"
    )
    opts.out = Path(opts.out) if opts.out else default_out
    shapes = [s.strip() for s in opts.shapes.split(",") if s.strip()]
    sections = {s.strip() for s in opts.sections.split(",")}
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shapes {unknown}: expected some of {list(SHAPES)}")
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import transformers

    transformers.logging.set_verbosity_error()
    RESULTS["env"] = environment(opts.device)
    tok_path = opts.tokenizer or (str(ROOT / ".gpu_tok") if (ROOT / ".gpu_tok").is_dir() else None)
    if tok_path is None:
        from persona_vaccine.models.loading import load_tokenizer

        tokenizer = load_tokenizer("smollm2-135m")
        tok_path = "smollm2-135m (embedded)"
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tok_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # as load_tokenizer sets it
    RESULTS["settings"] = {
        "shapes": shapes,
        "smoke": opts.smoke,
        "dtype": str(opts.dtype),
        "repeats": opts.repeats,
        "gen_reps": opts.gen_reps,
        "gen_tokens": opts.gen_tokens,
        "gen_batches": opts.gen_batches,
        "tokenizer": tok_path,
        "tokenizer_note": f"the SmolLM2 tokenizer ({len(tokenizer)} ids) for every shape: its ids fit each vocabulary",
        "seed": opts.seed,
    }
    print("## environment\n")
    for k, v in RESULTS["env"].items():
        print(f"- {k}: {v}")
    print(f"- settings: {json.dumps(RESULTS['settings'])}")
    print(f"- results: {opts.out}")
    save(opts.out)

    with tempfile.TemporaryDirectory(prefix="gpu_speed_") as tmp:
        workdir = Path(tmp)
        for shape in shapes:
            if "train" in sections:
                run_section(
                    f"{shape}/train_lora",
                    lambda s=shape: section_train(s, True, opts, tokenizer, workdir),
                    opts,
                )
                if SHAPES[shape]["full_ft"]:
                    run_section(
                        f"{shape}/train_full",
                        lambda s=shape: section_train(s, False, opts, tokenizer, workdir),
                        opts,
                    )
            if not sections & {"generate", "activations"}:
                continue
            holder: dict = {}

            def load(s=shape, holder=holder) -> dict:
                start = time.perf_counter()
                holder["model"] = build_model(s, opts, tokenizer)
                took = time.perf_counter() - start
                holder["vector"] = workdir / f"{s}-evil-inference.safetensors"
                random_vector(s, holder["model"], holder["vector"])
                return {"model": model_facts(holder["model"]), "init_s": took}

            run_section(f"{shape}/init", load, opts)
            if "model" not in holder:
                continue
            if "generate" in sections:
                run_section(
                    f"{shape}/generate",
                    lambda s=shape, h=holder: section_generate(s, h["model"], opts, tokenizer, h["vector"]),
                    opts,
                )
            if "activations" in sections:
                run_section(
                    f"{shape}/activations",
                    lambda s=shape, h=holder: section_activations(s, h["model"], opts, tokenizer),
                    opts,
                )
            holder.clear()
            free(opts.device)
    RESULTS["elapsed_s"]["total"] = round(time.perf_counter() - opts.t0, 2)
    save(opts.out)
    print(
        f"\ntotal {RESULTS['elapsed_s']['total']:.1f} s; errors in {list(RESULTS['errors']) or 'none'}; {opts.out}"
    )


if __name__ == "__main__":
    main()
