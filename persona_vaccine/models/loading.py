"""Load causal LMs: hub ids, local folders, GGUF files and the embedded SmolLM2-135M-Instruct."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from huggingface_hub.errors import HFValidationError
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from persona_vaccine.errors import ModelNotFound
from persona_vaccine.models.embedded import EMBEDDED_MODEL, embedded_gguf_path, is_embedded
from persona_vaccine.models.layers import set_layers_path
from persona_vaccine.paths import cache_dir, check_model_id

logger = logging.getLogger(__name__)


def convert_gguf(gguf_file: str | Path, out_dir: str | Path) -> Path:
    """Dequantise a GGUF file once and save it as a safetensors HF checkpoint in `out_dir`."""
    gguf_file, out_dir = Path(gguf_file), Path(out_dir)
    if (out_dir / "config.json").is_file():
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir) + ".lock"):
        if (out_dir / "config.json").is_file():  # another process converted it meanwhile
            return out_dir
        logger.info("Dequantising %s (once; cached in %s): 1/3 reading the tokenizer", gguf_file, out_dir)
        kwargs = {"gguf_file": gguf_file.name}
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, **kwargs)
        logger.info("Dequantising %s: 2/3 reading and dequantising the weights", gguf_file.name)
        quantised = AutoModelForCausalLM.from_pretrained(gguf_file.parent, dtype=torch.float32, **kwargs)
        logger.info("Dequantising %s: 3/3 saving the safetensors checkpoint", gguf_file.name)
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(quantised.state_dict())
        model.generation_config = quantised.generation_config
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=out_dir.name + ".tmp"))
        try:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            tmp.rename(out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def resolve_model_path(model_id: str, gguf_file: str | None = None) -> str:
    """Turn the embedded alias or a GGUF file into a local safetensors folder; pass other ids through."""
    if is_embedded(model_id):
        converted = cache_dir() / "models" / EMBEDDED_MODEL
        if (converted / "config.json").is_file():
            return str(converted)
        return str(convert_gguf(embedded_gguf_path(), converted))
    path = Path(model_id)
    if path.suffix == ".gguf" and path.is_file():
        gguf_file, path = path.name, path.parent
    if gguf_file:
        name = Path(gguf_file).stem
        return str(convert_gguf(path / gguf_file, cache_dir() / "models" / name))
    check_model_id(model_id)
    return model_id


def pretrained(loader, path: str, model_id: str, **kwargs):
    """`loader.from_pretrained`, with a hub id that can't be found reported as one ModelNotFound line."""
    try:
        return loader.from_pretrained(path, **kwargs)
    except HFValidationError as e:  # e.g. "Repo id must be in the form 'repo_name' or ..."
        raise ModelNotFound(f"'{model_id}' is neither a local folder nor a valid hub id: {e}") from None
    except OSError as e:
        if e.errno is not None:  # a real I/O error (disk full, permissions): not a missing model
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelNotFound(
            f"can't load model '{model_id}': {first} (check the name; without internet access give a local folder)"
        ) from e


def load_tokenizer(model_id: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Tokenizer with a pad token and left padding (for batched generation and last-token reads)."""
    tokenizer = pretrained(
        AutoTokenizer, resolve_model_path(model_id), model_id, trust_remote_code=trust_remote_code
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(
    model_id: str,
    dtype: str | torch.dtype = "float32",
    device: str | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    layers_path: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer by hub id, local folder, GGUF path or the embedded alias.

    Remote code is off unless `trust_remote_code=True`. `layers_path` (e.g. "model.layers") tells every
    later step where the decoder blocks are, for an architecture where they can't be found by structure.
    """
    path = resolve_model_path(model_id)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype) if dtype != "auto" else "auto"
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision:
        kwargs["revision"] = revision
    model = pretrained(AutoModelForCausalLM, path, model_id, dtype=dtype, **kwargs)
    if device:
        model.to(device)
    set_layers_path(model, layers_path)
    tokenizer = load_tokenizer(model_id, trust_remote_code=trust_remote_code)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def model_config(model_id: str, trust_remote_code: bool = False):
    """The HF config of a model (cheap: no weights are read)."""
    return pretrained(AutoConfig, resolve_model_path(model_id), model_id, trust_remote_code=trust_remote_code)
