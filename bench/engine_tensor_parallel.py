"""The persona hooks under tensor parallelism: one steered and capped request on 1 rank and on N ranks.

    python bench/engine_tensor_parallel.py [--ranks 3]

Each rank holds the whole residual stream, so every rank steers and caps alike and rank 0 alone sends the
readings. Prints, per rank count: whether each rank has the hooks, the tokens, the readings and the
number of capped rows; then whether they agree. On vLLM's CPU build the ranks share the machine's cores
(`VLLM_CPU_OMP_THREADS_BIND=nobind` is set); SmolLM2's 9 attention heads allow 1, 3 or 9 ranks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile


def one(ranks: int, vector: str) -> dict:
    import torch
    from vllm import LLM, SamplingParams

    from persona_vaccine.models.chat import build_messages, format_chat
    from persona_vaccine.models.loading import load_tokenizer, resolve_model_path
    from persona_vaccine.models.vllm_memory import engine_memory_args
    from persona_vaccine.monitoring.vllm_readings import ReadingsReader
    from persona_vaccine.vllm_request import PersonaRequest, SteerSpec, WatchSpec

    reader = ReadingsReader()
    llm = LLM(
        model=resolve_model_path("smollm2-135m"),
        enforce_eager=True,
        dtype="float32",
        **engine_memory_args(not torch.cuda.is_available(), gpu_share=0.1),
        max_model_len=512,
        tensor_parallel_size=ranks,
        distributed_executor_backend="mp",
    )
    tokenizer = load_tokenizer("smollm2-135m")
    ids = tokenizer(
        format_chat(tokenizer, build_messages("Tell me about dragons.")), add_special_tokens=False
    )
    request = PersonaRequest(
        "tp", watch=(WatchSpec(vector, 15, guard="cap", cap=0.0),), steer=(SteerSpec(vector, 10, 3.0),)
    )
    params = SamplingParams(max_tokens=16, temperature=0, extra_args=request.to_extra_args())
    out = llm.generate([{"prompt_token_ids": ids["input_ids"]}], params, use_tqdm=False)  # type: ignore[misc]
    readings = reader.wait("tp", 16).readings["evil"]
    reader.close()
    return {
        "attached": [r["attached"] for r in llm.collective_rpc("persona_hooks_attached")],
        "tokens": list(out[0].outputs[0].token_ids),
        "readings": readings.tokens,
        "capped": readings.capped,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, default=3)
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--vector", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one is not None:  # a child: one engine per process
        print("RESULT " + json.dumps(one(args.one, args.vector)), flush=True)
        return

    import torch

    from persona_vaccine.steering.vector import PersonaVector

    g = torch.Generator().manual_seed(0)
    layers = {n: torch.randn(576, generator=g) for n in range(1, 31)}
    vector = str(
        PersonaVector("evil", "smollm2-135m", 576, 30, layers).save(tempfile.mkdtemp() + "/evil.safetensors")
    )
    env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": "nobind", "VLLM_USE_V2_MODEL_RUNNER": "0"}
    results = {}
    for ranks in (1, args.ranks):
        cmd = [sys.executable, __file__, "--one", str(ranks), "--vector", vector]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        results[ranks] = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        r = results[ranks]
        print(
            f"{ranks} rank(s): hooks on {sum(r['attached'])} of {len(r['attached'])}, {len(r['readings'])} readings, {r['capped']} capped"
        )
    a, b = results[1], results[args.ranks]
    worst = max(abs(x - y) for x, y in zip(a["readings"], b["readings"], strict=True))
    print(
        f"tokens identical: {a['tokens'] == b['tokens']}; largest reading difference: {worst:.1e}; "
        f"capped rows equal: {a['capped'] == b['capped']}"
    )


if __name__ == "__main__":
    main()
