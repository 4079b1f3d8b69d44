"""persona-vaccine steering: persona vectors, extraction and steering hooks.

The names below are imported on first use, so that `steering.errors` and other light modules load
without torch (a bad input is reported in a second, not after the heavy imports).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "PersonaVector": "vector",
    "Steerer": "hooks",
    "SteeringNoOp": "hooks",
    "SteeringSpec": "hooks",
    "get_decoder_layers": "layers",
    "load_model": "models",
    "set_layers_path": "layers",
    "steer": "hooks",
    "unwrap_model": "layers",
    "vector_from_pairs": "from_pairs",
    "vectors_from_pairs": "from_pairs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
