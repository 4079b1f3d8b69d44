"""What a run directory records about its run so it can be read from anywhere: the resolved recipe
(OUTPUT_DIR/config.yaml, command-line overrides included) and copies of its persona vectors."""

from __future__ import annotations

import dataclasses
import enum
import shutil
from pathlib import Path

import yaml

from .summary import RunSummary

CONFIG_FILE = "config.yaml"
VECTORS_DIR = "persona_vectors"


def _plain(value: object) -> object:
    """A YAML-safe copy of a config value (enums by value, tuples as lists)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def override_names(overrides: list[str] | None) -> list[str]:
    """The field names of `--field value ...` command-line overrides."""
    return [a[2:].split("=", 1)[0] for a in overrides or [] if a.startswith("--") and len(a) > 2]


def resolved_recipe(configs: tuple, recipe: str | Path | None, overrides: list[str] | None = None) -> dict:
    """The recipe as the run really used it: the recipe file's fields and the overridden ones, each with the
    value the run's config dataclasses hold (so `launch.py train OUTPUT_DIR/config.yaml` reruns it)."""
    mapping: dict = {}
    if recipe is not None and Path(recipe).is_file():
        mapping = dict(yaml.safe_load(Path(recipe).read_text()) or {})
    values = {f.name: getattr(cfg, f.name) for cfg in configs for f in dataclasses.fields(cfg) if f.init}
    for name in [*mapping, *override_names(overrides)]:
        if name in values:
            mapping[name] = _plain(values[name])
    return mapping


def write_run_config(output_dir: str | Path, config: dict, recipe: str | Path | None, overrides) -> Path:
    """OUTPUT_DIR/config.yaml: the resolved recipe, with where it came from as a comment."""
    path = Path(output_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# resolved recipe of this run: {recipe or '(no recipe file)'}"
    if overrides:
        header += f"\n# command-line overrides: {' '.join(map(str, overrides))}"
    path.write_text(header + "\n" + yaml.safe_dump(config, sort_keys=False))
    return path


def remove_if_empty(directory: Path) -> None:
    """Remove `directory` if it holds nothing (a run that stopped before writing anything)."""
    try:
        directory.rmdir()  # fails unless empty
    except OSError:
        pass


def copy_vectors(output_dir: str | Path, vector_paths: list[str]) -> list[str]:
    """Copy the run's persona vector files into OUTPUT_DIR/persona_vectors/ (file i as i_NAME); returns
    their paths relative to OUTPUT_DIR."""
    out = Path(output_dir) / VECTORS_DIR
    copied = []
    for i, path in enumerate(vector_paths):
        target = out / f"{i}_{Path(path).name}"
        out.mkdir(parents=True, exist_ok=True)
        if Path(path).resolve() != target.resolve():
            shutil.copy2(path, target)
        copied.append(str(target.relative_to(output_dir)))
    return copied


def run_path(run_dir: str | Path, summary: RunSummary, path: str | None) -> Path | None:
    """A path recorded in a run's summary.json, found from any directory: relative to the run directory,
    relative to the directory the run was started from (`cwd`), or as recorded (absolute)."""
    if not path:
        return None
    candidates = [Path(run_dir) / path]
    if summary.cwd:
        candidates.append(Path(summary.cwd) / path)  # an absolute path stays itself
    candidates.append(Path(path))  # summaries written before `cwd` was recorded
    return next((p for p in candidates if p.is_file()), None)
