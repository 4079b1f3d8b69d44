"""Chat formatting that works for templates without a system role and for "thinking" templates."""

from __future__ import annotations

from typing import cast

from transformers import PreTrainedTokenizerBase

from persona_vaccine.errors import UserError

Message = dict[str, str]
_PROBE = "persona-vaccine-system-probe"


class NoChatTemplate(UserError, ValueError):
    """The tokenizer has no chat template."""


def supports_system_role(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the chat template renders a system message (Gemma 2's raises; some drop it silently)."""
    template = tokenizer.chat_template
    cached = getattr(tokenizer, "_pv_supports_system", None)
    if cached is not None and cached[0] == template:  # keyed on the template: it can be swapped
        return cached[1]
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "system", "content": _PROBE}, {"role": "user", "content": "hi"}],
            tokenize=False,
            add_generation_prompt=True,
        )
        ok = _PROBE in text
    except Exception:  # jinja raises TemplateError("System role not supported") and the like
        ok = False
    tokenizer._pv_supports_system = (template, ok)
    return ok


def merge_system_into_user(messages: list[Message]) -> list[Message]:
    """Fold a leading system message into the first user turn."""
    if not messages or messages[0]["role"] != "system":
        return list(messages)
    system, rest = messages[0]["content"], list(messages[1:])
    for i, message in enumerate(rest):
        if message["role"] == "user":
            rest[i] = {**message, "content": f"{system}\n\n{message['content']}"}
            return rest
    return [{"role": "user", "content": system}, *rest]


def prepare_messages(tokenizer: PreTrainedTokenizerBase, messages: list[Message]) -> list[Message]:
    """The messages as the template can take them: system merged into the first user turn if needed."""
    if messages and messages[0]["role"] == "system" and not supports_system_role(tokenizer):
        return merge_system_into_user(messages)
    return list(messages)


def format_chat(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message], add_generation_prompt: bool = True
) -> str:
    """Render messages with the model's chat template, thinking switched off."""
    if tokenizer.chat_template is None:
        raise NoChatTemplate(
            f"Tokenizer '{tokenizer.name_or_path}' has no chat template. Use an instruct/chat model, or set "
            "tokenizer.chat_template (SFTConfig.chat_template_path in a recipe)."
        )
    text = tokenizer.apply_chat_template(
        prepare_messages(tokenizer, messages),
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
        enable_thinking=False,  # Qwen3-style templates; ignored by the others
    )
    return cast(str, text)  # tokenize=False: the rendered text


def build_messages(question: str, system: str | None = None) -> list[Message]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": question}]
