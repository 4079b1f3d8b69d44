"""The monitor on tiny random Llamas: read-only by default, exact capping, padding-independent readings."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_llama
from helpers import random_vector

from persona_vaccine.models.layers import get_decoder_layers
from persona_vaccine.monitoring import Monitor, Watch, monitor
from persona_vaccine.monitoring.guards import parse_guards

LAYER = 2


@pytest.fixture(scope="module")
def model():
    m = tiny_llama(vocab_size=128, layers=4, hidden=32)
    m.generation_config.eos_token_id = 127
    return m


def _ids(seed: int, length: int) -> torch.Tensor:
    return torch.randint(1, 120, (1, length), generator=torch.Generator().manual_seed(seed))


def _generate(model, ids, mask=None, n=8, **kwargs):
    kwargs.setdefault("do_sample", False)
    return model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=n,
        output_scores=True,
        return_dict_in_generate=True,
        pad_token_id=0,
        **kwargs,
    )


def test_monitoring_alone_leaves_logits_bit_identical(model):
    ids = _ids(0, 12)
    vectors = [random_vector(model, "evil", 1), random_vector(model, "sycophantic", 2)]
    plain = _generate(model, ids)
    watches = [
        Watch(v, layer=LAYER + i, prompt_threshold=-1e9, response_threshold=-1e9)
        for i, v in enumerate(vectors)
    ]
    with monitor(model, watches) as m:
        watched = _generate(model, ids)
    assert torch.equal(plain.sequences, watched.sequences)
    for a, b in zip(plain.scores, watched.scores, strict=True):
        assert torch.equal(a, b)
    reading = m.readings()["evil"]
    assert len(reading.tokens) == 8 and reading.tokens[0] == reading.prompt_last
    kinds = {(a.trait, a.kind) for a in m.alerts()}
    assert kinds == {(t, k) for t in ("evil", "sycophantic") for k in ("early_warning", "running_mean")}


def test_readings_match_hidden_states(model):
    """Token k's reading is the projection at the position that produced it (hidden_states[layer])."""
    ids = _ids(1, 10)
    vector = random_vector(model, "evil", 3)
    with monitor(model, [Watch(vector, layer=LAYER)]) as m:
        out = _generate(model, ids, n=5)
    full = model(out.sequences[:, :-1], output_hidden_states=True).hidden_states[LAYER][0]
    expected = (full[ids.shape[1] - 1 :] @ vector.unit(LAYER)).tolist()
    assert m.readings()["evil"].tokens == pytest.approx(expected, abs=1e-4)


def _projections_after_block(model, ids, vector, layer):
    """The projection on the output of block `layer` as the next block receives it (after any guard)."""
    seen = []
    handle = get_decoder_layers(model)[layer].register_forward_pre_hook(
        lambda mod, args: seen.append(args[0])
    )
    try:
        with torch.no_grad():
            model(ids)
    finally:
        handle.remove()
    return seen[0][0] @ vector.unit(layer)


def test_cap_acts_only_above_the_cap_and_clamps_exactly(model):
    ids = _ids(2, 16)
    vector = random_vector(model, "evil", 4)
    plain = _projections_after_block(model, ids, vector, LAYER)
    cap = float(plain.median())
    with monitor(
        model, [Watch(vector, layer=LAYER, response_threshold=cap, guard="cap", cap_positions="all")]
    ) as m:
        capped = _projections_after_block(model, ids, vector, LAYER)
        logits_capped = model(ids).logits
    above = plain > cap
    assert above.any() and (~above).any()
    assert torch.allclose(capped[above], torch.full_like(capped[above], cap), atol=1e-4)
    assert torch.equal(capped[~above], plain[~above])
    assert m.readings()["evil"].capped == int(above.sum())
    # a cap above every token changes nothing, bit for bit
    high = float(plain.max()) + 1.0
    with monitor(
        model, [Watch(vector, layer=LAYER, response_threshold=high, guard="cap", cap_positions="all")]
    ):
        untouched = model(ids).logits
    assert torch.equal(untouched, model(ids).logits)
    assert not torch.equal(logits_capped, model(ids).logits)


def test_batched_left_padded_readings_equal_single_requests(model):
    prompts = [_ids(10, 6)[0], _ids(11, 11)[0], _ids(12, 3)[0]]
    vector = random_vector(model, "evil", 5)
    spans = [[(0, 2)], [(1, 5)], [(0, 1)]]
    singles = []
    for p, s in zip(prompts, spans, strict=True):
        with monitor(model, [Watch(vector, layer=LAYER)]) as m:
            m.set_turns([s])
            out = _generate(model, p[None], n=6)
        singles.append((m.readings()["evil"], out.sequences[0, len(p) :].tolist()))
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = p
        mask[i, width - len(p) :] = 1
    with monitor(model, [Watch(vector, layer=LAYER)]) as m:
        m.set_turns(spans)
        out = _generate(model, ids, mask, n=6)
    for i, (reading, tokens) in enumerate(singles):
        batched = m.readings(i)["evil"]
        assert out.sequences[i, width:].tolist() == tokens
        assert batched.prompt_last == pytest.approx(reading.prompt_last, abs=1e-4)
        assert batched.tokens == pytest.approx(reading.tokens, abs=1e-4)
        assert batched.turns == pytest.approx(reading.turns, abs=1e-4)


def test_finished_rows_stop_counting(model):
    """A row that ended (EOS) while another goes on gets no readings for the padding after it."""
    ids = torch.cat([_ids(20, 8), _ids(21, 8)])
    vector = random_vector(model, "evil", 6)
    sample = {"do_sample": True, "top_k": 0}
    torch.manual_seed(0)
    with monitor(model, [Watch(vector, layer=LAYER)]) as m:
        plain = _generate(model, ids, n=6, **sample).sequences[:, 8:].tolist()
    k = next(i for i, t in enumerate(plain[0]) if i >= 1 and t not in plain[0][:i] and t not in plain[1])
    eos = plain[0][k]  # row 0 ends at answer token k, row 1 goes on to 6 tokens
    torch.manual_seed(0)
    with monitor(model, [Watch(vector, layer=LAYER)], eos_token_id=eos) as m2:
        _generate(model, ids, n=6, eos_token_id=eos, **sample)
    assert len(m2.readings(0)["evil"].tokens) == k + 1
    assert m2.readings(0)["evil"].tokens == pytest.approx(m.readings(0)["evil"].tokens[: k + 1], abs=1e-5)
    assert m2.readings(1)["evil"].tokens == pytest.approx(m.readings(1)["evil"].tokens, abs=1e-5)


def test_stop_guard_ends_generation(model):
    ids = _ids(3, 8)
    vector = random_vector(model, "evil", 7)
    watch = Watch(vector, layer=LAYER, prompt_threshold=-1e9, guard="stop")
    mon = Monitor(model, [watch])
    with mon.active():
        out = _generate(model, ids, n=10, stopping_criteria=[mon.stopping_criteria()])
    assert mon.stopped() and out.sequences.shape[1] == 8 + 1
    assert mon.alerts()[0].kind == "early_warning" and mon.alerts()[0].position == 0


def test_steer_subtracts_from_the_first_alert_on(model):
    ids = _ids(4, 8)
    vector = random_vector(model, "evil", 8, scale=5.0)
    plain = _generate(model, ids, n=6)
    watch = Watch(
        vector, layer=LAYER, prompt_threshold=1e9, response_threshold=-1e9, guard="steer", min_tokens=3
    )
    with monitor(model, [watch]) as m:
        steered = _generate(model, ids, n=6)
    # nothing acts before the running-mean alert at answer position 3: the first logits are identical
    for a, b in zip(plain.scores[:3], steered.scores[:3], strict=True):
        assert torch.equal(a, b)
    assert m.alerts()[0].position == 3 and m.readings()["evil"].steered == 6 - 3
    assert not torch.equal(plain.scores[3], steered.scores[3])


def test_parse_guards():
    assert parse_guards(["cap"], ["evil", "x"]) == {"evil": "cap", "x": "cap"}
    assert parse_guards(["x=stop"], ["evil", "x"]) == {"evil": "alert", "x": "stop"}
    with pytest.raises(ValueError, match="guard must be one of"):
        parse_guards(["evil=explode"], ["evil"])
    with pytest.raises(ValueError, match="no vector for trait"):
        parse_guards(["nope=cap"], ["evil"])
