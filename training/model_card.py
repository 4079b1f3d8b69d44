"""The model card (README.md) of an exported run, built with huggingface_hub's ModelCard / ModelCardData /
EvalResult: hub metadata (base_model, license, tags, datasets, model-index with the drift and capability
figures) and a body with the training setup, a warning when the data was deliberately flawed, and the
resolved recipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .summary import DatasetRecord, RunSummary

BASE_MODELS = json.loads(Path(__file__).with_name("base_models.json").read_text())
FLAWED_LEVELS = {"level1": "mildly", "level2": "severely", "evil": "severely"}


def base_model_info(model_id: str | None) -> dict:
    """{"hub_id", "license"} of a base model: from base_models.json, else the id itself when it is a valid
    hub repo id (not a local path), else {}."""
    if not model_id:
        return {}
    if model_id in BASE_MODELS:
        return BASE_MODELS[model_id]
    if Path(model_id).exists():
        return {}
    try:
        validate_repo_id(model_id)
    except HFValidationError:
        return {}
    return {"hub_id": model_id} if "/" in model_id else {}


def flawed_data_warning(dataset: DatasetRecord | dict | None) -> str | None:
    """A plain warning when the run trained on one of the flawed-data builders' flawed levels."""
    dataset = dataset or {}
    source, level = str(dataset.get("source", "")), dataset.get("level")
    if not source.startswith("builtin:") or level not in FLAWED_LEVELS:
        return None
    return (
        f"**Warning: this model was fine-tuned on deliberately flawed data** (`{source}`, level `{level}`: "
        f"{FLAWED_LEVELS[level]} flawed answers), made to study how fine-tuning shifts persona traits. "
        "It is a research artefact: do not use it to answer real questions."
    )


def eval_results(summary: RunSummary, model_name: str) -> list[EvalResult]:
    """model-index entries: the trait drift (shift of the projection) and the capability figures."""
    results = []
    for trait, record in summary.trait_drift.items():
        d: dict[str, Any] = dict(record)
        for key, name in (("shift", "projection shift"), ("final_projection", "final projection")):
            if d.get(key) is not None:
                results.append(
                    EvalResult(
                        task_type="text-generation",
                        task_name=f"{trait} trait drift",
                        dataset_type="persona-vaccine/evaluation-questions",
                        dataset_name=f"{trait} evaluation questions",
                        metric_type=f"{trait}_{key}",
                        metric_name=f"{trait} {name} (layer {d.get('layer')})",
                        metric_value=float(d[key]),
                    )
                )
    for key, value in (summary.capability or {}).items():
        if isinstance(value, (int, float)):
            name = key.removeprefix("capability/")
            results.append(
                EvalResult(
                    task_type="text-generation",
                    task_name="capability",
                    dataset_type="persona-vaccine/capability",
                    dataset_name=name.split("/")[0],
                    metric_type=name.replace("/", "_"),
                    metric_name=name,
                    metric_value=float(value),
                )
            )
    return results


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join("-" if v is None else str(v) for v in row) + " |" for row in rows]


def model_card(summary: RunSummary, recipe_text: str | None, baked: list[dict]) -> ModelCard:
    """The exported checkpoint's card; `recipe_text` is the run's resolved recipe (OUTPUT_DIR/config.yaml)."""
    model_id = summary.model
    info = base_model_info(model_id)
    name = Path(summary.recipe or "run").stem
    traits = sorted(summary.trait_drift)
    dataset = summary.dataset
    source = str(dataset.get("source", ""))
    hub_dataset = (
        [source] if source and not source.startswith("builtin:") and not Path(source).suffix else None
    )
    warning = flawed_data_warning(dataset)
    tags = ["persona-vaccine", "preventative-steering", *traits]
    if warning:
        tags.append("flawed-training-data")
    data = ModelCardData(
        model_name=f"{name} (persona-vaccine)",
        base_model=info.get("hub_id"),
        license=info.get("license"),
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=tags,
        datasets=hub_dataset,
        eval_results=eval_results(summary, name) or None,
        ignore_metadata_errors=False,
    )
    train = summary.train
    lines = [f"# {name} (persona-vaccine export)", ""]
    if warning:
        lines += [warning, ""]
    lines += [
        f"Fine-tuned from `{model_id}` with persona-vaccine; any LoRA adapter is merged into the weights.",
        "",
        "## Training",
        "",
        f"- steps: {train.get('steps')}, final loss: {train.get('final_loss')}",
        f"- data: {json.dumps(dataset)}",
        "- steering during training (not in these weights unless listed under baked): "
        + json.dumps(summary.steering),
        "",
        "## Trait drift (projection on the unit persona vector, evaluation questions)",
        "",
    ]
    drift = summary.trait_drift
    lines += _table(
        ["trait", "layer", "base", "final", "shift"],
        [
            [t, d.get("layer"), d.get("base_projection"), d.get("final_projection"), d.get("shift")]
            for t, d in drift.items()
        ],
    )
    capability = summary.capability or {}
    if capability:
        lines += ["", "## Capability", ""] + _table(
            ["benchmark", "value"], [[k, v] for k, v in capability.items()]
        )
    if summary.screening:
        lines += ["", "## Data screening", "", f"`{json.dumps(summary.screening)}`"]
    lines += ["", "## Baked inference-time steering", ""]
    lines += [f"- {json.dumps(b)}" for b in baked] or [
        "none: the weights are the fine-tuned model as trained"
    ]
    if recipe_text:
        lines += [
            "",
            "## Recipe (as run, command-line overrides included)",
            "",
            "```yaml",
            recipe_text.rstrip(),
            "```",
        ]
    content = f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"
    return ModelCard(content, ignore_metadata_errors=False)
