"""Export/import persona vectors as llama.cpp control-vector GGUF files.

The file format is the one repeng's `ControlVector.export_gguf` writes and llama.cpp's
`--control-vector` loader reads: a GGUF with `general.architecture = "controlvector"`, the metadata
keys `controlvector.model_hint` (string, the model type, e.g. "llama") and
`controlvector.layer_count` (uint32, the number of direction tensors, as repeng writes it), and one
1-D float32 tensor of size hidden_size per steered layer, named `direction.N`.

Layer mapping (note the off-by-one):

    our layer l (1-based; output of decoder block l = hidden_states[l])  <->  direction.(l - 1)

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

from .layers import check_layer
from .vector import PersonaVector, VectorMismatch

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
    model_hint: str = "llama",
) -> Path:
    """Write `coef * v_l` for each chosen layer as `direction.(l-1)` in a control-vector GGUF.

    `layers` defaults to every layer of the vector except layer 1 (llama.cpp can't load
    `direction.0`). Returns the path written.
    """
    path = Path(path)
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


def _string_field(reader: GGUFReader, key: str) -> str | None:
    field = reader.get_field(key)
    if field is None:
        return None
    value = field.contents()
    return value if isinstance(value, str) else None


def import_control_vector(
    path: str | Path,
    trait: str,
    model_id: str,
    num_layers: int | None = None,
    expected_model_hint: str | None = None,
) -> PersonaVector:
    """Read a control-vector GGUF into a PersonaVector: `direction.N` -> layer N+1.

    hidden_size comes from the tensors; `num_layers` defaults to the highest layer found. If
    `expected_model_hint` is given, the file's `controlvector.model_hint` must match it.
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

    top = max(layers)
    if num_layers is None:
        num_layers = top
    elif top > num_layers:
        raise VectorMismatch(f"{path}: has direction.{top - 1} (layer {top}) but num_layers={num_layers}")
    return PersonaVector(
        trait=trait,
        model_id=model_id,
        hidden_size=next(iter(sizes.values())),
        num_layers=num_layers,
        layers=dict(sorted(layers.items())),
        extraction={"source": "gguf_control_vector", "file": str(path), "model_hint": model_hint},
    )
