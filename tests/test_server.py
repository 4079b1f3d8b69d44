"""The monitored OpenAI-compatible server, for real: uvicorn on 127.0.0.1, the official openai client."""

from __future__ import annotations

import concurrent.futures
import json
import sys

import httpx
import openai
import pytest
import torch
from conftest import tiny_llama
from helpers import random_vector
from prometheus_client.parser import text_string_to_metric_families
from server_helpers import running, webhook_receiver

from persona_vaccine.models.chat import format_chat
from persona_vaccine.monitoring import Watch, monitor
from persona_vaccine.monitoring.engine import Engine
from persona_vaccine.monitoring.server import ServerOptions, create_app
from persona_vaccine.steering.vector import VectorMismatch

LOW = -1e9  # a threshold every reading crosses


@pytest.fixture(scope="module")
def vectors(tiny_chat_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("vectors")
    paths = []
    for i, trait in enumerate(("evil", "sycophantic")):
        v = random_vector(tiny_chat_model, trait, seed=i)
        paths.append(str(v.save(out / trait / "response_avg.safetensors")))
    return paths


def _engine(model, tokenizer, paths, guards=None, thresholds=None, **kwargs) -> Engine:
    from persona_vaccine.monitoring.guards import parse_guards
    from persona_vaccine.monitoring.thresholds import parse_manual
    from persona_vaccine.steering.vector import PersonaVector

    vectors = [(PersonaVector.load(p), p) for p in paths]
    traits = [v.trait for v, _ in vectors]
    return Engine(
        model,
        tokenizer,
        vectors,
        parse_guards(guards, traits),
        parse_manual(thresholds or [f"{t}={LOW}" for t in traits]),
        model_name="tiny",
        max_tokens_limit=64,
        **kwargs,
    )


@pytest.fixture(scope="module")
def served(tiny_chat_model, tiny_tokenizer, vectors, tmp_path_factory):
    log = tmp_path_factory.mktemp("alerts") / "alerts.jsonl"
    with webhook_receiver(fail_first=1) as (hook_url, received):
        engine = _engine(tiny_chat_model, tiny_tokenizer, vectors)
        app = create_app(engine, ServerOptions(alert_log=str(log), webhook=hook_url, webhook_retries=3))
        with running(app) as url:
            yield {"url": url, "engine": engine, "app": app, "log": log, "received": received}
        engine.close()


def _client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)


def _alone(engine: Engine, question: str, n: int) -> tuple[list[int], dict]:
    """The same request run directly under a fresh monitor: the reference readings."""
    tok = engine.tokenizer
    ids = tok(format_chat(tok, [{"role": "user", "content": question}]), add_special_tokens=False)[
        "input_ids"
    ]
    watches = [Watch(w.vector, w.layer) for w in engine.monitor.watches]
    with monitor(engine.model, watches) as m, torch.inference_mode():
        out = engine.model.generate(
            input_ids=torch.tensor([ids]), max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id
        )
    return out[0, len(ids) :].tolist(), {t: r.tokens for t, r in m.readings().items()}


def test_models_and_health(served):
    client = _client(served["url"])
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert httpx.get(served["url"] + "/healthz").json()["traits"] == ["evil", "sycophantic"]


def test_dashboard_is_read_through_the_package_not_a_folder_name(served, monkeypatch):
    """Installed, the package is `persona_vaccine.monitoring`: a bare `monitoring` is not importable."""
    monkeypatch.setitem(sys.modules, "monitoring", None)  # `import monitoring` now fails, as from a wheel
    page = httpx.get(served["url"] + "/dashboard")
    assert page.status_code == 200 and "dashboard.js" in page.text
    script = httpx.get(served["url"] + "/dashboard/dashboard.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("application/javascript")
    assert "/dashboard/api/state" in script.text


def test_openai_client_non_stream_and_stream(served):
    client = _client(served["url"])
    messages = [{"role": "user", "content": "Tell me about cats."}]
    full = client.chat.completions.create(model="tiny", messages=messages, max_tokens=8, temperature=0)
    assert full.choices[0].finish_reason in ("length", "stop")
    persona = full.model_extra["persona"]
    evil = persona["traits"]["evil"]
    assert len(evil["tokens"]) == full.usage.completion_tokens
    assert {a["kind"] for a in persona["alerts"]} >= {"early_warning"}
    assert persona["alerts"][0]["text"] == ""  # the early warning comes before any token

    chunks = list(
        client.chat.completions.create(
            model="tiny", messages=messages, max_tokens=8, temperature=0, stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    streamed = [
        c.model_extra["persona"]["projections"]["evil"]
        for c in chunks
        if "projections" in (c.model_extra.get("persona") or {})
    ]
    assert streamed == pytest.approx(evil["tokens"], abs=1e-5)
    assert chunks[-1].choices[0].finish_reason == full.choices[0].finish_reason
    assert chunks[-1].model_extra["persona"]["traits"]["evil"]["tokens"] == pytest.approx(
        evil["tokens"], abs=1e-5
    )


def test_concurrent_clients_get_their_own_readings(served):
    questions = [f"Question number {i}: what is {i} plus {i}?" for i in range(6)]
    expected = {q: _alone(served["engine"], q, 6) for q in questions}

    def ask(q: str, stream: bool):
        client = _client(served["url"])
        if stream:
            chunks = list(
                client.chat.completions.create(
                    model="tiny",
                    messages=[{"role": "user", "content": q}],
                    max_tokens=6,
                    temperature=0,
                    stream=True,
                )
            )
            return chunks[-1].model_extra["persona"]["traits"]
        r = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": q}], max_tokens=6, temperature=0
        )
        return r.model_extra["persona"]["traits"]

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = {pool.submit(ask, q, i % 2 == 0): q for i, q in enumerate(questions)}
        for future, q in futures.items():
            traits = future.result()
            for trait in ("evil", "sycophantic"):
                assert traits[trait]["tokens"] == pytest.approx(expected[q][1][trait], abs=1e-5), q


def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(served):
    url = served["url"] + "/v1/chat/completions"
    ok = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "temperature": 0}
    cases = [
        (b"{not json", 400, None),
        (json.dumps({**ok, "messages": []}), 400, "messages"),
        (json.dumps({**ok, "messages": [{"role": "wizard", "content": "hi"}]}), 400, "messages"),
        (json.dumps({**ok, "messages": [{"role": "user"}]}), 400, "messages"),
        (json.dumps({**ok, "model": "gpt-9"}), 404, "model"),
        (json.dumps({**ok, "max_tokens": 10**9}), 400, "max_tokens"),
        (json.dumps({**ok, "max_tokens": -1}), 400, "max_tokens"),
        (json.dumps({**ok, "temperature": "hot"}), 400, "temperature"),
    ]
    for body, status, param in cases:
        r = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == status, body
        error = r.json()["error"]
        assert error["message"] and error["type"] and error["param"] == param
    with pytest.raises(openai.NotFoundError):
        _client(served["url"]).chat.completions.create(model="nope", messages=ok["messages"])
    r = _client(served["url"]).chat.completions.create(**ok)
    # still serving, and unharmed by the bad requests: the greedy answer of the model run directly
    ids, readings = _alone(served["engine"], "hi", 2)
    assert r.choices[0].message.content == served["engine"].tokenizer.decode(ids, skip_special_tokens=True)
    assert r.usage.completion_tokens == len(ids)
    for trait, tokens in readings.items():
        assert r.model_extra["persona"]["traits"][trait]["tokens"] == pytest.approx(tokens, abs=1e-4)


def test_alerts_reach_the_log_the_webhook_and_metrics(served):
    client = _client(served["url"])
    client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "secret words"}], max_tokens=6
    )
    assert served["app"].state.webhook.flush(20)
    received = served["received"]
    assert received, "the webhook receiver got no alert"
    first = received[0]
    assert {"trait", "kind", "value", "threshold", "position", "request_id", "guard"} <= set(first)
    assert "text" not in first  # answers are not sent unless asked for
    lines = [json.loads(line) for line in served["log"].read_text().splitlines()]
    assert lines and all("text" not in a for a in lines)
    assert len(received) == len(lines)  # one failed POST was retried, none lost

    text = httpx.get(served["url"] + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    alerts = {
        (s.labels["trait"], s.labels["kind"]): s.value
        for s in families["persona_alerts"].samples
        if s.name.endswith("_total")
    }
    assert alerts[("evil", "early_warning")] >= 1 and alerts[("sycophantic", "running_mean")] >= 1
    assert sum(s.value for s in families["persona_alerts"].samples if s.name.endswith("_total")) == len(lines)
    requests = {
        s.labels["status"]: s.value for s in families["persona_requests"].samples if s.name.endswith("_total")
    }
    assert requests["200"] >= 1
    tokens = {
        s.labels["kind"]: s.value for s in families["persona_tokens"].samples if s.name.endswith("_total")
    }
    assert tokens["completion"] >= 6
    counts = [s for s in families["persona_projection"].samples if s.name.endswith("_count")]
    assert any(s.labels == {"trait": "evil", "read": "token"} and s.value >= 5 for s in counts)
    assert any(
        s.name == "persona_request_latency_seconds_count"
        for s in families["persona_request_latency_seconds"].samples
    )


def test_api_key(tiny_chat_model, tiny_tokenizer, vectors):
    engine = _engine(tiny_chat_model, tiny_tokenizer, vectors)
    try:
        with running(create_app(engine, ServerOptions(api_key="s3cret"))) as url:
            with pytest.raises(openai.AuthenticationError):
                _client(url, "wrong").models.list()
            r = httpx.post(url + "/v1/chat/completions", json={"model": "tiny", "messages": []})
            assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
            assert httpx.get(url + "/dashboard/api/state").status_code == 401
            assert httpx.get(url + "/healthz").status_code == 200
            r = _client(url, "s3cret").chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
            assert r.usage.completion_tokens >= 1
    finally:
        engine.close()


def test_stop_guard_finish_reason(tiny_chat_model, tiny_tokenizer, vectors):
    engine = _engine(tiny_chat_model, tiny_tokenizer, vectors, guards=["evil=stop"])
    try:
        with running(create_app(engine)) as url:
            r = _client(url).chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=10
            )
            assert r.choices[0].finish_reason == "persona_alert" and r.usage.completion_tokens == 1
            text = httpx.get(url + "/metrics").text
            assert 'persona_guard_actions_total{guard="stop",trait="evil"} 1.0' in text
    finally:
        engine.close()


def test_vector_for_another_model_is_a_startup_error(smol_tokenizer, tmp_path):
    other = tiny_llama(vocab_size=len(smol_tokenizer), layers=4, hidden=48)
    path = random_vector(other, "evil").save(tmp_path / "evil.safetensors")
    model = tiny_llama(vocab_size=len(smol_tokenizer), layers=4, hidden=32)
    with pytest.raises(VectorMismatch, match="hidden size 48"):
        _engine(model, smol_tokenizer, [str(path)])


def test_serves_a_local_folder(tiny_chat_model, tiny_tokenizer, vectors, tmp_path):
    tiny_chat_model.save_pretrained(tmp_path / "model")
    tiny_tokenizer.save_pretrained(tmp_path / "model")
    engine = Engine.load(
        str(tmp_path / "model"), vectors, ["cap"], ["evil=0.0", "sycophantic=0.0"], max_tokens_limit=16
    )
    try:
        with running(create_app(engine)) as url:
            r = _client(url).chat.completions.create(
                model="model", messages=[{"role": "user", "content": "hi"}], max_tokens=4, temperature=0
            )
            assert r.model_extra["persona"]["traits"]["evil"]["guard"] == "cap"
    finally:
        engine.close()
