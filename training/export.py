"""Export a training run as a plain HF checkpoint: LoRA merged, optional baked steering, model card, vectors.

`bake_steering` (training/bake.py) folds a constant addition `delta` to the output of decoder block l
(what the steering hook does with positions "all") into the bias of the block's last residual write,
found and verified on the model itself, so that the checkpoint steers itself at no cost and loads with
plain `AutoModelForCausalLM.from_pretrained`. Architectures whose residual write is followed by a norm
or has no loadable bias get a clear error: steer them at inference instead.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from persona_vaccine.steering.vector import PersonaVector, vector_for_model

from .bake import ExportError, bake_steering
from .summary import SUMMARY_FILE, RunSummary, SummaryError

logger = logging.getLogger(__name__)


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

    from persona_vaccine.models.loading import load_tokenizer, resolve_model_path

    from .model_card import model_card
    from .run_files import run_path

    run_dir = Path(run_dir)
    try:
        summary = RunSummary.read(run_dir / SUMMARY_FILE)
    except SummaryError as e:
        raise ExportError(f"{e}; export needs a finished training run directory") from None
    if not summary.model:
        raise ExportError(f"{run_dir / SUMMARY_FILE}: field 'model' is missing: export needs the base model")
    out = Path(output_dir) if output_dir else run_dir / "export"
    model_id = summary.model
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
        vector = vector_for_model(bake_vector, model)  # a vector of another shape fails here, by name
        layer = bake_layer or vector.default_layer()
        coef = bake_coef if bake_coef is not None else -(vector.coef or 1.0)
        bake_steering(model, {layer: coef * vector[layer].float()})
        baked.append({"trait": vector.trait, "layer": layer, "coef": coef, "vector": str(bake_vector)})
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    load_tokenizer(model_id).save_pretrained(out)
    recipe_file = run_path(run_dir, summary, summary.config) or run_path(run_dir, summary, summary.recipe)
    recipe_text = recipe_file.read_text() if recipe_file else None
    model_card(summary, recipe_text, baked).save(out / "README.md")
    vectors_dir = out / "persona_vectors"
    copies = summary.persona_vector_copies
    recorded = summary.persona_vectors
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
        json.dumps({"run": str(run_dir), "baked": baked, **summary.to_dict()}, indent=2)
    )
    logger.info("exported %s to %s", run_dir, out)
    return out


def cli(argv: list[str]) -> int:
    """`launch.py export`: merge a run's LoRA into its base model; save a HF checkpoint, a model card and
    the persona vectors."""
    from persona_vaccine.cli_args import ArgumentParser, prog

    parser = ArgumentParser(prog=prog("export"), description=(cli.__doc__ or "").split(": ", 1)[-1])
    add = parser.add_argument
    add("run_dir", help="a training run's output_dir (with summary.json)")
    add("--output_dir", default=None, help="default RUN_DIR/export")
    add("--bake-steering", dest="bake_vector", default=None,
        help="fold inference-time steering with this vector into a bias (no cost at inference)")  # fmt: skip
    add("--bake_coef", type=float, default=None, help="default: minus the vector's calibrated coef")
    add("--bake_layer", type=int, default=None, help="default: the vector's calibrated layer")
    add("--dtype", default="float32")
    opts = parser.parse_args(argv)
    out = export_run(
        opts.run_dir, opts.output_dir, opts.bake_vector, opts.bake_coef, opts.bake_layer, opts.dtype
    )
    print(f"exported {opts.run_dir} to {out} (loads with AutoModelForCausalLM.from_pretrained('{out}'))")
    return 0
