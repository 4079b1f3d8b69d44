"""Serving throughput on the embedded model, side by side in one run: plain vLLM, vLLM with the persona
hooks (alert only, cap, per-request steering), our server on vLLM and our server on Hugging Face.

Each configuration is a real server on 127.0.0.1 (vLLM's own OpenAI server for the first four, started
once without the hooks and once with them; `persona-vaccine serve` for ours) answering 16 concurrent
streaming clients through the official `openai` client, every answer forced to `--tokens` tokens.

    python bench/engine_throughput.py [--clients 16 --tokens 64]

Every configuration runs in float32 except the last vLLM one (bfloat16, vLLM's usual dtype; the
Hugging Face engine on CPU is slower in bf16 than in fp32). Prints tokens/s, p50/p95 latency, each configuration's ratio to its reference, and requests lost or
mixed up (a request is mixed up when its early-warning reading differs from the same prompt's reading
when it runs alone).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import torch
from questions import QUESTIONS

ROOT = Path(__file__).resolve().parents[1]
LAYER = 15


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(cmd: list[str], health: str, env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen([*cmd, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {' '.join(cmd)}\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + health, timeout=2).status_code == 200:
                    break
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def load(
    url: str, model: str, clients: int, tokens: int, extra: dict | None, persona: bool, first: int = 0
) -> dict:
    """`clients` concurrent streaming requests (questions from `first` on); tokens/s, latencies, and each
    one's early warning."""

    def one(i: int) -> tuple[float, int, float | None]:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
        start = time.perf_counter()
        stream = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
            max_tokens=tokens,
            temperature=0.7,
            seed=i,
            stream=True,
            extra_body={"min_tokens": tokens, **(extra or {})},
        )
        n, early = 0, None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content is not None:
                n += 1
            info = (chunk.model_extra or {}).get("persona") or {}
            if persona and info.get("position") == 0:
                early = info["projections"]["evil"]
        return time.perf_counter() - start, n, early

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(first, first + clients)))
    wall = time.perf_counter() - start
    latencies = sorted(r[0] for r in results)
    return {
        "tokens_per_s": sum(r[1] for r in results) / wall,
        "p50": statistics.median(latencies),
        "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        "lost": sum(r[1] < tokens - 1 for r in results),
        "early": [r[2] for r in results],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()

    from persona_vaccine.models.loading import resolve_model_path
    from persona_vaccine.steering.vector import PersonaVector
    from persona_vaccine.vllm_request import PersonaRequest, SteerSpec, WatchSpec

    model_path = resolve_model_path("smollm2-135m")
    tmp = Path(tempfile.mkdtemp(prefix="engine-bench-"))
    g = torch.Generator().manual_seed(0)
    vector = PersonaVector(
        "evil", "smollm2-135m", 576, 30, {n: torch.randn(576, generator=g) for n in range(1, 31)}
    )
    vec = str(vector.save(tmp / "evil.safetensors"))
    base_env = {**os.environ, "VLLM_USE_V2_MODEL_RUNNER": "0"}
    vllm_cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_path,
        "--served-model-name", "smol", "--host", "127.0.0.1", "--enforce-eager", "--dtype", "float32",
        "--max-model-len", "1024", "--gpu-memory-utilization", "0.2", "--no-enable-prefix-caching",
    ]  # fmt: skip
    ours = [
        sys.executable, str(ROOT / "launch.py"), "serve", "--model", "smollm2-135m", "--served_model_name",
        "smol", "--vectors", vec, "--threshold", "evil=1e9", "--max_tokens_limit", "512",
    ]  # fmt: skip
    watch = PersonaRequest("bench", watch=(WatchSpec(vec, LAYER, 1e9, 1e9),)).to_extra_args()
    cap = PersonaRequest("bench", watch=(WatchSpec(vec, LAYER, guard="cap", cap=0.0),)).to_extra_args()
    steer = PersonaRequest("bench", steer=(SteerSpec(vec, LAYER, 2.0),)).to_extra_args()
    rows: dict[str, list[dict]] = {}

    def run(name: str, url: str, extra: dict | None = None, persona: bool = False) -> None:
        load(url, "smol", 2, 4, extra, persona)  # warm-up
        if persona:  # each question alone: the early warnings a mixed-up request would not match
            alone = [load(url, "smol", 1, 2, None, True, first=i)["early"][0] for i in range(len(QUESTIONS))]
        result = load(url, "smol", args.clients, args.tokens, extra, persona)
        if persona:
            result["mixed"] = sum(
                e is None or abs(e - alone[i % len(QUESTIONS)]) > 1e-3 * max(1.0, abs(e))
                for i, e in enumerate(result["early"])
            )
        rows.setdefault(name, []).append(result)
        print(
            f"{name:34s} {result['tokens_per_s']:7.1f} tok/s  p50 {result['p50']:6.2f} s  "
            f"p95 {result['p95']:6.2f} s",
            flush=True,
        )

    with server(vllm_cmd, "/health", {**base_env, "PERSONA_VLLM_DISABLE": "1"}, tmp / "plain.log") as url:
        run("vLLM without the plugin", url)
    with server(vllm_cmd, "/health", base_env, tmp / "plugin.log") as url:
        for _ in range(
            args.rounds
        ):  # interleaved on one server: the ratios don't carry server-to-server noise
            run("plain requests (hooks idle)", url)
            run("monitor (alert only)", url, {"vllm_xargs": watch})
            run("cap", url, {"vllm_xargs": cap})
            run("per-request steering", url, {"vllm_xargs": steer})
    with server(
        [*ours, "--engine", "vllm", "--max_model_len", "1024"], "/healthz", base_env, tmp / "ours.log"
    ) as url:
        run("our server, vllm engine", url, persona=True)
    bf16 = [*ours, "--engine", "vllm", "--max_model_len", "1024", "--dtype", "bfloat16"]
    with server(bf16, "/healthz", base_env, tmp / "ours-bf16.log") as url:
        run("our server, vllm engine, bf16", url, persona=True)
    with server([*ours, "--engine", "hf"], "/healthz", base_env, tmp / "hf.log") as url:
        run("our server, hf engine", url, persona=True)

    def rate(name: str) -> float:
        return statistics.mean(r["tokens_per_s"] for r in rows[name])

    print()
    plain = rate("plain requests (hooks idle)")
    print(
        f"plain requests with the hooks idle / vLLM without the plugin: {plain / rate('vLLM without the plugin'):.3f}"
    )
    for name in ("monitor (alert only)", "cap", "per-request steering"):
        print(f"{name} / plain requests: {rate(name) / plain:.3f} (mean of {args.rounds} interleaved rounds)")
    hf = rate("our server, hf engine")
    print(f"our server on vllm / our server on hf: {rate('our server, vllm engine') / hf:.1f}x")
    print(
        f"our server on vllm / vLLM without the plugin: {rate('our server, vllm engine') / rate('vLLM without the plugin'):.3f}"
    )
    print(
        f"our server on vllm in bf16 / our server on hf (fp32): {rate('our server, vllm engine, bf16') / hf:.1f}x"
    )
    results = [r for runs in rows.values() for r in runs]
    lost = sum(r["lost"] for r in results)
    mixed = sum(r.get("mixed", 0) for r in results)
    checked = sum(len(r["early"]) for r in results if "mixed" in r)
    print(f"requests lost: {lost} of {len(results) * args.clients}; mixed up: {mixed} of {checked} checked")


if __name__ == "__main__":
    main()
