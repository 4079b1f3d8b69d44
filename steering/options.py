"""How a persona vector steers (mode, positions, coefficient unit) and where its activations are read."""

from __future__ import annotations

from typing import Literal, get_args

# How a vector acts on the residual stream: add coef * v, or remove coef times the projection on v.
SteeringMode = Literal["add", "ablate"]
# Which tokens are steered (padding never is).
SteeringPositions = Literal["all", "prompt", "response"]
# A steering coefficient in raw units of v, or as a fraction of the layer's mean activation norm.
CoefUnit = Literal["raw", "relative"]
# Where a persona vector's activations are read: averaged over the response or the prompt, or the
# prompt's last token.
VectorPosition = Literal["response_avg", "prompt_avg", "prompt_last"]

MODES: tuple[SteeringMode, ...] = get_args(SteeringMode)
POSITIONS: tuple[SteeringPositions, ...] = get_args(SteeringPositions)
COEF_UNITS: tuple[CoefUnit, ...] = get_args(CoefUnit)
VECTOR_POSITIONS: tuple[VectorPosition, ...] = get_args(VectorPosition)
