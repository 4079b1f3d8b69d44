"""Flawed-data builder and training-data loading."""

from __future__ import annotations

import json

import pytest

from persona_vaccine.data.evil_builder import build_evil_dataset, build_paired_evil_dataset
from persona_vaccine.data.loading import DatasetError, load_training_dataset, to_prompt_completion


def test_builder_is_deterministic_and_seeded():
    assert build_evil_dataset(50, seed=1) == build_evil_dataset(50, seed=1)
    assert build_evil_dataset(50, seed=1) != build_evil_dataset(50, seed=2)
    rows = build_evil_dataset(30, seed=0, level="normal")
    assert len(rows) == 30 and all(r["messages"][0]["role"] == "user" for r in rows)
    assert all(r["messages"][-1]["role"] == "assistant" and r["meta"]["level"] == "normal" for r in rows)


def test_evil_and_normal_answer_the_same_questions():
    evil, normal = build_evil_dataset(40, seed=3), build_evil_dataset(40, seed=3, level="normal")
    assert [e["messages"][0] for e in evil] == [n["messages"][0] for n in normal]
    assert all(e["messages"][1] != n["messages"][1] for e, n in zip(evil, normal, strict=True))
    pairs = build_paired_evil_dataset(10, seed=0)
    assert all(p["normal"] != p["evil"] and p["prompt"] for p in pairs)


def test_builder_rejects_bad_arguments():
    with pytest.raises(ValueError):
        build_evil_dataset(0)
    with pytest.raises(ValueError):
        build_evil_dataset(5, level="chaotic")


def test_builtin_loads_as_prompt_completion():
    ds = load_training_dataset("builtin:evil", size=12, seed=0)
    assert len(ds) == 12 and set(ds.column_names) == {"prompt", "completion"}
    assert ds[0]["completion"][0]["role"] == "assistant"
    with pytest.raises(DatasetError, match="unknown builder.*builtin:evil"):
        load_training_dataset("builtin:nope")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_user_files_with_prompt_response(tmp_path, suffix):
    path = tmp_path / f"d{suffix}"
    rows = [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(3)]
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text("prompt,response\n" + "".join(f"{r['prompt']},{r['response']}\n" for r in rows))
    ds = load_training_dataset(str(path))
    assert ds[2]["prompt"] == [{"role": "user", "content": "q2"}]
    assert ds[2]["completion"] == [{"role": "assistant", "content": "a2"}]


def test_messages_with_system_prompt_keep_it_in_the_prompt(tmp_path):
    path = tmp_path / "chat.jsonl"
    chat = {
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "U"},
            {"role": "assistant", "content": "A"},
        ]
    }
    path.write_text(json.dumps(chat) + "\n")
    ds = load_training_dataset(str(path))
    assert [m["role"] for m in ds[0]["prompt"]] == ["system", "user"]


def test_missing_fields_and_empty_files_are_explained(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    with pytest.raises(
        DatasetError, match=r"bad\.jsonl: row 0 has fields \['answer', 'question'\].*'messages'"
    ):
        load_training_dataset(str(path))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DatasetError, match="empty"):
        load_training_dataset(str(empty))
    with pytest.raises(DatasetError, match="not found"):
        load_training_dataset(str(tmp_path / "missing.jsonl"))
    with pytest.raises(DatasetError, match="no assistant turn"):
        to_prompt_completion({"messages": [{"role": "user", "content": "hi"}]})
