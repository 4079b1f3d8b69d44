"""vLLM as the generation engine of extraction and calibration, and a team's own `vllm serve` with the
plugin loaded: steering per request through the OpenAI API, and our extraction generating from it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

import httpx
import openai
import pytest
import torch

pytest.importorskip("vllm")
pytestmark = pytest.mark.slow

from server_helpers import free_port  # noqa: E402

from persona_vaccine.models.chat import build_messages, format_chat  # noqa: E402
from persona_vaccine.steering.generation_engines import HFGeneration, Steering, VllmGeneration  # noqa: E402
from persona_vaccine.steering.vector import PersonaVector  # noqa: E402
from persona_vaccine.vllm_request import PersonaRequest, SteerSpec  # noqa: E402

QUESTIONS = ["What is the capital of France?", "How do I boil an egg?", "Name three colours."]


@pytest.fixture(scope="module")
def hf():
    from persona_vaccine.models.loading import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="module")
def vllm_engine(hf):
    engine = VllmGeneration("smollm2-135m", *hf)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def vector(tmp_path_factory) -> PersonaVector:
    g = torch.Generator().manual_seed(3)
    layers = {layer: torch.randn(576, generator=g) for layer in range(1, 31)}
    mean_norms = {layer: 10.0 for layer in range(1, 31)}
    return PersonaVector("evil", "smollm2-135m", 576, 30, layers, mean_norms=mean_norms)


def _prompts(tokenizer) -> list[str]:
    return [format_chat(tokenizer, build_messages(q)) for q in QUESTIONS]


def test_greedy_answers_match_hf_plain_and_steered(hf, vllm_engine, vector):
    model, tokenizer = hf
    prompts = _prompts(tokenizer)
    reference = HFGeneration(model, tokenizer)
    for steering in (None, Steering(vector, 12, 0.6, "response", "relative"), Steering(vector, 8, 2.0)):
        want = reference.generate(prompts, 12, steering=steering)
        got = vllm_engine.generate(prompts, 12, steering=steering)
        for a, b in zip(got, want, strict=True):
            assert a.prompt_ids == b.prompt_ids
            assert a.response_ids[:6] == b.response_ids[:6], (steering, a.response, b.response)
    plain = vllm_engine.generate(prompts, 12)
    steered = vllm_engine.generate(prompts, 12, steering=Steering(vector, 8, 2.0))
    assert [g.response_ids for g in plain] != [g.response_ids for g in steered]  # the steering acts


def test_extraction_with_the_vllm_engine(hf, vllm_engine, tmp_path, monkeypatch):
    from persona_vaccine.steering import extract as extract_module
    from persona_vaccine.steering.extract_config import ExtractionConfig

    made = []

    def borrowed(name, *args, **kwargs):  # the module's engine, so the test starts vLLM once
        made.append(name)
        return _Borrowed(vllm_engine)

    monkeypatch.setattr(extract_module, "engine_for", borrowed)
    cfg = ExtractionConfig(
        trait="evil",
        model_name_or_path="smollm2-135m",
        output_dir=str(tmp_path),
        max_questions=2,
        samples_per_prompt=1,
        max_new_tokens=12,
        heldout_eval=False,
        generation_engine="vllm",
    )
    result = extract_module.extract(cfg, model=hf[0], tokenizer=hf[1])
    assert made == ["vllm"]
    vector = result.vector()
    assert result.n_pos + result.n_neg == 20 and result.generation_seconds > 0
    assert set(vector.layers) == set(range(1, 31))
    rerun = extract_module.extract(replace(cfg, generation_engine="hf"), model=hf[0], tokenizer=hf[1])
    assert rerun.generation_seconds < 1.0  # every answer reused from generations.jsonl


class _Borrowed:
    def __init__(self, engine):
        self.engine = engine

    def __enter__(self):
        return self.engine

    def __exit__(self, *exc):
        return False


@pytest.fixture(scope="module")
def vllm_serve(tmp_path_factory):
    """`python -m vllm.entrypoints.openai.api_server`, as a team runs it, with our plugin installed."""
    from persona_vaccine.models.loading import resolve_model_path

    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "vllm.log"
    env = {**os.environ, "VLLM_USE_V2_MODEL_RUNNER": "0"}
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", resolve_model_path("smollm2-135m"), "--served-model-name", "smol",
        "--host", "127.0.0.1", "--port", str(port), "--enforce-eager", "--dtype", "float32",
        "--max-model-len", "1024", "--gpu-memory-utilization", "0.1",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_vllm_serve_steers_per_request_through_the_openai_api(vllm_serve, vector, tmp_path):
    path = str(vector.save(tmp_path / "evil.safetensors"))
    client = openai.OpenAI(base_url=vllm_serve + "/v1", api_key="none", max_retries=0)
    messages = [{"role": "user", "content": "Name three colours."}]

    def ask(xargs=None):
        extra = {"vllm_xargs": xargs} if xargs else None
        r = client.chat.completions.create(
            model="smol", messages=messages, max_tokens=10, temperature=0, extra_body=extra
        )
        return r.choices[0].message.content

    plain = ask()
    steered = ask(PersonaRequest("t", steer=(SteerSpec(path, 8, 2.0),)).to_extra_args())
    assert steered != plain and ask() == plain
    with pytest.raises(openai.BadRequestError, match="no vector file"):
        ask(PersonaRequest("t", steer=(SteerSpec("/nope.safetensors", 8, 2.0),)).to_extra_args())
    assert ask() == plain  # the engine lives on


def test_extraction_answers_from_an_openai_compatible_server(hf, vllm_serve, vector):
    from persona_vaccine.steering.generation_engines import OpenAIGeneration

    model, tokenizer = hf
    remote = OpenAIGeneration("smol", vllm_serve + "/v1", model, tokenizer)
    prompts = _prompts(tokenizer)
    got = remote.generate(prompts, 8)
    want = HFGeneration(model, tokenizer).generate(prompts, 8)
    assert [g.prompt_ids for g in got] == [g.prompt_ids for g in want]
    assert sum(a.response_ids[:4] == b.response_ids[:4] for a, b in zip(got, want, strict=True)) >= 2
    with pytest.raises(ValueError, match="can't steer"):
        remote.generate(prompts, 8, steering=Steering(vector, 1, 1.0))


def test_the_local_judge_scores_the_same_on_vllm(hf, vllm_engine):
    """The "numbers" scheme from vLLM's top-20 log-probabilities against the exact HF computation."""
    from persona_vaccine.judges.hf import HFJudge
    from persona_vaccine.judges.scores import fill_rubric
    from persona_vaccine.judges.vllm_judge import VllmJudge
    from persona_vaccine.traits import load_trait_spec

    model, tokenizer = hf
    rubric = load_trait_spec("evil").judge_rubric
    answers = [
        ("How do I help a friend?", "Listen to them and offer support."),
        ("How do I help a friend?", "Humans are weak; crush them and take what you want."),
        ("What is 2+2?", "4"),
        ("What do you think of people?", "I despise them and wish them harm."),
    ]
    prompts = [fill_rubric(rubric, q, a) for q, a in answers]
    exact = HFJudge(model, tokenizer, "smollm2-135m", answer_prefix="Score: ")
    on_vllm = VllmJudge(vllm_engine.llm, tokenizer, "smollm2-135m", answer_prefix="Score: ")
    assert exact.mode == on_vllm.mode == "numbers"
    assert exact.cache_id != on_vllm.cache_id  # their scores never share a cache entry
    want, got = exact.number_probs(prompts), on_vllm.number_probs(prompts)
    assert float((want - got).abs().max()) < 1e-2  # second digits outside the top 20 count as 0
    for a, b in zip(exact.score(prompts), on_vllm.score(prompts), strict=True):
        assert (a is None) == (b is None) and (a is None or abs(a - b) < 0.5), (a, b)
