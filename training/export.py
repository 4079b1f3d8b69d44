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

from steering.errors import UserError
from steering.layers import get_decoder_layers, unwrap_model
from steering.vector import PersonaVector

logger = logging.getLogger(__name__)

BAKEABLE = ("llama", "gpt2", "gpt_neox")


class ExportError(UserError, ValueError):
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


def model_card(summary: dict, recipe_text: str | None, baked: list[dict]) -> str:
    """A README.md for the exported checkpoint: recipe, drift and capability figures, steering."""
    lines = [
        "---",
        "library_name: transformers",
        f"base_model: {summary.get('model')}",
        "tags: [persona-vaccine, preventative-steering]",
        "---",
        "",
        f"# {Path(summary.get('recipe') or 'run').stem} (persona-vaccine export)",
        "",
        f"Fine-tuned from `{summary.get('model')}` with persona-vaccine; LoRA merged into the weights.",
        "",
        "## Training",
        "",
        f"- steps: {summary.get('train', {}).get('steps')}, final loss: {summary.get('train', {}).get('final_loss')}",
        f"- data: {json.dumps(summary.get('dataset'))}",
        f"- steering during training (not in these weights unless listed under baked): {json.dumps(summary.get('steering'))}",
        "",
        "## Trait drift (projection on the unit persona vector, last prompt token, evaluation questions)",
        "",
        "| trait | layer | base | final | shift |",
        "|---|---|---|---|---|",
    ]
    for trait, d in summary.get("trait_drift", {}).items():
        lines.append(
            f"| {trait} | {d.get('layer')} | {d.get('base_projection')} | {d.get('final_projection')} | {d.get('shift')} |"
        )
    capability = summary.get("capability") or {}
    if capability:
        lines += ["", "## Capability", "", "| benchmark | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in capability.items()]
    if summary.get("screening"):
        lines += ["", "## Data screening", "", f"`{json.dumps(summary['screening'])}`"]
    lines += ["", "## Baked inference-time steering", ""]
    lines += [f"- {json.dumps(b)}" for b in baked] or [
        "none: the weights are the fine-tuned model as trained"
    ]
    if recipe_text:
        lines += ["", "## Recipe", "", "```yaml", recipe_text.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def export_run(
    run_dir: str | Path,
    output_dir: str | Path | None = None,
    bake_vector: str | Path | None = None,
    bake_coef: float | None = None,
    bake_layer: int | None = None,
    dtype: str = "float32",
) -> Path:
    """Merge the run's LoRA adapter (if any) into its base model and save a checkpoint beside its vectors."""
    from transformers import AutoModelForCausalLM

    from steering.models import load_tokenizer, resolve_model_path

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
    recipe = summary.get("recipe")
    recipe_text = Path(recipe).read_text() if recipe and Path(recipe).is_file() else None
    (out / "README.md").write_text(model_card(summary, recipe_text, baked))
    vectors_dir = out / "persona_vectors"
    for path in summary.get("persona_vectors", []) + [str(b["vector"]) for b in baked]:
        if Path(path).is_file():
            vectors_dir.mkdir(exist_ok=True)
            shutil.copy2(path, vectors_dir / f"{PersonaVector.load(path).trait}.safetensors")
    (out / "persona_vaccine.json").write_text(
        json.dumps({"run": str(run_dir), "baked": baked, **summary}, indent=2)
    )
    logger.info("exported %s to %s", run_dir, out)
    return out
