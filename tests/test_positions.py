"""`positions="prompt" / "response"` steer exactly the right tokens, however the forward is called."""

from __future__ import annotations

import inspect

import pytest
import torch
from conftest import tiny_llama
from helpers import random_vector

from persona_vaccine.steering.hooks import Steerer, SteeringNoOp, SteeringSpec, steer

NEW = 4  # new tokens per generation (min_new_tokens = max_new_tokens: no early stop)


@pytest.fixture(scope="module")
def model():
    return tiny_llama(layers=4, hidden=32, seed=7)


def _generate(model, vector, positions, ids, attention_mask=None, use_cache=True, layer=2):
    steerer = Steerer(model, [SteeringSpec(vector, [layer], 3.0, positions=positions)])
    kwargs = {} if attention_mask is None else {"attention_mask": attention_mask}
    with steerer.active(), torch.no_grad():
        out = model.generate(
            input_ids=ids,
            max_new_tokens=NEW,
            min_new_tokens=NEW,
            do_sample=False,
            pad_token_id=0,
            use_cache=use_cache,
            **kwargs,
        )
    return out, steerer.steered_tokens.get(vector.trait, 0)


def _expected(batch: int, length: int, pads: int, use_cache: bool) -> dict[str, int]:
    real_prompt = batch * length - pads
    if use_cache:  # prefill: the prompt; then NEW - 1 decode steps of one token per row
        return {"prompt": real_prompt, "response": batch * (NEW - 1)}
    # without a cache every step feeds the prompt again plus the tokens generated so far
    return {"prompt": NEW * real_prompt, "response": batch * sum(range(NEW))}


CASES = {
    "one unpadded prompt": (torch.tensor([[5, 6, 7, 8, 9]]), None),
    "equal-length prompts": (torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]), None),
    "left-padded batch": (
        torch.tensor([[0, 0, 7, 8, 9], [10, 11, 12, 13, 14]]),
        torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]),
    ),
}


@pytest.mark.parametrize("use_cache", [True, False], ids=["kv-cache", "no-cache"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_generate_steers_exactly_the_requested_positions(model, case, use_cache):
    vector = random_vector(model, scale=5.0)
    ids, mask = CASES[case]
    pads = 0 if mask is None else int((mask == 0).sum())
    expected = _expected(ids.shape[0], ids.shape[1], pads, use_cache)
    plain, _ = _generate(model, vector, "all", ids, mask, use_cache)
    with torch.no_grad():
        unsteered = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=NEW,
            min_new_tokens=NEW,
            do_sample=False,
            pad_token_id=0,
            use_cache=use_cache,
        )
    for positions in ("prompt", "response"):
        out, count = _generate(model, vector, positions, ids, mask, use_cache)
        assert count == expected[positions], (positions, count, expected)
        if positions == "response":  # the first new token only sees the (unsteered) prompt
            assert torch.equal(out[:, ids.shape[1]], unsteered[:, ids.shape[1]])
    assert not torch.equal(plain, unsteered)


def test_kv_cache_and_no_cache_generations_are_steered_alike(model):
    vector = random_vector(model, scale=5.0)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    for positions in ("prompt", "response"):
        cached, _ = _generate(model, vector, positions, ids, use_cache=True)
        uncached, _ = _generate(model, vector, positions, ids, use_cache=False)
        assert torch.equal(cached, uncached), positions


def test_positional_attention_mask_is_read(model):
    """`model(ids, mask)` passes the mask positionally: padding must still not be steered."""
    vector = random_vector(model)
    ids = torch.tensor([[0, 0, 7, 8, 9], [10, 11, 12, 13, 14]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    steerer = Steerer(model, [SteeringSpec(vector, [1], 1.0)])
    with steerer.active(), torch.no_grad():
        model(ids, mask)
    assert steerer.steered_tokens[vector.trait] == 8
    with steerer.active(), torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
    assert steerer.steered_tokens[vector.trait] == 16


def test_response_positions_on_a_plain_forward_need_a_response_mask(model):
    vector = random_vector(model)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with (
        pytest.raises(SteeringNoOp, match="response_mask"),
        steer(model, vector, layer=2, coef=1.0, positions="response"),
    ):
        model(input_ids=ids)
    response = torch.tensor([[False, False, False, True, True, True]])
    with steer(model, vector, layer=2, coef=1.0, positions="response", response_mask=response) as s:
        with torch.no_grad():
            model(input_ids=ids)
    assert s.steered_tokens[vector.trait] == 3


def test_a_new_turn_on_top_of_a_kept_cache_is_prompt(model):
    """Multi-turn with a reused cache: the second turn's prompt tokens are prompt, its decode steps response."""
    from transformers import DynamicCache

    vector = random_vector(model, scale=5.0)
    steerer = Steerer(model, [SteeringSpec(vector, [2], 1.0, positions="response")])
    cache = DynamicCache(config=model.config)
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    with steerer.active(), torch.no_grad():
        first = model.generate(
            input_ids=torch.tensor([[5, 6, 7]]),
            max_new_tokens=3,
            min_new_tokens=3,
            do_sample=False,
            pad_token_id=0,
            return_dict_in_generate=True,
            **{name: cache},
        )
        after_first = steerer.steered_tokens[vector.trait]
        turn = torch.cat([first.sequences, torch.tensor([[20, 21, 22]])], dim=1)
        model.generate(
            input_ids=turn,
            max_new_tokens=3,
            min_new_tokens=3,
            do_sample=False,
            pad_token_id=0,
            **{name: getattr(first, name)},
        )
    assert after_first == 2
    assert steerer.steered_tokens[vector.trait] == 4


def _tracked_calls(model, **generate_kwargs):
    from persona_vaccine.steering.forward_call import PositionTracker

    tracker, seen = PositionTracker(), []

    def pre(module, args, kwargs):
        at = tracker(module, args, kwargs)
        seen.append((at.start, at.call.length, at.prompt_length, at.new_prompt))

    handle = model.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        with torch.no_grad():
            model.generate(
                max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False, pad_token_id=0, **generate_kwargs
            )
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("use_cache", [True, False])
def test_the_position_tracker_tells_prompt_from_answer(model, use_cache):
    ids = torch.tensor([[5, 6, 7, 8, 9], [0, 0, 7, 8, 9]])  # the second row left-padded
    mask = (ids != 0).long()
    calls = _tracked_calls(model, input_ids=ids, attention_mask=mask, use_cache=use_cache)
    assert calls[0] == (0, 5, 5, True)  # the prefill is the prompt, padding included (padded coordinates)
    assert len(calls) == NEW
    for step, (start, length, prompt_length, new_prompt) in enumerate(calls[1:], 1):
        assert prompt_length == 5 and not new_prompt
        # on a KV cache each call is one new token after the rest; without one, the whole sequence again
        assert (start, length) == ((5 + step - 1, 1) if use_cache else (0, 5 + step))


def test_more_prompt_on_a_cache_is_a_new_turn(model):
    from transformers import DynamicCache

    from persona_vaccine.steering.forward_call import PositionTracker

    tracker = PositionTracker()
    cache = DynamicCache()
    seen = []
    handle = model.register_forward_pre_hook(lambda m, a, k: seen.append(tracker(m, a, k)), with_kwargs=True)
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([[5, 6, 7]]), past_key_values=cache, use_cache=True)
            model(input_ids=torch.tensor([[8]]), past_key_values=cache, use_cache=True)
            model(input_ids=torch.tensor([[9, 10, 11, 12]]), past_key_values=cache, use_cache=True)
    finally:
        handle.remove()
    assert [(c.start, c.prompt_length, c.new_prompt) for c in seen] == [
        (0, 3, True),
        (3, 3, False),
        (4, 8, False),
    ]
    assert seen[1].response(1, 1, torch.device("cpu")).tolist() == [[True]]
    assert seen[2].response(1, 4, torch.device("cpu")).tolist() == [[False] * 4]
