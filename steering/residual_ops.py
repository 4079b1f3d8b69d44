"""The residual-stream operations every engine uses: read, add, ablate and cap, over token rows.

`stream` is any tensor whose last axis is the hidden size: [B, T, H] under Hugging Face, flat
[num_tokens, H] inside vLLM. `mask` (same leading shape, 1 where an operation applies, 0 elsewhere) says
which rows an operation touches: padding, prompt or answer tokens, or the rows of one request in a
batch of many. Each function returns the new stream (or the reading); callers own where the stream
lives (a block's output on HF, `hidden + residual` on vLLM).
"""

from __future__ import annotations

import torch


def read(stream: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """Projections on unit vectors: stream [..., H] @ units [R, H].T -> [..., R], in float32."""
    return stream.float() @ units.float().T


def add(stream: torch.Tensor, delta: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """stream + delta on the masked rows, in the stream's dtype (`delta` [H], or [..., H] per row)."""
    return stream + (delta if mask is None else mask.unsqueeze(-1).to(stream.dtype) * delta)


def ablate(
    stream: torch.Tensor, unit: torch.Tensor, coef: float = 1.0, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Remove `coef` times the projection on `unit` (coef 1 projects it out), in the stream's dtype."""
    projection = (stream @ unit).unsqueeze(-1) * unit * coef
    return stream - (projection if mask is None else mask.unsqueeze(-1).to(stream.dtype) * projection)


def cap_excess(projection: torch.Tensor, cap: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """How far each row's projection is above the cap (0 at or below it, and outside the mask)."""
    excess = (projection.float() - cap).clamp_min(0.0)
    return excess if mask is None else excess * mask.to(excess.dtype)


def subtract_along(stream: torch.Tensor, amount: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """stream - amount[..., None] * direction, computed in float32 and cast back."""
    delta = amount.unsqueeze(-1) * direction.float()
    return (stream.float() - delta).to(stream.dtype)


def cap(
    stream: torch.Tensor, unit: torch.Tensor, value: float, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clamp the projection on `unit` to at most `value` on the masked rows; (new stream, rows capped)."""
    excess = cap_excess(read(stream, unit[None, :])[..., 0], value, mask)
    acted = excess > 0
    return subtract_along(stream, excess, unit), acted
