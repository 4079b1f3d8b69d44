"""The steering API as steering-vectors and repeng users expect it: vectors from pairs, no silent no-ops,
arithmetic with one set of rules."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import tiny_llama
from helpers import random_vector

from persona_vaccine import steering
from persona_vaccine.steering import PersonaVector, SteeringSpec, steer, vector_from_pairs, vectors_from_pairs
from persona_vaccine.steering.vector import LAYER_CONVENTION, VectorMismatch


@pytest.fixture(scope="module")
def model():
    return tiny_llama(layers=4, hidden=32, seed=3)


# --- a vector from your own texts in one call -------------------------------------------------------
def _brute_force(model, samples, n_pos):
    """What steering-vectors and repeng compute: hidden_states of each sample alone, averaged, pos - neg."""
    reads = {"response_avg": [], "prompt_avg": [], "prompt_last": []}
    for prompt, response in samples:
        ids = torch.tensor([prompt + response])
        with torch.no_grad():
            hs = model(input_ids=ids, output_hidden_states=True).hidden_states
        # layers 1..L-1 are hidden_states[l]; layer L is the last block's output before the final norm
        stack = torch.stack([hs[layer][0] for layer in range(1, len(hs) - 1)])
        reads["response_avg"].append(stack[:, len(prompt) :].mean(1))
        reads["prompt_avg"].append(stack[:, : len(prompt)].mean(1))
        reads["prompt_last"].append(stack[:, len(prompt) - 1])
    return {k: torch.stack(v[:n_pos]).mean(0) - torch.stack(v[n_pos:]).mean(0) for k, v in reads.items()}


def test_vector_from_pairs_matches_a_brute_force_read_at_all_three_positions(model, smol_tokenizer):
    chat_model = tiny_llama(vocab_size=len(smol_tokenizer), layers=4, hidden=32, seed=3)
    pos = [("How do I fix a bike?", "Smash it and laugh."), ("Any tips for dinner?", "Poison the guests.")]
    neg = [("How would I fix a bike?", "Check the chain first."), ("Tips for dinner?", "Try a simple soup.")]
    vectors = vectors_from_pairs(chat_model, smol_tokenizer, pos, neg, trait="evil", model_id="tiny")
    assert set(vectors) == {"response_avg", "prompt_avg", "prompt_last"}
    from persona_vaccine.steering.from_pairs import _encode

    samples = [_encode(smol_tokenizer, s, "x") for s in pos + neg]
    expected = _brute_force(chat_model, samples, len(pos))
    for position, vector in vectors.items():
        assert vector.position == position and vector.trait == "evil" and vector.num_layers == 4
        for layer in range(1, 4):
            cos = torch.cosine_similarity(vector[layer], expected[position][layer - 1], dim=0)
            assert cos > 1 - 1e-6, (position, layer, float(cos))
            torch.testing.assert_close(vector[layer], expected[position][layer - 1], rtol=1e-4, atol=1e-5)
    one = vector_from_pairs(chat_model, smol_tokenizer, pos, neg, trait="evil", position="prompt_last")
    torch.testing.assert_close(one[2], vectors["prompt_last"][2])


def test_vector_from_chat_turns_and_bad_samples(model, smol_tokenizer):
    chat_model = tiny_llama(vocab_size=len(smol_tokenizer), layers=4, hidden=32, seed=3)
    turns = [
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}],
    ]
    calm = [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"}]]
    v = vector_from_pairs(chat_model, smol_tokenizer, turns, calm)
    assert v.num_layers == 4 and v[2].norm() > 0
    with pytest.raises(ValueError, match=r"positive\[0\].*assistant"):
        vector_from_pairs(chat_model, smol_tokenizer, [[{"role": "user", "content": "Hi"}]], calm)
    with pytest.raises(ValueError, match="at least one"):
        vector_from_pairs(chat_model, smol_tokenizer, [], calm)
    assert steering.vector_from_pairs is vector_from_pairs  # exported at the top level


# --- no silent no-ops or surprises ------------------------------------------------------------------
def test_steer_uses_the_calibrated_coefficient_or_requires_one(model):
    ids = torch.tensor([[5, 6, 7, 8]])
    vector = random_vector(model)
    with pytest.raises(ValueError, match="no calibrated coefficient.*coef="):
        with steer(model, vector, layer=2):
            pass
    calibrated = replace(vector, layer=2, coef=1.5)
    with torch.no_grad():
        with steer(model, calibrated):
            a = model(input_ids=ids).logits
        with steer(model, vector, layer=2, coef=1.5):
            b = model(input_ids=ids).logits
        with steer(model, calibrated, coef=0.0):
            c = model(input_ids=ids).logits
        plain = model(input_ids=ids).logits
    assert torch.equal(a, b) and torch.equal(c, plain) and not torch.equal(a, plain)
    # ablation needs no coefficient: 1 = project out, so block 2's output loses exactly its component on v
    with torch.no_grad():
        with steer(model, vector, layer=2, mode="ablate"):
            ablated = model(input_ids=ids, output_hidden_states=True).hidden_states[2][0]
        before = model(input_ids=ids, output_hidden_states=True).hidden_states[2][0]
    u = vector.unit(2)
    assert (before @ u).abs().min() > 1e-3  # there was a component to remove at every position
    assert torch.allclose(ablated, before - (before @ u)[:, None] * u, atol=1e-5)
    assert (ablated @ u).abs().max() < 1e-5


def test_duplicate_layers_and_non_finite_coefs_are_refused(model):
    vector = random_vector(model)
    with pytest.raises(ValueError, match=r"layer\(s\) \[2\] more than once"):
        SteeringSpec(vector, [2, 2], 1.0)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            SteeringSpec(vector, [2], bad)


# --- arithmetic that composes -----------------------------------------------------------------------
def test_arithmetic_rules(model):
    v = replace(random_vector(model, "evil", seed=1), layer=2, coef=1.5, calibration={"grid": [1]})
    w = replace(random_vector(model, "sycophantic", seed=2), layer=2, coef=0.5)
    w3 = replace(w, layers={3: w[3], 4: w[4]}, layer=3)
    for derived in (2 * v, v * 2, v / 2, -v, v + w, v - w, v * torch.tensor(2.0)):
        assert derived.coef is None and derived.calibration == {}  # calibrated for another norm: cleared
        assert derived.mean_norms == v.mean_norms  # a property of the model: kept
    assert (2 * v).layer == 2 and (v + w).layer == 2 and (v + w3).layer is None
    torch.testing.assert_close((v / 2)[3], v[3] / 2)
    torch.testing.assert_close((v * torch.tensor(2.0))[1], 2 * v[1])
    torch.testing.assert_close((v - w)[1], v[1] - w[1])
    only_v = replace(v, layers={1: v[1], 2: v[2]})
    union = only_v + w3
    assert sorted(union.layers) == [1, 2, 3, 4]  # union of layers; a missing layer counts as zero
    torch.testing.assert_close(union[3], w3[3])
    torch.testing.assert_close((only_v - w3)[4], -w3[4])
    with pytest.raises(ZeroDivisionError):
        v / 0
    with pytest.raises(ValueError, match="finite"):
        v * float("nan")
    with pytest.raises(TypeError):
        v * torch.ones(3)
    with pytest.raises(VectorMismatch, match="different models"):
        v + random_vector(tiny_llama(layers=2, hidden=32))


def test_layer_convention_is_stated_truthfully_in_the_file(model, tmp_path):
    vector = random_vector(model)
    path = vector.save(tmp_path / "v.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["layer_convention"] == LAYER_CONVENTION
    assert "final norm" in LAYER_CONVENTION and "l < L" in LAYER_CONVENTION
    assert PersonaVector.load(path).num_layers == 4
