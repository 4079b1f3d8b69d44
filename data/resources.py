"""The builders' data files (templates, word lists, code tasks, capability facts) under data/, read as YAML.

Lists come back as tuples (the builders' pools are immutable and hashable), mappings as dicts. A missing
or malformed file is a one-line error naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["DATA_DIR", "load_template", "read_data_file"]

DATA_DIR = Path(__file__).resolve().parent
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def read_data_file(relative: str) -> Any:
    """The YAML file `data/<relative>`, with lists as tuples."""
    path = DATA_DIR / relative
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: data file not found (is the package installed with its data?)"
        ) from None
    try:
        return _frozen(yaml.load(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc


def load_template(name: str) -> dict[str, Any]:
    """The mapping of `data/templates/<name>.yaml` (a builder's templates and word lists)."""
    data = read_data_file(f"templates/{name}.yaml")
    if not isinstance(data, dict):
        raise ValueError(
            f"{DATA_DIR / 'templates' / name}.yaml: expected a mapping of lists at the top level"
        )
    return data
