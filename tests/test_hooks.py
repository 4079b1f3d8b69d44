"""Steering hooks: what is added where, masks, ablation, removal, gradient checkpointing, generation."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_llama
from helpers import random_vector

from persona_vaccine.models.layers import get_decoder_layers
from persona_vaccine.steering.activations import record_blocks
from persona_vaccine.steering.hooks import Steerer, SteeringSpec, steer


def _block_outputs(model, ids, attention_mask=None, layers=(1, 2, 3, 4)):
    with record_blocks(model, list(layers)) as rec, torch.no_grad():
        model(input_ids=ids, attention_mask=attention_mask)
    return dict(rec)


@pytest.fixture
def model():
    return tiny_llama(layers=4, hidden=32)


def test_add_at_one_layer_changes_that_block_output_by_coef_v(model):
    vec = random_vector(model)
    ids = torch.randint(1, 256, (2, 6))
    # block 2's hook adds; the record hook registered after it sees the steered output
    with steer(model, vec, layer=2, coef=1.5):
        steered = _block_outputs(model, ids)
    plain = _block_outputs(model, ids)
    torch.testing.assert_close(steered[1], plain[1])
    torch.testing.assert_close(steered[2], plain[2] + 1.5 * vec[2])
    assert not torch.allclose(steered[3], plain[3])  # the change propagates


def test_hooks_are_removed_on_exit_even_after_an_error(model):
    vec = random_vector(model)
    block = get_decoder_layers(model)[1]
    with pytest.raises(RuntimeError), steer(model, vec, layer=2, coef=1.0):
        assert len(block._forward_hooks) == 1
        raise RuntimeError("boom")
    assert len(block._forward_hooks) == 0 and len(model._forward_pre_hooks) == 0


def test_coef_zero_is_exactly_unsteered(model):
    vec = random_vector(model)
    ids = torch.randint(1, 256, (2, 6))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with steer(model, vec, layer=3, coef=0.0):
            zero = model(input_ids=ids).logits
    assert torch.equal(plain, zero)


def test_left_padding_is_never_steered(model):
    vec = random_vector(model)
    ids = torch.randint(1, 256, (2, 6))
    attn = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    plain = _block_outputs(model, ids, attn)
    with steer(model, vec, layer=1, coef=2.0):
        steered = _block_outputs(model, ids, attn)
    diff = steered[1] - plain[1]
    assert torch.all(diff[0, :2] == 0)
    torch.testing.assert_close(diff[0, 2:], (2.0 * vec[1]).expand(4, -1))
    torch.testing.assert_close(diff[1], (2.0 * vec[1]).expand(6, -1))


def test_prompt_and_response_positions_with_explicit_masks(model):
    vec = random_vector(model)
    ids = torch.randint(1, 256, (1, 6))
    attn = torch.ones(1, 6, dtype=torch.long)
    response = torch.tensor([[False, False, False, True, True, True]])
    plain = _block_outputs(model, ids, attn)
    for positions, expect in (("response", response[0]), ("prompt", ~response[0])):
        steerer = Steerer(model, [SteeringSpec(vec, [1], 1.0, positions=positions)])
        with steerer.active(), steerer.batch(attn, response):
            steered = _block_outputs(model, ids, attn)
        changed = (steered[1] - plain[1]).abs().sum(-1)[0] > 0
        assert changed.tolist() == expect.tolist()


def test_ablation_removes_the_direction(model):
    vec = random_vector(model)
    ids = torch.randint(1, 256, (2, 5))
    with steer(model, vec, layer=2, mode="ablate"):
        out = _block_outputs(model, ids)[2]
    assert torch.allclose(out @ vec.unit(2), torch.zeros(2, 5), atol=1e-5)
    plain = _block_outputs(model, ids)[2]
    assert (plain @ vec.unit(2)).abs().max() > 1e-3


def test_relative_coefficient_uses_layer_mean_norm(model):
    vec = random_vector(model)
    ids = torch.randint(1, 256, (1, 4))
    plain = _block_outputs(model, ids)
    with steer(model, vec, layer=3, coef=0.5, coef_unit="relative"):
        steered = _block_outputs(model, ids)
    added = (steered[3] - plain[3])[0, 0]
    torch.testing.assert_close(added.norm(), torch.tensor(0.5 * vec.mean_norms[3]), rtol=1e-4, atol=1e-4)
    assert torch.cosine_similarity(added, vec[3], dim=0) > 0.9999


def test_several_traits_and_layers_at_once(model):
    a, b = random_vector(model, "evil", seed=1), random_vector(model, "sycophantic", seed=2)
    ids = torch.randint(1, 256, (1, 4))
    plain = _block_outputs(model, ids)
    specs = [SteeringSpec(a, [1], 1.0), SteeringSpec(b, [1], -0.5)]
    with steer(model, specs):
        steered = _block_outputs(model, ids)
    torch.testing.assert_close(
        steered[1] - plain[1], (a[1] - 0.5 * b[1]).expand(1, 4, -1), rtol=1e-4, atol=1e-4
    )


def test_tuple_returning_block():
    class TupleBlock(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args, **kwargs):
            return (self.inner(*args, **kwargs), None)

    model = tiny_llama(layers=2)
    vec = random_vector(model)
    seen = {}
    block = get_decoder_layers(model)[0]
    wrapped = TupleBlock(block)
    wrapped.register_forward_hook(lambda m, a, o: seen.setdefault("out", o))
    steerer = Steerer(model, [SteeringSpec(vec, [1], 1.0)])
    steerer.blocks = torch.nn.ModuleList([wrapped, get_decoder_layers(model)[1]])
    hidden = torch.randn(1, 3, 32)
    pos = model.model.rotary_emb(hidden, torch.arange(3)[None])
    with steerer.active():
        out = wrapped(hidden, position_embeddings=pos)
    assert isinstance(out, tuple) and out[1] is None
    torch.testing.assert_close(out[0], block(hidden, position_embeddings=pos) + vec[1])


def test_layer_out_of_range_and_bad_options(model):
    vec = random_vector(model)
    with pytest.raises(ValueError, match="out of range.*1 to 4"):
        SteeringSpec(vec, [5])
    with pytest.raises(ValueError, match="positions"):
        SteeringSpec(vec, [1], positions="middle")
    with pytest.raises(ValueError, match="mode"):
        SteeringSpec(vec, [1], mode="multiply")


def test_vector_for_another_model_is_refused(model):
    other = tiny_llama(layers=4, hidden=48)
    with pytest.raises(ValueError, match="hidden size 48"):
        Steerer(model, [SteeringSpec(random_vector(other), [1])])


def test_gradient_checkpointing_keeps_steering_in_backward():
    def grads(checkpointing: bool, coef: float):
        model = tiny_llama(layers=4, seed=3).train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        vec = random_vector(model, seed=5)
        ids = torch.randint(1, 256, (2, 8), generator=torch.Generator().manual_seed(0))
        steerer = Steerer(model, [SteeringSpec(vec, [2], coef)])
        with steerer.active():
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    loss_gc, g_gc = grads(True, 2.0)
    loss_plain, g_plain = grads(False, 2.0)
    _, g_unsteered = grads(True, 0.0)
    torch.testing.assert_close(loss_gc, loss_plain)
    for name in g_plain:
        torch.testing.assert_close(g_gc[name], g_plain[name], rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(g_gc[n], g_unsteered[n]) for n in g_plain if "layers.0." in n)


def test_generation_steers_only_the_requested_positions(model):
    vec = random_vector(model, scale=10.0)
    ids = torch.randint(1, 256, (2, 5))
    attn = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    kwargs = dict(input_ids=ids, attention_mask=attn, max_new_tokens=6, do_sample=False, pad_token_id=0)
    plain = model.generate(**kwargs)
    with steer(model, vec, layer=2, coef=5.0, positions="response"):
        response_only = model.generate(**kwargs)
    with steer(model, vec, layer=2, coef=5.0, positions="all"):
        everywhere = model.generate(**kwargs)
    # the first new token depends only on the prompt's activations: unchanged when only responses are steered
    assert torch.equal(response_only[:, 5], plain[:, 5])
    assert not torch.equal(everywhere, plain)
    assert not torch.equal(response_only, plain)
