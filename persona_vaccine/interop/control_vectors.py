"""Export/import persona vectors as llama.cpp control-vector GGUF files.

The file format is the one repeng's `ControlVector.export_gguf` writes and llama.cpp's
`--control-vector` loader reads: a GGUF with `general.architecture = "controlvector"`, the metadata
keys `controlvector.model_hint` (string, the model type, e.g. "llama") and
`controlvector.layer_count` (uint32, the number of direction tensors, as repeng writes it), and one
1-D float32 tensor of size hidden_size per steered layer, named `direction.N`.

Layer mapping (note the off-by-one):

    our layer l (1-based; output of decoder block l)  <->  direction.(l - 1)

`N` in `direction.N` is the 0-based index of the decoder block whose output is steered: llama.cpp
adds `direction.N` to the output of block N (0-based), right after the block's residual add.
Our layer 1 is that block 0's output, so it would be `direction.0` -- which llama.cpp rejects
("invalid (zero) direction tensor layer index") and then skips the whole file. Export therefore
leaves layer 1 out by default and refuses it when asked for; import accepts `direction.0`
(-> layer 1) since other tools (repeng) may write it.

Loading parses the GGUF with `gguf.GGUFReader` (a memory map of plain data): no code is executed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter

from persona_vaccine.models.layers import check_layer
from persona_vaccine.steering.vector import PersonaVector, VectorMismatch

ARCH = "controlvector"
MODEL_HINT_KEY = f"{ARCH}.model_hint"
LAYER_COUNT_KEY = f"{ARCH}.layer_count"


def direction_name(layer: int) -> str:
    """GGUF tensor name for our 1-based layer `layer`: `direction.(layer - 1)`."""
    return f"direction.{layer - 1}"


def export_control_vector(
    vector: PersonaVector,
    path: str | Path,
    layers: Sequence[int] | None = None,
    coef: float = 1.0,
    model_hint: str | None = None,
) -> Path:
    """Write `coef * v_l` for each chosen layer as `direction.(l-1)` in a control-vector GGUF.

    `layers` defaults to every layer of the vector except layer 1 (llama.cpp can't load
    `direction.0`). `model_hint` defaults to the model type of the vector's model. Returns the path.
    """
    path = Path(path)
    model_hint = model_hint or vector_model_type(vector)
    chosen = sorted(layer for layer in vector.layers if layer != 1) if layers is None else sorted(set(layers))
    for layer in chosen:
        check_layer(layer, vector.num_layers, where="export layer")
        if layer == 1:
            raise ValueError(
                "layer 1 (output of block 1) maps to direction.0, which llama.cpp rejects; "
                "export layers 2..num_layers"
            )
        if layer not in vector.layers:
            raise KeyError(
                f"vector '{vector.trait}' has no layer {layer}; it has layers {sorted(vector.layers)}"
            )
    if not chosen:
        raise ValueError(f"vector '{vector.trait}': no layers to export")

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    writer = GGUFWriter(tmp, ARCH)  # writes general.architecture itself
    writer.add_string(MODEL_HINT_KEY, model_hint)
    writer.add_uint32(LAYER_COUNT_KEY, len(chosen))
    for layer in chosen:
        data = (coef * vector.layers[layer].detach().to(torch.float32)).cpu().contiguous().numpy()
        writer.add_tensor(direction_name(layer), data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path


def _local_config(model_id: str):
    """The HF config of an embedded or local model (no hub access), or None."""
    from persona_vaccine.models.embedded import is_embedded
    from persona_vaccine.models.loading import model_config

    if not (is_embedded(model_id) or (Path(model_id) / "config.json").is_file()):
        return None
    try:
        return model_config(model_id)
    except Exception:  # noqa: BLE001 - an unreadable config just means "unknown"
        return None


def vector_model_type(vector: PersonaVector) -> str:
    """The transformers model type of the model a vector was extracted from."""
    known = vector.extraction.get("model_type")
    if known:
        return str(known)
    config = _local_config(vector.model_id)
    if config is not None:
        return str(config.model_type)
    raise ValueError(
        f"vector '{vector.trait}' does not record its model type and '{vector.model_id}' is not a local model: "
        "pass model_hint= (the transformers model type, e.g. 'llama' or 'qwen2')"
    )


def _model_layer_count(model_id: str) -> int | None:
    config = _local_config(model_id)
    if config is None:
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(getattr(text, name, None), int):
            return int(getattr(text, name))
    return None


def _string_field(reader: GGUFReader, key: str) -> str | None:
    field = reader.get_field(key)
    if field is None:
        return None
    value = field.contents()
    return value if isinstance(value, str) else None


def _directions(reader: GGUFReader, path: Path) -> dict[int, torch.Tensor]:
    """The file's `direction.N` tensors as layer N+1 -> float32 vector, all of one size."""
    layers: dict[int, torch.Tensor] = {}
    for t in reader.tensors:
        prefix, _, index = t.name.partition(".")
        if prefix != "direction" or not index.isdigit():
            raise VectorMismatch(f"{path}: unexpected tensor '{t.name}' (expected direction.N)")
        if t.tensor_type not in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
            raise VectorMismatch(f"{path}: tensor '{t.name}' has type {t.tensor_type.name}, expected F32")
        if len(t.shape) != 1:
            raise VectorMismatch(f"{path}: tensor '{t.name}' is not 1-D (shape {list(t.shape)})")
        layer = int(index) + 1
        if layer in layers:
            raise VectorMismatch(f"{path}: tensor '{t.name}' appears twice")
        layers[layer] = torch.from_numpy(np.array(t.data, dtype=np.float32).reshape(-1))  # copy off the mmap
    if not layers:
        raise VectorMismatch(f"{path}: control vector has no direction.N tensors")
    sizes = {layer: v.numel() for layer, v in layers.items()}
    if len(set(sizes.values())) != 1:
        raise VectorMismatch(f"{path}: direction tensors have different sizes: {dict(sorted(sizes.items()))}")

    return layers


def import_control_vector(
    path: str | Path,
    trait: str,
    model_id: str,
    num_layers: int | None = None,
    expected_model_hint: str | None = None,
    model=None,
) -> PersonaVector:
    """Read a control-vector GGUF into a PersonaVector: `direction.N` -> layer N+1.

    hidden_size comes from the tensors. The layer count (a file only holds the directions it steers)
    comes from `num_layers`, else from `model` (its decoder blocks), else from `model_id`'s config when
    that is a local or embedded model; otherwise it is an error. If `expected_model_hint` is given, the
    file's `controlvector.model_hint` must match it.

    A repeng vector trained with its default reads has, for the model's last layer, a direction
    taken from `hidden_states[L]` (after the final norm); here it is added to the last block's output
    before that norm, so treat a last-layer direction from repeng as approximate.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"control vector file not found: {path}")
    try:
        reader = GGUFReader(path)
    except Exception as e:  # not a GGUF file (bad magic, empty, truncated)
        raise VectorMismatch(f"{path}: not a GGUF file ({e})") from e

    arch = _string_field(reader, "general.architecture")
    if arch != ARCH:
        raise VectorMismatch(
            f"{path}: not a control vector (general.architecture={arch!r}, expected {ARCH!r})"
        )
    model_hint = _string_field(reader, MODEL_HINT_KEY)
    if expected_model_hint is not None and model_hint != expected_model_hint:
        raise VectorMismatch(
            f"{path}: control vector is for model type {model_hint!r}, expected {expected_model_hint!r}"
        )

    layers = _directions(reader, path)
    sizes = {layer: v.numel() for layer, v in layers.items()}
    top = max(layers)
    if num_layers is None and model is not None:
        from persona_vaccine.models.layers import get_decoder_layers

        num_layers = len(get_decoder_layers(model))
    if num_layers is None:
        num_layers = _model_layer_count(model_id)
    if num_layers is None:
        raise VectorMismatch(
            f"{path}: a control vector holds only the layers it steers (here up to layer {top}), not the "
            f"model's layer count, and '{model_id}' is not a local model to read it from: pass num_layers= "
            "(or model=)"
        )
    if top > num_layers:
        raise VectorMismatch(f"{path}: has direction.{top - 1} (layer {top}) but num_layers={num_layers}")
    return PersonaVector(
        trait=trait,
        model_id=model_id,
        hidden_size=next(iter(sizes.values())),
        num_layers=num_layers,
        layers=dict(sorted(layers.items())),
        extraction={
            "source": "gguf_control_vector",
            "file": str(path),
            "model_hint": model_hint,
            **({"model_type": model_hint} if model_hint else {}),
        },
    )
