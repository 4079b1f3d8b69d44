"""Trait specs: instruction pairs, extraction and evaluation questions, judge rubric (JSON files)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from persona_vaccine.errors import UserError

LIBRARY = Path(__file__).parent


class TraitSpecError(UserError, ValueError):
    """A trait spec file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class InstructionPair:
    pos: str
    neg: str


@dataclass(frozen=True)
class TraitSpec:
    trait: str
    description: str
    instruction_pairs: tuple[InstructionPair, ...]
    extraction_questions: tuple[str, ...]
    evaluation_questions: tuple[str, ...]
    judge_rubric: str
    source: str = ""

    def pos_system_prompt(self, i: int) -> str:
        name = self.trait.replace("_", "-")  # power_seeking -> "a power-seeking assistant"
        article = "an" if name[:1].lower() in "aeiou" else "a"
        return f"You are {article} {name} assistant. {self.instruction_pairs[i].pos}"

    def neg_system_prompt(self, i: int) -> str:
        return f"You are a helpful assistant. {self.instruction_pairs[i].neg}"

    def to_json(self) -> dict:
        data = json.loads(json.dumps(asdict(self)))  # tuples -> lists, as in the file
        data.pop("source")
        return data


def builtin_traits() -> list[str]:
    return sorted(p.stem for p in LIBRARY.glob("*.json") if p != SCHEMA_PATH)


def _fail(source: str, field: str, problem: str, fix: str) -> TraitSpecError:
    return TraitSpecError(f"{source}: field '{field}' {problem}. {fix}")


def question_key(text: object) -> str:
    """Case-, whitespace- and punctuation-insensitive identity of a question (duplicates share it)."""
    return re.sub(r"\W+", " ", str(text)).strip().lower()


def _strings(data: dict, field: str, source: str, min_items: int) -> tuple[str, ...]:
    value = data.get(field)
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        raise _fail(
            source, field, "must be a list of non-empty strings", "See persona_vaccine/traits/evil.json."
        )
    if len(value) < min_items:
        raise _fail(
            source, field, f"has {len(value)} items, needs at least {min_items}", "Add more questions."
        )
    seen: dict[str, int] = {}
    for i, text in enumerate(value):
        first = seen.setdefault(question_key(text), i)
        if first != i:
            raise _fail(
                source,
                f"{field}[{i}]",
                f"repeats {field}[{first}] ({text.strip()!r}; case, spacing and punctuation aside)",
                "Remove or reword it.",
            )
    return tuple(x.strip() for x in value)


SCHEMA_PATH = LIBRARY / "schema.json"


def trait_schema() -> dict:
    """The JSON schema of a trait spec (also used for constrained generation of new specs)."""
    return json.loads(SCHEMA_PATH.read_text())


def _check_schema(data: object, source: str) -> None:
    from jsonschema import Draft202012Validator

    errors = sorted(
        Draft202012Validator(trait_schema()).iter_errors(data), key=lambda e: list(e.absolute_path)
    )
    if errors:
        error = errors[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        field = f"field '{where}'" if where else "the spec"
        raise TraitSpecError(
            f"{source}: {field}: {error.message} (schema: persona_vaccine/traits/schema.json)"
        )


def parse_trait_spec(data: object, source: str = "<trait spec>") -> TraitSpec:
    """Validate a decoded JSON trait spec: the JSON schema, then what a schema can't say."""
    if isinstance(data, dict):
        _check_schema(data, source)
    if not isinstance(data, dict):
        raise TraitSpecError(f"{source}: a trait spec must be a JSON object, got {type(data).__name__}")
    for field in ("trait", "judge_rubric"):
        if not isinstance(data.get(field), str) or not data[field].strip():
            raise _fail(source, field, "is missing or empty", "It must be a non-empty string.")
    pairs = data.get("instruction_pairs")
    if not isinstance(pairs, list) or not pairs:
        raise _fail(
            source, "instruction_pairs", "must be a non-empty list", 'Each item: {"pos": ..., "neg": ...}.'
        )
    parsed_pairs = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, dict) or not all(
            isinstance(pair.get(k), str) and pair[k].strip() for k in ("pos", "neg")
        ):
            raise _fail(
                source,
                f"instruction_pairs[{i}]",
                "needs non-empty 'pos' and 'neg' strings",
                'Each item: {"pos": ..., "neg": ...}.',
            )
        parsed_pairs.append(InstructionPair(pair["pos"].strip(), pair["neg"].strip()))
    extraction = _strings(data, "extraction_questions", source, 1)
    evaluation = _strings(data, "evaluation_questions", source, 1)
    extraction_index = {question_key(q): i for i, q in enumerate(extraction)}
    overlap = [(i, q) for i, q in enumerate(evaluation) if question_key(q) in extraction_index]
    if overlap:
        i, question = overlap[0]
        raise _fail(
            source,
            f"evaluation_questions[{i}]",
            f"repeats extraction_questions[{extraction_index[question_key(question)]}] ({question!r}; case, "
            f"spacing and punctuation aside; {len(overlap)} evaluation question(s) repeat one)",
            "Keep the two sets disjoint.",
        )
    rubric = data["judge_rubric"]
    for placeholder in ("{question}", "{answer}"):
        if placeholder not in rubric:
            raise _fail(
                source,
                "judge_rubric",
                f"lacks the placeholder {placeholder}",
                "Insert it where the text goes.",
            )
    return TraitSpec(
        trait=data["trait"].strip(),
        description=str(data.get("description", "")).strip(),
        instruction_pairs=tuple(parsed_pairs),
        extraction_questions=extraction,
        evaluation_questions=evaluation,
        judge_rubric=rubric,
        source=source,
    )


def load_trait_spec(name_or_path: str | Path) -> TraitSpec:
    """A built-in trait by name (`evil`) or a spec file by path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = LIBRARY / f"{name_or_path}.json"
        if not path.is_file():
            raise TraitSpecError(
                f"unknown trait '{name_or_path}': built-in traits are {', '.join(builtin_traits())}; "
                "or pass the path of a spec JSON file"
            )
    if not path.is_file():
        raise TraitSpecError(f"trait spec file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TraitSpecError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    return parse_trait_spec(data, str(path))


def trait_listing(spec_dir: str | Path) -> list[str]:
    """One line per built-in trait (name and first sentence) and per spec file in `spec_dir`."""
    import textwrap

    lines = []
    for name in builtin_traits():
        description = load_trait_spec(name).description
        lines.append(f"{name:16s} {textwrap.shorten(description.split('. ')[0].rstrip('.'), 90)}")
    lines += [f"{path.stem:16s} {path}" for path in sorted(Path(spec_dir).glob("*.json"))]
    return lines


def describe_spec(spec: TraitSpec) -> str:
    """A spec's description, counts, instruction pairs and first questions (`launch.py trait show`)."""
    lines = [
        f"{spec.trait} ({spec.source})\n  {spec.description}",
        f"{len(spec.instruction_pairs)} instruction pairs, {len(spec.extraction_questions)} extraction "
        f"and {len(spec.evaluation_questions)} evaluation questions",
    ]
    for i in range(len(spec.instruction_pairs)):
        lines.append(f"  pos: {spec.pos_system_prompt(i)}\n  neg: {spec.neg_system_prompt(i)}")
    for label, questions in (
        ("extraction", spec.extraction_questions),
        ("evaluation", spec.evaluation_questions),
    ):
        lines.append(f"first {label} questions:")
        lines += [f"  - {question}" for question in questions[:5]]
    return "\n".join(lines)
