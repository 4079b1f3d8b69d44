"""Benchmark: our activation capture against the reference scripts' way, on the same responses, in one run.

    python bench/activation_capture.py [--n 200] [--batch_size 16] [--chunks 4] [--reference both] [--threads N]

Both read the residual stream at every layer and all three positions (response average, prompt
average, last prompt token) of the extraction responses in
runs/vectors/smollm2-135m/evil/generations.jsonl, with the embedded model in fp32:

- ours: `steering.activations.prompt_response_activations` over the stored (prompt_ids, response_ids),
  batched, in fp32 (and, with --ablation, the same reusing shared prompt prefixes through a KV cache;
  with --bf16, the same on a bf16 copy of the model);
- reference: persona_vectors' `generate_vec.get_hidden_p_and_r`, one sample at a time: re-tokenise
  prompt + response text, `model(**inputs, output_hidden_states=True)`, then slice every hidden state.
  "script" runs it as the script does (autograd on); "no_grad" adds `torch.no_grad()`, a fairer baseline.

The samples are split into `--chunks` contiguous chunks (in file order, so prompts that share a
system prompt stay together, as in a real extraction) and the methods run chunk by chunk in rotating
order, so that other load on the machine hits them alike. Then each method's difference-of-means
vector (pos mean - neg mean) is compared with ours, per layer and position. In transformers the last
entry of `hidden_states` is taken after the final norm, so the reference's last layer is not a block
output: the min cosine is over layers 1..L-1 and the last layer is shown apart. No timed assertions.

If the generations file is missing, a small set (5 instruction pairs x 4 questions x 2 polarities, 64
new tokens) is generated into runs/bench/activation_capture with `steering.extract.generate_responses` first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persona_vaccine.models.loading import load_model  # noqa: E402
from persona_vaccine.paths import DEMO_VECTOR_DIR  # noqa: E402
from persona_vaccine.steering.activations import prompt_response_activations  # noqa: E402
from persona_vaccine.steering.answers import AnswerRecord  # noqa: E402

POSITIONS = ("response_avg", "prompt_avg", "prompt_last")
GENERATIONS = Path(DEMO_VECTOR_DIR) / "evil" / "generations.jsonl"

Capture = dict[str, torch.Tensor]  # position -> [N, L, H], index 0 along L is layer 1


def load_records(path: Path, model, tokenizer) -> list[AnswerRecord]:
    """The extraction generations; generated (a small set) when the file is missing."""
    if not path.is_file():
        missing = path
        from persona_vaccine.steering.extract import ExtractionConfig, generate_responses
        from persona_vaccine.traits import load_trait_spec

        cfg = ExtractionConfig(output_dir="runs/bench/activation_capture", max_questions=4, max_new_tokens=64)
        path = cfg.trait_dir("evil") / "generations.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"{missing} is missing: generating a small set into {path}")
        return generate_responses(model, tokenizer, load_trait_spec("evil"), cfg, path)
    return [
        AnswerRecord.from_json(json.loads(line)) for line in path.read_text().splitlines() if line.strip()
    ]


def select(records: list[AnswerRecord], n: int) -> tuple[list[AnswerRecord], int]:
    """Up to n records, half pos then half neg; returns them and the number of pos ones."""
    pos = [r for r in records if r.polarity == "pos"]
    neg = [r for r in records if r.polarity == "neg"]
    n_pos = min(len(pos), max(n // 2, n - len(neg)))
    n_neg = min(len(neg), n - n_pos)
    return pos[:n_pos] + neg[:n_neg], n_pos


def ours(share_prefix: bool, other_model=None) -> Callable[..., Capture]:
    """Batched capture over the stored token ids, with or without running shared prompt prefixes once
    (on `other_model`, e.g. a bf16 copy, when given)."""

    def run(model, tokenizer, records: list[AnswerRecord], batch_size: int) -> Capture:
        pairs = [(r.prompt_ids, r.response_ids) for r in records]
        acts = prompt_response_activations(
            other_model or model,
            pairs,
            tokenizer.pad_token_id,
            batch_size,
            progress=False,
            share_prefix=share_prefix,
        )
        return {position: acts.at(position) for position in POSITIONS}

    return run


def get_hidden_p_and_r(model, tokenizer, prompts: list[str], responses: list[str]) -> Capture:
    """persona_vectors' generate_vec.get_hidden_p_and_r: one sample at a time over re-tokenised text."""
    max_layer = model.config.num_hidden_layers
    layer_list = list(range(max_layer + 1))
    prompt_avg: list[list[torch.Tensor]] = [[] for _ in range(max_layer + 1)]
    response_avg: list[list[torch.Tensor]] = [[] for _ in range(max_layer + 1)]
    prompt_last: list[list[torch.Tensor]] = [[] for _ in range(max_layer + 1)]
    texts = [p + a for p, a in zip(prompts, responses, strict=True)]
    for text, prompt in zip(texts, prompts, strict=True):
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
        prompt_len = len(tokenizer.encode(prompt, add_special_tokens=False))
        outputs = model(**inputs, output_hidden_states=True)
        for layer in layer_list:
            hidden = outputs.hidden_states[layer]
            prompt_avg[layer].append(hidden[:, :prompt_len, :].mean(dim=1).detach().cpu())
            response_avg[layer].append(hidden[:, prompt_len:, :].mean(dim=1).detach().cpu())
            prompt_last[layer].append(hidden[:, prompt_len - 1, :].detach().cpu())
        del outputs
    # [N, L, H] over layers 1..L (hidden_states[0] is the embeddings)
    return {
        name: torch.stack([torch.cat(reads[layer]) for layer in layer_list[1:]], dim=1)
        for name, reads in (
            ("response_avg", response_avg),
            ("prompt_avg", prompt_avg),
            ("prompt_last", prompt_last),
        )
    }


def reference(grad: bool) -> Callable[..., Capture]:
    """The reference capture, with autograd on (as the script runs it) or under torch.no_grad()."""

    def run(model, tokenizer, records: list[AnswerRecord], batch_size: int) -> Capture:
        prompts, responses = [r.prompt for r in records], [r.response for r in records]
        with torch.set_grad_enabled(grad):
            return get_hidden_p_and_r(model, tokenizer, prompts, responses)

    return run


def diff_of_means(capture: Capture, n_pos: int) -> Capture:
    return {p: a[:n_pos].mean(0) - a[n_pos:].mean(0) for p, a in capture.items()}  # [L, H]


def layer_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)  # [L]


def _max_rel_diff(a: Capture, b: Capture, rows: torch.Tensor) -> float:
    """Largest |a - b| / |b| over the given samples, layers 1..L-1 and positions."""
    return max(
        float(((a[p][rows, :-1] - b[p][rows, :-1]).norm(dim=-1) / b[p][rows, :-1].norm(dim=-1)).max())
        for p in POSITIONS
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="samples (half pos, half neg); default 200")
    parser.add_argument("--batch_size", type=int, default=16, help="our capture's batch size")
    parser.add_argument("--chunks", type=int, default=4, help="interleaved chunks (rotating method order)")
    parser.add_argument("--reference", choices=("script", "no_grad", "both"), default="both")
    parser.add_argument("--generations", type=Path, default=GENERATIONS)
    parser.add_argument(
        "--ablation", action=argparse.BooleanOptionalAction, default=True, help="also time share_prefix=True"
    )
    parser.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=True, help="also time ours on a bf16 copy"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)

    from rich.console import Console
    from rich.table import Table

    model, tokenizer = load_model("smollm2-135m", dtype="float32")
    model.eval()
    records, n_pos = select(load_records(opts.generations, model, tokenizer), opts.n)
    n = len(records)
    same_ids = [
        tokenizer(r.prompt + r.response, add_special_tokens=False)["input_ids"]
        == r.prompt_ids + r.response_ids
        and len(tokenizer.encode(r.prompt, add_special_tokens=False)) == len(r.prompt_ids)
        for r in records
    ]
    tokens = sum(len(r.prompt_ids) + len(r.response_ids) for r in records)

    # short name -> (table label, capture)
    methods: dict[str, tuple[str, Callable[..., Capture]]] = {
        "ours": (f"ours: batch {opts.batch_size}, stored ids", ours(False))
    }
    if opts.ablation:
        methods["ours, prefix reuse"] = ("ours, share_prefix=True", ours(True))
    if opts.bf16:
        import copy

        bf16_model = copy.deepcopy(model).to(torch.bfloat16).eval()
        methods["ours bf16"] = (f"ours in bf16: batch {opts.batch_size}", ours(False, bf16_model))
    if opts.reference in ("script", "both"):
        methods["reference"] = (
            "reference: 1 at a time, re-tokenised, autograd on (as the script)",
            reference(True),
        )
    if opts.reference in ("no_grad", "both"):
        methods["reference no_grad"] = (
            "reference: 1 at a time, re-tokenised, torch.no_grad",
            reference(False),
        )

    for _, method in methods.values():  # warm-up (first-call overheads), untimed
        method(model, tokenizer, records[:1] + records[-1:], opts.batch_size)

    bounds = [k * n // opts.chunks for k in range(opts.chunks + 1)]
    chunks = [list(range(a, b)) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    wall = dict.fromkeys(methods, 0.0)
    cpu = dict.fromkeys(methods, 0.0)
    parts: dict[str, list[tuple[list[int], Capture]]] = {name: [] for name in methods}
    load_before = os.getloadavg()
    names = list(methods)
    for k, chunk in enumerate(chunks):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            capture = methods[name][1](model, tokenizer, [records[i] for i in chunk], opts.batch_size)
            wall[name] += time.perf_counter() - start_wall
            cpu[name] += time.process_time() - start_cpu
            parts[name].append((chunk, capture))
    load_after = os.getloadavg()

    vectors, captures = {}, {}
    for name, pieces in parts.items():
        capture = {}
        for position in POSITIONS:
            first = pieces[0][1][position]
            full = torch.empty(n, *first.shape[1:])
            for chunk, piece in pieces:
                full[chunk] = piece[position]
            capture[position] = full
        vectors[name] = diff_of_means(capture, n_pos)
        captures[name] = capture

    base = names[0]
    n_layers = vectors[base]["response_avg"].shape[0]
    table = Table(
        title=(
            f"Activation capture, smollm2-135m fp32 on CPU, {n} samples ({n_pos} pos), {tokens} tokens, "
            f"{len(chunks)} interleaved chunks, torch threads {torch.get_num_threads()}"
        )
    )
    for column in ("method", "samples", "wall s", "CPU s", "samples/s", "speed-up of ours"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for position in POSITIONS:
        table.add_column(f"min cos {position}\nL1-{n_layers - 1} (L{n_layers})", justify="right")
    for name in names:
        row = [
            methods[name][0],
            str(n),
            f"{wall[name]:.1f}",
            f"{cpu[name]:.1f}",
            f"{n / wall[name]:.2f}",
            f"{wall[name] / wall[base]:.2f}x",
        ]
        for position in POSITIONS:
            if name == base:
                row.append("-")
                continue
            cos = layer_cosines(vectors[name][position], vectors[base][position])
            row.append(f"{float(cos[:-1].min()):.6f} ({float(cos[-1]):.4f})")
        table.add_row(*row)
    same = torch.tensor(same_ids)
    per_sample = ", ".join(
        f"{name} {_max_rel_diff(captures[name], captures[base], same):.1e}" for name in names[1:]
    )
    console = Console(width=200)
    console.print(table)
    console.print(
        f"speed-up = this method's wall time / ours. cosine: difference-of-means vectors of that method vs "
        f"ours, per layer; the reference's layer {n_layers} is hidden_states[{n_layers}], taken after the "
        f"final norm.\nre-tokenised text differs from the stored ids in {n - sum(same_ids)} of {n} samples; on the "
        f"{sum(same_ids)} others, the largest per-sample relative difference from ours (layers 1-{n_layers - 1}, "
        f"all positions): {per_sample}.\n"
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
        f"({os.cpu_count()} CPUs)."
    )


if __name__ == "__main__":
    main()
