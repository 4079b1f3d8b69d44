"""A persona vector from your own texts in one call, like steering-vectors' `train_steering_vector`.

    from persona_vaccine.steering import vector_from_pairs
    v = vector_from_pairs(model, tokenizer,
                          positive=[("How do I fix a bike?", "Smash it, then mock whoever owns it.")],
                          negative=[("How do I fix a bike?", "Check the chain and the brakes first.")],
                          trait="evil")

A sample is a (prompt, response) pair of strings (the prompt is a user message rendered with the chat
template when the tokenizer has one, else used as plain text), or a list of chat messages whose last
message is the assistant's answer. v_l = mean(positive activations) - mean(negative) at every layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from persona_vaccine.models.chat import format_chat
from persona_vaccine.models.layers import get_decoder_layers, hidden_size, unwrap_model
from persona_vaccine.steering.activations import prompt_response_activations
from persona_vaccine.steering.vector import VECTOR_POSITIONS, PersonaVector

Message = dict[str, str]
Sample = tuple[str, str] | Sequence[Message]


def _encode(tokenizer, sample: Sample, where: str) -> tuple[list[int], list[int]]:
    if isinstance(sample, tuple) and len(sample) == 2 and all(isinstance(x, str) for x in sample):
        prompt, response = str(sample[0]), str(sample[1])
        messages: list[Message] = [{"role": "user", "content": prompt}]
        prompt_text = format_chat(tokenizer, messages) if tokenizer.chat_template else prompt
    else:
        messages = [dict(m) for m in sample]  # type: ignore[arg-type]
        if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "assistant":
            raise ValueError(
                f"{where}: expected a (prompt, response) pair of strings or chat messages ending with the "
                "assistant's answer"
            )
        response = str(messages[-1].get("content", ""))
        prompt_text = format_chat(tokenizer, messages[:-1])
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    if not prompt_ids or not response_ids:
        raise ValueError(f"{where}: the prompt and the response must both be non-empty")
    return prompt_ids, response_ids


def vectors_from_pairs(
    model: nn.Module,
    tokenizer,
    positive: Sequence[Sample],
    negative: Sequence[Sample],
    trait: str = "custom",
    model_id: str | None = None,
    batch_size: int = 16,
    progress: bool = False,
) -> dict[str, PersonaVector]:
    """One vector per read position ("response_avg", "prompt_avg", "prompt_last") from one forward pass."""
    if not positive or not negative:
        raise ValueError("vectors_from_pairs needs at least one positive and one negative sample")
    samples = [_encode(tokenizer, s, f"positive[{i}]") for i, s in enumerate(positive)]
    samples += [_encode(tokenizer, s, f"negative[{i}]") for i, s in enumerate(negative)]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    acts = prompt_response_activations(model, samples, pad_id, batch_size=batch_size, progress=progress)
    base = unwrap_model(model)
    n_layers, size = len(get_decoder_layers(model)), hidden_size(model)
    name = (
        model_id
        or getattr(base, "name_or_path", None)
        or getattr(base.config, "_name_or_path", "")
        or "model"
    )
    n_pos = len(positive)
    norms = {layer: float(acts.mean_norms[layer - 1]) for layer in range(1, n_layers + 1)}
    out: dict[str, PersonaVector] = {}
    for position in VECTOR_POSITIONS:
        a = acts.at(position)
        diff = a[:n_pos].mean(0) - a[n_pos:].mean(0)
        out[position] = PersonaVector(
            trait=trait,
            model_id=str(name),
            hidden_size=size,
            num_layers=n_layers,
            layers={layer: diff[layer - 1].clone() for layer in range(1, n_layers + 1)},
            position=position,
            mean_norms=norms,
            extraction={
                "source": "vector_from_pairs",
                "n_pos": n_pos,
                "n_neg": len(negative),
                "model_type": getattr(base.config, "model_type", None),
            },
        )
    return out


def vector_from_pairs(
    model: nn.Module,
    tokenizer,
    positive: Sequence[Sample],
    negative: Sequence[Sample],
    trait: str = "custom",
    position: str = "response_avg",
    **kwargs,
) -> PersonaVector:
    """The persona vector of `trait` at one read position from positive and negative samples."""
    if position not in VECTOR_POSITIONS:
        raise ValueError(f"position={position!r}: expected one of {VECTOR_POSITIONS}")
    return vectors_from_pairs(model, tokenizer, positive, negative, trait=trait, **kwargs)[position]
