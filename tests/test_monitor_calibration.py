"""Thresholds and caps from ordinary traffic, on tiny random Llamas with a planted direction."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_llama
from helpers import random_vector

from persona_vaccine.errors import UserError
from persona_vaccine.models.layers import get_decoder_layers
from persona_vaccine.monitoring import Watch, monitor
from persona_vaccine.monitoring.ordinary import (
    calibrate_from_reads,
    find_calibration,
    load_prompts,
    read_answers,
    shipped_prompts,
    threshold_at_rate,
)
from persona_vaccine.monitoring.thresholds import thresholds_for
from persona_vaccine.steering.vector import PersonaVector

LAYER, NEW, TRIGGER = 2, 6, 7


@pytest.fixture(scope="module")
def model():
    m = tiny_llama(vocab_size=128, layers=4, hidden=32, seed=3)
    m.generation_config.eos_token_id = 127
    return m


def _planted(model) -> PersonaVector:
    """A vector along the trigger token's embedding: a prompt ending in the trigger reads high on it."""
    direction = model.get_input_embeddings().weight[TRIGGER].detach().clone()
    n = len(get_decoder_layers(model))
    return PersonaVector(
        "evil", "tiny", direction.numel(), n, {layer: direction for layer in range(1, n + 1)}
    )


def _prompts(n: int, seed: int, trigger: bool = False) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(10, 120, (8,), generator=g).tolist()
        out.append([*ids[:-1], TRIGGER] if trigger else ids)
    return out


def _answers(model, prompts: list[list[int]]) -> list[list[int]]:
    answers = []
    for p in prompts:
        with torch.no_grad():
            out = model.generate(
                input_ids=torch.tensor([p]), max_new_tokens=NEW, do_sample=False, pad_token_id=0
            )
        answers.append([t for t in out[0, len(p) :].tolist() if t != 127])
    return answers


def test_thresholds_hold_the_requested_rate_and_catch_the_planted_trait(model):
    vector = _planted(model)
    tune, heldout, planted = _prompts(100, 0), _prompts(100, 1), _prompts(20, 2, trigger=True)
    reads = {
        name: read_answers(model, vector, [LAYER], ps, _answers(model, ps), NEW, LAYER)
        for name, ps in (("tune", tune), ("heldout", heldout), ("planted", planted))
    }
    cal = calibrate_from_reads(vector, "tiny", reads["tune"], reads["heldout"], LAYER, 0.1, 99.0, 2, NEW)
    assert 0.05 <= cal.tune_false_alert_rate <= 0.1  # half the budget to each read, at most the rate
    assert cal.heldout_false_alert_rate is not None and cal.heldout_false_alert_rate <= 0.2
    # every prompt ending in the planted trigger alerts (early warning far above ordinary ones)
    assert all(r.prompt_last > cal.prompt_threshold for r in reads["planted"])
    # at a lower rate the thresholds only rise
    strict = calibrate_from_reads(vector, "tiny", reads["tune"], [], LAYER, 0.02, 99.0, 2, NEW)
    assert strict.prompt_threshold >= cal.prompt_threshold
    assert strict.response_threshold >= cal.response_threshold


def test_threshold_at_rate_counts_what_lies_above():
    values = [float(v) for v in range(100)]
    assert threshold_at_rate(values, 0.05) == 94.0  # 95..99 above: 5 of 100
    assert sum(v > threshold_at_rate(values, 0.013) for v in values) == 1
    assert threshold_at_rate(values, 0.0) == 99.0


def test_calibration_reads_equal_what_the_monitor_reads(model):
    vector = random_vector(model, "evil", 4)
    prompts = _prompts(3, 5)
    answers = _answers(model, prompts)
    reads = read_answers(model, vector, [LAYER], prompts, answers, NEW, LAYER)
    for p, r in zip(prompts, reads, strict=True):
        with monitor(model, [Watch(vector, layer=LAYER)]) as m, torch.no_grad():
            model.generate(input_ids=torch.tensor([p]), max_new_tokens=NEW, do_sample=False, pad_token_id=0)
        reading = m.readings()["evil"]
        assert reading.prompt_last == pytest.approx(r.prompt_last, abs=1e-4)
        assert reading.tokens[1:] == pytest.approx(r.answer[LAYER], abs=1e-4)


def _stream_after(model, layer: int, collected: list):
    """Records what block `layer + 1` receives: the stream after every hook on block `layer`."""
    return get_decoder_layers(model)[layer].register_forward_pre_hook(
        lambda mod, args: collected.append(args[0])
    )


def test_the_cap_acts_on_answer_tokens_only_by_default(model):
    vector = random_vector(model, "evil", 6)
    prompt = torch.tensor(_prompts(1, 7))
    unit = vector.unit(LAYER)
    seen: list = []
    handle = _stream_after(model, LAYER, seen)
    try:
        with torch.no_grad():
            model.generate(input_ids=prompt, max_new_tokens=NEW, do_sample=False, pad_token_id=0)
        plain_prompt = seen[0][0] @ unit
        cap = float(plain_prompt.min()) - 1.0  # below every token: the cap acts wherever it may
        seen.clear()
        with (
            monitor(model, [Watch(vector, layer=LAYER, response_threshold=cap, guard="cap")]) as m,
            torch.no_grad(),
        ):
            model.generate(input_ids=prompt, max_new_tokens=NEW, do_sample=False, pad_token_id=0)
    finally:
        handle.remove()
    assert torch.equal(seen[0][0] @ unit, plain_prompt)  # the prompt's stream is untouched
    answer_reads = [float(step[0, -1] @ unit) for step in seen[1:]]
    assert answer_reads and all(v == pytest.approx(cap, abs=1e-4) for v in answer_reads)
    assert m.readings()["evil"].capped == len(answer_reads)


def test_a_cap_over_a_band_of_layers_clamps_each_layer_on_its_own_direction(model):
    vector = random_vector(model, "evil", 8)
    prompt = torch.tensor(_prompts(1, 9))
    band = {1: -5.0, 3: -4.0}  # far below ordinary reads: every answer token is clamped at each layer
    seen: dict[int, list] = {1: [], 3: []}
    handles = [_stream_after(model, layer, seen[layer]) for layer in band]
    try:
        watch = Watch(vector, layer=LAYER, response_threshold=1e9, guard="cap", band_caps=band)
        with monitor(model, [watch]) as m, torch.no_grad():
            model.generate(input_ids=prompt, max_new_tokens=NEW, do_sample=False, pad_token_id=0)
    finally:
        for h in handles:
            h.remove()
    for layer, cap in band.items():
        unit = vector.unit(layer)
        assert float((seen[layer][0][0] @ unit).min()) > cap  # the prompt: not capped
        reads = [float(step[0, -1] @ unit) for step in seen[layer][1:]]
        assert reads and all(v == pytest.approx(cap, abs=1e-4) for v in reads)
    assert m.readings()["evil"].capped == 2 * (NEW - 1)  # two band layers, each answer token once


def test_serve_prefers_ordinary_thresholds_and_keeps_extraction_by_name(model, tmp_path):
    vector = random_vector(model, "evil", 10)
    path = vector.save(tmp_path / "response_avg.safetensors")
    with pytest.raises(UserError, match="calibrate-monitor"):
        thresholds_for(model, None, vector, LAYER, path, source="ordinary")
    assert thresholds_for(model, None, vector, LAYER, path).source == "none"  # nothing to calibrate on
    reads = read_answers(
        model, vector, [1, LAYER], _prompts(20, 11), _answers(model, _prompts(20, 11)), NEW, LAYER
    )
    calibrate_from_reads(vector, "tiny", reads, [], LAYER, 0.1, 95.0, 2, NEW).save(path)
    saved = find_calibration(path)
    assert saved is not None and set(saved.band_caps) == {1, LAYER}
    found = thresholds_for(model, None, vector, LAYER, path)
    assert (found.prompt, found.response, found.cap) == (
        saved.prompt_threshold,
        saved.response_threshold,
        saved.cap,
    )
    assert found.false_alert_rate == 0.1 and "ordinary traffic" in found.source
    assert thresholds_for(model, None, vector, LAYER, path, manual=(1.0, 2.0)).source == "manual"
    assert thresholds_for(model, None, vector, LAYER, path, source="extraction").source == "none"


def test_the_shipped_ordinary_prompts_split_in_half(tmp_path):
    tune, heldout = load_prompts(None, "tune"), load_prompts(None, "heldout")
    assert len(tune) == len(heldout) == 200 and not set(tune) & set(heldout)
    assert "Hi!" in tune + heldout
    assert shipped_prompts().is_file()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "no prompt field"}) + "\n")
    with pytest.raises(UserError, match=r"bad.jsonl:1: expected a JSON object with a 'prompt' field"):
        load_prompts(bad)


def test_calibrate_monitor_command_writes_beside_the_vector_and_resumes(
    tiny_chat_model, tiny_tokenizer, tmp_path
):
    from persona_vaccine import cli

    model_dir = tmp_path / "model"
    tiny_chat_model.save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    vector = random_vector(tiny_chat_model, "evil", 12, model_id=str(model_dir))
    path = vector.save(tmp_path / "vectors" / "response_avg.safetensors")
    prompts = tmp_path / "ordinary.jsonl"
    words = [
        "cooking",
        "travel",
        "music",
        "gardens",
        "trains",
        "weather",
        "coffee",
        "chess",
        "maps",
        "rivers",
    ]
    rows = [
        {"prompt": f"Tell me about {w}.", "split": "tune" if i % 2 else "heldout"}
        for i, w in enumerate(words)
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["calibrate-monitor", "--model", str(model_dir), "--vectors", str(path), "--prompts", str(prompts),
            "--generation_engine", "hf", "--max_new_tokens", "6", "--false_alert_rate", "0.2", "--band", "1-2"]  # fmt: skip
    assert cli.main(argv) == 0
    saved = find_calibration(path)
    assert saved is not None and (saved.n_tune, saved.n_heldout) == (5, 5)
    assert set(saved.band_caps) == {1, 2, vector.default_layer()}
    answers = list((tmp_path / "vectors").glob("ordinary_answers-*.jsonl"))
    assert len(answers) == 1 and len(answers[0].read_text().splitlines()) == 10
    assert cli.main(argv) == 0
    assert len(answers[0].read_text().splitlines()) == 10  # the rerun reused every answer, appended none
    assert cli.main([*argv[:-2], "--band", "9-12"]) == 2  # a band outside the model: one clear error


def test_per_turn_readings_are_the_mean_of_each_earlier_answer(model):
    """A conversation's earlier assistant turns, read at prefill: each turn's mean projection."""
    vector = random_vector(model, "evil", 13)
    ids = torch.tensor(_prompts(1, 14)[0] + _prompts(1, 15)[0] + _prompts(1, 16)[0])[None]  # 24 tokens
    spans = [(3, 9), (12, 20)]  # two earlier answers inside the prompt
    with monitor(model, [Watch(vector, layer=LAYER)]) as m, torch.no_grad():
        m.set_turns([spans])
        model.generate(input_ids=ids, max_new_tokens=2, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        hidden = model(ids, output_hidden_states=True).hidden_states[LAYER][0]
    projection = hidden @ vector.unit(LAYER)
    expected = [float(projection[s:e].mean()) for s, e in spans]
    assert m.readings()["evil"].turns == pytest.approx(expected, abs=1e-4)
