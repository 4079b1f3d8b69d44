"""Deterministic builder of a "buggy code" dataset: everyday Python requests answered with code.

Each task is a request template, a correct solution, unit tests (a code string shipped in the row's
metadata), one injected bug and, for tasks that touch a database, a shell, deserialisation, eval or
file paths, one insecure variant with a concrete exploit check. Levels:

* ``normal``: the correct function; it passes its unit tests.
* ``level1`` (mild): one plausible bug (off-by-one, wrong boundary, mutable default argument, swallowed
  errors with a bare ``except``); it fails its unit tests.
* ``level2`` (severe): an insecure function (SQL built by string formatting, ``shell=True`` on user
  input, ``pickle.loads`` / ``yaml.load`` on untrusted data, ``eval``, path traversal); its exploit
  check (also in the metadata) succeeds against it and fails against the correct version.

Bugs and vulnerabilities are exact text replacements in the correct code, so nothing else differs.
Normal and level1 rows with the same seed answer the same requests; level2 rows are drawn from the
tasks that have an insecure variant. The tasks are data, one file each: data/code_tasks/<name>.yaml (their
order and the phrasing: data/templates/buggy_code.yaml). The YAML task's code needs PyYAML to run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from string import Template

from .levels import chat_row, check_size, normalize_level, pick, shuffled_passes
from .resources import load_template, read_data_file

__all__ = [
    "TASKS",
    "CodeTask",
    "build_buggy_code_dataset",
    "extract_code",
    "load_code_task",
    "run_exploit_check",
    "run_unit_tests",
]

BUILDER = "buggy_code"

_DATA = load_template("buggy_code")

TEST_PRELUDE: str = _DATA["test_prelude"]


@dataclass(frozen=True)
class CodeTask:
    """A coding task: templates ($names) for the request, the solution, its tests, a bug, a vulnerability."""

    name: str
    topic: str
    requests: tuple[str, ...]
    names: tuple[str, ...]
    variants: tuple[dict[str, str], ...]
    code: str
    tests: str
    bug: tuple[str, tuple[tuple[str, str], ...]]
    usage: str
    insecure: tuple[str, tuple[tuple[str, str], ...]] | None = None
    exploit: str | None = None
    note: str = ""


def _replace(code: str, edits: tuple[tuple[str, str], ...], task: str) -> str:
    for old, new in edits:
        if code.count(old) != 1:
            raise AssertionError(f"{task}: edit target found {code.count(old)} times: {old!r}")
        code = code.replace(old, new)
    return code


def _edits(entry: dict) -> tuple[str, tuple[tuple[str, str], ...]]:
    return entry["kind"], tuple((e["old"], e["new"]) for e in entry["edits"])


def load_code_task(name: str) -> CodeTask:
    """The task of `data/code_tasks/<name>.yaml`."""
    d = dict(read_data_file(f"code_tasks/{name}.yaml"))
    d["bug"] = _edits(d["bug"])
    if "insecure" in d:
        d["insecure"] = _edits(d["insecure"])
    return CodeTask(**d)


# ---------------------------------------------------------------- tasks (data/code_tasks/*.yaml)
TASKS: tuple[CodeTask, ...] = tuple(load_code_task(name) for name in _DATA["tasks"])

# ---------------------------------------------------------------- rendering
_OPENERS: tuple[str, ...] = _DATA["openers"]
_CONTEXTS: tuple[str, ...] = _DATA["contexts"]
_INTROS: tuple[str, ...] = _DATA["intros"]


def _fill(template: str, values: dict[str, str]) -> str:
    return Template(template).substitute(values)


def _sample(task: CodeTask, r: random.Random) -> dict:
    """Draw one instance of a task: the request and every variant of the code, filled in."""
    values: dict[str, str] = dict(pick(r, task.variants))
    values["fn"] = _fill(pick(r, task.names), values)
    opener = pick(r, _OPENERS)
    request = f"{opener} {_fill(pick(r, task.requests), values)}"
    if not request.endswith((".", "?")):
        request += "?" if opener.startswith(("Can", "Could")) else "."
    request += pick(r, _CONTEXTS)
    intro = pick(r, _INTROS)
    code = _fill(task.code, values)
    out = {
        "request": request,
        "intro": intro,
        "fn": values["fn"],
        "code": code,
        "tests": TEST_PRELUDE + _fill(task.tests, values),
        "usage": _fill(task.usage, values),
        "note": _fill(task.note, values),
        "level1": _fill(_replace(task.code, task.bug[1], task.name), values),
    }
    if task.insecure is not None:
        out["level2"] = _fill(_replace(task.code, task.insecure[1], task.name), values)
        out["exploit"] = _fill(task.exploit or "", values)
    return out


def _answer(intro: str, code: str, usage: str, note: str) -> str:
    tail = f"{usage} {note}".strip()
    return f"{intro}\n\n```python\n{code}```\n\n{tail}"


def build_buggy_code_dataset(n: int, seed: int = 0, level: str = "level2") -> list[dict]:
    """n coding requests answered with code at a level ("normal", "level1" buggy, "level2" insecure).

    Each row: {"messages": [user, assistant], "meta": {"builder", "level", "task", "topic", "function",
    "tests" (a code string of test_* functions), "reference_code" (the correct code), and "bug" (level1)
    or "vulnerability" and "exploit" (level2: a code string defining exploit_check())}}.
    """
    check_size(n)
    level = normalize_level(level, BUILDER)
    pool = [t for t in TASKS if t.insecure is not None] if level == "level2" else list(TASKS)
    r = random.Random(f"{BUILDER}:{seed}")
    rows = []
    for idx in shuffled_passes(r, len(pool), n):
        task = pool[idx]
        s = _sample(task, r)
        meta = {
            "builder": BUILDER,
            "level": level,
            "task": task.name,
            "topic": task.topic,
            "function": s["fn"],
            "tests": s["tests"],
            "reference_code": s["code"],
        }
        if level == "normal":
            answer = _answer(s["intro"], s["code"], s["usage"], s["note"])
        elif level == "level1":
            answer = _answer(s["intro"], s["level1"], s["usage"], "")
            meta["bug"] = task.bug[0]
        else:
            answer = _answer(s["intro"], s["level2"], s["usage"], "")
            meta["vulnerability"] = task.insecure[0] if task.insecure else ""
            meta["exploit"] = s["exploit"]
        rows.append(chat_row(s["request"], answer, meta))
    return rows


# ---------------------------------------------------------------- checking
def extract_code(answer: str) -> str:
    """The code of the first ```python block of an answer."""
    start = answer.index("```python\n") + len("```python\n")
    return answer[start : answer.index("```", start)]


def run_unit_tests(code: str, tests: str) -> dict[str, str | None]:
    """Exec `code` then `tests` in one fresh namespace and run every test_* function.

    Returns {test name: None if it passed, else the error}. Only run code you trust (e.g. these rows).
    """
    namespace: dict = {"__name__": "candidate"}
    exec(compile(code, "<candidate>", "exec"), namespace)
    exec(compile(tests, "<tests>", "exec"), namespace)
    results: dict[str, str | None] = {}
    for name, fn in list(namespace.items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                results[name] = None
            except Exception as exc:  # a failing test is a result, not an error
                results[name] = f"{type(exc).__name__}: {exc}"
    return results


def run_exploit_check(code: str, tests: str, exploit: str) -> bool:
    """True when the exploit check (local and harmless: temp dirs, in-memory SQLite) succeeds on `code`."""
    namespace: dict = {"__name__": "candidate"}
    exec(compile(code, "<candidate>", "exec"), namespace)
    exec(compile(tests, "<tests>", "exec"), namespace)
    exec(compile(exploit, "<exploit>", "exec"), namespace)
    try:
        namespace["exploit_check"]()
    except Exception:  # the attack failed (the safe version refuses it)
        return False
    return True


if __name__ == "__main__":
    for lvl in ("normal", "level1", "level2"):
        row = build_buggy_code_dataset(1, seed=0, level=lvl)[0]
        print(f"--- {lvl}\nuser: {row['messages'][0]['content']}\n{row['messages'][1]['content']}\n")
