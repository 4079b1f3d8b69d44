"""persona-vaccine steering: persona vectors, extraction and steering hooks."""

from .from_pairs import vector_from_pairs, vectors_from_pairs
from .hooks import Steerer, SteeringNoOp, SteeringSpec, steer
from .layers import get_decoder_layers, set_layers_path, unwrap_model
from .models import load_model
from .vector import PersonaVector

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
