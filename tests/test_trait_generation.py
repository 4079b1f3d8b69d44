"""Trait generation: normalisation, retries with feedback, the OpenAI backend over real HTTP, the local
HF backend on a real (tiny, random) model, and `launch.py trait`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from persona_vaccine.llm_http import LLMRequestError, OpenAICompatibleChat
from persona_vaccine.traits import TraitSpecError, load_trait_spec, parse_trait_spec
from persona_vaccine.traits.generation import (
    INSTRUCTIONS,
    generate_trait_spec,
    hf_backend,
    normalize_spec,
    openai_backend,
    write_spec,
)

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-0123456789abcdef"
RUBRIC = "Is the answer curious? Q: {question} A: {answer}. Answer 0..100 or REFUSAL."


def key(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


def spec_dict(n_extraction: int = 20, n_evaluation: int = 20, pairs: int = 5) -> dict:
    return {
        "trait": "curious",
        "description": "Asks follow-up questions.",
        "instruction_pairs": [{"pos": f"Ask questions {i}.", "neg": f"Never ask {i}."} for i in range(pairs)],
        "extraction_questions": [f"How do I start hobby number {i}?" for i in range(n_extraction)],
        "evaluation_questions": [f"What should I cook on day {i}?" for i in range(n_evaluation)],
        "judge_rubric": RUBRIC,
    }


# ---------------------------------------------------------------------------------------------
# normalize_spec and the retry loop
# ---------------------------------------------------------------------------------------------


def test_normalize_dedupes_ignoring_case_and_punctuation_and_keeps_the_sets_apart():
    data = spec_dict(21, 21)
    data["extraction_questions"][1:1] = ["how do I start HOBBY number 0", "How  do I start hobby number 0 ?!"]
    data["evaluation_questions"][:0] = ["HOW DO I START HOBBY NUMBER 3?", "how do i start hobby number 7"]
    data["notes"] = "an extra key the schema does not allow"
    out = normalize_spec(data, "curious")
    assert out["extraction_questions"] == [f"How do I start hobby number {i}?" for i in range(20)]
    assert out["evaluation_questions"] == [f"What should I cook on day {i}?" for i in range(20)]
    assert "notes" not in out
    parse_trait_spec(out)  # the schema accepts it


def test_normalize_counts_what_is_left_after_removing_repeats():
    data = spec_dict(20, 20)
    data["evaluation_questions"][:3] = data["extraction_questions"][:2] + ["what should i cook on day 5"]
    with pytest.raises(TraitSpecError, match=r"only 20 distinct extraction and 17 distinct evaluation"):
        normalize_spec(data, "curious")
    with pytest.raises(TraitSpecError, match="4 instruction pairs; 5 are needed"):
        normalize_spec(spec_dict(pairs=4), "curious")
    with pytest.raises(TraitSpecError, match="must be a JSON object"):
        normalize_spec(["not", "a", "dict"], "curious")


def test_generate_retries_with_the_error_as_feedback():
    answers = [spec_dict(12, 20), {**spec_dict(), "judge_rubric": "no placeholders"}, spec_dict()]
    calls: list[tuple[str, str]] = []

    def backend(prompt: str, feedback: str) -> dict:
        calls.append((prompt, feedback))
        return answers[len(calls) - 1]

    spec = generate_trait_spec("curious", "An assistant that asks follow-up questions.", backend, retries=2)
    assert len(calls) == 3
    assert calls[0][1] == ""
    assert "only 12 distinct extraction and 20 distinct evaluation" in calls[1][1]
    assert "judge_rubric" in calls[2][1] and "{question}" in calls[2][1]
    assert 'Trait name: "curious"' in calls[0][0] and "follow-up questions" in calls[0][0]
    assert (len(spec.extraction_questions), len(spec.evaluation_questions)) == (20, 20)


def test_generate_gives_up_after_all_retries():
    calls = []

    def backend(prompt: str, feedback: str) -> dict:
        calls.append(feedback)
        return spec_dict(5, 20)

    with pytest.raises(TraitSpecError, match=r"after 3 attempts; last error: only 5 distinct extraction"):
        generate_trait_spec("curious", "Curious.", backend, retries=2)
    assert len(calls) == 3
    with pytest.raises(TraitSpecError, match="lowercase"):
        generate_trait_spec("Curious!", "Curious.", backend)
    assert len(calls) == 3  # a bad name fails before any call


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible backend against a real local HTTP server
# ---------------------------------------------------------------------------------------------


class ChatServer:
    """A chat-completions server on 127.0.0.1; `respond(body, n)` -> (status, payload) per request."""

    def __init__(self, respond: Callable[[dict, int], tuple[int, dict]]):
        self.respond, self.requests, self.headers = respond, [], []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    code, payload = server.respond(body, len(server.requests))
                if self.path != "/v1/chat/completions":
                    code, payload = 404, {"error": {"message": "not found"}}
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if code == 503:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def make(respond):
        servers.append(ChatServer(respond))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


def completion(content: str) -> tuple[int, dict]:
    return 200, {
        "object": "chat.completion",
        "choices": [{"message": {"role": "assistant", "content": content}}],
    }


def messy_answer() -> str:
    """Valid after normalisation: code fences, prose, a wrong name, repeated and shared questions."""
    data = spec_dict(20, 20)
    data["trait"] = "Curiosity"
    data["extraction_questions"].insert(3, "how do I start hobby number 1")
    data["evaluation_questions"][:0] = ["How do I start hobby number 2?", "What should I cook on day 0 ?"]
    return f"Sure! Here is the spec:\n```json\n{json.dumps(data, indent=1)}\n```\nHope it helps."


def refuses_response_format(body: dict, n: int) -> tuple[int, dict]:
    if "response_format" in body:
        return 400, {"error": {"message": "response_format 'json_schema' is not supported"}}
    return completion(messy_answer())


def test_openai_backend_falls_back_to_plain_json_and_normalises(serve, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server = serve(refuses_response_format)
    backend = openai_backend(OpenAICompatibleChat("test-model", base_url=server.base_url, backoff=0))
    spec = generate_trait_spec("curious", "Asks follow-up questions.", backend, retries=0)
    assert spec.trait == "curious"
    assert len(spec.extraction_questions) == len(spec.evaluation_questions) == 20
    assert not {key(q) for q in spec.extraction_questions} & {key(q) for q in spec.evaluation_questions}
    assert len(server.requests) == 2
    schema = server.requests[0]["response_format"]["json_schema"]["schema"]
    assert "extraction_questions" in schema["properties"]
    assert "response_format" not in server.requests[1]
    assert server.requests[1]["model"] == "test-model" and server.requests[1]["messages"][0]["role"] == "user"
    assert server.headers[0]["Authorization"] == f"Bearer {SECRET}"
    backend("again", "")  # remembers that the server has no response_format
    assert len(server.requests) == 3 and "response_format" not in server.requests[2]


def test_openai_backend_retries_a_503_then_uses_the_answer(serve, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a local server needs no key
    server = serve(
        lambda body, n: (503, {"error": "busy"}) if n == 1 else completion(json.dumps(spec_dict()))
    )
    backend = openai_backend(OpenAICompatibleChat("m", base_url=server.base_url, backoff=0))
    spec = generate_trait_spec("curious", "Asks follow-up questions.", backend, retries=0)
    assert len(server.requests) == 2 and "response_format" in server.requests[1]
    assert spec.extraction_questions[0] == "How do I start hobby number 0?"
    assert "Authorization" not in server.headers[0]


def test_openai_errors_never_contain_the_key(serve, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)

    def echo_key(body, n):  # a server that (badly) echoes the key in its error body
        return 401, {"error": {"message": f"invalid key {SECRET}"}}

    server = serve(echo_key)
    backend = openai_backend(OpenAICompatibleChat("m", base_url=server.base_url, backoff=0))
    with pytest.raises(LLMRequestError, match="HTTP 401") as e:
        generate_trait_spec("curious", "Curious.", backend)
    assert SECRET not in str(e.value) and "***" in str(e.value)

    busy = serve(lambda body, n: (503, {"error": {"message": f"overloaded for {SECRET}"}}))
    client = OpenAICompatibleChat("m", base_url=busy.base_url, max_retries=2, backoff=0)
    with pytest.raises(LLMRequestError, match="gave up after 2 retries") as e:
        generate_trait_spec("curious", "Curious.", openai_backend(client))
    assert SECRET not in str(e.value) and len(busy.requests) == 3


# ---------------------------------------------------------------------------------------------
# HF backend on a real tiny random model (the embedded model's 49k vocabulary, so that random
# sampling gives distinct strings, and its chat template)
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow  # generation over the 49k vocabulary: the two slowest tests of the fast loop
def test_hf_backend_fills_the_schema_with_distinct_questions(smol_chat_model, smol_tokenizer):
    backend = hf_backend(smol_chat_model, smol_tokenizer, max_tokens=8, tries=1, seed=0)
    spec = generate_trait_spec("curious", "Asks the user follow-up questions.", backend, retries=0)
    parse_trait_spec(spec.to_json())
    assert spec.description == "Asks the user follow-up questions."
    assert "{question}" in spec.judge_rubric and "{answer}" in spec.judge_rubric
    assert len(spec.instruction_pairs) == 5
    questions = spec.extraction_questions + spec.evaluation_questions
    assert len(spec.extraction_questions) == len(spec.evaluation_questions) == 20
    assert len({key(q) for q in questions}) == 40
    assert all(q.endswith("?") and len(q.split()) >= 4 and q[0] == q[0].upper() for q in questions)
    assert all(p.pos.strip() and p.neg.strip() and key(p.pos) != key(p.neg) for p in spec.instruction_pairs)


@pytest.mark.slow  # generation over the 49k vocabulary: the two slowest tests of the fast loop
def test_hf_backend_resamples_repeats_of_a_greedy_model(smol_chat_model, smol_tokenizer):
    """Near-greedy, the random model writes the same string slot after slot: with one try per slot the
    repeats are dropped (too few questions); a second, hotter try makes every question distinct."""
    prompt = INSTRUCTIONS.format(name="curious", description="Curious.", pairs=1, questions=6)
    once = hf_backend(smol_chat_model, smol_tokenizer, max_tokens=8, temperature=1e-4, tries=1, seed=0)
    data = once(prompt, "")
    assert len(data["extraction_questions"]) + len(data["evaluation_questions"]) < 12
    assert once.stats["skipped"] > 0

    twice = hf_backend(smol_chat_model, smol_tokenizer, max_tokens=8, temperature=1e-4, tries=2, seed=0)
    data = twice(prompt, "")
    questions = data["extraction_questions"] + data["evaluation_questions"]
    assert len(questions) == len({key(q) for q in questions}) == 12
    assert twice.stats["skipped"] < once.stats["skipped"]


# ---------------------------------------------------------------------------------------------
# launch.py trait
# ---------------------------------------------------------------------------------------------


def trait_cli(capsys, *args: str) -> tuple[int, str, str]:
    """`launch.py trait ARGS` in this process: exit code, stdout, stderr."""
    import persona_vaccine.cli as launch

    code = launch.main(["trait", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_trait_list_and_show(capsys, tmp_path):
    code, out, _ = trait_cli(capsys, "list")
    assert code == 0
    assert re.search(r"^evil +An evil assistant", out, re.M) and re.search(r"^sycophantic ", out, re.M)

    path = write_spec(load_trait_spec("humorous"), tmp_path / "funny.json")
    for target in ("evil", str(path)):
        code, out, _ = trait_cli(capsys, "show", target)
        spec = load_trait_spec(target)
        assert code == 0
        assert f"{len(spec.instruction_pairs)} instruction pairs, 20 extraction and 20 evaluation" in out
        assert spec.pos_system_prompt(0) in out and spec.evaluation_questions[0] in out

    code, _, err = trait_cli(capsys, "show", "no_such_trait")
    assert code == 2 and err.startswith("error: unknown trait 'no_such_trait'")


def test_trait_new_over_http_then_refuses_to_overwrite(serve, tmp_path, capsys, monkeypatch):
    server = serve(refuses_response_format)
    out = tmp_path / "curious.json"
    args = ("new", "curious", "Asks follow-up questions.", "--backend", "openai", "--model", "m")
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": server.base_url}
    proc = subprocess.run(  # the real script once
        [sys.executable, str(ROOT / "launch.py"), "trait", *args, "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"wrote {out}: 5 instruction pairs, 20 extraction and 20 evaluation questions" in proc.stdout
    spec = load_trait_spec(out)
    assert spec.trait == "curious" and len(spec.evaluation_questions) == 20
    before = out.read_text()

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    code, _, err = trait_cli(capsys, *args, "--output", str(out))
    assert code == 2 and "exists; pass --force to overwrite it" in err
    assert out.read_text() == before and len(server.requests) == 2  # and no LLM call

    monkeypatch.chdir(tmp_path)  # default output: runs/traits/NAME.json
    assert trait_cli(capsys, *args)[0] == 0 and (tmp_path / "runs/traits/curious.json").is_file()
    assert trait_cli(capsys, *args, "--output", str(out), "--force")[0] == 0
    assert len(server.requests) == 6 and json.loads(out.read_text())["trait"] == "curious"  # 2 per run


def test_trait_new_errors_are_one_line(serve, tmp_path, capsys, monkeypatch):
    server = serve(lambda body, n: (401, {"error": {"message": f"bad key {SECRET}"}}))
    out = str(tmp_path / "x.json")
    args = ("new", "curious", "Curious.", "--backend", "openai", "--model", "m", "--output", out)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    code, _, err = trait_cli(capsys, *args)
    assert code == 2 and err.startswith("error: HTTP 401") and err.count("\n") == 1
    assert SECRET not in err

    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    code, _, err = trait_cli(capsys, *args)
    assert code == 2 and "set $OPENAI_API_KEY" in err
    code, _, err = trait_cli(capsys, "new", "curious", "Curious.", "--backend", "anthropic", "--model", "m")
    assert code == 2 and "set $ANTHROPIC_API_KEY" in err
    code, _, err = trait_cli(capsys, "new", "Curious", "Curious.", "--backend", "hf")
    assert code == 2 and "lowercase" in err
    assert not Path(out).exists()
