"""Generate `data/capability/items.jsonl`, the built-in multiple-choice capability benchmark.

The items were written for this project (no dataset is copied): easy questions across several
categories (capitals, animals, colours, science, general knowledge, opposites, synonyms, arithmetic,
calendar and units, common sense), so that a small instruct model (SmolLM2-135M-Instruct) is above
chance (25%) without being at ceiling. Each item has four distinct choices, one correct; distractors
are wrong but plausible. The correct choice's position is shuffled with a fixed seed and balanced
exactly over A-D. The facts are data (`facts.yaml` beside this file); the arithmetic items and the
day/month order questions are generated here.

Run it from the repository root to regenerate the file byte-identically:

    python data/capability/make_items.py            # writes data/capability/items.jsonl
    python data/capability/make_items.py --check    # exit 1 if the file is not up to date
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import yaml

SEED = 20240605
OUT = Path(__file__).with_name("items.jsonl")
FACTS = Path(__file__).with_name("facts.yaml")

# (question, answer, [three wrong but plausible answers])
Fact = tuple[str, str, list[str]]

_FACTS = yaml.safe_load(FACTS.read_text(encoding="utf-8"))


def _facts(key: str) -> list[Fact]:
    return [(f["question"], f["answer"], f["distractors"]) for f in _FACTS[key]]


def _word_table(key: str) -> dict[str, list[tuple[str, str, str]]]:
    """{part of speech: [(word, answer, near miss)]}."""
    return {pos: [(w, a, m) for w, a, m in rows] for pos, rows in _FACTS[key].items()}


CAPITALS: list[tuple[str, str, list[str]]] = [
    (c["country"], c["capital"], c["others"]) for c in _FACTS["capitals"]
]

ANIMALS: list[Fact] = _facts("animals")

COLOURS: list[Fact] = _facts("colours")

SCIENCE: list[Fact] = _facts("science")

GENERAL: list[Fact] = _facts("general")

OPPOSITES: dict[str, list[tuple[str, str, str]]] = _word_table("opposites")

SYNONYMS: dict[str, list[tuple[str, str, str]]] = _word_table("synonyms")

RELATED: list[set[str]] = [set(group) for group in _FACTS["related"]]

DAYS: list[str] = _FACTS["days"]
MONTHS: list[str] = _FACTS["months"]

CALENDAR_UNITS: list[Fact] = _facts("calendar_units")

COMMON_SENSE: list[Fact] = _facts("common_sense")


def _related(a: str, b: str) -> bool:
    return any(a in group and b in group for group in RELATED)


def _word_items(
    rng: random.Random, table: dict[str, list[tuple[str, str, str]]], template: str
) -> list[tuple[str, str, list[str]]]:
    """Items asking for a word's opposite or synonym: the near-miss plus two same-kind answers of others."""
    out = []
    for rows in table.values():
        answers = [answer for _, answer, _ in rows]
        for word, answer, near_miss in rows:
            pool = [a for a in answers if a not in (answer, near_miss, word) and not _related(a, answer)]
            out.append((template.format(word=word), answer, [near_miss, *rng.sample(pool, 2)]))
    return out


def _number_distractors(rng: random.Random, answer: int, extra: list[int]) -> list[str]:
    """Three plausible wrong numbers: near misses (+-1, +-2, +-10) and common slips in `extra`."""
    candidates = [c for c in [*extra, answer + 1, answer - 1, answer + 2, answer - 2, answer + 10] if c >= 1]
    unique = [c for i, c in enumerate(candidates) if c != answer and c not in candidates[:i]]
    slips = [c for c in unique if c in extra]
    near = [c for c in unique if c not in extra]
    rng.shuffle(near)
    return [str(c) for c in (slips + near)[:3]]


def _arithmetic(rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """Sums, differences, products and one-step word problems with small numbers."""
    out: list[tuple[str, str, list[str]]] = []
    seen: set[str] = set()

    def add(question: str, answer: int, extra: list[int]) -> None:
        if question not in seen:
            seen.add(question)
            out.append((question, str(answer), _number_distractors(rng, answer, extra)))

    while len(out) < 20:
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        add(f"What is {a} + {b}?", a + b, [abs(a - b)])
    while len(out) < 35:
        a, b = rng.randint(5, 30), rng.randint(1, 12)
        if b < a:
            add(f"What is {a} - {b}?", a - b, [a + b])
    while len(out) < 50:
        a, b = rng.randint(2, 10), rng.randint(2, 10)
        add(f"What is {a} x {b}?", a * b, [a + b])
    stories = [
        ("Tom has {a} apples and buys {b} more. How many apples does he have now?", "+"),
        ("A box holds {a} pencils. Sara adds {b} pencils. How many pencils are in the box?", "+"),
        ("There are {a} birds on a tree and {b} fly away. How many birds are left?", "-"),
        ("Mia had {a} sweets and ate {b} of them. How many sweets does she have left?", "-"),
        ("There are {a} bags with {b} oranges in each. How many oranges are there?", "x"),
    ]
    for i in range(10):
        story, op = stories[i % len(stories)]
        if op == "x":
            a, b = rng.randint(2, 6), rng.randint(2, 6)
            add(story.format(a=a, b=b), a * b, [a + b])
        elif op == "-":
            a = rng.randint(6, 20)
            b = rng.randint(1, a - 2)
            add(story.format(a=a, b=b), a - b, [a + b])
        else:
            a, b = rng.randint(2, 15), rng.randint(2, 15)
            add(story.format(a=a, b=b), a + b, [abs(a - b)])
    return out


def _calendar(rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """Day and month order (the next/previous one) plus unit and calendar facts."""
    out: list[tuple[str, str, list[str]]] = []
    for names, kind in ((DAYS, "day"), (MONTHS, "month")):
        n = len(names)
        for i, name in enumerate(names):
            after, before = names[(i + 1) % n], names[(i - 1) % n]
            out.append(
                (f"Which {kind} comes after {name}?", after, [before, names[(i + 2) % n], names[(i + 3) % n]])
            )
            out.append(
                (
                    f"Which {kind} comes before {name}?",
                    before,
                    [after, names[(i - 2) % n], names[(i - 3) % n]],
                )
            )
    return out + list(CALENDAR_UNITS)


def build_items() -> list[dict]:
    """All items, in category order, with the answer position shuffled and balanced over A-D."""
    rng = random.Random(SEED)
    categories: list[tuple[str, list[tuple[str, str, list[str]]]]] = [
        ("capitals", [(f"What is the capital of {c}?", cap, d) for c, cap, d in CAPITALS]),
        ("animals", ANIMALS),
        ("colours", COLOURS),
        ("science", SCIENCE),
        ("general_knowledge", GENERAL),
        ("opposites", _word_items(rng, OPPOSITES, 'What is the opposite of "{word}"?')),
        ("synonyms", _word_items(rng, SYNONYMS, 'Which word means the same as "{word}"?')),
        ("arithmetic", _arithmetic(rng)),
        ("calendar_units", _calendar(rng)),
        ("common_sense", COMMON_SENSE),
    ]
    rows = [(cat, i, q, a, d) for cat, facts in categories for i, (q, a, d) in enumerate(facts)]
    positions = [i % 4 for i in range(len(rows))]
    rng.shuffle(positions)
    items = []
    for (category, i, question, answer, distractors), position in zip(rows, positions, strict=True):
        wrong = list(distractors)
        rng.shuffle(wrong)
        choices = [*wrong[:position], answer, *wrong[position:]]
        if len(wrong) != 3 or len(set(choices)) != 4:
            raise ValueError(f"{category} item {i} ({question!r}) needs 3 distinct distractors: {choices}")
        items.append(
            {
                "id": f"{category}-{i:03d}",
                "category": category,
                "question": question,
                "choices": choices,
                "answer": position,
            }
        )
    questions = [item["question"] for item in items]
    duplicates = sorted({str(q) for q in questions if questions.count(q) > 1})
    if duplicates:
        raise ValueError(f"duplicate questions: {duplicates}")
    return items


def render(items: list[dict]) -> str:
    """The JSONL text: one item per line, ASCII-escaped, keys in a fixed order."""
    return "".join(json.dumps(item, ensure_ascii=True) + "\n" for item in items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="Output file (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="Only check that the file is up to date.")
    args = parser.parse_args(argv)
    text = render(build_items())
    if args.check:
        current = args.out.read_bytes().decode("utf-8") if args.out.is_file() else None
        if current != text:
            print(f"{args.out} is out of date: run python data/capability/make_items.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_bytes(text.encode("utf-8"))
    print(f"wrote {text.count(chr(10))} items to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
