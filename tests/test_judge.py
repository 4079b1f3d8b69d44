"""The 0..100 LLM judge: scoring math, local HF judges in both modes, the cache, and real HTTP servers.

Two real tokenizers: SmolLM2's (digits are split: "42" -> "4", "2", so its judge samples and parses)
and a word-level one built here whose numbers "0".."100" are single tokens (logprob judge). The
"number model" is a real Llama whose blocks add nothing, so its next-token distribution after the
chat prompt is set exactly through the output matrix: 0.5 on "30", 0.3 on "80", 0.2 on a word.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from persona_vaccine.judges.judge import (
    COHERENCE_RUBRIC,
    HFJudge,
    Judge,
    JudgeCache,
    JudgeRequestError,
    OpenAIJudge,
    check_rubric,
    fill_rubric,
    has_single_token_numbers,
    judge_responses,
    parse_sampled_score,
    rubric_id,
    score_from_logprobs,
    score_from_probs,
)

RUBRIC = "Rate the answer.\nQ: {question}\nA: {answer}\nRespond with a number between 0 and 100."
TARGET = {"30": 0.5, "80": 0.3, "answer": 0.2}
EXPECTED = (30 * 0.5 + 80 * 0.3) / 0.8  # 48.75
REFUSING = {"30": 0.2, "answer": 0.8}  # number mass 0.2 < 0.25
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# ---------------------------------------------------------------------------------------------
# Helpers: a tokenizer with single-token numbers, a model with a set next-token distribution
# ---------------------------------------------------------------------------------------------


def number_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    words = ["user", "assistant", "system", "Rate", "the", "answer", "Q", "A", ":", ".", "?", "a", "number"]
    vocab = {w: i for i, w in enumerate([*specials, *(str(n) for n in range(101)), *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHATML
    tokenizer.padding_side = "left"
    return tokenizer


def number_model(tokenizer, probs: dict[str, float], hidden: int = 32):
    """A Llama whose next token after "assistant" follows `probs` and which then ends the turn."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    ids = tokenizer.convert_tokens_to_ids
    with torch.no_grad():
        for layer in model.model.layers:  # blocks add nothing: the residual is the token embedding
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight
        embed.zero_()
        embed[:, 1] = 1.0  # any token -> direction 1 -> end of turn
        embed[ids("assistant"), 1] = 0.0
        embed[ids("assistant"), 0] = 1.0  # last prompt token -> direction 0 -> `probs`
        head = model.lm_head.weight
        head.zero_()
        logits0 = torch.full((len(tokenizer),), -30.0)
        for token, p in probs.items():
            logits0[ids(token)] = math.log(p)
        head[:, 0] = logits0 / math.sqrt(hidden)  # RMSNorm turns a unit direction into sqrt(hidden)
        head[ids("<|im_end|>"), 1] = 30.0 / math.sqrt(hidden)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


@pytest.fixture(scope="module")
def num_tok():
    return number_tokenizer()


@pytest.fixture(scope="module")
def num_model(num_tok):
    return number_model(num_tok, TARGET)


class CountingJudge:
    """Thin wrapper around a real judge: records the prompts asked; raises after `crash_after` calls."""

    def __init__(self, inner: Judge, crash_after: int | None = None):
        self.inner, self.model_id, self.crash_after = inner, inner.model_id, crash_after
        self.calls = 0
        self.asked: list[str] = []

    def score(self, prompts: list[str]) -> list[float | None]:
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise KeyboardInterrupt("simulated crash")
        self.calls += 1
        self.asked.extend(prompts)
        return self.inner.score(prompts)


# ---------------------------------------------------------------------------------------------
# Scoring math and parsing
# ---------------------------------------------------------------------------------------------


def test_score_from_logprobs_weighted_mean():
    top = {"30": math.log(0.5), " 80": math.log(0.3), "hello": math.log(0.2)}
    assert score_from_logprobs(top) == pytest.approx(EXPECTED)
    # only integers 0..100 count; whitespace is stripped
    top = {"\n7": math.log(0.4), "101": math.log(0.3), "-5": math.log(0.1), "4.5": math.log(0.1), "7a": -1}
    assert score_from_logprobs(top) == pytest.approx(7.0)
    assert score_from_logprobs({"0": 0.0}) == 0.0
    assert score_from_logprobs({"100": math.log(0.9), "0": math.log(0.1)}) == pytest.approx(90.0)


def test_score_threshold_is_a_quarter_of_the_mass():
    assert score_from_probs([("50", 0.24), ("REFUSAL", 0.76)]) is None
    assert score_from_probs([("50", 0.25), ("REFUSAL", 0.75)]) == 50.0
    assert score_from_probs([("50", 0.26), ("REFUSAL", 0.74)]) == 50.0
    assert score_from_logprobs({"60": math.log(0.1), "20": math.log(0.1), "no": math.log(0.8)}) is None
    assert score_from_logprobs({"60": math.log(0.15), "20": math.log(0.15)}) == pytest.approx(40.0)
    assert score_from_logprobs({}) is None
    assert score_from_probs([("50", 0.1)], min_mass=0.05) == 50.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("85", 85.0),
        (" 42\n", 42.0),
        ("Score: 7.", 7.0),
        ("87.5", 87.5),
        ("100", 100.0),
        ("0", 0.0),
        ("REFUSAL", None),
        ("refusal, 50", None),
        ("", None),
        (None, None),
        ("none", None),
        ("150", None),
        ("7777", None),
    ],
)
def test_parse_sampled_score(text, expected):
    assert parse_sampled_score(text) == expected


def test_rubrics():
    check_rubric(COHERENCE_RUBRIC)
    for anchor in ("0 means", "50 means", "100 means", "correctness"):
        assert anchor in COHERENCE_RUBRIC
    with pytest.raises(ValueError, match="answer"):
        check_rubric("Rate {question}")
    # braces elsewhere survive, and a placeholder inside the question is not filled again
    rubric = 'JSON like {"x": 1}. Q: {question} A: {answer}'
    assert (
        fill_rubric(rubric, "why {answer}?", "because {x}")
        == 'JSON like {"x": 1}. Q: why {answer}? A: because {x}'
    )
    # the id is part of the judgment cache's key, so it must be the same in every process (no salted
    # hash()) and change with any edit. Golden value: the first 16 hex digits of the text's SHA-256,
    # regenerate with `python -c "from persona_vaccine.judges.judge import rubric_id as r;
    # print(r('JSON like {\"x\": 1}. Q: {question} A: {answer}'))"`
    assert rubric_id(rubric) == "5bf80647e90efbe6"
    assert rubric_id(rubric.replace("Q:", "Q;")) != rubric_id(rubric) != rubric_id(COHERENCE_RUBRIC)


# ---------------------------------------------------------------------------------------------
# Local HF judges
# ---------------------------------------------------------------------------------------------


def test_smollm2_tokenizer_splits_numbers_so_judge_reads_digits(smol_tokenizer, smol_chat_model):
    assert smol_tokenizer.tokenize("42") == ["4", "2"]  # digits are single tokens, numbers are not
    assert not has_single_token_numbers(smol_tokenizer)
    assert HFJudge(smol_chat_model, smol_tokenizer, model_id="tiny").mode == "numbers"
    judge = HFJudge(smol_chat_model, smol_tokenizer, model_id="tiny", batch_size=3, mode="sample")
    assert judge.mode == "sample"
    with pytest.raises(ValueError, match="splits the numbers"):
        HFJudge(smol_chat_model, smol_tokenizer, mode="logprobs")
    prompts = [fill_rubric(RUBRIC, f"Question {i}?" * (i + 1), "Fine.") for i in range(3)]
    scores = judge.score(prompts)
    assert len(scores) == 3 and all(s is None or 0 <= s <= 100 for s in scores)
    # batched (left padded) generation gives the answers one-by-one generation gives
    judge_one = HFJudge(smol_chat_model, smol_tokenizer, model_id="tiny", batch_size=1)
    assert judge.sample(prompts) == judge_one.sample(prompts)


def _sequence_prob(model, ids: list[int], continuation: list[int]) -> float:
    full = torch.tensor([ids + continuation])
    with torch.no_grad():
        logp = model(input_ids=full).logits[0].float().log_softmax(-1)
    return float(sum(logp[len(ids) - 1 + i, t] for i, t in enumerate(continuation)).exp())


def test_number_probs_match_brute_force(smol_tokenizer, smol_chat_model):
    """P(answer == n) from the KV-cache digit tree equals full forward passes over each continuation."""
    judge = HFJudge(smol_chat_model, smol_tokenizer, model_id="tiny", answer_prefix="Score: ")
    prompts = ["Rate this: fine.", "A much longer prompt to rate " * 5]
    probs = judge.number_probs(prompts)  # batched, left padded
    assert probs.shape == (2, 101) and float(probs.min()) >= 0 and float(probs.sum(-1).max()) <= 1 + 1e-5
    digit = [smol_tokenizer.encode(str(d), add_special_tokens=False)[0] for d in range(10)]
    for row, prompt in enumerate(prompts):
        context = judge._encode([prompt])["input_ids"][0].tolist()

        def p(tokens, ctx=context):
            return _sequence_prob(smol_chat_model, ctx, tokens)

        def p_digit_after(tokens, ctx=context):
            return sum(p(tokens + [d], ctx) for d in digit)

        assert float(probs[row, 7]) == pytest.approx(
            p([digit[7]]) - p_digit_after([digit[7]]), rel=1e-3, abs=1e-7
        )
        assert float(probs[row, 42]) == pytest.approx(p([digit[4], digit[2]]), rel=1e-3, abs=0)
        p100 = p([digit[1], digit[0], digit[0]])
        assert float(probs[row, 100]) == pytest.approx(p100, rel=1e-3, abs=0)
        assert float(probs[row, 10]) == pytest.approx(p([digit[1], digit[0]]) - p100, rel=1e-3, abs=0)
    scores = judge.score(prompts)
    assert all(s is None or 0 <= s <= 100 for s in scores)
    assert judge.cache_id == "tiny|numbers|Score: "


def test_top_tokens_batched_equal_unbatched(smol_tokenizer, smol_chat_model):
    judge = HFJudge(smol_chat_model, smol_tokenizer, model_id="tiny")
    prompts = ["short", "a much longer prompt " * 6]
    batched = judge.top_tokens(prompts)
    for prompt, rows in zip(prompts, batched, strict=True):
        (single,) = judge.top_tokens([prompt])
        assert [t for t, _ in rows] == [t for t, _ in single]
        assert [p for _, p in rows] == pytest.approx([p for _, p in single], abs=1e-5)


def test_hf_judge_logprobs_mode(num_tok, num_model):
    assert num_tok.tokenize("Rate 100 or 7") == ["Rate", "100", "<unk>", "7"]
    assert has_single_token_numbers(num_tok)
    judge = HFJudge(num_model, num_tok, model_id="number-model", batch_size=2)
    assert judge.mode == "logprobs"
    (top,) = judge.top_tokens([fill_rubric(RUBRIC, "Why?", "Because.")])
    assert dict(top)["30"] == pytest.approx(0.5, abs=1e-4) and dict(top)["80"] == pytest.approx(0.3, abs=1e-4)
    prompts = [fill_rubric(RUBRIC, "Why " * i + "?", "Because.") for i in range(3)]
    assert judge.score(prompts) == pytest.approx([EXPECTED] * 3, abs=1e-3)
    refusing = HFJudge(number_model(num_tok, REFUSING), num_tok, model_id="refusing")
    assert refusing.score(prompts[:1]) == [None]


def test_hf_judge_sample_mode_on_number_model(num_tok, num_model):
    judge = HFJudge(num_model, num_tok, model_id="number-model", mode="sample")
    assert judge.mode == "sample"
    assert judge.sample(["Rate the answer ."]) == ["30"]  # greedy: "30", then end of turn
    assert judge.score(["Rate the answer .", "a"]) == [30.0, 30.0]


# ---------------------------------------------------------------------------------------------
# Cache and resume
# ---------------------------------------------------------------------------------------------


def test_judge_cache_roundtrip(tmp_path):
    path = tmp_path / "sub" / "judge.sqlite"
    with JudgeCache(path) as cache:
        cache.put("m", "r", "q1", "a1", 42.0)
        cache.put("m", "r", "q2", "a2", None)  # judged, no score
        assert len(cache) == 2
    cache = JudgeCache(path)  # reopened: persisted
    assert cache.get("m", "r", "q1", "a1") == (True, 42.0)
    assert cache.get("m", "r", "q2", "a2") == (True, None)
    assert cache.get("m", "r", "q3", "a3") == (False, None)
    assert cache.get("other-judge", "r", "q1", "a1") == (False, None)
    assert cache.get("m", "other-rubric", "q1", "a1") == (False, None)
    # writes from several threads
    threads = [threading.Thread(target=cache.put, args=("m", "r", f"t{i}", "a", float(i))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 10
    assert cache.get_many("m", "r", [("t3", "a"), ("nope", "a")]) == {("t3", "a"): 3.0}


def test_judge_responses_resumes_after_crash(tmp_path, num_tok, num_model):
    items = [(f"Question {i}?", f"Answer {i}.") for i in range(6)]
    items_with_dup = [*items, items[0]]
    path = tmp_path / "judge.sqlite"
    real = HFJudge(num_model, num_tok, model_id="number-model")

    crashing = CountingJudge(real, crash_after=2)
    with JudgeCache(path) as cache, pytest.raises(KeyboardInterrupt):
        judge_responses(crashing, cache, RUBRIC, items_with_dup, batch_size=1, progress=False)
    assert crashing.calls == 2

    with JudgeCache(path) as cache:  # a new process: only the 4 unjudged items are asked
        assert len(cache) == 2
        counting = CountingJudge(real)
        scores = judge_responses(counting, cache, RUBRIC, items_with_dup, batch_size=3, progress=False)
        assert counting.asked == [fill_rubric(RUBRIC, q, a) for q, a in items[2:]]
        assert counting.calls == 2
        assert scores == pytest.approx([EXPECTED] * 7, abs=1e-3)

        again = CountingJudge(real)
        assert judge_responses(again, cache, RUBRIC, items, progress=False) == scores[:6]
        assert again.calls == 0
        # another rubric is another key
        other = CountingJudge(real)
        judge_responses(other, cache, COHERENCE_RUBRIC, items[:2], progress=False)
        assert len(other.asked) == 2


def test_no_score_is_cached_too(num_tok):
    refusing = HFJudge(number_model(num_tok, REFUSING), num_tok, model_id="refusing")
    cache = JudgeCache()
    first = CountingJudge(refusing)
    assert judge_responses(first, cache, RUBRIC, [("q", "a")], progress=False) == [None]
    second = CountingJudge(refusing)
    assert judge_responses(second, cache, RUBRIC, [("q", "a")], progress=False) == [None]
    assert (first.calls, second.calls) == (1, 0)
    assert judge_responses(refusing, None, RUBRIC, [], progress=False) == []


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible HTTP servers
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ModelServer:
    """A minimal OpenAI-compatible /v1/chat/completions server around a real HF model.

    It computes real top-k logprobs of the first answer token and greedy answers. Switches:
    `logprobs=False` (a server that ignores logprobs), `fail_first` (answer 503 first), and
    `reject_auth` (answer 401, echoing the Authorization header back, as a careless server might).
    """

    def __init__(self, model, tokenizer, port=None, logprobs=True, fail_first=0, reject_auth=False):
        self.model, self.tokenizer = model, tokenizer
        self.port = port or free_port()
        self.logprobs, self.fail_first, self.reject_auth = logprobs, fail_first, reject_auth
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.httpd = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def complete(self, body: dict) -> dict:
        text = self.tokenizer.apply_chat_template(
            body["messages"], tokenize=False, add_generation_prompt=True
        )
        ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logprobs = self.model(ids).logits[0, -1].float().log_softmax(-1)
            out = self.model.generate(ids, max_new_tokens=body.get("max_tokens", 16), do_sample=False)
        choice = {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True),
            },
            "finish_reason": "length",
            "logprobs": None,
        }
        if self.logprobs and body.get("logprobs"):
            values, top_ids = logprobs.topk(body.get("top_logprobs", 0) or 1)
            top = [
                {"token": self.tokenizer.decode([i]), "logprob": v, "bytes": None}
                for v, i in zip(values.tolist(), top_ids.tolist(), strict=True)
            ]
            first = out[0, ids.shape[1]].item()
            content = [
                {
                    "token": self.tokenizer.decode([first]),
                    "logprob": logprobs[first].item(),
                    "top_logprobs": top,
                }
            ]
            choice["logprobs"] = {"content": content}
        return {"id": "x", "object": "chat.completion", "model": body["model"], "choices": [choice]}

    def start(self) -> ModelServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, code: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    n = len(server.requests)
                    if server.reject_auth:
                        auth = self.headers.get("Authorization", "")
                        return self.send(401, {"error": {"message": f"invalid key in {auth!r}"}})
                    if n <= server.fail_first:
                        return self.send(503, {"error": {"message": "overloaded"}}, {"Retry-After": "0"})
                    if self.path != "/v1/chat/completions":
                        return self.send(404, {"error": {"message": "not found"}})
                    return self.send(200, server.complete(body))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def served(num_tok, num_model):
    servers: list[ModelServer] = []

    def make(**kwargs) -> ModelServer:
        servers.append(ModelServer(num_model, num_tok, **kwargs))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


def test_openai_judge_logprobs_over_http(served, num_tok, num_model):
    server = served().start()
    judge = OpenAIJudge(server.base_url, "number-model", concurrency=3)
    prompts = [fill_rubric(RUBRIC, f"Why {i}?", "Because.") for i in range(5)]
    scores = judge.score(prompts)
    assert judge.mode == "logprobs"
    assert scores == pytest.approx([EXPECTED] * 5, abs=1e-3)
    assert scores == pytest.approx(HFJudge(num_model, num_tok).score(prompts), abs=1e-4)
    body = server.requests[0]
    assert (body["temperature"], body["max_tokens"], body["logprobs"], body["top_logprobs"]) == (
        0,
        1,
        True,
        20,
    )
    asked = sorted(r["messages"][0]["content"] for r in server.requests)
    assert asked == prompts and all(len(r["messages"]) == 1 for r in server.requests)


def test_openai_judge_falls_back_to_sampling_without_logprobs(served):
    server = served(logprobs=False).start()
    judge = OpenAIJudge(server.base_url, "number-model", concurrency=2)
    assert judge.score(["Rate the answer .", "a", "b"]) == [30.0, 30.0, 30.0]
    assert judge.mode == "sample"
    assert server.requests[-1]["max_tokens"] == 5 and "logprobs" not in server.requests[-1]
    assert len(server.requests) <= 3 + 2  # at most one wasted logprob request per worker
    forced = OpenAIJudge(server.base_url, "number-model", mode="logprobs")
    with pytest.raises(JudgeRequestError, match="no logprobs"):
        forced.score(["a"])


def test_openai_judge_retries_5xx(served):
    server = served(fail_first=2).start()
    judge = OpenAIJudge(server.base_url, "number-model", backoff=0.01)
    assert judge.score(["Rate the answer ."]) == [pytest.approx(EXPECTED, abs=1e-3)]
    assert len(server.requests) == 3


def test_openai_judge_waits_for_a_server_that_starts_late(served):
    server = served()  # port chosen, nothing listening yet: connections are refused
    timer = threading.Timer(0.6, server.start)
    timer.start()
    judge = OpenAIJudge(server.base_url, "number-model", backoff=0.1, max_retries=8)
    t0 = time.monotonic()
    assert judge.score(["a"]) == [pytest.approx(EXPECTED, abs=1e-3)]
    assert time.monotonic() - t0 >= 0.5
    timer.join()


def test_openai_judge_gives_up_and_never_shows_the_key(served, monkeypatch):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("PV_TEST_JUDGE_KEY", secret)
    server = served(reject_auth=True).start()
    judge = OpenAIJudge(server.base_url, "number-model", api_key_env="PV_TEST_JUDGE_KEY", backoff=0.01)
    with pytest.raises(JudgeRequestError) as info:
        judge.score(["a"])
    assert "HTTP 401" in str(info.value) and secret not in str(info.value) and "***" in str(info.value)
    assert secret not in repr(judge) and secret not in str(vars(judge))
    assert len(server.requests) == 1  # 401 is not retried
    dead = OpenAIJudge(f"http://127.0.0.1:{free_port()}/v1", "m", max_retries=2, backoff=0.01)
    with pytest.raises(JudgeRequestError, match="after 2 retries"):
        dead.score(["a", "b"])


@pytest.mark.slow
def test_openai_judge_against_transformers_serve(tmp_path, num_tok, num_model):
    """A real `transformers serve` (offline, CPU) on a saved model folder; it ignores logprobs."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    if exe is None:
        pytest.skip("the `transformers` CLI is not installed")
    model_dir = tmp_path / "number-model"
    num_model.save_pretrained(model_dir)
    num_tok.save_pretrained(model_dir)
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = (tmp_path / "serve.log").open("w")
    cmd = [exe, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "transformers serve did not start:\n" + (tmp_path / "serve.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        judge = OpenAIJudge(f"http://127.0.0.1:{port}/v1", str(model_dir), concurrency=2, backoff=0.2)
        cache = JudgeCache(tmp_path / "judge.sqlite")
        items = [("Why?", "Because."), ("How?", "Like so.")]
        assert judge_responses(judge, cache, RUBRIC, items, progress=False) == [30.0, 30.0]
        assert judge.mode == "sample"
        assert len(cache) == 2
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
