"""persona-vaccine: training-time preventative steering with persona vectors.

The framework has one import name: `persona_vaccine.steering` (vectors, hooks, extraction, judges),
`persona_vaccine.data` (flawed-data builders, screening), `persona_vaccine.training` (the trainer, drift,
export), `persona_vaccine.monitoring` (the monitor and its server) and `persona_vaccine.cli` (the command
line). An installed wheel holds them inside this package. In a source checkout they are the repository's
top-level folders, found through this package's path.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

_here = Path(__file__).resolve().parent
if not (_here / "steering").is_dir() and (_here.parent / "steering" / "__init__.py").is_file():
    __path__.append(str(_here.parent))  # a source checkout: the packages sit beside this folder


def recipes_dir() -> Path:
    """The shipped recipes (and `accelerate_configs/`), wherever the package is installed."""
    for base in map(Path, __path__):
        if (base / "recipes").is_dir():
            return base / "recipes"
    raise FileNotFoundError("persona-vaccine's recipes are missing from this installation")
