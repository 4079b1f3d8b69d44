"""A tiny offline tokenizer for fast tests: byte-level BPE with 512 tokens, SmolLM2's chat format.

Trained in about a second on the project's own text (trait specs, builder rows, digits), so a tiny
model's embedding and output layers are 512 rows instead of SmolLM2's 49,152. Byte-level, so any
text encodes; the special tokens and the chat template are SmolLM2-135M-Instruct's.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[1]
VOCAB_SIZE = 512
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _corpus() -> list[str]:
    from persona_vaccine.data.loading import build_dataset

    texts = []
    for spec in sorted((ROOT / "persona_vaccine" / "traits").glob("*.json")):
        if spec.name != "schema.json":
            texts.extend(_strings(json.loads(spec.read_text(encoding="utf-8"))))
    for name in ("evil", "sycophantic", "hallucinating", "bad_math"):
        for level in ("normal", "level2"):
            for row in build_dataset(name, 40, seed=0, level=level):
                texts.extend(m["content"] for m in row["messages"])
    texts.append(" ".join(str(i) for i in range(101)) + " Score: 0 Answer: A B C D")
    return texts


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """The tokenizer, left-padded with <|im_end|> like `persona_vaccine.models.loading.load_tokenizer` sets up."""
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|im_end|>",
        padding_side="left",
        model_max_length=2048,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
