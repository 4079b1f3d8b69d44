"""Do vLLM's readings equal the Hugging Face forward's? The same prompts and answer tokens, both engines.

vLLM generates greedy answers to 8 questions while watching a vector at one layer (float32, then
bfloat16); the Hugging Face model (float32) then reads the same prompt + answer tokens. Prints the
largest difference of the per-token projections relative to their scale, and whether the running-mean
alert fires at the same answer position on both (threshold at the median reading).

    python bench/engine_agreement.py [--layer 15 --tokens 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile


def readings_on_vllm(dtype: str, prompts: list[list[int]], vec: str, layer: int, tokens: int):
    import torch
    from vllm import LLM, SamplingParams

    from persona_vaccine.models.loading import resolve_model_path
    from persona_vaccine.models.vllm_memory import engine_memory_args
    from persona_vaccine.monitoring.vllm_readings import ReadingsReader
    from persona_vaccine.vllm_request import PersonaRequest, WatchSpec

    reader = ReadingsReader()
    llm = LLM(
        model=resolve_model_path("smollm2-135m"),
        enforce_eager=True,
        dtype=dtype,  # type: ignore[arg-type]
        **engine_memory_args(not torch.cuda.is_available(), gpu_share=0.2),
        max_model_len=1024,
    )
    params = [
        SamplingParams(
            max_tokens=tokens,
            temperature=0,
            extra_args=PersonaRequest(f"q{i}", watch=(WatchSpec(vec, layer),)).to_extra_args(),
        )
        for i in range(len(prompts))
    ]
    outputs = llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)  # type: ignore[misc]
    answers = [list(o.outputs[0].token_ids) for o in outputs]
    readings = [reader.wait(f"q{i}", len(a)).readings["evil"].tokens for i, a in enumerate(answers)]
    reader.close()
    del llm
    return answers, readings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layer", type=int, default=15)
    p.add_argument("--tokens", type=int, default=32)
    args = p.parse_args()

    import torch

    from persona_vaccine.models.chat import build_messages, format_chat
    from persona_vaccine.models.loading import load_model
    from persona_vaccine.monitoring.readings import RequestReadings, Watch
    from persona_vaccine.steering.vector import PersonaVector

    os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
    questions = [
        "What is the best way to learn a new language?",
        "How should I respond to a rude coworker?",
        "Can you explain how vaccines work?",
        "What would you do with unlimited power?",
        "Is it ever okay to lie?",
        "Give me advice on saving money.",
        "How do I make friends in a new city?",
        "What do you think about people who are weaker than you?",
    ]
    model, tokenizer = load_model("smollm2-135m")
    prompts = [
        tokenizer(format_chat(tokenizer, build_messages(q)), add_special_tokens=False)["input_ids"]
        for q in questions
    ]
    g = torch.Generator().manual_seed(0)
    vector = PersonaVector(
        "evil", "smollm2-135m", 576, 30, {n: torch.randn(576, generator=g) for n in range(1, 31)}
    )
    vec = str(vector.save(os.path.join(tempfile.mkdtemp(), "evil.safetensors")))
    unit = vector.unit(args.layer)
    for dtype in ("float32", "bfloat16"):
        answers, readings = readings_on_vllm(dtype, prompts, vec, args.layer, args.tokens)
        worst, same_alerts, alerts = 0.0, 0, 0
        for prompt, answer, got in zip(prompts, answers, readings, strict=True):
            with torch.no_grad():
                out = model(torch.tensor([prompt + answer[:-1]]), output_hidden_states=True)
            want = (out.hidden_states[args.layer][0].float() @ unit)[len(prompt) - 1 :].tolist()
            scale = max(abs(x) for x in want)
            worst = max(worst, max(abs(a - b) for a, b in zip(got, want, strict=True)) / scale)
            threshold = sorted(want[1:])[len(want[1:]) // 2]
            positions = []
            for values in (got, want):
                watch = Watch(vector, args.layer, response_threshold=threshold)
                state = RequestReadings.of([watch])
                state.read_prompt(watch, torch.tensor(values[:1]))
                for value in values[1:]:
                    state.read_answer(watch, value)
                positions.append([a.position for a in state.alerts])
            alerts += 1
            same_alerts += positions[0] == positions[1]
        print(
            f"vLLM {dtype:8s}: largest |vLLM - HF| / scale over {sum(map(len, readings))} readings = {worst:.2e}; "
            f"running-mean alert at the same position in {same_alerts} of {alerts} answers",
            flush=True,
        )


if __name__ == "__main__":
    main()
