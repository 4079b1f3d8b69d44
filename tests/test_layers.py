"""Layer discovery on tiny random models of every supported architecture."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from persona_vaccine.models.layers import (
    UnsupportedArchitecture,
    check_layer,
    get_decoder_layers,
    hidden_size,
    unwrap_model,
)

N_LAYERS = 3


def _configs():
    from transformers import (
        GPT2Config,
        GPTNeoXConfig,
        LlamaConfig,
        MistralConfig,
        Olmo2Config,
        Phi3Config,
        Qwen2Config,
        Qwen3Config,
    )
    from transformers.models.gemma2 import Gemma2Config
    from transformers.models.gemma3 import Gemma3TextConfig

    common = dict(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    return {
        "llama": LlamaConfig(**common),
        "qwen2": Qwen2Config(**common),
        "qwen3": Qwen3Config(**common, head_dim=8),
        "mistral": MistralConfig(**common),
        "gemma2": Gemma2Config(**common, head_dim=8),
        "gemma3_text": Gemma3TextConfig(**common, head_dim=8),
        "phi3": Phi3Config(**common),
        "olmo2": Olmo2Config(**common),
        "gpt2": GPT2Config(vocab_size=128, n_embd=32, n_layer=N_LAYERS, n_head=4, n_positions=64),
        "gpt_neox": GPTNeoXConfig(
            vocab_size=128,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=N_LAYERS,
            num_attention_heads=4,
            max_position_embeddings=64,
        ),
    }


CONFIGS = _configs()


def _gemma3_multimodal():
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig
    from transformers.models.gemma3 import Gemma3TextConfig

    text = Gemma3TextConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=64,
    )
    vision = SiglipVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
    )
    config = Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=4,
        image_token_index=299,
        boi_token_index=297,
        eoi_token_index=298,
    )
    return Gemma3ForConditionalGeneration(config).eval()


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_finds_blocks_and_layer_l_is_hidden_states_l(arch):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(CONFIGS[arch]).eval()
    blocks = get_decoder_layers(model)
    assert len(blocks) == N_LAYERS
    assert hidden_size(model) == 32
    seen = {}
    handles = [
        b.register_forward_hook(
            lambda m, a, o, i=i: seen.__setitem__(i + 1, o[0] if isinstance(o, tuple) else o)
        )
        for i, b in enumerate(blocks)
    ]
    ids = torch.randint(0, 128, (2, 5))
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
    for h in handles:
        h.remove()
    # layer l (1-based) = output of block l = hidden_states[l]; the last entry has the final norm in some models
    for layer in range(1, N_LAYERS):
        torch.testing.assert_close(seen[layer], out.hidden_states[layer])


def test_gemma3_multimodal_wrapper():
    model = _gemma3_multimodal()
    assert len(get_decoder_layers(model)) == N_LAYERS
    assert hidden_size(model) == 32


def test_through_peft_wrapper():
    from peft import LoraConfig, get_peft_model

    model = AutoModelForCausalLM.from_config(CONFIGS["llama"])
    blocks = get_decoder_layers(model)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert unwrap_model(peft_model) is model
    assert get_decoder_layers(peft_model) is blocks


def test_opt_is_found_by_structure_and_layers_path_overrides():
    from transformers import OPTConfig

    model = AutoModelForCausalLM.from_config(
        OPTConfig(
            vocab_size=64,
            hidden_size=16,
            num_hidden_layers=2,
            ffn_dim=32,
            num_attention_heads=2,
            word_embed_proj_dim=16,
        )
    )
    assert get_decoder_layers(model) is model.model.decoder.layers
    assert len(get_decoder_layers(model, layers_path="model.decoder.layers")) == 2
    with pytest.raises(UnsupportedArchitecture, match="'model.nope' is not a list.*model.decoder.layers"):
        get_decoder_layers(model, layers_path="model.nope")


class _Config:
    model_type = "toy"
    num_hidden_layers = 3
    hidden_size = 8


class _SequentialToy(torch.nn.Module):
    """Blocks in an nn.Sequential, not an nn.ModuleList: structure can't tell where they are."""

    def __init__(self):
        super().__init__()
        self.config = _Config()
        self.stack = torch.nn.Sequential(*[torch.nn.Linear(8, 8) for _ in range(3)])
        self.norms = torch.nn.ModuleList([torch.nn.LayerNorm(8) for _ in range(2)])


def test_unsupported_architecture_is_named_with_the_fix():
    with pytest.raises(UnsupportedArchitecture, match="'toy'.*layers_path.*'norms' \\(2\\)"):
        get_decoder_layers(_SequentialToy())


def test_the_biggest_list_of_the_right_length_wins():
    class Toy(_SequentialToy):
        def __init__(self):
            super().__init__()
            self.scales = torch.nn.ModuleList([torch.nn.LayerNorm(8) for _ in range(3)])
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(3)])
            self.vision_tower = torch.nn.ModuleList([torch.nn.Linear(8, 64) for _ in range(3)])

    toy = Toy()
    assert get_decoder_layers(toy) is toy.blocks


def test_remembered_layers_path_is_used_everywhere():
    from persona_vaccine.models.layers import set_layers_path

    toy = _SequentialToy()
    toy.blocks = torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(3)])
    toy.other = torch.nn.ModuleList([torch.nn.Linear(8, 8, bias=False) for _ in range(3)])
    assert get_decoder_layers(toy) is toy.blocks
    set_layers_path(toy, "other")
    assert get_decoder_layers(toy) is toy.other
    with pytest.raises(UnsupportedArchitecture, match="'nope' is not a list"):
        set_layers_path(toy, "nope")


def test_layer_out_of_range():
    with pytest.raises(ValueError, match="from 1 to 4"):
        check_layer(0, 4)
    with pytest.raises(ValueError, match="out of range"):
        check_layer(5, 4)
    check_layer(4, 4)


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_batched_capture_with_shared_prefix_matches_hidden_states(arch):
    """The shared-prefix KV-cache path and right padding give each sample's own hidden states."""
    from persona_vaccine.steering.activations import prompt_response_activations

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(CONFIGS[arch]).eval()
    system = list(range(3, 23))  # 20 shared tokens: above the sharing threshold
    samples = [(system + [30 + i] * (1 + i % 3), [60 + i] * (2 + i % 4)) for i in range(6)] + [
        ([90, 91], [92]),
        ([93, 94, 95, 96], [97, 98]),
    ]
    shared = prompt_response_activations(
        model, samples, pad_id=0, batch_size=4, progress=False, share_prefix=True
    )
    plain = prompt_response_activations(model, samples, pad_id=0, batch_size=4, progress=False)
    for i, (prompt, response) in enumerate(samples):
        with torch.no_grad():
            hs = model(input_ids=torch.tensor([prompt + response]), output_hidden_states=True).hidden_states
        for layer in range(1, N_LAYERS):  # the last entry of hidden_states is after the final norm
            h = hs[layer][0]
            for acts in (shared, plain):
                torch.testing.assert_close(
                    acts.response_avg[i, layer - 1], h[len(prompt) :].mean(0), rtol=1e-4, atol=1e-5
                )
                torch.testing.assert_close(
                    acts.prompt_avg[i, layer - 1], h[: len(prompt)].mean(0), rtol=1e-4, atol=1e-5
                )
                torch.testing.assert_close(
                    acts.prompt_last[i, layer - 1], h[len(prompt) - 1], rtol=1e-4, atol=1e-5
                )
