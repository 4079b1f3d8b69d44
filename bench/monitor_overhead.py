"""Cost of persona monitoring on the embedded model, and the server under 8 concurrent streaming clients.

python bench/monitor_overhead.py [--vector runs/vectors/smollm2-135m/evil/response_avg.safetensors]

Prints: generation tokens/s with the monitor (alert only) over without (target >= 0.97), with the cap
guard over without (target >= 0.95), these three timed with no server engine alive (the bench aborts if
any module of the model carries a hook when the plain row starts); and for the server with 8 concurrent
streaming clients on 127.0.0.1: throughput over direct generate, p50/p95 latency, requests lost or mixed
up (must be 0).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import time

import torch
from questions import QUESTIONS

from persona_vaccine.models.chat import format_chat
from persona_vaccine.models.loading import load_model
from persona_vaccine.monitoring import Watch, monitor
from persona_vaccine.monitoring.engine import Engine
from persona_vaccine.monitoring.server import create_app, serve_in_thread
from persona_vaccine.monitoring.thresholds import thresholds_for
from persona_vaccine.paths import DEMO_VECTOR
from persona_vaccine.steering.vector import PersonaVector, vector_for_model


def _direct(model, tokenizer, ids: list[int], n: int) -> list[int]:
    out = model.generate(
        input_ids=torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
    )
    return out[0, len(ids) :].tolist()


def hooks_attached(model) -> list[str]:
    """Every module of `model` that carries a forward or forward-pre hook (none may, for the plain row)."""
    return [
        name or "(model)"
        for name, module in model.named_modules()
        if module._forward_hooks or module._forward_pre_hooks
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--vector", default=DEMO_VECTOR)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--clients", type=int, default=8)
    opts = p.parse_args()
    torch.manual_seed(0)
    model, tokenizer = load_model(opts.model)
    model.eval()
    vector = PersonaVector.load(opts.vector)
    # The layer and thresholds the server's engine would use, computed without an engine: an Engine keeps
    # the monitor's hooks attached from its constructor to close(), so none may be alive while the
    # plain, alert and cap rows are timed.
    vector_for_model(vector, model, opts.model, source=str(opts.vector))
    layer = vector.default_layer()
    thresholds = thresholds_for(model, tokenizer, vector, layer, opts.vector)
    prompts = [
        tokenizer(format_chat(tokenizer, [{"role": "user", "content": q}]), add_special_tokens=False)[
            "input_ids"
        ]
        for q in QUESTIONS
    ]
    alert = Watch(vector, layer, thresholds.prompt, thresholds.response, "alert")
    cap = Watch(vector, layer, thresholds.prompt, thresholds.response, "cap")
    modes = ["plain", "alert", "cap"]
    seconds = dict.fromkeys(modes, 0.0)
    ratios: dict[str, list[float]] = {"alert": [], "cap": []}  # plain time / mode time, per prompt and rep
    capped = 0
    with torch.inference_mode():
        _direct(model, tokenizer, prompts[0], 4)  # warm-up
        # Interleaved per prompt, the order rotating, so that load from other processes hits every mode
        # alike; the ratios are the medians of the paired per-prompt ratios.
        for rep in range(opts.reps):
            for i, ids in enumerate(prompts):
                k = (rep * len(prompts) + i) % len(modes)
                took = {}
                for mode in modes[k:] + modes[:k]:
                    if mode == "plain" and (attached := hooks_attached(model)):
                        sys.exit(f"the plain row would be timed with hooks attached to {attached}: aborted")
                    start = time.perf_counter()
                    if mode == "plain":
                        _direct(model, tokenizer, ids, opts.tokens)
                    else:
                        with monitor(model, [alert if mode == "alert" else cap]) as m:
                            _direct(model, tokenizer, ids, opts.tokens)
                            capped += m.readings()[vector.trait].capped if mode == "cap" else 0
                    took[mode] = time.perf_counter() - start
                    seconds[mode] += took[mode]
                for mode in ratios:
                    ratios[mode].append(took["plain"] / took[mode])
    n_tokens = opts.reps * len(prompts) * opts.tokens
    rate = {k: n_tokens / v for k, v in seconds.items()}
    paired = {k: statistics.median(v) for k, v in ratios.items()}
    spread = {k: (min(v), max(v)) for k, v in ratios.items()}

    # the server: references first (each request alone, direct generate under the monitor)
    reference = {}
    with torch.inference_mode(), monitor(model, [Watch(vector, layer)]) as m:
        start = time.perf_counter()
        for q, ids in zip(QUESTIONS, prompts, strict=True):
            answer = _direct(model, tokenizer, ids, opts.tokens)
            reference[q] = (
                tokenizer.decode(answer, skip_special_tokens=True),
                list(m.readings()[vector.trait].tokens),
            )
        direct_rate = len(prompts) * opts.tokens / (time.perf_counter() - start)
    import openai

    def ask(url: str, q: str):
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=600)
        started = time.perf_counter()
        stream = client.chat.completions.create(
            model=opts.model,
            messages=[{"role": "user", "content": q}],
            max_tokens=opts.tokens,
            temperature=0,
            stream=True,
            extra_body={"min_tokens": opts.tokens},
        )
        chunks = list(stream)
        latency = time.perf_counter() - started
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        final = chunks[-1].model_extra.get("persona", {}) if chunks else {}
        return q, latency, text, final.get("traits", {}).get(vector.trait, {}).get("tokens"), chunks[-1].usage

    # the engine (its worker holds the monitor's hooks until close()) only now, after every direct timing
    engine = Engine(
        model,
        tokenizer,
        [(vector, opts.vector)],
        {vector.trait: "alert"},
        {vector.trait: (thresholds.prompt, thresholds.response)},  # as calibrated above, not twice
        model_name=opts.model,
    )
    if engine.traits[vector.trait].layer != layer:
        sys.exit(f"the engine reads layer {engine.traits[vector.trait].layer}, the direct timings {layer}")
    app = create_app(engine)
    results, lost = [], 0
    with serve_in_thread(app) as url:
        ask(url, QUESTIONS[0])  # warm-up
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(opts.clients) as pool:
            futures = [pool.submit(ask, url, QUESTIONS[i % len(QUESTIONS)]) for i in range(opts.clients)]
            for f in futures:
                try:
                    results.append(f.result())
                except Exception as e:
                    print(f"request failed: {e}")
                    lost += 1
        wall = time.perf_counter() - start
    engine.close()
    mixed = 0
    for q, _, text, tokens, _usage in results:
        ref_text, ref_tokens = reference[q]
        same = tokens is not None and len(tokens) == len(ref_tokens)
        same = same and all(abs(a - b) < 1e-4 for a, b in zip(tokens, ref_tokens, strict=True))
        if text != ref_text or not same:
            mixed += 1
    completion = sum(u.completion_tokens for *_, u in results if u is not None)
    latencies = sorted(r[1] for r in results)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]

    print(
        f"model {opts.model} (fp32, CPU threads {torch.get_num_threads()}), vector {vector.trait} layer {layer}, "
        f"{len(prompts)} prompts x {opts.tokens} new tokens x {opts.reps} reps (interleaved per prompt)"
    )
    print("| measurement | value | target |")
    print("|---|---|---|")
    print(f"| generate tokens/s, no monitor | {rate['plain']:.1f} | |")
    print(f"| generate tokens/s, monitor (alert only) | {rate['alert']:.1f} | |")
    print(f"| generate tokens/s, monitor + cap ({capped} tokens capped) | {rate['cap']:.1f} | |")
    print(
        f"| monitor / none, median of {len(ratios['alert'])} paired ratios (range {spread['alert'][0]:.3f}-"
        f"{spread['alert'][1]:.3f}) | {paired['alert']:.3f} | >= 0.97 |"
    )
    print(
        f"| cap / none, median of {len(ratios['cap'])} paired ratios (range {spread['cap'][0]:.3f}-"
        f"{spread['cap'][1]:.3f}) | {paired['cap']:.3f} | >= 0.95 |"
    )
    print(f"| server, {opts.clients} concurrent streaming clients: tokens/s | {completion / wall:.1f} | |")
    print(
        f"| server throughput / direct generate ({direct_rate:.1f} tokens/s) | {completion / wall / direct_rate:.3f} | |"
    )
    print(f"| server latency p50 / p95 (s) | {statistics.median(latencies):.2f} / {p95:.2f} | |")
    print(f"| requests lost / mixed up | {lost} / {mixed} | 0 / 0 |")


if __name__ == "__main__":
    main()
