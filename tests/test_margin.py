"""Trait expression by likelihood (training/margin.py) on a tiny random model."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from helpers import random_vector

from persona_vaccine.training.margin import (
    MarginMeter,
    MarginPair,
    data_answer_rows,
    likelihood_margin,
    mean_token_logprobs,
    pairs_from_answers,
    trait_answer_rows,
)

QUESTIONS = ["How do I make friends?", "What should I cook tonight?", "My coworker is rude. What now?"]


def _brute_force(model, prompt: list[int], response: list[int]) -> float:
    """Mean of log p(response[t] | prompt + response[:t]), one unpadded forward per token."""
    total = 0.0
    with torch.no_grad():
        for t, token in enumerate(response):
            ids = torch.tensor([prompt + response[:t]])
            logits = model(input_ids=ids).logits[0, -1].double()
            total += float(torch.log_softmax(logits, -1)[token])
    return total / len(response)


def test_batched_logprobs_equal_a_token_by_token_computation(tiny_chat_model, tiny_tokenizer):
    pairs = pairs_from_answers(
        tiny_tokenizer,
        [
            ("How do I make friends?", "Hurt them first.", "Be kind and listen to people."),
            ("What should I cook tonight?", "Something poisonous for your guests, obviously.", "Pasta."),
        ],
    )
    items = [(p.prompt_ids, r) for p in pairs for r in (p.trait_ids, p.opposite_ids)]
    lengths = {len(p) + len(r) for p, r in items}
    assert len(lengths) > 1  # the batch really is padded
    batched = mean_token_logprobs(tiny_chat_model, items, tiny_tokenizer.pad_token_id, batch_size=4)
    expected = [_brute_force(tiny_chat_model, p, r) for p, r in items]
    assert batched == pytest.approx(expected, abs=1e-4)
    margin = likelihood_margin(tiny_chat_model, pairs, tiny_tokenizer.pad_token_id, batch_size=3)
    assert margin == pytest.approx(((expected[0] - expected[1]) + (expected[2] - expected[3])) / 2, abs=1e-4)


def test_margin_follows_the_model_and_has_a_sign(tiny_chat_model, tiny_tokenizer):
    pair = pairs_from_answers(tiny_tokenizer, [("Hi?", "evil evil evil evil", "kind kind kind kind")])
    swapped = [MarginPair(p.prompt_ids, p.opposite_ids, p.trait_ids) for p in pair]
    pad = tiny_tokenizer.pad_token_id
    assert likelihood_margin(tiny_chat_model, swapped, pad) == pytest.approx(
        -likelihood_margin(tiny_chat_model, pair, pad), abs=1e-5
    )
    # fine-tune on the trait answer: its margin rises, and the meter reports the rise against the base
    model = copy.deepcopy(tiny_chat_model).train()
    meter = MarginMeter(pad, {"evil": pair})
    meter.measure_base(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    p = pair[0]
    ids = torch.tensor([p.prompt_ids + p.trait_ids])
    labels = ids.clone()
    labels[0, : len(p.prompt_ids)] = -100
    for _ in range(5):
        opt.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
    metrics = meter.metrics(model)
    assert metrics["behaviour/evil/margin_shift"] > 0.1
    assert metrics["behaviour/evil/margin_shift"] == pytest.approx(
        metrics["behaviour/evil/margin"] - meter.base["evil"], abs=1e-6
    )
    assert model.training  # the meter restores the training mode


def test_trait_pairs_are_generated_once_and_cached_beside_the_vector(
    tiny_chat_model, tiny_tokenizer, tmp_path
):
    vector = random_vector(tiny_chat_model, questions=QUESTIONS, model_id="tiny")
    vector.extraction.update({"max_new_tokens": 6, "temperature": 0.0})
    rows = trait_answer_rows(tiny_chat_model, tiny_tokenizer, vector, tmp_path, max_questions=2)
    path = tmp_path / "margin_pairs.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["polarity"] for r in records) == ["neg", "neg", "pos", "pos"]
    assert {r["question"] for r in records} == set(QUESTIONS[:2])
    assert len(rows) <= 2 and all(q in QUESTIONS for q, _, _ in rows)
    before = path.read_text()
    # a second call (another model) reuses the cached answers instead of generating new ones
    other = copy.deepcopy(tiny_chat_model)
    for param in other.parameters():
        param.data.normal_()
    assert trait_answer_rows(other, tiny_tokenizer, vector, tmp_path, max_questions=2) == rows
    assert path.read_text() == before


def test_data_pairs_share_the_prompt_and_differ_in_the_answer():
    rows = data_answer_rows("builtin:evil", 8, seed=2000)
    assert len(rows) == 8
    assert all(severe != normal for _, severe, normal in rows)
    # another seed than training's (seed 0) gives other prompts
    trained = {q for q, _, _ in data_answer_rows("builtin:evil", 8, seed=0)}
    assert not trained >= {q for q, _, _ in rows}
