"""What the drift and margin meters share: a base measured once (or kept from the run being resumed) and
each reading's shift from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol


class Meter(Protocol):
    base: dict[str, float]

    def measure_base(self, model: Any) -> dict[str, float]: ...


def with_shift(
    prefix: str, value_key: str, shift_key: str, current: dict[str, float], base: dict[str, float]
) -> dict[str, float]:
    """`{prefix}/{name}/{value_key}` for every reading, and `.../{shift_key}` (now - base) where a base exists."""
    out = {}
    for name, value in current.items():
        out[f"{prefix}/{name}/{value_key}"] = value
        if name in base:
            out[f"{prefix}/{name}/{shift_key}"] = value - base[name]
    return out


def base_kept_or_measured(meter: Meter, model: Any, path: Path, names: set[str], save: bool) -> None:
    """A resumed run keeps the base of the original model (saved in `path`); else it is measured now and,
    on the main process (`save`), written to `path`."""
    if path.is_file():
        saved = json.loads(path.read_text())
        if set(saved) == names:
            meter.base = saved
            return
    meter.measure_base(model)
    if save:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(meter.base, indent=2))
