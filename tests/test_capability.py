"""Capability benchmarks: the built-in items, log-likelihood scoring, held-out loss, lm-eval errors."""

from __future__ import annotations

import collections
import copy
import json
import sys
from pathlib import Path

import pytest
import torch

from persona_vaccine.models.chat import format_chat
from persona_vaccine.training import capability
from persona_vaccine.training.capability import (
    CapabilityError,
    capability_metrics,
    check_lm_eval_tasks,
    choice_logprobs,
    continuation_logprobs,
    heldout_loss,
    lm_eval_scores,
    load_items,
    mc_accuracy,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny-model forwards are latency-bound: one thread avoids OpenMP spin-waits on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_items_file_is_valid_and_balanced():
    items = load_items()
    assert len(items) >= 300
    assert all(len(set(item["choices"])) == 4 for item in items)
    counts = collections.Counter(item["answer"] for item in items)
    assert set(counts) == {0, 1, 2, 3}
    expected = len(items) / 4
    assert all(abs(c - expected) <= 0.1 * expected for c in counts.values()), counts
    questions = [item["question"] for item in items]
    assert len(set(questions)) == len(questions)
    assert len({item["id"] for item in items}) == len(items)
    assert len({item["category"] for item in items}) >= 5
    assert len(load_items(limit=7)) == 7


def test_mc_limit_samples_every_category_deterministically():
    items = load_items()
    categories = {item["category"] for item in items}
    sample = load_items(limit=len(categories) * 3)
    counts = collections.Counter(item["category"] for item in sample)
    assert set(counts) == categories and set(counts.values()) == {3}
    assert [i["id"] for i in sample] == [i["id"] for i in load_items(limit=len(categories) * 3)]
    assert items[:1] == load_items(limit=1)


def test_generator_reproduces_the_file(tmp_path):
    out = tmp_path / "items.jsonl"
    from persona_vaccine.data.capability import make_items

    assert make_items.main(["--out", str(out)]) == 0
    assert out.read_bytes() == capability.ITEMS_PATH.read_bytes()


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"id": "x", "category": "c", "question": "q?", "choices": ["a", "b", "c"], "answer": 0}, "choices"),
        (
            {"id": "x", "category": "c", "question": "q?", "choices": ["a", "b", "c", "d"], "answer": 4},
            "answer",
        ),
        ({"id": "x", "category": "c", "choices": ["a", "b", "c", "d"], "answer": 1}, "question"),
        (
            {"id": "x", "category": "c", "question": "q?", "choices": ["a", "a", "c", "d"], "answer": 1},
            "choices",
        ),
        ({"id": "", "category": "c", "question": "q?", "choices": ["a", "b", "c", "d"], "answer": 1}, "id"),
    ],
)
def test_loader_errors_name_file_line_and_field(tmp_path, line, field):
    good = {"id": "ok", "category": "c", "question": "fine?", "choices": ["a", "b", "c", "d"], "answer": 2}
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(line) + "\n")
    with pytest.raises(CapabilityError) as err:
        load_items(path)
    message = str(err.value)
    assert str(path) in message and "line 3" in message and f"'{field}'" in message


def test_loader_rejects_bad_json_and_duplicate_ids(tmp_path):
    good = {"id": "ok", "category": "c", "question": "fine?", "choices": ["a", "b", "c", "d"], "answer": 2}
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(CapabilityError, match="line 2"):
        load_items(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(CapabilityError, match=r"line 2: field 'id'.*line 1"):
        load_items(path)


def _brute_force(model, tokenizer, item):
    """Unbatched, uncached: one forward per (item, continuation) on the full sequence."""
    content = "\n".join(
        [f"Question: {item['question']}"]
        + [f"{letter}. {choice}" for letter, choice in zip("ABCD", item["choices"], strict=True)]
        + ["Answer with the letter."]
    )
    lettered = format_chat(tokenizer, [{"role": "user", "content": content}]) + "Answer:"
    cloze = format_chat(tokenizer, [{"role": "user", "content": item["question"]}]) + "Answer:"
    out = []
    for prompt, cont_text in [(lettered, f" {x}") for x in "ABCD"] + [
        (cloze, f" {c}") for c in item["choices"]
    ]:
        context = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        cont = tokenizer(cont_text, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([context + cont])
        with torch.no_grad():
            logp = model(input_ids=ids).logits[0].float().log_softmax(-1)
        out.append(sum(logp[len(context) - 1 + j, t].item() for j, t in enumerate(cont)))
    return out[:4], out[4:]


def _items_sample():
    items = load_items()
    by_category = {}
    for item in items:
        by_category.setdefault(item["category"], item)  # one per category: varied lengths
    return list(by_category.values())[:8]


def test_batched_scores_match_brute_force(tiny_chat_model, tiny_tokenizer):
    items = _items_sample()
    tiny_chat_model.train()
    batched = choice_logprobs(tiny_chat_model, tiny_tokenizer, items, batch_size=3)
    assert tiny_chat_model.training  # training mode restored
    tiny_chat_model.eval()
    letters_ok, text_ok, raw_ok = [], [], []
    for item, scores in zip(items, batched, strict=True):
        letter_ref, text_ref = _brute_force(tiny_chat_model, tiny_tokenizer, item)
        assert scores["letter"] == pytest.approx(letter_ref, abs=1e-4)
        assert scores["text"] == pytest.approx(text_ref, abs=1e-4)
        assert max(range(4), key=scores["letter"].__getitem__) == max(range(4), key=letter_ref.__getitem__)
        normed = [ll / len(f" {c}") for ll, c in zip(text_ref, item["choices"], strict=True)]
        letters_ok.append(max(range(4), key=letter_ref.__getitem__) == item["answer"])
        text_ok.append(max(range(4), key=normed.__getitem__) == item["answer"])
        raw_ok.append(max(range(4), key=text_ref.__getitem__) == item["answer"])

    result = mc_accuracy(tiny_chat_model, tiny_tokenizer, items, batch_size=5)
    n = len(items)
    assert result["n"] == n
    assert result["accuracy"] == pytest.approx(sum(letters_ok) / n)
    assert result["accuracy_text"] == pytest.approx(sum(text_ok) / n)
    assert result["accuracy_text_raw"] == pytest.approx(sum(raw_ok) / n)
    p = result["accuracy"]
    assert result["stderr"] == pytest.approx((p * (1 - p) / n) ** 0.5)
    assert sum(c["n"] for c in result["per_category"].values()) == n


def test_peft_wrapped_model_scores_like_the_base(tiny_chat_model, tiny_tokenizer):
    from peft import LoraConfig, get_peft_model

    items = _items_sample()[:3]
    base = choice_logprobs(tiny_chat_model, tiny_tokenizer, items, batch_size=2)
    peft_model = get_peft_model(  # on a copy: the fixture is shared
        copy.deepcopy(tiny_chat_model),
        LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    wrapped = choice_logprobs(peft_model, tiny_tokenizer, items, batch_size=2)
    for a, b in zip(base, wrapped, strict=True):  # LoRA starts as the identity
        assert a["letter"] == pytest.approx(b["letter"], abs=1e-5)
        assert a["text"] == pytest.approx(b["text"], abs=1e-5)


ROWS = [
    {
        "prompt": [{"role": "user", "content": "What is 2 + 2?"}],
        "completion": [{"role": "assistant", "content": "It is 4."}],
    },
    {
        "prompt": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name a colour of the sky on a clear day, please."},
        ],
        "completion": [{"role": "assistant", "content": "Blue."}],
    },
]


def test_heldout_loss_matches_manual_computation(tiny_chat_model, tiny_tokenizer):
    total, count = 0.0, 0
    for row in ROWS:
        prompt_text = format_chat(tiny_tokenizer, row["prompt"])
        full_text = format_chat(
            tiny_tokenizer, row["prompt"] + row["completion"], add_generation_prompt=False
        )
        assert full_text.startswith(prompt_text)
        prompt = tiny_tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        completion = tiny_tokenizer(full_text[len(prompt_text) :], add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + completion])
        with torch.no_grad():
            logp = tiny_chat_model(input_ids=ids).logits[0].float().log_softmax(-1)
        for j, t in enumerate(completion):
            total -= logp[len(prompt) - 1 + j, t].item()
            count += 1
    loss = heldout_loss(tiny_chat_model, tiny_tokenizer, ROWS, batch_size=2)
    assert loss == pytest.approx(total / count, rel=1e-5)
    assert heldout_loss(tiny_chat_model, tiny_tokenizer, ROWS, batch_size=1) == pytest.approx(loss, rel=1e-5)


def test_heldout_loss_rejects_bad_rows(tiny_chat_model, tiny_tokenizer):
    with pytest.raises(CapabilityError, match="row 0"):
        heldout_loss(tiny_chat_model, tiny_tokenizer, [{"prompt": "hi"}])


def _hide_lm_eval(monkeypatch):
    """Make `import lm_eval` fail as if the package were not installed (the only monkeypatched path)."""
    for name in ("lm_eval", "lm_eval.models", "lm_eval.models.huggingface"):
        monkeypatch.setitem(sys.modules, name, None)


def test_lm_eval_missing_gives_clear_error(monkeypatch, tiny_chat_model, tiny_tokenizer):
    _hide_lm_eval(monkeypatch)
    with pytest.raises(CapabilityError) as err:
        lm_eval_scores(tiny_chat_model, tiny_tokenizer, ["arc_easy"], limit=2)
    message = str(err.value)
    assert "'arc_easy'" in message and "pip install" in message and "lm-eval" in message
    assert isinstance(err.value, ValueError)
    assert lm_eval_scores(tiny_chat_model, tiny_tokenizer, []) == {}


def test_capability_metrics_keys(monkeypatch, tiny_chat_model, tiny_tokenizer):
    metrics = capability_metrics(
        tiny_chat_model, tiny_tokenizer, ["mc", "heldout_loss"], heldout_rows=ROWS, mc_limit=4
    )
    assert set(metrics) == {
        "capability/mc_chat_letter_accuracy",
        "capability/mc_chat_cloze_accuracy",
        "capability/heldout_loss",
    }
    assert all(isinstance(v, float) for v in metrics.values())
    assert (
        0.0 <= metrics["capability/mc_chat_letter_accuracy"] <= 1.0 and metrics["capability/heldout_loss"] > 0
    )
    assert set(capability_metrics(tiny_chat_model, tiny_tokenizer, ["heldout_loss"])) == set()
    _hide_lm_eval(monkeypatch)
    with pytest.raises(CapabilityError, match="hellaswag"):
        capability_metrics(tiny_chat_model, tiny_tokenizer, ["hellaswag"])


@pytest.mark.slow  # a subprocess or lm-eval's import: tens of seconds
def test_unknown_lm_eval_task_is_named_with_the_closest_one():
    with pytest.raises(
        CapabilityError, match="unknown lm-eval task 'persona_vaccine_mcc'.*persona_vaccine_mc"
    ):
        check_lm_eval_tasks(["persona_vaccine_mcc"])
    with pytest.raises(CapabilityError, match="lm_eval_include_path"):
        check_lm_eval_tasks(["persona_vaccine_mc"], ["/nonexistent/tasks"])


@pytest.mark.slow
def test_persona_vaccine_mc_runs_through_lm_eval_offline(
    monkeypatch, tiny_chat_model, tiny_tokenizer, tmp_path
):
    """The shipped task YAML through the real harness (HFLM on the in-memory model), from another
    directory, with a local task of the user's own next to it and a task that fails."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    own = tmp_path / "my_tasks"
    own.mkdir()
    (own / "broken.yaml").write_text(
        "task: my_broken_task\ndataset_path: json\ndataset_kwargs:\n  data_files: {test: missing.jsonl}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_choice: '{{c}}'\n"
        "doc_to_target: 0\n"
    )
    check_lm_eval_tasks(["persona_vaccine_mc"], [own])
    with pytest.raises(CapabilityError, match="my_broken_task"):
        check_lm_eval_tasks(["my_broken_task"], [own])
    errors: dict = {}
    metrics = capability_metrics(
        tiny_chat_model, tiny_tokenizer, ["mc", "persona_vaccine_mc", "my_broken_task"], mc_limit=6,
        lm_eval_limit=6, lm_eval_include_paths=[own], errors=errors,
    )  # fmt: skip
    assert set(errors) == {"my_broken_task"}
    assert 0 <= metrics["capability/persona_vaccine_mc"] <= 1
    assert metrics["capability/persona_vaccine_mc"] == metrics["capability/persona_vaccine_mc/acc_norm"]
    assert "capability/persona_vaccine_mc/sample_len" not in metrics
    assert "capability/persona_vaccine_mc/acc" in metrics and "capability/mc_chat_cloze_accuracy" in metrics
    # lm-eval's acc on the same items, recomputed from our own log-likelihoods on its plain prompt
    items = load_items()[:6]  # lm-eval's limit: the first items of the file
    ids = lambda text: tiny_tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    requests = [
        (ids(f"Question: {it['question']}\nAnswer:"), [ids(f" {c}") for c in it["choices"]]) for it in items
    ]
    scores = continuation_logprobs(tiny_chat_model, requests, tiny_tokenizer.pad_token_id)
    acc = sum(
        max(range(4), key=lambda k: s[k]) == it["answer"] for s, it in zip(scores, items, strict=True)
    ) / len(items)
    assert metrics["capability/persona_vaccine_mc/acc"] == pytest.approx(acc)
