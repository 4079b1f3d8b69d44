"""`serve --engine vllm` for real: vLLM's multi-process engine on the embedded model, uvicorn on
127.0.0.1, the official openai client, Prometheus' parser. One engine for the module."""

from __future__ import annotations

import concurrent.futures
import json
import sys

import httpx
import openai
import pytest
import torch

pytest.importorskip("vllm")
pytestmark = pytest.mark.slow

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from server_helpers import running  # noqa: E402

from persona_vaccine.monitoring.server import ServerOptions, create_app  # noqa: E402
from persona_vaccine.steering.vector import PersonaVector, VectorMismatch  # noqa: E402

LOW = -1e9


@pytest.fixture(scope="module")
def vectors(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("vectors")
    paths = []
    for seed, trait in enumerate(("evil", "sycophantic")):
        g = torch.Generator().manual_seed(seed)
        layers = {layer: torch.randn(576, generator=g) for layer in range(1, 31)}
        vector = PersonaVector(trait, "smollm2-135m", 576, 30, layers, layer=10 + 4 * seed)
        paths.append(str(vector.save(out / trait / "response_avg.safetensors")))
    return paths


@pytest.fixture(scope="module")
def served(vectors, tmp_path_factory):
    from persona_vaccine.monitoring.vllm_engine import VllmEngine

    log = tmp_path_factory.mktemp("alerts") / "alerts.jsonl"
    engine = VllmEngine.load(
        "smollm2-135m",
        vectors,
        ["evil=alert"],
        [f"evil={LOW}", "sycophantic=1e9,-1e9"],
        model_name="smol",
        max_tokens_limit=64,
        max_model_len=512,
    )
    try:
        app = create_app(engine, ServerOptions(alert_log=str(log)))
        with running(app) as url:
            yield {"url": url, "engine": engine, "app": app, "log": log}
    finally:
        engine.close()


@pytest.fixture(scope="module")
def hf_model():
    from persona_vaccine.models.loading import load_model

    return load_model("smollm2-135m")[0]


def _client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=120)


def _ask(url: str, question: str, n: int = 8, stream: bool = False, **kw):
    messages = [{"role": "user", "content": question}]
    return _client(url).chat.completions.create(
        model="smol", messages=messages, max_tokens=n, temperature=0, stream=stream, **kw
    )


def _hf_readings(engine, model, question: str, answer_text: str, n_answer: int) -> dict[str, list[float]]:
    """The same prompt and answer tokens teacher-forced through the Hugging Face model."""
    ids = engine.prompt_ids([{"role": "user", "content": question}])
    answer = engine.tokenizer(answer_text, add_special_tokens=False)["input_ids"][:n_answer]
    with torch.no_grad():
        out = model(torch.tensor([ids + answer]), output_hidden_states=True)
    readings = {}
    for trait, info in engine.traits.items():
        unit = PersonaVector.load(info.vector_path).unit(info.layer)
        row = out.hidden_states[info.layer][0].float() @ unit
        readings[trait] = row[len(ids) - 1 : len(ids) - 1 + n_answer].tolist()
    return readings


def test_models_health_and_dashboard(served):
    assert [m.id for m in _client(served["url"]).models.list().data] == ["smol"]
    assert httpx.get(served["url"] + "/healthz").json()["traits"] == ["evil", "sycophantic"]
    assert httpx.get(served["url"] + "/dashboard").status_code == 200


def test_openai_client_stream_and_not_read_what_the_hf_forward_reads(served, hf_model):
    full = _ask(served["url"], "Tell me about cats.", 10)
    persona = full.model_extra["persona"]
    evil = persona["traits"]["evil"]
    assert len(evil["tokens"]) == full.usage.completion_tokens == 10
    assert persona["alerts"][0]["kind"] == "early_warning" and persona["alerts"][0]["text"] == ""
    chunks = list(_ask(served["url"], "Tell me about cats.", 10, stream=True))
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == full.choices[0].message.content
    )
    streamed = [
        c.model_extra["persona"]["projections"]["evil"]
        for c in chunks
        if "projections" in (c.model_extra.get("persona") or {})
    ]
    assert streamed == pytest.approx(evil["tokens"], abs=1e-5)
    assert chunks[-1].choices[0].finish_reason == full.choices[0].finish_reason == "length"
    want = _hf_readings(
        served["engine"], hf_model, "Tell me about cats.", full.choices[0].message.content, 10
    )
    for trait, values in want.items():
        scale = max(abs(v) for v in values)
        got = persona["traits"][trait]["tokens"]
        assert max(abs(a - b) for a, b in zip(got, values, strict=True)) <= 1e-3 * scale, trait


def test_concurrent_clients_get_their_own_readings(served):
    questions = [f"Question {i}: what is {i} plus {i}?" for i in range(8)]
    alone = {q: _ask(served["url"], q, 6).model_extra["persona"]["traits"] for q in questions[:4]}

    def ask(i: int, q: str):
        if i % 2:
            return _ask(served["url"], q, 6).model_extra["persona"]["traits"]
        return list(_ask(served["url"], q, 6, stream=True))[-1].model_extra["persona"]["traits"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, range(8), questions))
    assert all(len(t["evil"]["tokens"]) == 6 for t in together)  # none lost
    for q, traits in zip(questions[:4], together[:4], strict=True):
        for trait in ("evil", "sycophantic"):
            assert traits[trait]["tokens"] == pytest.approx(alone[q][trait]["tokens"], abs=1e-3), (q, trait)


def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(served):
    url = served["url"] + "/v1/chat/completions"
    ok = {"model": "smol", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "temperature": 0}
    cases = [
        (b"{not json", 400, None),
        (json.dumps({**ok, "messages": []}), 400, "messages"),
        (json.dumps({**ok, "model": "gpt-9"}), 404, "model"),
        (json.dumps({**ok, "max_tokens": 10**9}), 400, "max_tokens"),
        (json.dumps({**ok, "temperature": "hot"}), 400, "temperature"),
    ]
    for body, status, param in cases:
        r = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == status, body
        assert r.json()["error"]["param"] == param
    assert _client(served["url"]).chat.completions.create(**ok).usage.completion_tokens == 2


def test_alerts_reach_the_log_and_metrics(served):
    _ask(served["url"], "secret words", 6)
    lines = [json.loads(line) for line in served["log"].read_text().splitlines()]
    assert lines and all("text" not in a for a in lines)
    kinds = {(a["trait"], a["kind"]) for a in lines}
    assert ("evil", "early_warning") in kinds and ("sycophantic", "running_mean") in kinds
    assert ("sycophantic", "early_warning") not in kinds  # its early-warning threshold is out of reach
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(served["url"] + "/metrics").text)}
    total = sum(s.value for s in families["persona_alerts"].samples if s.name.endswith("_total"))
    assert total == len(lines)
    counts = [s for s in families["persona_projection"].samples if s.name.endswith("_count")]
    assert any(s.labels == {"trait": "evil", "read": "token"} and s.value >= 5 for s in counts)
    state = httpx.get(served["url"] + "/dashboard/api/state").json()
    assert state["requests"] and state["requests"][-1]["readings"]["evil"]["prompt_last"] is not None


def test_api_key_on_a_second_app_over_the_same_engine(served):
    with running(create_app(served["engine"], ServerOptions(api_key="s3cret"))) as url:
        with pytest.raises(openai.AuthenticationError):
            _client(url, "wrong").models.list()
        r = _client(url, "s3cret").chat.completions.create(
            model="smol", messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
        assert r.usage.completion_tokens == 2


def test_startup_errors_are_clear(vectors, tmp_path, monkeypatch):
    from persona_vaccine.monitoring.vllm_engine import VllmEngine, VllmMissing

    other = PersonaVector("evil", "other", 64, 4, {layer: torch.ones(64) for layer in range(1, 5)})
    path = str(other.save(tmp_path / "evil.safetensors"))
    with pytest.raises(VectorMismatch, match="hidden size 64"):
        VllmEngine.load("smollm2-135m", [path], threshold_specs=["evil=0"])
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(VllmMissing, match=r"persona-vaccine\[vllm\]"):
        VllmEngine.load("smollm2-135m", vectors, threshold_specs=["evil=0", "sycophantic=0"])
