"""Requests to the monitor's /v1/chat/completions: validation into messages and generation parameters.

A bad request raises RequestError (status, message, the offending parameter); `error_response` turns it
into OpenAI's error body.
"""

from __future__ import annotations

import hashlib
import json

from fastapi.responses import JSONResponse

from .engine import GenerationParams, ServingEngine

ROLES = ("system", "user", "assistant", "developer")


class RequestError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def error_response(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    kind = {401: "authentication_error", 404: "invalid_request_error", 429: "rate_limit_error"}.get(
        status, "invalid_request_error" if status < 500 else "server_error"
    )
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status)


def _content(message: dict, index: int) -> str:
    content = message.get("content")
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        parts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise RequestError(
                    400, f"messages[{index}].content: only text parts are supported", "messages"
                )
            parts.append(part["text"])
        return "".join(parts)
    if content is None and message.get("role") == "assistant":
        return ""
    if not isinstance(content, str):
        raise RequestError(
            400, f"messages[{index}].content must be a string or a list of text parts", "messages"
        )
    return content


def parse_request(
    body: bytes, engine: ServingEngine
) -> tuple[list[dict], GenerationParams, bool, str | None]:
    """Validate a chat completion body; RequestError (4xx, OpenAI style) on anything wrong."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(400, f"request body is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise RequestError(400, "request body must be a JSON object")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "'model' is required (GET /v1/models lists it)", "model")
    if model != engine.model_name:
        raise RequestError(
            404,
            f"The model '{model}' does not exist; this server serves '{engine.model_name}'",
            "model",
            "model_not_found",
        )
    raw = data.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError(400, "'messages' must be a non-empty list", "messages")
    messages = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise RequestError(400, f"messages[{i}] must be an object with 'role' and 'content'", "messages")
        if m.get("role") not in ROLES:
            raise RequestError(
                400, f"messages[{i}].role {m.get('role')!r} is not one of {', '.join(ROLES)}", "messages"
            )
        role = "system" if m["role"] == "developer" else m["role"]
        messages.append({"role": role, "content": _content(m, i)})
    if not any(m["role"] == "user" for m in messages):
        raise RequestError(400, "'messages' needs at least one user message", "messages")
    n = data.get("n", 1)
    if n != 1:
        raise RequestError(400, "only n=1 is supported", "n")
    max_tokens = data.get("max_completion_tokens", data.get("max_tokens", min(256, engine.max_tokens_limit)))
    if (
        not isinstance(max_tokens, int)
        or isinstance(max_tokens, bool)
        or not 1 <= max_tokens <= engine.max_tokens_limit
    ):
        raise RequestError(
            400,
            f"max_tokens={max_tokens!r}: must be an integer from 1 to {engine.max_tokens_limit}",
            "max_tokens",
        )
    params = GenerationParams(max_tokens=max_tokens)
    min_tokens = data.get("min_tokens", 0)  # vLLM's extension
    if not isinstance(min_tokens, int) or isinstance(min_tokens, bool) or not 0 <= min_tokens <= max_tokens:
        raise RequestError(
            400, f"min_tokens={min_tokens!r}: must be an integer from 0 to max_tokens", "min_tokens"
        )
    params.min_tokens = min_tokens
    for name, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise RequestError(400, f"{name}={value!r}: must be a number from {low} to {high}", name)
        setattr(params, name, float(value))
    seed = data.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise RequestError(400, f"seed={seed!r}: must be an integer", "seed")
    params.seed = seed
    stop = data.get("stop")
    if stop is not None:
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop) or len(stop) > 4:
            raise RequestError(400, "'stop' must be a string or a list of up to 4 non-empty strings", "stop")
        params.stop = stop
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, "'stream' must be true or false", "stream")
    conversation = data.get("conversation_id") or data.get("user")
    return messages, params, stream, conversation if isinstance(conversation, str) else None


def derive_conversation_id(messages: list[dict], given: str | None) -> str:
    if given:
        return given
    first_user = next(i for i, m in enumerate(messages) if m["role"] == "user")
    opening = [m for m in messages[:first_user] if m["role"] == "system"] + [messages[first_user]]
    return "conv-" + hashlib.sha256(json.dumps(opening).encode()).hexdigest()[:12]
