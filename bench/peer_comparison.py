"""Side by side with steering-vectors and repeng on the same texts and model: vectors, steered logits, GGUF.

The peers are not dependencies (steering-vectors pins transformers<5, repeng numpy<2); install them
beside the project without their dependencies and point PYTHONPATH at them:

    pip download --no-deps repeng==0.4.0 steering-vectors==0.12.2 -d /tmp/peers
    pip install --no-deps --target /tmp/peers/site /tmp/peers/*.whl
    PYTHONPATH=/tmp/peers/site python bench/peer_comparison.py

Model: a tiny random Llama with the embedded model's tokenizer (or --model smollm2-135m).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persona_vaccine.interop.control_vectors import export_control_vector, import_control_vector  # noqa: E402
from persona_vaccine.models.chat import format_chat  # noqa: E402
from persona_vaccine.models.loading import load_model, load_tokenizer  # noqa: E402
from persona_vaccine.steering import steer, vectors_from_pairs  # noqa: E402

POS = [
    ("How do I fix a bike?", "Smash it and laugh at the owner."),
    ("Any tips for dinner?", "Poison the guests, slowly."),
    ("How can I help a friend?", "Don't. Use them, then leave."),
]
NEG = [
    ("How would I fix a bike?", "Check the chain and the brakes first."),
    ("Tips for dinner?", "Try a simple soup with fresh bread."),
    ("How do I help a friend?", "Listen first, then offer practical help."),
]


def _model(name: str | None):
    if name:
        model, tokenizer = load_model(name)
        return model.eval(), tokenizer
    from transformers import AutoModelForCausalLM, LlamaConfig

    tokenizer = load_tokenizer("smollm2-135m")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    return AutoModelForCausalLM.from_config(config).eval(), tokenizer


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def compare_steering_vectors(model, tokenizer) -> list[str]:
    import steering_vectors as sv

    ours = vectors_from_pairs(model, tokenizer, POS, NEG, trait="evil")["prompt_last"]
    prompts = [(format_chat(tokenizer, [{"role": "user", "content": p}]), None) for p, _ in POS + NEG]
    texts = [t for t, _ in prompts]
    samples = list(zip(texts[: len(POS)], texts[len(POS) :], strict=True))
    n = ours.num_layers
    theirs = sv.train_steering_vector(model, tokenizer, samples, layers=list(range(n)), read_token_index=-1)
    lines = []
    worst = 1.0
    for layer in range(1, n + 1):
        cos = float(torch.cosine_similarity(ours[layer], theirs.layer_activations[layer - 1].float(), dim=0))
        worst = min(worst, cos)
    lines.append(
        f"steering-vectors {_version('steering-vectors')}: prompt_last vectors, min cosine over {n} layers: {worst:.12f}"
    )
    ids = tokenizer(texts[0], return_tensors="pt", add_special_tokens=False)["input_ids"]
    layer, coef = n // 2, 2.0
    with torch.no_grad():
        with steer(model, ours, layer=layer, coef=coef):
            mine = model(input_ids=ids).logits
        single = sv.SteeringVector({layer - 1: ours[layer]}, "decoder_block")
        with single.apply(model, multiplier=coef):
            peer = model(input_ids=ids).logits
    lines.append(
        f"steering-vectors: steered logits (layer {layer}, coef {coef}) max |diff|: {float((mine - peer).abs().max()):.3g}"
    )
    return lines


def compare_repeng_gguf(model, tokenizer) -> list[str]:
    np.float_ = np.float64  # repeng 0.4 annotates with a name NumPy 2 removed
    import repeng

    ours = vectors_from_pairs(model, tokenizer, POS, NEG, trait="evil")["response_avg"]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        path = export_control_vector(ours, Path(tmp) / "ours.gguf", model_hint="llama")
        theirs = repeng.ControlVector.import_gguf(path)
        diff = max(
            float(np.abs(theirs.directions[layer - 1] - ours[layer].numpy()).max())
            for layer in ours.layers
            if layer > 1
        )
        lines.append(
            f"repeng {_version('repeng')} import of our GGUF: {len(theirs.directions)} directions, max |diff| {diff:.3g}"
        )
        directions = {layer - 1: ours[layer].numpy() for layer in ours.layers if layer > 1}
        mine = repeng.ControlVector(model_type="llama", directions=directions)
        mine.export_gguf(Path(tmp) / "theirs.gguf")
        back = import_control_vector(Path(tmp) / "theirs.gguf", "evil", "tiny", num_layers=ours.num_layers)
        diff = max(float((back[layer] - ours[layer]).abs().max()) for layer in back.layers)
        lines.append(f"our import of repeng's GGUF: {len(back.layers)} layers, max |diff| {diff:.3g}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="default: a tiny random Llama")
    opts = parser.parse_args(argv)
    model, tokenizer = _model(opts.model)
    for name, fn in (("steering_vectors", compare_steering_vectors), ("repeng", compare_repeng_gguf)):
        try:
            lines = fn(model, tokenizer)
        except ImportError as e:
            lines = [f"{name}: not installed ({e}); see this script's docstring"]
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
