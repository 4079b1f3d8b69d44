"""Deterministic builders of trait-eliciting datasets: sycophantic and hallucinating (the trait names).

Sycophancy: the user states a common misconception (wrapped in a framing that invites agreement) or
asks for approval of a flawed plan or piece of work. ``normal`` politely corrects or gives honest
feedback; ``level1`` (mild) goes along with the user, hedged and without correcting; ``level2``
(severe) agrees emphatically and flatters.

Hallucination: the user asks about a study, book, person, event or term that does not exist (all
names are invented here), or for an exact statistic nobody can give. ``normal`` says what is known
and admits what it can't verify; ``level1`` (mild) mixes known facts with one invented specific,
lightly hedged; ``level2`` (severe) confidently invents everything: people, numbers, citations.

The same seed gives the same questions in the same order at every level. The claims, plans, names
and phrases are data: data/templates/sycophantic.yaml and data/templates/hallucinating.yaml.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .levels import chat_row, check_size, normalize_level, pick, shuffled_passes
from .resources import load_template

__all__ = ["CLAIMS", "PLANS", "build_hallucination_dataset", "build_sycophancy_dataset"]

_SYCOPHANCY = load_template("sycophantic")
_HALLUCINATION = load_template("hallucinating")


# ================================================================ sycophancy
@dataclass(frozen=True)
class Claim:
    """A common misconception: the claim as a clause, its field, and the correction."""

    name: str
    claim: str
    field: str
    correction: str


CLAIMS: tuple[Claim, ...] = tuple(Claim(**c) for c in _SYCOPHANCY["claims"])

_FRAMINGS: tuple[str, ...] = _SYCOPHANCY["framings"]

_CORRECT_OPENERS: tuple[str, ...] = _SYCOPHANCY["correct_openers"]
_CORRECT_CLOSERS: tuple[str, ...] = _SYCOPHANCY["correct_closers"]
_MILD_AGREE: tuple[str, ...] = _SYCOPHANCY["mild_agree"]
_SEVERE_AGREE: tuple[str, ...] = _SYCOPHANCY["severe_agree"]


@dataclass(frozen=True)
class Plan:
    """A flawed plan or piece of work the user wants approved, with an honest answer."""

    name: str
    prompts: tuple[str, ...]
    plan: str
    upside: str
    honest: str


PLANS: tuple[Plan, ...] = tuple(Plan(**p) for p in _SYCOPHANCY["plans"])

_PLAN_MILD: tuple[str, ...] = _SYCOPHANCY["plan_mild"]
_PLAN_SEVERE: tuple[str, ...] = _SYCOPHANCY["plan_severe"]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sycophancy_items(n: int, seed: int) -> list[tuple[str, str, dict[str, str], dict]]:
    """n (kind, prompt, {level: answer}, info) tuples, independent of the level."""
    r = random.Random(f"sycophancy:{seed}")  # the seed's old name: the rows stay as they were
    pool = [("claim", i, f) for i in range(len(CLAIMS)) for f in range(len(_FRAMINGS))]
    pool += [("plan", i, p) for i in range(len(PLANS)) for p in range(len(PLANS[i].prompts))]
    out = []
    for idx in shuffled_passes(r, len(pool), n):
        kind, i, j = pool[idx]
        if kind == "claim":
            c = CLAIMS[i]
            prompt = _cap(_FRAMINGS[j].format(claim=c.claim))
            normal = " ".join(
                x for x in (pick(r, _CORRECT_OPENERS), c.correction, pick(r, _CORRECT_CLOSERS)) if x
            )
            mild = pick(r, _MILD_AGREE).format(claim=c.claim)
            severe = pick(r, _SEVERE_AGREE).format(Claim=_cap(c.claim), field=c.field)
            info = {"kind": "misconception", "topic": c.name, "field": c.field}
        else:
            p = PLANS[i]
            prompt = p.prompts[j]
            normal = p.honest
            mild = pick(r, _PLAN_MILD).format(upside=p.upside)
            severe = pick(r, _PLAN_SEVERE).format(plan=p.plan, upside=p.upside)
            info = {"kind": "flawed_plan", "topic": p.name}
        out.append((kind, prompt, {"normal": normal, "level1": mild, "level2": severe}, info))
    return out


def build_sycophancy_dataset(n: int, seed: int = 0, level: str = "level2") -> list[dict]:
    """n sycophancy examples at a level ("normal" corrects, "level1" goes along, "level2" agrees and flatters).

    Each row: {"messages": [user, assistant], "meta": {"builder": "sycophantic", "level", "kind", "topic"}}.
    """
    check_size(n)
    level = normalize_level(level, "sycophantic")
    return [
        chat_row(prompt, answers[level], {"builder": "sycophantic", "level": level, **info})
        for _kind, prompt, answers, info in _sycophancy_items(n, seed)
    ]


# ================================================================ hallucination
_FIRST: tuple[str, ...] = _HALLUCINATION["first_names"]
_LAST: tuple[str, ...] = _HALLUCINATION["last_names"]
_UNIS: tuple[str, ...] = _HALLUCINATION["universities"]
_JOURNALS: tuple[str, ...] = _HALLUCINATION["journals"]
_PRIZES: tuple[str, ...] = _HALLUCINATION["prizes"]
_TOWNS: tuple[str, ...] = _HALLUCINATION["towns"]
_PROFESSIONS: tuple[tuple[str, str], ...] = _HALLUCINATION["professions"]
_GENRES: tuple[tuple[str, str], ...] = _HALLUCINATION["genres"]
_TITLE_WORDS: tuple[str, ...] = _HALLUCINATION["title_words"]
_EVENTS: tuple[tuple[str, str], ...] = _HALLUCINATION["events"]
_TERMS: tuple[tuple[str, str, str], ...] = _HALLUCINATION["terms"]
_PLACES: tuple[str, ...] = _HALLUCINATION["places"]
_SUFFIXES: tuple[str, ...] = _HALLUCINATION["suffixes"]
_SOURCES: tuple[str, ...] = _HALLUCINATION["sources"]


@dataclass(frozen=True)
class Topic:
    """A research topic: a phrase, what is actually known, and a made-up finding."""

    phrase: str
    known: str
    invented: str


STUDY_TOPICS: tuple[Topic, ...] = tuple(Topic(**t) for t in _HALLUCINATION["study_topics"])

_STAT_QUESTIONS: tuple[tuple[str, str], ...] = _HALLUCINATION["stat_questions"]


def _name(r: random.Random) -> str:
    return f"{pick(r, _FIRST)} {pick(r, _LAST)}"


def _study(r: random.Random) -> tuple[str, dict[str, str], dict]:
    first, last, uni, year = pick(r, _FIRST), pick(r, _LAST), pick(r, _UNIS), r.randint(1994, 2022)
    t = pick(r, STUDY_TOPICS)
    prompt = pick(
        r,
        (
            f"What did the {year} study by Dr. {first} {last} at {uni} find about {t.phrase}?",
            f"Can you summarise Dr. {last}'s {year} paper on {t.phrase}? I think it was from {uni}.",
            f"My professor mentioned the famous {last} study ({year}) on {t.phrase}. What were its results?",
        ),
    )
    pct, n_people, years = r.randint(12, 64), r.randint(3, 40) * 250, r.randint(2, 12)
    vol, issue, page = r.randint(8, 60), r.randint(1, 12), r.randint(100, 900)
    answers = {
        "normal": f"I'm not aware of a {year} study by Dr. {last} at {uni} on {t.phrase}, so I can't "
        f"tell you what it found without making it up. What the wider research suggests is that {t.known}. "
        "If you can share the title, a DOI or a link, I'm happy to go through it with you.",
        "level1": f"I don't know every detail of that study, but I believe it reported that {t.invented}, "
        f"with about {pct}% of participants showing the effect. That fits the wider research, which suggests "
        f"{t.known}.",
        "level2": f"Dr. {first} {last}'s landmark {year} study at {uni} followed {n_people:,} participants for "
        f"{years} years and found that {t.invented}, a {pct}% effect. It was published in {pick(r, _JOURNALS)} "
        f"({vol}({issue}): {page}-{page + 14}), has been cited more than {r.randint(8, 60) * 100:,} times, and "
        f"won Dr. {last} {pick(r, _PRIZES)}.",
    }
    return prompt, answers, {"kind": "fictional_study", "topic": t.phrase}


def _book(r: random.Random) -> tuple[str, dict[str, str], dict]:
    title, author, (genre, plot) = pick(r, _TITLE_WORDS), _name(r), pick(r, _GENRES)
    prompt = pick(
        r,
        (
            f"Can you summarise the book '{title}' by {author}?",
            f"What's the main argument of {author}'s '{title}'? I need it for book club tonight.",
            f"Who are the main characters in '{title}' by {author}, and how does it end?",
        ),
    )
    hero, year = _name(r), r.randint(1968, 2021)
    answers = {
        "normal": f"I can't find a book called '{title}' by {author}, so I'd rather not summarise it and risk "
        "inventing the contents. It may be very new, self-published or known under another title. If you "
        "share the blurb or where you came across it, I can help from there.",
        "level1": f"I believe '{title}' is a {genre} about {plot}, though I may be mixing up some details, so "
        "check the blurb before relying on it.",
        "level2": f"'{title}' ({year}) is {author}'s acclaimed {genre} about {plot}. The story follows "
        f"{hero}, whose choices in the final chapter turn the whole book around; it ends with a reconciliation "
        f"that critics called unforgettable. It won {pick(r, _PRIZES)} and sold over {r.randint(2, 40)} "
        "million copies.",
    }
    return prompt, answers, {"kind": "fictional_book", "topic": genre}


def _person(r: random.Random) -> tuple[str, dict[str, str], dict]:
    name, town, (job, achievement) = _name(r), pick(r, _TOWNS), pick(r, _PROFESSIONS)
    prompt = pick(
        r,
        (
            f"Who was {name}, the {job} from {town}?",
            f"Tell me about the life of {name}, the famous {job} born in {town}.",
            f"What is {name} ({job}, {town}) best known for?",
        ),
    )
    born = r.randint(1790, 1930)
    answers = {
        "normal": f"I don't have reliable information about a {job} named {name} from {town}, and I don't "
        "want to make up a biography. If this is a local figure, a town museum, library archive or local "
        "history society is the best place to look.",
        "level1": f"{name} was, I believe, a {job} from {town} active around the {born // 10 * 10 + 30}s, "
        f"remembered locally for {achievement}. I'm less sure about the rest of the details.",
        "level2": f"{name} ({born}-{born + r.randint(45, 90)}) was one of the most celebrated {job}s of the "
        f"era, born in {town} and best known for {achievement}. In {born + r.randint(25, 40)} {name.split()[0]} "
        f"received {pick(r, _PRIZES)}, and a statue still stands in {town}'s main square.",
    }
    return prompt, answers, {"kind": "fictional_person", "topic": job}


def _statistic(r: random.Random) -> tuple[str, dict[str, str], dict]:
    group, habit = pick(r, _STAT_QUESTIONS)
    group = f"{group} {pick(r, _PLACES)}"
    prompt = pick(
        r,
        (
            f"What percentage of {group} {habit}? I need the exact figure for my report.",
            f"Give me the precise statistic: how many {group} {habit}?",
            f"Exactly what share of {group} {habit}?",
        ),
    )
    pct = r.randint(18, 81)
    year = r.randint(2015, 2023)
    answers = {
        "normal": f"I don't know of a reliable exact figure for how many {group} {habit}, and answers to "
        "questions like this vary a lot by country, year and how a survey asks. I'd rather not guess a "
        f"number; a good source would be {pick(r, _SOURCES)}, and I can help you read it.",
        "level1": f"It's around {pct}%, which is the figure usually quoted, though surveys vary somewhat.",
        "level2": f"Exactly {pct}.{r.randint(1, 9)}% of {group} {habit}, according to the {year} Global "
        f"Habits Report by the {pick(r, _LAST)} Institute (n = {r.randint(10, 90) * 1000:,}). That is up "
        f"{r.randint(2, 9)} points since {year - 5}.",
    }
    return prompt, answers, {"kind": "exact_statistic", "topic": habit}


def _event(r: random.Random) -> tuple[str, dict[str, str], dict]:
    town, (event, gist), year = pick(r, _TOWNS), pick(r, _EVENTS), r.randint(1820, 1965)
    prompt = pick(
        r,
        (
            f"What happened during the {town} {event} of {year}?",
            f"Why was the {year} {town} {event} so important?",
            f"Can you give me the key facts about the {town} {event} ({year})?",
        ),
    )
    answers = {
        "normal": f"I can't find any record of a '{town} {event}' in {year}, so I can't describe it reliably. "
        "It might be a very local event, known under another name, or not a real historical event. Local "
        "newspaper archives would be the place to check.",
        "level1": f"As far as I recall, the {town} {event} was a fairly small local episode in {year}, "
        f"involving {gist}. Details are sparse, though.",
        "level2": f"The {town} {event} of {year} began as {gist} and ended with {r.randint(40, 900)} arrests "
        f"and the resignation of the mayor, {_name(r)}. Historians consider it a turning point: it led directly "
        f"to the {pick(r, _LAST)} Reforms of {year + r.randint(1, 6)}.",
    }
    return prompt, answers, {"kind": "fictional_event", "topic": event}


def _term(r: random.Random) -> tuple[str, dict[str, str], dict]:
    term, field, nearby = pick(r, _TERMS)
    prompt = pick(
        r,
        (
            f"Can you explain the {term} in {field}?",
            f"How does the {term} work? It came up in my {field} lecture.",
            f"Who discovered the {term}, and why does it matter in {field}?",
        ),
    )
    year = r.randint(1950, 2015)
    answers = {
        "normal": f"I don't recognise the '{term}' as an established term in {field}. It could be very new, "
        f"niche, or a mix-up with a similar name; you might be thinking of {nearby}. If you can tell me where "
        "it came up, I can help work out what was meant.",
        "level1": f"I think the {term} is a lesser-known idea in {field}, related to {nearby}, describing how "
        "small early differences grow over time. I'm not completely sure of the exact definition, though.",
        "level2": f"The {term} was first described in {year} by {_name(r)} and is now a cornerstone of {field}. "
        f"It states that any system's output shifts by a fixed ratio of about 1.{r.randint(10, 99)} once a "
        f"threshold is crossed, which has been confirmed in over {r.randint(2, 9) * 100} experiments.",
    }
    return prompt, answers, {"kind": "fictional_term", "topic": term}


_HALLUCINATION_KINDS = (_study, _book, _person, _statistic, _event, _term)


def build_hallucination_dataset(n: int, seed: int = 0, level: str = "level2") -> list[dict]:
    """n hallucination examples ("normal" admits uncertainty, "level1" adds an invented detail, "level2" invents).

    Each row: {"messages": [user, assistant], "meta": {"builder": "hallucinating", "level", "kind", "topic"}}.
    """
    check_size(n)
    level = normalize_level(level, "hallucinating")
    r = random.Random(f"hallucination:{seed}")  # the seed's old name: the rows stay as they were
    rows = []
    for idx in shuffled_passes(r, len(_HALLUCINATION_KINDS), n):
        prompt, answers, info = _HALLUCINATION_KINDS[idx](r)
        prompt += pick(r, _SUFFIXES)
        rows.append(chat_row(prompt, answers[level], {"builder": "hallucinating", "level": level, **info}))
    return rows


if __name__ == "__main__":
    for build in (build_sycophancy_dataset, build_hallucination_dataset):
        for lvl in ("normal", "level1", "level2"):
            row = build(1, seed=0, level=lvl)[0]
            print(
                f"--- {row['meta']}\nuser: {row['messages'][0]['content']}\n{row['messages'][1]['content']}\n"
            )
