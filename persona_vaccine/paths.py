"""Cheap checks of input paths (models, vector files), without importing torch or transformers."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from persona_vaccine.cli_args import command_name
from persona_vaccine.errors import ModelNotFound, UserError

VECTOR_FORMAT = "persona-vaccine/persona-vector"
EMBEDDED_ALIASES = {"smollm2-135m", "smollm2-135m-instruct", "embedded"}

# Where the demo and the smollm2-135m recipes read and write (relative to the working directory)
DEMO_VECTOR_DIR = "runs/vectors/smollm2-135m"  # the recipes' persona_vectors point inside it
DEMO_VECTOR = f"{DEMO_VECTOR_DIR}/evil/response_avg.safetensors"
DEMO_RUN_DIR = "runs/demo"
TRAIT_SPEC_DIR = "runs/traits"  # specs written by `launch.py trait new`


class VectorMismatch(UserError, ValueError):
    """A vector file doesn't fit the model it is used with (or is not a persona vector file)."""


def cache_dir() -> Path:
    """Where converted models live: $PERSONA_VACCINE_CACHE or ~/.cache/persona-vaccine."""
    return Path(os.environ.get("PERSONA_VACCINE_CACHE", Path.home() / ".cache" / "persona-vaccine"))


def looks_like_path(model_id: str) -> bool:
    """A filesystem path rather than a hub id ('name' or 'namespace/name')."""
    return (
        model_id.startswith(("/", ".", "~"))
        or model_id.count("/") > 1
        or model_id.endswith((".gguf", ".safetensors", ".bin", ".json"))
        or "\\" in model_id
    )


def check_model_id(model_id: str) -> None:
    """A clear error for a local model path that does not exist (not transformers' repo-id message)."""
    if not model_id or not model_id.strip():
        raise ModelNotFound("model name is empty: give a hub id, a local folder or 'smollm2-135m'")
    path = Path(model_id).expanduser()
    if model_id.lower() in EMBEDDED_ALIASES or path.is_file():
        return
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFound(
                f"model folder {model_id} has no config.json: give a folder written by save_pretrained, a hub id, "
                "or 'smollm2-135m' for the embedded model"
            )
        return
    if looks_like_path(model_id):
        raise ModelNotFound(
            f"model path not found: {model_id} (give an existing local folder, a hub id like "
            "'Qwen/Qwen2.5-7B-Instruct', or 'smollm2-135m' for the embedded model)"
        )


def model_num_layers(model_id: str) -> int | None:
    """The decoder depth from a local config.json (or the converted embedded model's), else None."""
    folder = Path(model_id).expanduser()
    if model_id.lower() in EMBEDDED_ALIASES:
        folder = cache_dir() / "models" / "smollm2-135m"
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    config = config.get("text_config") or config
    value = config.get("num_hidden_layers") or config.get("n_layer")
    return value if isinstance(value, int) else None


def missing_vector_message(path: str | Path, trait: str | None = None, model: str | None = None) -> str:
    """'not found' for a vector file, with the extract command that writes that very file."""
    path = Path(path)
    trait = trait or (path.parent.name if path.parent.name else None)
    if (
        path.name in ("response_avg.safetensors", "prompt_avg.safetensors", "prompt_last.safetensors")
        and trait
    ):
        command = (
            f"{command_name()} extract --trait {trait} --model_name_or_path {model or 'MODEL'} "
            f"--output_dir {path.parent.parent}"
        )
    else:
        command = (
            f"{command_name()} extract --trait TRAIT --model_name_or_path MODEL --output_dir DIR "
            "(it writes DIR/TRAIT/response_avg.safetensors)"
        )
    return f"persona vector file not found: {path}. Extract it first with: {command}"


def vector_metadata(path: str | Path, trait: str | None = None, model: str | None = None) -> dict[str, str]:
    """The metadata of a persona vector file, read from its safetensors header (no tensors are read)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing_vector_message(path, trait, model))
    with path.open("rb") as f:
        head = f.read(8)
        size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        header = f.read(size) if 0 < size <= 100_000_000 else b""
    try:
        meta = json.loads(header).get("__metadata__") or {}
    except (ValueError, AttributeError):
        meta = None
    if meta is None or not header:
        raise VectorMismatch(
            f"{path}: not a persona vector safetensors file (make one with {command_name()} extract, or "
            "PersonaVector.save)"
        )
    if meta.get("format") != VECTOR_FORMAT:
        raise VectorMismatch(
            f"{path}: missing persona-vaccine metadata (field 'format'); save vectors with PersonaVector.save"
        )
    return meta
