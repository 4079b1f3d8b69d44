"""persona-vaccine steering: persona vectors, steering hooks, activations and extraction.

The names below are imported on first use, so that light modules load without torch (a bad input is
reported in a second, not after the heavy imports). Type checkers see them through the TYPE_CHECKING block.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from persona_vaccine.models.layers import get_decoder_layers, set_layers_path, unwrap_model
    from persona_vaccine.models.loading import load_model
    from persona_vaccine.steering.from_pairs import vector_from_pairs, vectors_from_pairs
    from persona_vaccine.steering.hooks import Steerer, SteeringNoOp, SteeringSpec, steer
    from persona_vaccine.steering.vector import PersonaVector

_EXPORTS = {
    "PersonaVector": "persona_vaccine.steering.vector",
    "Steerer": "persona_vaccine.steering.hooks",
    "SteeringNoOp": "persona_vaccine.steering.hooks",
    "SteeringSpec": "persona_vaccine.steering.hooks",
    "get_decoder_layers": "persona_vaccine.models.layers",
    "load_model": "persona_vaccine.models.loading",
    "set_layers_path": "persona_vaccine.models.layers",
    "steer": "persona_vaccine.steering.hooks",
    "unwrap_model": "persona_vaccine.models.layers",
    "vector_from_pairs": "persona_vaccine.steering.from_pairs",
    "vectors_from_pairs": "persona_vaccine.steering.from_pairs",
}

__all__ = [
    "PersonaVector",
    "Steerer",
    "SteeringNoOp",
    "SteeringSpec",
    "get_decoder_layers",
    "load_model",
    "set_layers_path",
    "steer",
    "unwrap_model",
    "vector_from_pairs",
    "vectors_from_pairs",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
