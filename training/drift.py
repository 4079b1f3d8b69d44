"""Trait drift: the projection of the last prompt token's activation on each persona vector.

projection = mean over the trait's evaluation questions of a_l(x) . v_hat (hooks off, no grad);
shift = projection(current model) - projection(base model), as in docs/method.md section 5.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from persona_vaccine.models.chat import build_messages, format_chat
from persona_vaccine.steering.activations import last_prompt_activations
from persona_vaccine.steering.vector import PersonaVector
from persona_vaccine.traits import load_trait_spec

from .meters import with_shift


@dataclass
class DriftProbe:
    """One trait's drift measurement: its vector, layer and formatted evaluation prompts."""

    name: str
    vector: PersonaVector
    layer: int
    prompts: list[str]


def evaluation_questions(
    vector: PersonaVector, spec: str | None = None, limit: int | None = None
) -> list[str]:
    """The questions drift is measured on: a trait spec's, else those stored in the vector file."""
    if spec:
        questions = list(load_trait_spec(spec).evaluation_questions)
    elif vector.extraction.get("evaluation_questions"):
        questions = list(vector.extraction["evaluation_questions"])
    else:
        questions = list(load_trait_spec(vector.trait).evaluation_questions)
    return questions[:limit] if limit else questions


class DriftMeter:
    """Measures every probe's projection in one batched forward per probe layer group."""

    def __init__(self, tokenizer, probes: Sequence[DriftProbe], batch_size: int = 32):
        self.tokenizer = tokenizer
        self.probes = list(probes)
        self.batch_size = batch_size
        self.base: dict[str, float] = {}

    @classmethod
    def for_vectors(
        cls,
        tokenizer,
        vectors: Sequence[PersonaVector],
        layers: Sequence[int],
        questions_spec: str | None = None,
        max_questions: int | None = None,
        batch_size: int = 32,
    ) -> DriftMeter:
        probes: list[DriftProbe] = []
        for vector, layer in zip(vectors, layers, strict=True):
            questions = evaluation_questions(vector, questions_spec, max_questions)
            prompts = [format_chat(tokenizer, build_messages(q)) for q in questions]
            name = vector.trait if vector.trait not in {p.name for p in probes} else f"{vector.trait}_{layer}"
            probes.append(DriftProbe(name, vector, layer, prompts))
        return cls(tokenizer, probes, batch_size)

    def projections(self, model: nn.Module, progress: str | None = None) -> dict[str, float]:
        """Current mean projection per trait. Prompts shared between probes run once. With `progress`, a
        progress bar of that title counts the prompts."""
        from tqdm.auto import tqdm

        by_prompts: dict[tuple[str, ...], list[DriftProbe]] = {}
        for probe in self.probes:
            by_prompts.setdefault(tuple(probe.prompts), []).append(probe)
        result = {}
        total = sum(len(prompts) for prompts in by_prompts)
        bar = tqdm(total=total, desc=progress, unit="prompt", disable=progress is None)
        for prompts, probes in by_prompts.items():
            layers = sorted({p.layer for p in probes})
            chunks = []
            for start in range(0, len(prompts), self.batch_size):
                batch = prompts[start : start + self.batch_size]
                chunks.append(last_prompt_activations(model, self.tokenizer, batch, layers, self.batch_size))
                bar.update(len(batch))
            acts = torch.cat(chunks)
            for probe in probes:
                a = acts[:, layers.index(probe.layer)]
                result[probe.name] = float((a @ probe.vector.unit(probe.layer)).mean())
        return result

    def measure_base(self, model: nn.Module) -> dict[str, float]:
        """Projections of the base model: with a PEFT adapter, measured with the adapter disabled."""
        disable = getattr(model, "disable_adapter", None)
        with disable() if callable(disable) else contextlib.nullcontext():
            self.base = self.projections(model, progress="base model drift")
        return self.base

    def metrics(self, model: nn.Module) -> dict[str, float]:
        """`drift/<trait>/projection` and `drift/<trait>/shift` for the current model."""
        return with_shift("drift", "projection", "shift", self.projections(model), self.base)

    def records(self, metrics: dict[str, float]) -> dict[str, dict]:
        """Per probe, its summary.json record (layer, base and final projection, shift) from `metrics`."""
        return {
            probe.name: {
                "layer": probe.layer,
                "base_projection": self.base.get(probe.name),
                "final_projection": metrics.get(f"drift/{probe.name}/projection"),
                "shift": metrics.get(f"drift/{probe.name}/shift"),
            }
            for probe in self.probes
        }
