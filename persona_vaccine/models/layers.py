"""Find the decoder blocks of any causal LM from its structure, through PEFT, DeepSpeed and DDP wrappers.

Layer convention used everywhere in persona-vaccine: "layer l" (1-based) is the output of decoder
block l, and block l is `get_decoder_layers(model)[l - 1]`. For l < L (L = number of blocks) this is
`hidden_states[l]` in transformers (index 0 is the embeddings). For the last layer it is not:
transformers applies the final norm before storing `hidden_states[L]`, while layer L here is the last
block's raw (pre-norm) output.

Discovery: the `nn.ModuleList` whose length is the config's layer count and that holds the most
parameters (so per-layer norms or scalars never win), outside vision/audio towers. `LAYER_PATHS`
holds explicit overrides by model type; `layers_path` overrides everything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

import torch
from torch import nn

# model_type -> attribute paths (tried in order) from the unwrapped model to its decoder blocks.
# Only needed where structural discovery would be ambiguous; everything else is found generically.
LAYER_PATHS: dict[str, tuple[str, ...]] = {
    "gemma3": (
        "model.language_model.layers",
        "language_model.model.layers",
        "model.language_model.model.layers",
    ),
}

_LAYER_COUNT_FIELDS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_HIDDEN_SIZE_FIELDS = ("hidden_size", "n_embd", "d_model", "dim")
_NOT_THE_DECODER = ("vision", "visual", "audio", "image", "speech", "mtp", "draft")


class UnsupportedArchitecture(ValueError):
    """The model's decoder blocks can't be found."""


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode inside the block, its training mode given back after, however the block ends."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DeepSpeed engines, DDP, torch.compile and PEFT wrappers."""
    seen = set()
    while id(model) not in seen:
        seen.add(id(model))
        if hasattr(model, "get_base_model") and callable(model.get_base_model):  # PEFT
            model = model.get_base_model()
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = cast(nn.Module, model._orig_mod)
        elif type(model).__name__ in {"DeepSpeedEngine", "DistributedDataParallel", "PipelineEngine"}:
            model = cast(nn.Module, model.module)
    return model


def _get_path(obj: object, path: str) -> object | None:
    for name in path.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def text_config(model: nn.Module) -> Any:
    """The config that describes the language model (the text part of a multimodal config)."""
    config = getattr(unwrap_model(model), "config", None)
    if config is None:
        return None
    if hasattr(config, "get_text_config"):
        try:
            return config.get_text_config(decoder=True)
        except TypeError:
            return config.get_text_config()
    return getattr(config, "text_config", None) or config


def config_layer_count(model: nn.Module) -> int | None:
    config = text_config(model)
    decoder_layers = getattr(config, "decoder_layers", None)  # encoder-decoder configs used as a decoder
    if isinstance(decoder_layers, int) and decoder_layers > 0:
        return decoder_layers
    for name in _LAYER_COUNT_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _model_type(model: nn.Module) -> str | None:
    return getattr(getattr(unwrap_model(model), "config", None), "model_type", None)


def _candidate_lists(base: nn.Module, count: int | None) -> list[tuple[str, nn.ModuleList]]:
    found = []
    # in an encoder-decoder the encoder's blocks are not the causal LM's; in a BERT-style decoder they are
    skip = _NOT_THE_DECODER + (("encoder",) if getattr(base.config, "is_encoder_decoder", False) else ())
    for name, module in base.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if count is not None and len(module) != count:
            continue
        if any(part in name.lower() for part in skip):
            continue
        found.append((name, module))
    return found


def _size(module: nn.Module) -> int:
    # ZeRO-3 partitions parameters to numel 0; `ds_numel` keeps the real size.
    return sum(getattr(p, "ds_numel", p.numel()) for p in module.parameters())


_LAYERS_PATH_ATTR = "_persona_vaccine_layers_path"


def set_layers_path(model: nn.Module, layers_path: str | None) -> None:
    """Remember where `model`'s decoder blocks are, for every later lookup (steering, extraction, drift...)."""
    base = unwrap_model(model)
    if layers_path:
        find_decoder_layers(base, layers_path)  # fail now, with the clear message, if it is wrong
    setattr(base, _LAYERS_PATH_ATTR, layers_path or None)


def find_decoder_layers(model: nn.Module, layers_path: str | None = None) -> tuple[str, nn.ModuleList]:
    """(attribute path, blocks) of the model's decoder blocks. `layers_path` (e.g. "model.layers") overrides.

    Without `layers_path`, the one remembered by `set_layers_path` (or `load_model(layers_path=...)`) is used.
    """
    base = unwrap_model(model)
    model_type = _model_type(base)
    layers_path = layers_path or getattr(base, _LAYERS_PATH_ATTR, None)
    if layers_path:
        layers = _get_path(base, layers_path)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return layers_path, layers
        raise UnsupportedArchitecture(
            f"layers_path '{layers_path}' is not a list of decoder blocks in {type(base).__name__} "
            f"(model_type '{model_type}'). Point it at the nn.ModuleList of blocks, e.g. "
            f"{_suggestions(base)}."
        )
    for path in LAYER_PATHS.get(model_type or "", ()):
        layers = _get_path(base, path)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return path, layers
    count = config_layer_count(base)
    candidates = _candidate_lists(base, count)
    if not candidates:
        expected = f"{count} entries (the config's layer count)" if count else "decoder blocks"
        raise UnsupportedArchitecture(
            f"Could not find the decoder blocks of {type(base).__name__} (model_type '{model_type}'): no "
            f"nn.ModuleList of {expected}. Pass layers_path, the attribute path to its list of decoder "
            f"blocks ({_suggestions(base)})."
        )
    name, layers = max(candidates, key=lambda item: (_size(item[1]), -item[0].count(".")))
    return name, layers


def _suggestions(base: nn.Module) -> str:
    lists = [f"'{n}' ({len(m)})" for n, m in base.named_modules() if isinstance(m, nn.ModuleList) and len(m)]
    return "lists found: " + ", ".join(lists[:6]) if lists else "the model has no nn.ModuleList"


def get_decoder_layers(model: nn.Module, layers_path: str | None = None) -> nn.ModuleList:
    """The decoder blocks, in order. `layers_path` (e.g. "model.layers") overrides the lookup."""
    return find_decoder_layers(model, layers_path)[1]


def num_layers(model: nn.Module, layers_path: str | None = None) -> int:
    return len(get_decoder_layers(model, layers_path))


def hidden_size(model: nn.Module) -> int:
    config = text_config(model)
    for name in _HIDDEN_SIZE_FIELDS:
        if getattr(config, name, None):
            return int(getattr(config, name))
    raise UnsupportedArchitecture(f"Could not read the hidden size from {type(config).__name__}")


def check_layer(layer: int, n_layers: int, where: str = "layer") -> None:
    """Raise a clear error for a 1-based layer out of range."""
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= n_layers:
        raise ValueError(
            f"{where}={layer!r} is out of range: this model has {n_layers} decoder blocks, so layers run from "
            f"1 to {n_layers} (layer l is the output of block l)."
        )


# --- block outputs: a tensor, a tuple whose first item is the hidden state, or a ModelOutput ------------
def block_hidden(output: Any) -> torch.Tensor:
    """The hidden state in a decoder block's output."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return output[0]
    if hasattr(output, "to_tuple"):  # ModelOutput
        return output.to_tuple()[0]
    raise TypeError(f"can't read the hidden state from a block output of type {type(output).__name__}")


def with_block_hidden(output: Any, hidden: torch.Tensor) -> Any:
    """`output` with its hidden state replaced by `hidden`, in the same container type."""
    if isinstance(output, torch.Tensor):
        return hidden
    if isinstance(output, tuple):
        return (hidden, *output[1:])
    if isinstance(output, list):
        return [hidden, *output[1:]]
    if hasattr(output, "to_tuple"):
        key = next(iter(output.keys()))
        output[key] = hidden
        return output
    raise TypeError(f"can't steer a block output of type {type(output).__name__}")
