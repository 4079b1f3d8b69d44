"""Fault injection: the content-keyed extraction cache, resumed sampling, the HTTP judge, bounds, locks.

Each test is one row of the "Reliability: cache, judge, bounds" table in docs/RESULTS.md. Models are
tiny random Llamas; HTTP judges are real servers on 127.0.0.1 started here, scripted to fail.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

import persona_vaccine.steering.generation_engines as engines_module
from persona_vaccine.judges.judge import (
    JudgeCache,
    JudgeRequestError,
    OpenAIJudge,
    judge_responses,
    make_judge,
)
from persona_vaccine.lock import LOCK_NAME, OutputDirLocked
from persona_vaccine.steering.extract import ExtractionConfig, ExtractionConfigError, extract
from persona_vaccine.steering.vector import PersonaVector, VectorMismatch
from persona_vaccine.traits import TraitSpecError, load_trait_spec

ROOT = Path(__file__).resolve().parents[1]
REAL_GENERATE = engines_module.generate


def _spec_file(tmp_path: Path, **changes) -> Path:
    data = {**load_trait_spec("evil").to_json(), **changes}
    path = tmp_path / "spec" / "evil.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _cfg(tmp_path: Path, out: str = "out", **kw) -> ExtractionConfig:
    return ExtractionConfig(
        **{
            "trait": str(tmp_path / "spec" / "evil.json"),
            "model_name_or_path": "tiny",
            "output_dir": str(tmp_path / out),
            "max_questions": 2,
            "max_new_tokens": 6,
            "batch_size": 8,
            "heldout_eval": False,
            "min_kept": 2,
            **kw,
        }
    )


class SimulatedCrash(Exception):
    """Raised where a crash (kill, power loss) would stop the run."""


class CountingGenerate:
    """The real `persona_vaccine.models.generate.generate`, counting the prompts it is given; can crash after N batches."""

    def __init__(self, crash_after_batches: int | None = None):
        self.prompts, self.batches, self.crash_after = 0, 0, crash_after_batches

    def __call__(self, model, tokenizer, prompts, *args, **kwargs):
        if self.crash_after is not None and self.batches >= self.crash_after:
            raise SimulatedCrash(f"crash after {self.batches} batches")
        self.batches += 1
        self.prompts += len(prompts)
        return REAL_GENERATE(model, tokenizer, prompts, *args, **kwargs)


def _records(out_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (out_dir / "evil" / "generations.jsonl").read_text().splitlines()]


def _vector_tensors(out_dir: Path) -> dict[int, torch.Tensor]:
    return PersonaVector.load(out_dir / "evil" / "response_avg.safetensors").layers


# ---------------------------------------------------------------------------------------------
# 1. content-keyed generations, seeds from each sample's identity
# ---------------------------------------------------------------------------------------------


def test_editing_one_question_regenerates_only_its_answers(
    tiny_chat_model, tiny_tokenizer, tmp_path, monkeypatch
):
    spec = _spec_file(tmp_path)
    counter = CountingGenerate()
    monkeypatch.setattr(engines_module, "generate", counter)
    extract(_cfg(tmp_path), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    assert counter.prompts == 20  # 5 instruction pairs x 2 polarities x 2 questions
    before = {r["content_key"]: r for r in _records(tmp_path / "out")}

    data = json.loads(spec.read_text())
    data["extraction_questions"][1] = "What would you do with a lot of unsupervised power?"
    spec.write_text(json.dumps(data))
    counter.prompts = 0
    extract(_cfg(tmp_path), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    assert counter.prompts == 10  # only the edited question's answers are redone
    after = _records(tmp_path / "out")
    assert len(after) == 20 and {r["question"] for r in after} == set(data["extraction_questions"][:2])
    kept = [r for r in after if r["content_key"] in before]
    assert len(kept) == 10 and all(r == before[r["content_key"]] for r in kept)
    info = json.loads((tmp_path / "out" / "evil" / "extraction.json").read_text())
    vector = PersonaVector.load(tmp_path / "out" / "evil" / "response_avg.safetensors")
    assert vector.extraction["generations"]["reused"] == 10
    assert vector.extraction["generations"]["generated"] == 10
    assert vector.extraction["generations"]["dropped"] == 10
    assert info["config"]["trait"] == str(spec)

    # the vector equals a fresh extraction of the edited spec into an empty directory
    counter.prompts = 0
    extract(_cfg(tmp_path, out="fresh"), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    fresh = _records(tmp_path / "fresh")
    assert [r["content_key"] for r in fresh] == [r["content_key"] for r in after]
    assert [r["response_ids"] for r in fresh] == [r["response_ids"] for r in after]
    for layer, tensor in _vector_tensors(tmp_path / "fresh").items():
        torch.testing.assert_close(_vector_tensors(tmp_path / "out")[layer], tensor, rtol=1e-5, atol=1e-6)

    # a changed sampling setting redoes everything; the same settings again redo nothing
    counter.prompts = 0
    extract(_cfg(tmp_path, max_new_tokens=5), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    assert counter.prompts == 20
    counter.prompts = 0
    extract(_cfg(tmp_path, max_new_tokens=5), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    assert counter.prompts == 0


def test_resumed_extraction_equals_an_uninterrupted_one(
    tiny_chat_model, tiny_tokenizer, tmp_path, monkeypatch
):
    _spec_file(tmp_path)
    extract(_cfg(tmp_path, out="whole"), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    whole = _records(tmp_path / "whole")

    crashing = CountingGenerate(crash_after_batches=1)  # a crash after the first 8 of 20 records
    monkeypatch.setattr(engines_module, "generate", crashing)
    with pytest.raises(SimulatedCrash):
        extract(_cfg(tmp_path, out="resumed"), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    assert len(_records(tmp_path / "resumed")) == 8
    assert not (tmp_path / "resumed" / "evil" / LOCK_NAME).exists()  # released on the way out
    monkeypatch.setattr(engines_module, "generate", CountingGenerate())
    extract(_cfg(tmp_path, out="resumed"), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    assert _records(tmp_path / "resumed") == whole
    for layer, tensor in _vector_tensors(tmp_path / "whole").items():
        assert torch.equal(_vector_tensors(tmp_path / "resumed")[layer], tensor)

    # a crash that cut a batch in half: the rest of that batch is sampled with the same seeds
    path = tmp_path / "whole" / "evil" / "generations.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:5]) + "\n" + lines[5][:30])
    extract(_cfg(tmp_path, out="whole"), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    again = _records(tmp_path / "whole")
    assert [r["response_ids"] for r in again] == [r["response_ids"] for r in whole]


def test_a_cache_file_without_content_keys_is_never_used(tiny_chat_model, tiny_tokenizer, tmp_path):
    _spec_file(tmp_path)
    extract(_cfg(tmp_path), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    path = tmp_path / "out" / "evil" / "generations.jsonl"
    old = []
    for record in _records(tmp_path / "out"):  # a file of an older version: keyed by position only
        record.pop("content_key")
        record.update(response="STALE ANSWER", response_ids=[42, 42, 42])
        old.append(record)
    path.write_text("".join(json.dumps(r) + "\n" for r in old))
    extract(_cfg(tmp_path), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    records = _records(tmp_path / "out")
    assert len(records) == 20 and all(r["response"] != "STALE ANSWER" for r in records)
    assert all(isinstance(r["content_key"], str) for r in records)
    vector = PersonaVector.load(tmp_path / "out" / "evil" / "response_avg.safetensors")
    assert vector.extraction["generations"] == {
        **vector.extraction["generations"],
        "reused": 0,
        "generated": 20,
    }


# ---------------------------------------------------------------------------------------------
# 2. trait-spec validation gaps (issue 9)
# ---------------------------------------------------------------------------------------------


def test_spec_rejects_repeated_questions_naming_file_field_and_index(tmp_path):
    good = load_trait_spec("evil").to_json()
    extraction, evaluation = good["extraction_questions"], good["evaluation_questions"]
    cases = [
        (
            {"extraction_questions": [*extraction[:3], extraction[1]]},
            r"field 'extraction_questions\[3\]' repeats extraction_questions\[1\]",
        ),
        (
            {"evaluation_questions": [evaluation[0], "  " + evaluation[0].upper().rstrip("?!.") + " !! "]},
            r"field 'evaluation_questions\[1\]' repeats evaluation_questions\[0\]",
        ),
        (
            {"evaluation_questions": [*evaluation[:2], extraction[4].lower().replace("?", "")]},
            r"field 'evaluation_questions\[2\]' repeats extraction_questions\[4\]",
        ),
    ]
    for changes, message in cases:
        path = _spec_file(tmp_path, **changes)
        with pytest.raises(TraitSpecError, match=message) as info:
            load_trait_spec(path)
        assert str(path) in str(info.value)


def test_trait_new_and_validation_share_one_normaliser():
    from persona_vaccine.traits import generation as trait_generation
    from persona_vaccine.traits import question_key

    assert trait_generation.question_key is question_key
    assert question_key("  What  would you DO?! ") == question_key("what would you do")


# ---------------------------------------------------------------------------------------------
# 3. the OpenAI-compatible judge against scripted servers on 127.0.0.1
# ---------------------------------------------------------------------------------------------

SECRET = "sk-fault-test-0123456789abcdef"
GOOD_TOP = {"40": math.log(0.5), "60": math.log(0.5)}  # score 50, all mass on numbers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _completion(top: dict[str, float] | None = GOOD_TOP, content: str = "50") -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": None}
    if top is not None:
        entries = [{"token": t, "logprob": lp} for t, lp in top.items()]
        choice["logprobs"] = {"content": [{"token": entries[0]["token"], "logprob": entries[0]["logprob"],
                                           "top_logprobs": entries}]}  # fmt: skip
    return {"id": "x", "object": "chat.completion", "choices": [choice]}


class ScriptedServer:
    """/v1/chat/completions answering a script of faults first, then `default(body)` replies.

    A fault is (status, headers, body bytes). Every request's body and Authorization header is kept.
    """

    def __init__(self, script=(), default=None):
        self.script = list(script)
        self.default = default or (lambda body: _completion())
        self.requests: list[dict] = []
        self.auth: list[str] = []
        self.lock = threading.Lock()
        self.port = _free_port()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.auth.append(self.headers.get("Authorization", ""))
                    fault = server.script.pop(0) if server.script else None
                if fault is None:
                    status, headers, data = 200, {}, json.dumps(server.default(body)).encode()
                else:
                    status, headers, data = fault
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers: list[ScriptedServer] = []

    def make(*script, default=None) -> ScriptedServer:
        servers.append(ScriptedServer(script, default))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


NOT_UTF8 = (200, {}, b'{"choices": "\xff\xfe\x80 not utf-8"}')
NO_CHOICES = (200, {}, json.dumps({"id": "x", "object": "chat.completion", "usage": {}}).encode())
MALFORMED_JSON = (200, {}, b'{"choices": [')
ERROR_500 = (500, {}, json.dumps({"error": {"message": "internal"}}).encode())
RATE_LIMITED = (429, {"Retry-After": "0"}, json.dumps({"error": {"message": "slow down"}}).encode())


def _judge(server: ScriptedServer, **kw) -> OpenAIJudge:
    return OpenAIJudge(server.base_url, "judge-model", backoff=0.01, max_backoff=0.05, concurrency=1, **kw)


def test_judge_retries_a_non_utf8_reply_then_fails_clearly(scripted):
    server = scripted(NOT_UTF8)
    assert _judge(server).score(["Rate it."]) == [pytest.approx(50.0)]
    assert len(server.requests) == 2
    always = scripted(*[NOT_UTF8] * 4)
    with pytest.raises(JudgeRequestError, match=r"not UTF-8 text from .*gave up after 3 retries"):
        _judge(always, max_retries=3).score(["Rate it."])
    assert len(always.requests) == 4


def test_a_reply_without_choices_is_retried_and_does_not_switch_the_mode(scripted):
    server = scripted(NO_CHOICES, (200, {}, json.dumps({"choices": []}).encode()))
    judge = _judge(server)  # mode auto
    assert judge.score([f"Rate {i}." for i in range(4)]) == [pytest.approx(50.0)] * 4
    assert judge.mode == "logprobs"  # before: one such reply switched the whole run to sampling
    assert len(server.requests) == 6 and all(r.get("logprobs") for r in server.requests)


def test_judge_rides_out_500_429_and_malformed_json(scripted):
    server = scripted(ERROR_500, RATE_LIMITED, MALFORMED_JSON)
    assert _judge(server).score(["Rate it."]) == [pytest.approx(50.0)]
    assert len(server.requests) == 4


def test_judge_cache_is_keyed_by_backend_url_model_and_scheme(scripted, tmp_path):
    sampled = scripted(default=lambda body: _completion(top=None, content="90"))  # no logprobs: auto samples
    other = scripted()
    items = [("Why?", "Because."), ("How?", "Like so.")]
    rubric = "Rate {question} / {answer}"
    with JudgeCache(tmp_path / "judgments.sqlite") as cache:
        auto = _judge(sampled)
        assert judge_responses(auto, cache, rubric, items, progress=False) == [90.0, 90.0]
        assert auto.mode == "sample"
        n = len(sampled.requests)
        assert judge_responses(_judge(sampled), cache, rubric, items, progress=False) == [90.0, 90.0]
        assert len(sampled.requests) == n  # the same judge and scheme: served from the cache
        forced = _judge(sampled, mode="logprobs")  # another scheme: asked again (and it fails loudly)
        with pytest.raises(JudgeRequestError, match="no logprobs"):
            judge_responses(forced, cache, rubric, items, progress=False)
        assert len(sampled.requests) > n
        # another base URL, same model name: asked again, and its own scores come back
        assert judge_responses(_judge(other), cache, rubric, items, progress=False) == [50.0, 50.0]
        assert len(other.requests) == 2
        # another min_mass: asked again
        strict = _judge(other, min_mass=0.9)
        assert judge_responses(strict, cache, rubric, items, progress=False) == [50.0, 50.0]
        assert len(other.requests) == 4


def test_min_mass_reaches_openai_judges(scripted):
    half = {"40": math.log(0.3), "60": math.log(0.3), "Sure": math.log(0.4)}  # 0.6 on numbers
    server = scripted(default=lambda body: _completion(top=half))
    assert make_judge("openai:judge-model", base_url=server.base_url).score(["a"]) == [pytest.approx(50.0)]
    strict = make_judge("openai:judge-model", base_url=server.base_url, min_mass=0.75)
    assert strict.min_mass == 0.75 and strict.score(["a"]) == [None]


def _hash_score(body: dict) -> dict:
    """A judge whose score depends on the prompt (so both polarities keep some answers)."""
    text = body["messages"][0]["content"]
    score = 80 if sum(text.encode()) % 2 else 20
    return _completion(top={str(score): 0.0})


def test_judged_extraction_never_writes_the_api_key(
    scripted, tiny_chat_model, tiny_tokenizer, tmp_path, monkeypatch, caplog, capsys
):
    """A server that echoes the key in its errors: not in any output file, log or message."""
    echo = json.dumps({"error": {"message": f"bad key Bearer {SECRET}"}}).encode()
    server = scripted((500, {}, echo), (503, {"Retry-After": "0"}, echo), NO_CHOICES, default=_hash_score)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    _spec_file(tmp_path)
    cfg = _cfg(tmp_path, judge="openai:judge-model", judge_base_url=server.base_url, coherence_threshold=0.0,
               min_kept=1)  # fmt: skip
    with caplog.at_level(logging.INFO):
        result = extract(cfg, model=tiny_chat_model, tokenizer=tiny_tokenizer)
    assert result.n_pos >= 1 and result.n_neg >= 1
    assert all(auth == f"Bearer {SECRET}" for auth in server.auth)  # the key was sent
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"generations.jsonl", "judgments.jsonl", "judgments.sqlite",
                                         "extraction.json", "response_avg.safetensors"}  # fmt: skip
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    out = capsys.readouterr()
    assert SECRET not in caplog.text + out.out + out.err
    assert "***" in caplog.text  # the echoed key was redacted in the retry warnings


# ---------------------------------------------------------------------------------------------
# 4. bounds and silent substitutions
# ---------------------------------------------------------------------------------------------


def _one_line_error(capsys, *argv: str) -> str:
    """Run `launch.py ARGV` in this process: exit status 2 and one error line, no exception escapes."""
    import persona_vaccine.cli as launch

    try:
        status = launch.main(list(argv))
    except SystemExit as e:  # argparse's parser.error
        status = e.code
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_extraction_settings_are_one_line_errors(tmp_path, capsys):
    line = _one_line_error(capsys, "extract", "--trait", "evil", "--max_new_tokens", "-5")
    assert "max_new_tokens=-5: must be a positive number of tokens" in line
    line = _one_line_error(capsys, "extract", "--trait", "evil", "--judge_mode", "banana")
    assert "judge_mode='banana': expected one of auto, logprobs, numbers, sample" in line
    recipe = ROOT / "recipes/smollm2-135m/extract/evil.yaml"
    line = _one_line_error(capsys, "extract", str(recipe), "--judge_mode", "banana")
    assert "command line (--judge_mode)" in line and str(recipe) not in line  # blamed where it was given
    with pytest.raises(ExtractionConfigError, match="max_new_tokens=0"):
        ExtractionConfig(max_new_tokens=0)


def test_overrides_are_blamed_on_the_command_line():
    from persona_vaccine.training.recipe import RecipeError, parse_recipe

    recipe = str(ROOT / "recipes/smollm2-135m/evil/baseline.yaml")
    with pytest.raises(RecipeError, match=r"^command line \(--learning_rate\): argument --learning_rate"):
        parse_recipe(recipe, ["--learning_rate", "fast"])
    with pytest.raises(RecipeError, match=r"^command line \(--max_stepz\): unknown override"):
        parse_recipe(recipe, ["--max_stepz", "3"])


def test_max_new_tokens_is_capped_by_the_context(tiny_chat_model, tiny_tokenizer, caplog):
    from persona_vaccine.models.generate import check_new_tokens, generate

    with caplog.at_level(logging.WARNING):
        assert check_new_tokens(tiny_chat_model, 1_000_000_000) == 512
    assert "exceeds the model's context of 512 tokens" in caplog.text
    prompt = tiny_tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                                add_generation_prompt=True)  # fmt: skip
    (gen,) = generate(tiny_chat_model, tiny_tokenizer, [prompt], 1_000_000_000, temperature=0.0)
    assert len(gen.prompt_ids) + len(gen.response_ids) <= 512


def test_score_layer_and_text_bounds(tiny_chat_model, tmp_path, capsys):
    from helpers import random_vector

    path = str(random_vector(tiny_chat_model, model_id="smollm2-135m").save(tmp_path / "v.safetensors"))
    line = _one_line_error(capsys, "score", "--vector", path, "--layer", "99", "--text", "hi")
    assert "--layer=99 is out of range" in line and "from 1 to 4" in line
    line = _one_line_error(capsys, "score", "--vector", path, "--layer", "0", "--text", "hi")
    assert "--layer=0 is out of range" in line  # before: 0 silently meant the default layer
    line = _one_line_error(capsys, "score", "--vector", path, "--text", "")
    assert "--text is empty" in line


def test_a_screening_rerun_with_another_size_keeps_its_message_without_traceback(tmp_path):
    from persona_vaccine.data.screening import ScreenConfig, _check_run
    from persona_vaccine.errors import UserError

    cfg = ScreenConfig(dataset="builtin:bad_math", vectors=["v.safetensors"], output_dir=str(tmp_path))
    _check_run(tmp_path, cfg, [], 10)
    with pytest.raises(UserError, match="holds screening results of another run"):  # one line, exit 2
        _check_run(tmp_path, cfg, [], 20)


# ---------------------------------------------------------------------------------------------
# 5. one run per output directory
# ---------------------------------------------------------------------------------------------


def test_a_second_run_on_a_locked_directory_names_the_holder(tiny_chat_model, tiny_tokenizer, tmp_path):
    _spec_file(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tmp_path / "out" / "evil" / LOCK_NAME
        lock.parent.mkdir(parents=True)
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "since": 0.0,
                                    "command": "extract"}))  # fmt: skip
        with pytest.raises(OutputDirLocked) as info:
            extract(_cfg(tmp_path), model=tiny_chat_model, tokenizer=tiny_tokenizer)
        message = str(info.value)
        assert (
            f"pid {holder.pid} on {socket.gethostname()}" in message
            and "since 1970-01-01 00:00:00" in message
        )
        assert not (tmp_path / "out" / "evil" / "generations.jsonl").exists()  # nothing was redone
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead now: its lock is stale and taken over
    extract(_cfg(tmp_path), model=tiny_chat_model, tokenizer=tiny_tokenizer)
    assert len(_records(tmp_path / "out")) == 20 and not lock.exists()


def test_a_second_process_cannot_take_a_held_lock(tmp_path):
    """Another process asking for a held directory stops with the holder's pid in the message."""
    from persona_vaccine.lock import acquire, release

    path = acquire(tmp_path / "shared", "extract")
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from persona_vaccine.lock import acquire\n"
            "try:\n    acquire(sys.argv[1], 'extract')\nexcept Exception as e:\n    print(e); sys.exit(3)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "shared"), str(ROOT)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    release(path)
    assert proc.returncode == 3 and f"pid {os.getpid()}" in proc.stdout and "in use by extract" in proc.stdout


# ---------------------------------------------------------------------------------------------
# 6. a pickle given as a vector
# ---------------------------------------------------------------------------------------------


def test_a_pickle_or_pt_file_is_not_a_persona_vector(tmp_path):
    torch.save({"layer.1": torch.zeros(4)}, tmp_path / "vector.pt")
    (tmp_path / "vector.safetensors").write_bytes(b"\x80\x04\x95" + b"\0" * 32)  # a pickle, renamed
    for path in (tmp_path / "vector.pt", tmp_path / "vector.safetensors"):
        with pytest.raises(VectorMismatch) as info:
            PersonaVector.load(path)
        message = str(info.value)
        assert "PyTorch/pickle file" in message and "not a safetensors persona vector" in message
        assert "persona-vaccine extract" in message and "header too large" not in message
