"""persona-vaccine: training-time preventative steering with persona vectors.

The framework has one import name: `persona_vaccine.steering` (vectors, hooks, extraction, judges),
`persona_vaccine.data` (flawed-data builders, screening), `persona_vaccine.training` (the trainer, drift,
export), `persona_vaccine.monitoring` (the monitor and its server) and `persona_vaccine.cli` (the command
line). In a source checkout they are the repository's top-level folders, linked into this package, so the
same names resolve for Python, IDEs, mypy and pytest; an installed wheel holds them inside this package.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"


def recipes_dir() -> Path:
    """The shipped recipes (and `accelerate_configs/`), wherever the package is installed."""
    path = Path(__file__).resolve().parent / "recipes"
    if not path.is_dir():
        raise FileNotFoundError("persona-vaccine's recipes are missing from this installation")
    return path
