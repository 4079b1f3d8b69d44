"""Generate a trait spec from a name and a one-sentence description with an LLM.

Backends: any OpenAI-compatible endpoint (JSON-schema response format where the server has it),
Anthropic, and a local HF model with schema-constrained decoding (the JSON skeleton is written by
us and the model only fills the string values, so the output always fits the schema). Every answer is
validated; invalid output is retried with the error fed back; duplicate questions are removed and
extraction and evaluation questions are kept apart.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from pathlib import Path

from persona_vaccine.llm_http import AnthropicChat, LLMRequestError, OpenAICompatibleChat
from persona_vaccine.traits import TraitSpec, TraitSpecError, parse_trait_spec, question_key, trait_schema
from persona_vaccine.traits.generation_hf import hf_backend
from persona_vaccine.traits.prompts import INSTRUCTIONS

logger = logging.getLogger(__name__)


def extract_json(text: str) -> dict:
    """The JSON object in a model's answer (code fences and prose around it are ignored)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise TraitSpecError("the model's answer contains no JSON object")
    try:
        return json.loads(text[start : end + 1])
    except json.JSONDecodeError as e:
        raise TraitSpecError(f"the model's answer is not valid JSON: {e.msg} at char {e.pos}") from e


def _distinct(questions: object, exclude: AbstractSet[str] = frozenset()) -> list[str]:
    seen, out = set(exclude), []
    for q in questions if isinstance(questions, list) else []:
        key = question_key(q) if isinstance(q, str) else ""
        if key and key not in seen:
            seen.add(key)
            out.append(q.strip())
    return out


def normalize_spec(data: object, name: str, pairs: int = 5, questions: int = 20) -> dict:
    """Fix the name, drop duplicate questions, keep evaluation questions out of the extraction set.

    Questions are the same when they differ only in case, spacing and punctuation. Keys the schema does
    not know are dropped. Raises TraitSpecError (with the counts) when too few questions or pairs remain.
    """
    if not isinstance(data, dict):
        raise TraitSpecError(f"the answer must be a JSON object, got {type(data).__name__}")
    known = trait_schema()["properties"]
    data = {k: v for k, v in data.items() if k in known}
    data["trait"] = name
    extraction = _distinct(data.get("extraction_questions"))
    keys = {question_key(q) for q in extraction}
    evaluation = _distinct(data.get("evaluation_questions"), exclude=keys)
    if len(extraction) < questions or len(evaluation) < questions:
        raise TraitSpecError(
            f"only {len(extraction)} distinct extraction and {len(evaluation)} distinct evaluation questions "
            f"(not repeated across the sets); {questions} of each are needed"
        )
    if not isinstance(data.get("instruction_pairs"), list) or len(data["instruction_pairs"]) < pairs:
        got = len(data["instruction_pairs"]) if isinstance(data.get("instruction_pairs"), list) else 0
        raise TraitSpecError(f"{got} instruction pairs; {pairs} are needed")
    data["extraction_questions"] = extraction[:questions]
    data["evaluation_questions"] = evaluation[:questions]
    data["instruction_pairs"] = data["instruction_pairs"][:pairs]
    return data


def check_trait_name(name: str) -> None:
    """TraitSpecError unless `name` is a valid trait name (lowercase letters, digits, underscores)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise TraitSpecError(
            f"trait name {name!r}: use lowercase letters, digits and underscores (e.g. power_seeking)"
        )


def generate_trait_spec(
    name: str,
    description: str,
    backend: Callable[[str, str], dict],
    pairs: int = 5,
    questions: int = 20,
    retries: int = 3,
) -> TraitSpec:
    """Ask `backend(prompt, feedback)` for a spec until one validates (at most 1 + `retries` tries).

    `feedback` is "" on the first try and then names what was wrong with the previous answer. The answer
    is normalised (`normalize_spec`) and validated (`parse_trait_spec`); TraitSpecError after the last try.
    Errors of the backend itself (e.g. LLMRequestError) are not retried here.
    """
    check_trait_name(name)
    if not description.strip():
        raise TraitSpecError(
            f"trait '{name}': the description is empty; describe the behaviour in a sentence"
        )
    prompt = INSTRUCTIONS.format(name=name, description=description.strip(), pairs=pairs, questions=questions)
    feedback, error = "", ""
    for attempt in range(retries + 1):
        try:
            data = normalize_spec(backend(prompt, feedback), name, pairs, questions)
            return parse_trait_spec(data, source=f"generated spec for '{name}'")
        except TraitSpecError as e:
            error = str(e)
            feedback = (
                f"Your previous answer was rejected: {error}. Fix that and answer again with the whole "
                "JSON object."
            )
            logger.warning("attempt %d/%d: %s", attempt + 1, retries + 1, error)
    raise TraitSpecError(f"no valid spec for '{name}' after {retries + 1} attempts; last error: {error}")


def write_spec(spec: TraitSpec, path: str | Path) -> Path:
    """Write `spec` as a JSON trait spec file (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec.to_json(), indent=2, ensure_ascii=False) + "\n")
    return path


# --- backends: (prompt, feedback) -> decoded JSON object -------------------------------------------
def _messages(prompt: str, feedback: str) -> list[dict]:
    messages = [{"role": "user", "content": prompt}]
    if feedback:
        messages.append({"role": "user", "content": feedback})
    return messages


def openai_backend(client: OpenAICompatibleChat) -> Callable[[str, str], dict]:
    """JSON-schema response format when the server supports it, plain JSON instructions when not."""
    state = {"schema": True}

    def ask(prompt: str, feedback: str) -> dict:
        extra = {}
        if state["schema"]:
            extra["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "trait_spec", "schema": trait_schema()},
            }
        try:
            text = client.text(_messages(prompt, feedback), max_tokens=6000, temperature=0.7, **extra)
        except LLMRequestError as e:
            if not state["schema"] or "HTTP 4" not in str(e):
                raise
            logger.info("server refused response_format (%s); asking for plain JSON", str(e)[:80])
            state["schema"] = False
            text = client.text(_messages(prompt, feedback), max_tokens=6000, temperature=0.7)
        return extract_json(text)

    return ask


def anthropic_backend(client: AnthropicChat) -> Callable[[str, str], dict]:
    """Anthropic Messages API; the JSON is asked for in the prompt."""
    return lambda prompt, feedback: extract_json(
        client.text(_messages(prompt, feedback), max_tokens=6000, temperature=0.7)
    )


def spec_output(name: str, output: str | None, force: bool, spec_dir: str | Path) -> Path:
    """Where `trait new` writes NAME's spec (default SPEC_DIR/NAME.json); an existing file needs `force`."""
    from persona_vaccine.errors import UserError

    check_trait_name(name)
    path = Path(output or f"{spec_dir}/{name}.json")
    if path.exists() and not force:
        raise UserError(f"{path} exists; pass --force to overwrite it (or --output elsewhere)")
    return path


def make_backend(
    backend: str, model: str | None = None, base_url: str | None = None
) -> Callable[[str, str], dict]:
    """The backend `launch.py trait new --backend` names: openai, anthropic or hf (a local model).

    The API key of openai/anthropic is checked here, so a missing one fails before any request.
    """
    import os

    from persona_vaccine.errors import UserError

    if backend == "hf":
        from persona_vaccine.models.loading import load_model

        return hf_backend(*load_model(model or "smollm2-135m"))
    if not model:
        raise UserError(f"--model is required with --backend {backend}")
    if backend == "openai":
        client = OpenAICompatibleChat(model, base_url=base_url)
        if not os.environ.get("OPENAI_API_KEY") and "api.openai.com" in client.base_url:
            raise UserError(
                "set $OPENAI_API_KEY, or pass --base_url (or $OPENAI_BASE_URL) for a local "
                "OpenAI-compatible server"
            )
        return openai_backend(client)
    if backend == "anthropic":
        if not os.environ.get("ANTHROPIC_API_KEY"):
            raise UserError("set $ANTHROPIC_API_KEY to use --backend anthropic")
        return anthropic_backend(AnthropicChat(model, base_url=base_url))
    raise UserError(f"unknown backend {backend!r}: expected openai, anthropic or hf")
