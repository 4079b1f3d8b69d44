"""Projection-difference screening: scores, cache and resume, drop rules, report, 2 worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_llama
from helpers import pairwise_auc, random_vector

from persona_vaccine.data.screening import (
    DropRule,
    ScreenConfig,
    apply_drop_rule,
    finished_rows,
    load_rows,
    screen_dataset,
)
from persona_vaccine.models.chat import format_chat

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def vector_file(tiny_chat_model, tmp_path):
    path = tmp_path / "evil.safetensors"
    random_vector(tiny_chat_model, scale=1.0).save(path)
    return path


def _cfg(tmp_path, vector_file, **kw) -> ScreenConfig:
    defaults = dict(
        dataset="builtin:evil",
        dataset_level="normal,level2",
        dataset_size=6,
        vectors=[str(vector_file)],
        output_dir=str(tmp_path / "screen"),
        max_new_tokens=8,
        batch_size=4,
        chunk_size=4,
    )
    return ScreenConfig(**{**defaults, **kw})


def _hidden(model, ids: list[int], layer: int) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[layer][0]


def test_scores_follow_the_definition(tiny_chat_model, tiny_tokenizer, vector_file, tmp_path):
    cfg = _cfg(tmp_path, vector_file)
    summary, rows = screen_dataset(cfg, tiny_chat_model, tiny_tokenizer)
    assert summary["samples"] == 12 and [r["index"] for r in rows] == list(range(12))
    layer = rows[0]["scores"]["evil"]["layer"]
    assert layer == 2  # the middle of 4 layers: no calibrated layer in a random vector
    from persona_vaccine.steering.vector import PersonaVector

    unit = PersonaVector.load(vector_file).unit(layer)
    row = rows[7]
    sample = load_rows(cfg)[7]
    prompt_ids = tiny_tokenizer(format_chat(tiny_tokenizer, sample["prompt"]), add_special_tokens=False)[
        "input_ids"
    ]
    answer_ids = tiny_tokenizer(row["response"], add_special_tokens=False)["input_ids"]
    cached = Path(cfg.output_dir) / "base_responses" / "rank0.jsonl"
    base_ids = next(
        b["response_ids"]
        for b in map(json.loads, cached.read_text().splitlines())
        if b["response"] == row["base_response"]
    )  # the generated ids: random tokens need not re-tokenise to themselves
    h_train = _hidden(tiny_chat_model, prompt_ids + answer_ids, layer)
    s = row["scores"]["evil"]
    torch.testing.assert_close(
        s["response_projection"], float(h_train[len(prompt_ids) :].mean(0) @ unit), rtol=1e-4, atol=1e-4
    )
    torch.testing.assert_close(
        s["prompt_last_projection"], float(h_train[len(prompt_ids) - 1] @ unit), rtol=1e-4, atol=1e-4
    )
    h_base = _hidden(tiny_chat_model, prompt_ids + base_ids, layer)
    assert s["base_projection"] == pytest.approx(float(h_base[len(prompt_ids) :].mean(0) @ unit), abs=1e-4)
    assert s["projection_diff"] == pytest.approx(s["response_projection"] - s["base_projection"])
    assert s["approx_diff"] == pytest.approx(s["response_projection"] - s["prompt_last_projection"])

    out = Path(cfg.output_dir)
    ranked = [json.loads(line) for line in (out / "screened.jsonl").read_text().splitlines()]
    values = [r["scores"]["evil"]["projection_diff"] for r in ranked]
    assert values == sorted(values, reverse=True) and ranked[0]["rank"] == 1
    by_level = summary["traits"]["evil"]["by_level"]
    assert set(by_level) == {"normal", "level2"}
    # how well the ranking score tells level2 rows from normal ones: every (level2, normal) pair
    level = {
        lv: [r["scores"]["evil"]["projection_diff"] for r in ranked if r["meta"]["level"] == lv]
        for lv in by_level
    }
    assert len(level["normal"]) == len(level["level2"]) == 6
    assert by_level["level2"]["auc_vs_normal"] == pytest.approx(
        pairwise_auc(level["level2"], level["normal"])
    )
    assert by_level["level2"]["mean"] == pytest.approx(sum(level["level2"]) / 6)
    assert summary["traits"]["evil"]["projection_diff"]["mean"] == pytest.approx(sum(values) / 12)
    report = (out / "report.html").read_text()
    assert "Riskiest" in report and "data:image/png;base64," in report
    assert ranked[0]["prompt"].replace("'", "&#x27;") in report  # text is HTML-escaped


def test_base_responses_are_cached_and_shared(tiny_chat_model, tiny_tokenizer, vector_file, tmp_path):
    cache = tmp_path / "base"
    # normal and level2 rows ask the same questions: 6 distinct prompts, generated once
    screen_dataset(_cfg(tmp_path, vector_file, base_cache_dir=str(cache)), tiny_chat_model, tiny_tokenizer)
    lines = (cache / "rank0.jsonl").read_text().splitlines()
    assert len(lines) == 6
    # another dataset (level1 only) with the same questions reuses them all
    screen_dataset(
        _cfg(
            tmp_path,
            vector_file,
            base_cache_dir=str(cache),
            dataset_level="level1",
            output_dir=str(tmp_path / "l1"),
        ),
        tiny_chat_model,
        tiny_tokenizer,
    )
    assert (cache / "rank0.jsonl").read_text().splitlines() == lines


def test_resume_after_a_crash_redoes_only_the_lost_samples(
    tiny_chat_model, tiny_tokenizer, vector_file, tmp_path
):
    cfg = _cfg(tmp_path, vector_file)
    _, first = screen_dataset(cfg, tiny_chat_model, tiny_tokenizer)
    shard = Path(cfg.output_dir) / "shards" / "rank0.jsonl"
    lines = shard.read_text().splitlines()
    shard.write_text("\n".join(lines[:5]) + "\n" + lines[5][:40])  # a crash mid-write
    assert len(finished_rows(Path(cfg.output_dir))) == 5
    _, second = screen_dataset(cfg, tiny_chat_model, tiny_tokenizer)
    assert [r["index"] for r in second] == list(range(12))
    for a, b in zip(first, second, strict=True):
        assert a["scores"]["evil"]["projection_diff"] == pytest.approx(
            b["scores"]["evil"]["projection_diff"], abs=1e-5
        )


def test_output_dir_of_another_run_is_refused(tiny_chat_model, tiny_tokenizer, vector_file, tmp_path):
    screen_dataset(_cfg(tmp_path, vector_file), tiny_chat_model, tiny_tokenizer)
    with pytest.raises(ValueError, match="another run.*dataset_size.*another output_dir"):
        screen_dataset(_cfg(tmp_path, vector_file, dataset_size=5), tiny_chat_model, tiny_tokenizer)


def test_cheap_approximation_generates_nothing(tiny_chat_model, tiny_tokenizer, vector_file, tmp_path):
    cfg = _cfg(tmp_path, vector_file, method="prompt_last")
    summary, rows = screen_dataset(cfg, tiny_chat_model, tiny_tokenizer)
    assert not (Path(cfg.output_dir) / "base_responses").exists()
    assert "projection_diff" not in rows[0]["scores"]["evil"] and "base_response" not in rows[0]
    assert summary["score"] == "approx_diff"


def test_drop_rules():
    rows = [
        {"index": i, "scores": {"evil": {"projection_diff": float(v)}}}
        for i, v in enumerate([3, -1, 7, 0, 5])
    ]
    dropped, log = apply_drop_rule(rows, DropRule("evil", threshold=2.5))
    assert dropped == {0, 2, 4} and log["dropped"] == 3 and log["kept"] == 2 and "> 2.5" in log["rule"]
    dropped, log = apply_drop_rule(rows, DropRule("evil", top_pct=40))
    assert dropped == {2, 4} and log["cut"] == 5.0
    with pytest.raises(ValueError, match="exactly one"):
        DropRule("evil")
    with pytest.raises(ValueError, match="0..100"):
        DropRule("evil", top_pct=150)


def test_bad_method_and_missing_vectors(tmp_path):
    with pytest.raises(ValueError, match="method 'x'"):
        ScreenConfig(method="x")
    with pytest.raises(ValueError, match="at least one persona vector"):
        screen_dataset(ScreenConfig(output_dir=str(tmp_path)))


@pytest.mark.slow
def test_two_worker_processes_match_one(tiny_tokenizer, tmp_path):
    """`accelerate launch --num_processes 2 launch.py screen`: sharded, then merged; equal to 1 process."""
    model = tiny_llama(vocab_size=len(tiny_tokenizer), layers=4, hidden=32, seed=0)
    model.config.pad_token_id = tiny_tokenizer.pad_token_id
    model.save_pretrained(tmp_path / "model")
    tiny_tokenizer.save_pretrained(tmp_path / "model")
    random_vector(model, model_id=str(tmp_path / "model")).save(tmp_path / "evil.safetensors")
    args = [
        "screen",
        "--vectors",
        str(tmp_path / "evil.safetensors"),
        "--dataset",
        "builtin:bad_math",
        "--dataset_level",
        "normal,level2",
        "--dataset_size",
        "10",
        "--max_new_tokens",
        "8",
        "--batch_size",
        "4",
        "--chunk_size",
        "3",
    ]
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
    }
    two = subprocess.run(
        ["accelerate", "launch", "--config_file", str(ROOT / "recipes/accelerate_configs/ddp.yaml"), "--num_processes", "2", str(ROOT / "launch.py"), *args,
         "--output_dir", str(tmp_path / "two")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert two.returncode == 0, (two.stdout[-2000:], two.stderr[-4000:])
    assert "screened 20 samples" in two.stdout
    shards = sorted(p.name for p in (tmp_path / "two" / "shards").iterdir())
    assert shards == ["rank0.jsonl", "rank1.jsonl"]
    sizes = [len((tmp_path / "two" / "shards" / s).read_text().splitlines()) for s in shards]
    assert sizes == [10, 10]  # each worker took half
    one = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *args, "--output_dir", str(tmp_path / "one")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]

    def scores(name: str) -> dict[int, float]:
        rows = (tmp_path / name / "screened.jsonl").read_text().splitlines()
        return {r["index"]: r["scores"]["evil"]["projection_diff"] for r in map(json.loads, rows)}

    a, b = scores("two"), scores("one")
    assert sorted(a) == sorted(b) == list(range(20))
    for i in a:
        assert a[i] == pytest.approx(b[i], abs=1e-4)


def test_a_screening_into_a_directory_in_use_stops_with_the_holder(
    tiny_chat_model, tiny_tokenizer, vector_file, tmp_path
):
    import socket

    from persona_vaccine.lock import LOCK_NAME, OutputDirLocked

    cfg = _cfg(tmp_path, vector_file)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out = Path(cfg.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / LOCK_NAME).write_text(
            json.dumps({"pid": holder.pid, "host": socket.gethostname(), "since": 0.0, "command": "screen"})
        )
        with pytest.raises(OutputDirLocked, match=f"pid {holder.pid}"):
            screen_dataset(cfg, tiny_chat_model, tiny_tokenizer)
        assert not (out / "screened.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
