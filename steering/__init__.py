"""persona-vaccine steering: persona vectors, extraction and steering hooks."""

from .hooks import Steerer, SteeringSpec, steer
from .layers import get_decoder_layers, unwrap_model
from .models import load_model
from .vector import PersonaVector

__all__ = [
    "PersonaVector",
    "Steerer",
    "SteeringSpec",
    "get_decoder_layers",
    "load_model",
    "steer",
    "unwrap_model",
]
