"""The persona hooks inside vLLM (CPU build), on the embedded model: one engine for the whole module.

Each request's settings ride in SamplingParams.extra_args; the checks compare against vLLM without
settings and against the Hugging Face monitor on the same tokens.
"""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("vllm")
pytestmark = pytest.mark.slow

from persona_vaccine.models.chat import build_messages, format_chat  # noqa: E402
from persona_vaccine.monitoring.readings import RequestReadings, Watch  # noqa: E402
from persona_vaccine.steering.vector import PersonaVector  # noqa: E402
from persona_vaccine.vllm_request import PersonaRequest, SteerSpec, WatchSpec  # noqa: E402

LAYER = 12
QUESTIONS = ["What is the capital of France?", "Tell me a story about a dragon.", "How do I boil an egg?"]


@pytest.fixture(scope="module")
def vec_path(tmp_path_factory) -> str:
    g = torch.Generator().manual_seed(0)
    vector = PersonaVector(
        "evil", "smollm2-135m", 576, 30, {layer: torch.randn(576, generator=g) for layer in range(1, 31)}
    )
    return str(vector.save(tmp_path_factory.mktemp("vllm") / "evil.safetensors"))


@pytest.fixture(scope="module")
def engine(vec_path):
    """An in-process engine (so the test can see the model), its readings reader and the prompts."""
    from persona_vaccine.models.loading import load_tokenizer, resolve_model_path
    from persona_vaccine.models.vllm_memory import engine_memory_args
    from persona_vaccine.monitoring.vllm_readings import ReadingsReader

    saved = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    reader = ReadingsReader()
    from vllm import LLM

    # a user's process already holds a model or a dataset: 3 GiB here, more than vLLM's share of RAM
    ballast = torch.ones(3 * 2**28)
    llm = LLM(
        model=resolve_model_path("smollm2-135m"),
        enforce_eager=True,
        dtype="float32",
        **engine_memory_args(cpu=True, gpu_share=0.1),
        max_model_len=512,
        enable_prefix_caching=True,
        seed=0,
    )
    del ballast
    tokenizer = load_tokenizer("smollm2-135m")
    prompts = [
        tokenizer(format_chat(tokenizer, build_messages(q)), add_special_tokens=False)["input_ids"]
        for q in QUESTIONS
    ]
    yield llm, reader, prompts
    reader.close()
    del llm
    from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

    cleanup_dist_env_and_memory()
    if saved is None:
        os.environ.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
    else:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = saved


def generate(llm, prompts, requests, max_tokens=16, salt=None):
    from vllm import SamplingParams

    params = [
        SamplingParams(
            max_tokens=max_tokens, temperature=0, extra_args=r.to_extra_args() if r is not None else None
        )
        for r in requests
    ]
    inputs = [{"prompt_token_ids": p} | ({"cache_salt": salt} if salt else {}) for p in prompts]
    return [list(o.outputs[0].token_ids) for o in llm.generate(inputs, params, use_tqdm=False)]


def watch(vec_path, tag, **kw) -> PersonaRequest:
    return PersonaRequest(tag, watch=(WatchSpec(vec_path, LAYER, **kw),))


def recorder(llm, layer):
    """A forward hook after the persona hook on `layer`: what the next block really receives."""
    seen: list[torch.Tensor] = []

    def install(model):
        def hook(module, args, output):
            hidden, residual = output
            seen.append((hidden + residual).detach().clone())

        return model.model.layers[layer - 1].register_forward_hook(hook)

    handle = llm.apply_model(install)[0]
    return seen, handle


def test_the_kv_cache_is_the_size_asked_for_counted_as_vllm_counts(engine):
    from persona_vaccine.models.loading import model_config
    from persona_vaccine.models.vllm_memory import engine_memory_args, kv_bytes_per_token

    llm = engine[0]
    cache = llm.llm_engine.vllm_config.cache_config
    asked = engine_memory_args(cpu=True, gpu_share=0.1)["kv_cache_memory_bytes"]
    block = cache.block_size * kv_bytes_per_token(model_config("smollm2-135m"), "float32")
    assert asked - block < cache.num_gpu_blocks * block <= asked


def test_the_hooks_are_attached_in_the_worker(engine):
    llm, _, _ = engine
    assert llm.collective_rpc("persona_hooks_attached") == [{"attached": True, "errors": 0, "rank": 0}]


def test_three_requests_in_one_batch_each_give_what_they_give_alone(engine, vec_path):
    llm, reader, prompts = engine
    p = prompts[0]
    steer = PersonaRequest("steered-alone", steer=(SteerSpec(vec_path, LAYER, 6.0),))
    plain_alone = generate(llm, [p], [None], salt="alone-1")[0]
    steered_alone = generate(llm, [p], [steer], salt="alone-2")[0]
    monitored_alone = generate(llm, [p], [watch(vec_path, "alone")], salt="alone-3")[0]
    alone = reader.pop("alone")
    batch = generate(
        llm,
        [p, p, p],
        [watch(vec_path, "batch"), PersonaRequest("steered", steer=steer.steer), None],
        salt="batch",
    )
    together = reader.pop("batch")
    assert steered_alone != plain_alone  # the steering does something
    assert monitored_alone == plain_alone  # watching changes nothing
    assert batch == [monitored_alone, steered_alone, plain_alone]
    got, want = together.readings["evil"].tokens, alone.readings["evil"].tokens
    assert len(got) == len(want) == len(plain_alone)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-3


def test_cap_leaves_tokens_below_it_and_clamps_the_rest_to_the_cap(engine, vec_path):
    llm, reader, prompts = engine
    unguarded = generate(llm, [prompts[1]], [watch(vec_path, "free")], max_tokens=24, salt="cap-1")[0]
    free = reader.pop("free").readings["evil"].tokens
    cap = sorted(free)[len(free) // 2]  # half the positions lie above it
    seen, handle = recorder(llm, LAYER)
    try:
        capped = generate(
            llm, [prompts[1]], [watch(vec_path, "capped", guard="cap", cap=cap)], max_tokens=24, salt="cap-2"
        )[0]
    finally:
        handle.remove()
    readings = reader.pop("capped").readings["evil"]
    unit = PersonaVector.load(vec_path).unit(LAYER)
    after = torch.cat(seen) @ unit  # every row the engine ran, prompt then one per step
    before = torch.tensor(readings.tokens)
    n_prompt = len(prompts[1])
    after_answer = after[n_prompt - 1 : n_prompt - 1 + len(before)]
    above = before > cap
    above[0] = False  # the last prompt token: the cap acts on answer tokens only
    assert above.any() and (~above).any()
    assert float(after_answer[0]) == pytest.approx(float(before[0]), abs=1e-3)
    assert torch.allclose(after_answer[above], torch.full_like(after_answer[above], cap), atol=1e-3)
    assert torch.allclose(after_answer[~above], before[~above], atol=1e-3)
    assert int(above.sum()) <= readings.capped <= int(((after - cap).abs() < 1e-3).sum())
    first = int(above.nonzero()[0])  # token `first` is the first one produced from a capped position
    assert capped[:first] == unguarded[:first]


def test_stop_guard_ends_its_own_request_only(engine, vec_path):
    llm, reader, prompts = engine
    stopped, other = generate(
        llm,
        prompts[:2],
        [watch(vec_path, "stop", prompt_threshold=-1e9, guard="stop"), watch(vec_path, "go")],
        max_tokens=12,
        salt="stop",
    )
    assert reader.pop("stop").stop and not reader.pop("go").stop
    assert len(stopped) == 1 and len(other) > 1


def test_readings_and_alerts_agree_with_the_hf_monitor(engine, vec_path):
    from persona_vaccine.models.loading import load_model
    from persona_vaccine.monitoring.monitor import Monitor

    llm, reader, prompts = engine
    threshold = dict(prompt_threshold=1e9, response_threshold=0.0, min_tokens=2)
    answer = generate(
        llm, [prompts[2]], [watch(vec_path, "agree", **threshold)], max_tokens=16, salt="agree"
    )[0]
    got = reader.pop("agree")
    model, _ = load_model("smollm2-135m")
    vector = PersonaVector.load(vec_path)
    hf_watch = Watch(vector, LAYER, **threshold)
    monitor = Monitor(model, [hf_watch])
    ids = torch.tensor([prompts[2] + answer[:-1]])
    with monitor.active(), torch.no_grad():  # prefill of the prompt, then the answer one token at a time
        out = model(ids[:, : len(prompts[2])], use_cache=True)
        cache = out.past_key_values
        for i in range(len(prompts[2]), ids.shape[1]):
            cache = model(ids[:, i : i + 1], past_key_values=cache, use_cache=True).past_key_values
    want = monitor.readings()["evil"].tokens
    have = got.readings["evil"].tokens
    scale = max(abs(x) for x in want)
    assert len(have) == len(want) == len(answer)
    assert max(abs(a - b) for a, b in zip(have, want, strict=True)) <= 1e-3 * scale
    assert [a["position"] for a in got.alerts] == [a.position for a in monitor.alerts()]
    # the shared state machine gives the same alerts from the same numbers
    replay = RequestReadings.of([hf_watch])
    replay.read_prompt(hf_watch, torch.tensor([have[0]]))
    for value in have[1:]:
        replay.read_answer(hf_watch, value)
    assert [a.position for a in replay.alerts] == [a["position"] for a in got.alerts]


def test_a_steered_prefix_is_never_reused_by_an_unsteered_request(engine, vec_path):
    from vllm import SamplingParams

    llm, _, prompts = engine
    long = {"prompt_token_ids": (prompts[2] * 20)[:400]}  # several full KV blocks
    steer = PersonaRequest("s", steer=(SteerSpec(vec_path, LAYER, 6.0),))
    params = SamplingParams(max_tokens=4, temperature=0, extra_args=steer.to_extra_args())
    first = llm.generate([long], params, use_tqdm=False)[0]
    again = llm.generate([long], params, use_tqdm=False)[0]
    plain = llm.generate([long], SamplingParams(max_tokens=4, temperature=0), use_tqdm=False)[0]
    assert first.num_cached_tokens == 0 or first.num_cached_tokens is None
    assert again.num_cached_tokens > 0  # the same steering shares its own blocks
    assert not plain.num_cached_tokens  # an unsteered request never gets them


@pytest.mark.parametrize(
    "persona, message",
    [
        ('{"watch": [{"vector": "/no/such.safetensors", "layer": 3}]}', "no vector file"),
        ('{"steer": [{"vector": "VEC", "layer": 3, "coef": "big"}]}', "coef must be a finite number"),
        ('{"watch": [{"vector": "VEC", "layer": 0}]}', "layer number >= 1"),
        ('{"watch": [{"vector": "VEC", "layer": 3, "guard": "explode"}]}', "guard must be one of"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_settings_are_refused_and_the_engine_lives_on(engine, vec_path, persona, message):
    from vllm import SamplingParams
    from vllm.exceptions import VLLMValidationError

    llm, _, prompts = engine
    params = SamplingParams(max_tokens=2, extra_args={"persona": persona.replace("VEC", vec_path)})
    with pytest.raises(VLLMValidationError, match=message):
        llm.generate([{"prompt_token_ids": prompts[0]}], params, use_tqdm=False)
    assert len(generate(llm, [prompts[0]], [None], max_tokens=2)[0]) == 2


def test_a_cap_band_clamps_answer_tokens_at_each_layer_of_the_band(engine, vec_path):
    llm, reader, prompts = engine
    band = {8: -50.0, 16: -50.0}  # below the answer's reads: each answer row is clamped at both layers
    runs = {}
    for name, requests in (("plain", [None]), ("band", None)):
        records = {layer: recorder(llm, layer) for layer in band}
        try:
            spec = WatchSpec(vec_path, LAYER, None, 1e9, "cap", 1e9, band_caps=tuple(band.items()))
            generate(llm, [prompts[2]], requests or [PersonaRequest("band", watch=(spec,))], 8, salt=name)
        finally:
            for _, handle in records.values():
                handle.remove()
        runs[name] = {layer: torch.cat(records[layer][0]) for layer in band}
    readings = reader.pop("band").readings["evil"]
    vector = PersonaVector.load(vec_path)
    n_prompt = len(prompts[2])
    for layer, cap in band.items():
        plain, capped = runs["plain"][layer] @ vector.unit(layer), runs["band"][layer] @ vector.unit(layer)
        assert torch.equal(capped[:n_prompt], plain[:n_prompt])  # the prompt is left alone
        answer = capped[n_prompt:]
        assert len(answer) == 7 and torch.allclose(answer, torch.full_like(answer, cap), atol=1e-3)
    assert readings.capped == 2 * 7
