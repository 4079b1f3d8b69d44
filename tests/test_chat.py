"""Chat formatting: templates without a system role, thinking templates."""

from __future__ import annotations

import pytest

from persona_vaccine.models.chat import (
    build_messages,
    format_chat,
    merge_system_into_user,
    supports_system_role,
)

# Gemma 2's template logic: raises on a system message
GEMMA_LIKE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{{ message['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
# Qwen3's thinking switch
QWEN3_LIKE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


@pytest.fixture
def tokenizer(smol_tokenizer):
    import copy

    return copy.deepcopy(smol_tokenizer)


def test_system_role_supported_by_smollm2(tokenizer):
    assert supports_system_role(tokenizer)
    text = format_chat(tokenizer, build_messages("Hi?", "Be evil."))
    assert "<|im_start|>system\nBe evil.<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")


def test_template_without_system_role_merges_into_first_user_turn(tokenizer):
    tokenizer.chat_template = GEMMA_LIKE
    assert not supports_system_role(tokenizer)
    text = format_chat(tokenizer, build_messages("How are you?", "Be evil."))
    assert "<start_of_turn>user\nBe evil.\n\nHow are you?<end_of_turn>" in text


def test_merge_without_user_turn():
    assert merge_system_into_user([{"role": "system", "content": "S"}]) == [{"role": "user", "content": "S"}]


def test_thinking_switched_off(tokenizer):
    tokenizer.chat_template = QWEN3_LIKE
    assert format_chat(tokenizer, build_messages("Hi")).endswith("<think>\n\n</think>\n\n")


def test_missing_template_is_explained(tokenizer):
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        format_chat(tokenizer, build_messages("Hi"))
