"""Find the decoder blocks of a causal LM, through PEFT and DeepSpeed wrappers.

Layer convention used everywhere in persona-vaccine: "layer l" (1-based) is the output of decoder
block l, i.e. `hidden_states[l]` in transformers (index 0 is the embeddings). Block l is
`get_decoder_layers(model)[l - 1]`.
"""

from __future__ import annotations

from torch import nn

# model_type -> attribute path from the unwrapped model to its nn.ModuleList of decoder blocks.
LAYER_PATHS: dict[str, tuple[str, ...]] = {
    "llama": ("model.layers",),
    "qwen2": ("model.layers",),
    "qwen3": ("model.layers",),
    "mistral": ("model.layers",),
    "gemma2": ("model.layers",),
    "gemma3_text": ("model.layers",),
    "gemma3": (
        "model.language_model.layers",
        "language_model.model.layers",
        "model.language_model.model.layers",
    ),
    "phi3": ("model.layers",),
    "gpt2": ("transformer.h",),
    "gpt_neox": ("gpt_neox.layers",),
    "olmo2": ("model.layers",),
}


class UnsupportedArchitecture(ValueError):
    """The model's decoder blocks can't be found."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DeepSpeed engines, DDP, torch.compile and PEFT wrappers."""
    seen = set()
    while id(model) not in seen:
        seen.add(id(model))
        if hasattr(model, "get_base_model") and callable(model.get_base_model):  # PEFT
            model = model.get_base_model()
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        elif type(model).__name__ in {"DeepSpeedEngine", "DistributedDataParallel", "PipelineEngine"}:
            model = model.module
    return model


def _get_path(obj: object, path: str) -> object | None:
    for name in path.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def get_decoder_layers(model: nn.Module, layers_path: str | None = None) -> nn.ModuleList:
    """The decoder blocks, in order. `layers_path` (e.g. "model.layers") overrides the lookup."""
    base = unwrap_model(model)
    model_type = getattr(getattr(base, "config", None), "model_type", None)
    if layers_path:
        candidates: tuple[str, ...] = (layers_path,)
    elif model_type in LAYER_PATHS:
        candidates = LAYER_PATHS[model_type]
    else:
        raise UnsupportedArchitecture(
            f"Unsupported architecture '{model_type}' ({type(base).__name__}). Supported model types: "
            f"{', '.join(sorted(LAYER_PATHS))}. For another decoder-only model, pass layers_path "
            "(the attribute path to its list of decoder blocks, e.g. 'model.layers')."
        )
    for path in candidates:
        layers = _get_path(base, path)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return layers
    raise UnsupportedArchitecture(
        f"Could not find the decoder blocks of {type(base).__name__} (model_type '{model_type}') at "
        f"{' or '.join(candidates)}. Pass layers_path pointing at its nn.ModuleList of blocks."
    )


def num_layers(model: nn.Module) -> int:
    return len(get_decoder_layers(model))


def hidden_size(model: nn.Module) -> int:
    config = unwrap_model(model).config
    config = getattr(config, "text_config", None) or config
    for name in ("hidden_size", "n_embd", "d_model"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    raise UnsupportedArchitecture(f"Could not read the hidden size from {type(config).__name__}")


def check_layer(layer: int, n_layers: int, where: str = "layer") -> None:
    """Raise a clear error for a 1-based layer out of range."""
    if not isinstance(layer, int) or not 1 <= layer <= n_layers:
        raise ValueError(
            f"{where}={layer!r} is out of range: this model has {n_layers} decoder blocks, so layers run from "
            f"1 to {n_layers} (layer l is the output of block l, i.e. hidden_states[l])."
        )
