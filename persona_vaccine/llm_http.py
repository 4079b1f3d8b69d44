"""Minimal HTTP clients for chat LLMs: any OpenAI-compatible endpoint, and Anthropic's Messages API.

Standard library only. Retries with exponential backoff on connection errors, 429 and 5xx. API keys
are read from the environment at call time and never appear in logs or error messages.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request

from persona_vaccine.errors import UserError

logger = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 425, 429}  # and every 5xx
TRANSIENT = (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException, OSError)


class LLMRequestError(UserError, RuntimeError):
    """An LLM endpoint failed after all retries (or with a status that is not worth retrying)."""


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def post_json(
    url: str,
    payload: dict,
    headers: dict[str, str],
    timeout: float = 120.0,
    max_retries: int = 5,
    backoff: float = 1.0,
    secret: str | None = None,
    max_backoff: float = 30.0,
    require: str | None = None,
) -> dict:
    """POST JSON, return the decoded answer.

    Connection errors, replies that are not UTF-8 JSON objects (or lack the key `require`),
    408/409/425/429 and 5xx are retried with exponential backoff (at most `max_backoff` seconds,
    longer when the server sends Retry-After); other statuses fail at once. `secret` (the API key)
    is replaced by *** in every message.
    """
    body = json.dumps(payload).encode()
    last = ""
    for attempt in range(max_retries + 1):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
        )
        retry_after = None
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer = json.loads(response.read().decode("utf-8"))
            if not isinstance(answer, dict):
                last = f"a JSON {type(answer).__name__} instead of an object from {url}"
            elif require is not None and not answer.get(require):
                last = f"a reply without '{require}' from {url}"
            else:
                return answer
        except urllib.error.HTTPError as e:
            detail = _redact(e.read().decode(errors="replace")[:500], secret)
            last = f"HTTP {e.code} from {url}: {detail}"
            if e.code not in RETRY_STATUS and e.code < 500:
                raise LLMRequestError(last) from None
            retry_after = e.headers.get("Retry-After") if e.headers else None
        except UnicodeDecodeError:
            last = f"a reply that is not UTF-8 text from {url}"
        except json.JSONDecodeError:
            last = f"invalid JSON from {url}"
        except TRANSIENT as e:
            reason = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            last = f"cannot reach {url}: {_redact(reason, secret)}"
        if attempt < max_retries:
            delay = backoff * 2**attempt
            try:
                delay = max(delay, float(retry_after)) if retry_after else delay
            except ValueError:
                pass
            delay = min(delay, max_backoff)
            logger.warning("%s; retry %d/%d in %.1fs", last, attempt + 1, max_retries, delay)
            time.sleep(delay)
    raise LLMRequestError(f"{last} (gave up after {max_retries} retries)")


class OpenAICompatibleChat:
    """Chat completions on OpenAI, vLLM, llama.cpp server, Ollama, `transformers serve`, ...

    base_url defaults to $OPENAI_BASE_URL or https://api.openai.com/v1; the key comes from
    $`api_key_env` (optional for local servers).
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
    ):
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip(
            "/"
        )
        self.api_key_env = api_key_env
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        self.max_backoff = max_backoff

    def complete(
        self, messages: list[dict], max_tokens: int = 1024, temperature: float = 0.0, **extra
    ) -> dict:
        """The raw chat.completion answer (choices[0].message.content, logprobs, ...)."""
        key = os.environ.get(self.api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        payload = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            **extra,
        }
        return post_json(
            f"{self.base_url}/chat/completions",
            payload,
            headers,
            self.timeout,
            self.max_retries,
            self.backoff,
            secret=key,
            max_backoff=self.max_backoff,
            require="choices",
        )

    def text(self, messages: list[dict], **kwargs) -> str:
        return self.complete(messages, **kwargs)["choices"][0]["message"]["content"] or ""


class AnthropicChat:
    """Anthropic's Messages API; the key comes from $ANTHROPIC_API_KEY."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "ANTHROPIC_API_KEY",
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
    ):
        self.model = model
        self.base_url = (
            base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
        ).rstrip("/")
        self.api_key_env = api_key_env
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff

    def text(self, messages: list[dict], max_tokens: int = 4096, temperature: float = 0.0) -> str:
        key = os.environ.get(self.api_key_env)
        if not key:
            raise LLMRequestError(f"set ${self.api_key_env} to use Anthropic models")
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        payload = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "messages": [m for m in messages if m["role"] != "system"],
        }
        if system:
            payload["system"] = system
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        answer = post_json(
            f"{self.base_url}/v1/messages",
            payload,
            headers,
            self.timeout,
            self.max_retries,
            self.backoff,
            secret=key,
        )
        return "".join(
            block.get("text", "") for block in answer.get("content", []) if block.get("type") == "text"
        )
