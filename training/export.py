"""Export a training run as a plain HF checkpoint: LoRA merged, optional baked steering, model card, vectors.

`bake_steering` folds a constant addition `delta` to the output of decoder block l (what the
steering hook does with positions "all") into a bias of the block's last residual write, so that
the checkpoint steers itself at no cost and loads with plain `AutoModelForCausalLM.from_pretrained`.
That bias must exist in the architecture's config:

- Llama family (Llama, SmolLM2, ...): `mlp_bias=True` adds biases to gate/up/down projections; all
  are zero except `down_proj` of block l, which holds delta;
- GPT-2 (`mlp.c_proj`) and GPT-NeoX (`mlp.dense_4h_to_h`) always have that bias.

Architectures with a norm after the MLP (Gemma 2/3, OLMo 2) or no bias switch (Mistral, Qwen2/3,
Phi-3) can't hold it: use the steering hook at inference instead.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from torch import nn

from steering.layers import get_decoder_layers, unwrap_model
from steering.vector import PersonaVector

logger = logging.getLogger(__name__)

BAKEABLE = ("llama", "gpt2", "gpt_neox")


class ExportError(ValueError):
    """A run can't be exported as asked; the message says why and what to do."""


def _bias_linear(block: nn.Module, model_type: str) -> nn.Linear:
    if model_type == "llama":
        return block.mlp.down_proj
    if model_type == "gpt2":
        return block.mlp.c_proj
    if model_type == "gpt_neox":
        return block.mlp.dense_4h_to_h
    raise ExportError(
        f"baking steering into a '{model_type}' checkpoint is not supported (supported: {', '.join(BAKEABLE)}): "
        "its blocks have no bias on the last residual write that plain from_pretrained would load. Steer "
        "at inference with steering.hooks.steer(model, vector, layer, coef) instead."
    )


def _zero_bias(linear: nn.Module) -> None:
    if getattr(linear, "bias", None) is None:
        out = linear.weight.shape[0] if isinstance(linear, nn.Linear) else linear.nf
        linear.bias = nn.Parameter(torch.zeros(out, dtype=linear.weight.dtype, device=linear.weight.device))


def bake_steering(model: nn.Module, deltas: dict[int, torch.Tensor]) -> None:
    """Add `deltas[l]` to the output of block l (1-based) for every token, as weights (in place)."""
    base = unwrap_model(model)
    config = base.config
    model_type = config.model_type
    blocks = get_decoder_layers(base)
    for layer in deltas:
        if not 1 <= layer <= len(blocks):
            raise ExportError(f"bake layer {layer} is out of range 1..{len(blocks)}")
    _bias_linear(blocks[0], model_type)  # raises for unsupported architectures
    if model_type == "llama" and not getattr(config, "mlp_bias", False):
        config.mlp_bias = True  # every MLP projection gets a bias at load: give them all zeros
        for block in blocks:
            for name in ("gate_proj", "up_proj", "down_proj"):
                _zero_bias(getattr(block.mlp, name))
    for layer, delta in deltas.items():
        linear = _bias_linear(blocks[layer - 1], model_type)
        with torch.no_grad():
            linear.bias += delta.to(linear.bias.dtype).to(linear.bias.device)


def export_run(
    run_dir: str | Path,
    output_dir: str | Path | None = None,
    bake_vector: str | Path | None = None,
    bake_coef: float | None = None,
    bake_layer: int | None = None,
    dtype: str = "float32",
) -> Path:
    """Merge the run's LoRA adapter (if any) into its base model and save a checkpoint beside its vectors.

    Works from any directory: the resolved recipe and the vectors are read from the run directory (or
    found through the paths summary.json recorded, see `training.run_files.run_path`).
    """
    from transformers import AutoModelForCausalLM

    from steering.models import load_tokenizer, resolve_model_path

    from .model_card import model_card
    from .run_files import run_path

    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise ExportError(f"{run_dir}: no summary.json; export needs a finished training run directory")
    summary = json.loads(summary_path.read_text())
    out = Path(output_dir) if output_dir else run_dir / "export"
    model_id = summary["model"]
    torch_dtype = getattr(torch, dtype)
    if (run_dir / "adapter_config.json").is_file():
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(resolve_model_path(model_id), dtype=torch_dtype)
        model = PeftModel.from_pretrained(base, str(run_dir)).merge_and_unload()
    elif list(run_dir.glob("*.safetensors")) and (run_dir / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(str(run_dir), dtype=torch_dtype)
    else:
        raise ExportError(
            f"{run_dir}: neither a LoRA adapter (adapter_config.json) nor full weights to export"
        )
    baked: list[dict] = []
    if bake_vector is not None:
        vector = PersonaVector.load(bake_vector)
        layer = bake_layer or vector.default_layer()
        coef = bake_coef if bake_coef is not None else -(vector.coef or 1.0)
        bake_steering(model, {layer: coef * vector[layer].float()})
        baked.append({"trait": vector.trait, "layer": layer, "coef": coef, "vector": str(bake_vector)})
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    load_tokenizer(model_id).save_pretrained(out)
    recipe_file = run_path(run_dir, summary, summary.get("config")) or run_path(
        run_dir, summary, summary.get("recipe")
    )
    recipe_text = recipe_file.read_text() if recipe_file else None
    model_card(summary, recipe_text, baked).save(out / "README.md")
    vectors_dir = out / "persona_vectors"
    copies = summary.get("persona_vector_copies") or []
    recorded = summary.get("persona_vectors", [])
    for i, path in enumerate(recorded):
        found = run_path(run_dir, summary, copies[i] if i < len(copies) else None) or run_path(
            run_dir, summary, path
        )
        if found is None:
            raise ExportError(
                f"{run_dir}: persona vector {path} (summary.json persona_vectors[{i}]) is not found from "
                f"{Path.cwd()}: run export from the training directory or copy the file into {run_dir}"
            )
        vectors_dir.mkdir(exist_ok=True)
        shutil.copy2(found, vectors_dir / f"{PersonaVector.load(found).trait}.safetensors")
    for b in baked:
        vectors_dir.mkdir(exist_ok=True)
        shutil.copy2(b["vector"], vectors_dir / f"{b['trait']}.safetensors")
    (out / "persona_vaccine.json").write_text(
        json.dumps({"run": str(run_dir), "baked": baked, **summary}, indent=2)
    )
    logger.info("exported %s to %s", run_dir, out)
    return out
