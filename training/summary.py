"""RunSummary: what a training run records in OUTPUT_DIR/summary.json, written by the run and read by
compare, export, the model card and the CLI.

The JSON keys are the field names, in the order below. Sections the run did not produce (no
capability benchmark, no judge, no screening...) are left out of the file. Keys this version does not
know (a newer writer's additions, a user's notes) are kept in `extra` and written back after the known
ones. A file without `version` is version 1 (the format before the field existed).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from persona_vaccine.errors import UserError

SUMMARY_FILE = "summary.json"
SUMMARY_VERSION = 1


class SummaryError(UserError, ValueError):
    """A summary.json that is missing, unreadable or from a newer version; the message names the file."""


class TrainStats(TypedDict, total=False):
    steps: int
    final_loss: float
    mean_loss: float
    runtime_s: float
    resumed_from_step: int
    examples: int
    world_size: int
    engine: str
    num_layers: int


class DriftRecord(TypedDict, total=False):
    layer: int
    base_projection: float | None
    final_projection: float | None
    shift: float | None


class SteeringRecord(TypedDict, total=False):
    trait: str
    layer: int
    coef: float
    mode: str
    positions: str
    coef_unit: str


class EvaluationSettings(TypedDict, total=False):
    capability_benchmarks: list[str]
    capability_mc_limit: int | None
    judge_after_training: str
    judge_answer_prefix: str
    judge_questions: int | None


class DatasetRecord(TypedDict, total=False):
    source: str
    level: str
    size: int
    builder_size: int
    seed: int


@dataclass
class RunSummary:
    """One run's summary.json (see the module docstring for the file's rules)."""

    version: int = SUMMARY_VERSION
    recipe: str | None = None
    model: str | None = None
    cwd: str | None = None  # the directory the run started from: relative paths below are relative to it
    config: str | None = None  # the resolved recipe, in the run directory
    train: TrainStats = field(default_factory=lambda: TrainStats())
    trait_drift: dict[str, DriftRecord] = field(default_factory=dict)
    behaviour: dict[str, dict[str, Any]] | None = None  # likelihood margins (measure_margin)
    steering: list[SteeringRecord] = field(default_factory=list)
    steering_auto: dict[str, float] | None = None  # the final coefficients of steering_auto
    persona_vectors: list[str] = field(default_factory=list)
    persona_vector_copies: list[str] = field(default_factory=list)
    inference_steering_coef: float | None = None
    evaluation: EvaluationSettings = field(default_factory=lambda: EvaluationSettings())
    dataset: DatasetRecord = field(default_factory=lambda: DatasetRecord())
    losses: list[float] = field(default_factory=list)
    # the evaluation after training, each only when it ran
    capability: dict[str, float] | None = None
    trait_expression: dict[str, float | None] | None = None
    capability_inference_steered: dict[str, float] | None = None
    trait_expression_inference_steered: dict[str, float | None] | None = None
    behaviour_inference_steered: dict[str, dict[str, Any]] | None = None  # margins under the hook
    trait_drift_inference_steered: dict[str, DriftRecord] | None = None  # shift measured under the hook
    post_training_eval: str | None = None  # why it was skipped
    capability_errors: dict[str, str] | None = None
    drift_alerts: dict[str, Any] | None = None
    screening: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept as read

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = SUMMARY_FILE) -> RunSummary:
        """A summary from its JSON object; `where` names the file in errors."""
        if not isinstance(data, dict):
            raise SummaryError(f"{where}: expected a JSON object, got {type(data).__name__}")
        version = data.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SummaryError(f"{where}: field 'version' must be a positive integer, got {version!r}")
        if version > SUMMARY_VERSION:
            raise SummaryError(
                f"{where}: summary version {version} is newer than this persona-vaccine reads "
                f"({SUMMARY_VERSION}): upgrade persona-vaccine"
            )
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        objects = {name: dict for name in _OPTIONAL - {"post_training_eval"}}
        for name, kind in {**_SECTIONS, **objects}.items():
            if data.get(name) is not None and not isinstance(data[name], kind):
                what = "an object" if kind is dict else "a list"
                raise SummaryError(f"{where}: field '{name}' must be {what}, got {data[name]!r}")
        fields = {k: v for k, v in data.items() if k in known and not (k in _SECTIONS and v is None)}
        return cls(**fields, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of summary.json: every field, sections that did not run left out, then `extra`."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (f.name in _OPTIONAL and value is None):
                continue
            out[f.name] = value
        return {**out, **{k: v for k, v in self.extra.items() if k not in out}}

    def write(self, path: str | Path) -> Path:
        """Write the summary to the file `path` whole or not at all (a full disk leaves no half-written
        summary that looks finished)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.to_dict(), indent=2))
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def read(cls, path: str | Path) -> RunSummary:
        """The summary in `path` (the file, or the run directory holding summary.json)."""
        path = _file(path)
        if not path.is_file():
            raise SummaryError(f"{path.parent}: no {path.name} (not a finished training run directory)")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SummaryError(
                f"{path}: not a readable summary ({e}): rerun the training or remove the file"
            ) from None
        return cls.from_dict(data, where=str(path))


# Fields written only when set: the evaluation after training, drift alerts and screening.
_OPTIONAL = {
    "behaviour",
    "steering_auto",
    "capability",
    "trait_expression",
    "capability_inference_steered",
    "trait_expression_inference_steered",
    "behaviour_inference_steered",
    "trait_drift_inference_steered",
    "post_training_eval",
    "capability_errors",
    "drift_alerts",
    "screening",
}
# Fields that hold a section: an object or a list (a null there reads as the empty default).
_SECTIONS: dict[str, type] = {
    "train": dict,
    "trait_drift": dict,
    "steering": list,
    "persona_vectors": list,
    "persona_vector_copies": list,
    "evaluation": dict,
    "dataset": dict,
    "losses": list,
}


def _file(path: str | Path) -> Path:
    path = Path(path)
    return path / SUMMARY_FILE if path.is_dir() else path
