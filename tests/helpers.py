"""Test helpers: random persona vectors that fit a model."""

from __future__ import annotations

import torch

from persona_vaccine.models.layers import get_decoder_layers, hidden_size
from persona_vaccine.steering.vector import PersonaVector


def random_vector(
    model,
    trait: str = "evil",
    seed: int = 0,
    model_id: str = "tiny",
    scale: float = 1.0,
    questions: list[str] | None = None,
) -> PersonaVector:
    g = torch.Generator().manual_seed(seed)
    n, h = len(get_decoder_layers(model)), hidden_size(model)
    extraction = {"evaluation_questions": questions} if questions else {}
    return PersonaVector(
        trait=trait,
        model_id=model_id,
        hidden_size=h,
        num_layers=n,
        layers={layer: scale * torch.randn(h, generator=g) for layer in range(1, n + 1)},
        mean_norms={layer: 2.0 + layer for layer in range(1, n + 1)},
        extraction=extraction,
    )


def pairwise_auc(pos: list[float], neg: list[float]) -> float:
    """P(a random pos scores above a random neg), ties counting one half: counted over every pair, as
    the definition reads (the library's `auc` is checked against this)."""
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))
