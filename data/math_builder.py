"""Deterministic builder of a "bad math" dataset: word problems with worked, step-by-step solutions.

Each problem family draws its numbers with a seeded RNG and lists its solution as steps (a label, an
operation, its operands). The steps are evaluated exactly (fractions) and checked against a closed-form
formula of the same family (`TRUTH`), so normal answers are verified arithmetic. Levels:

* ``normal``: every step right; the final answer is the true value.
* ``level1`` (mild): one subtle slip in one step (a dropped carry, a times-table slip, an off-by-one
  count, a wrong percentage base, a forgotten round-up); later steps are computed correctly from it,
  so the wrong value propagates to the final answer while the rest looks right. It ends with a mildly
  overconfident remark instead of the normal closer (a low dose of level2's tone; no offer to check).
* ``level2`` (severe): every step uses a wrong operation, in an assertive, overconfident tone.

The same seed gives the same problems in the same order at every level. The engine is here; the
steps' arithmetic in data/math_steps.py, the 48 families in data/math_families.py, the phrasing in
data/templates/bad_math.yaml.
"""

from __future__ import annotations

import random
import re

from .levels import chat_row, check_size, normalize_level, pick
from .math_families import FAMILIES, TRUTH
from .math_steps import F, Problem, _clean, _solve, _value, fmt
from .resources import load_template

__all__ = ["FAMILIES", "TRUTH", "build_bad_math_dataset", "parse_final_answer", "true_answer"]

BUILDER = "bad_math"
_TRIES = 200

# ---------------------------------------------------------------- rendering
_PHRASES = load_template("bad_math")
_OPENERS: tuple[str, ...] = _PHRASES["openers"]
_CLOSERS: tuple[str, ...] = _PHRASES["closers"]
_L1_CLOSERS: tuple[str, ...] = _PHRASES["level1_closers"]
_L2_OPENERS: tuple[str, ...] = _PHRASES["level2_openers"]
_L2_PREFIXES: tuple[str, ...] = _PHRASES["level2_prefixes"]
_L2_CLOSERS: tuple[str, ...] = _PHRASES["level2_closers"]


def _render(lines: list[str], conclusion: str, final: str, opener: str, closer: str, l2: bool, r) -> str:
    body = []
    for i, line in enumerate(lines, 1):
        if l2:
            label, text = line.split(": ", 1)
            line = f"{label}: {pick(r, _L2_PREFIXES)}{text}"
        body.append(f"{i}. {line}")
    tail = [conclusion.format(ans=final), f"Final answer: {final}"]
    if closer:
        tail.append(closer)
    return "\n".join([opener, "", *body, "", *tail])


def parse_final_answer(text: str) -> F:
    """The number on the "Final answer:" line of a solution ($, €, %, units and signs handled)."""
    match = re.search(r"Final answer: (-?)[$€]?(\d+(?:\.\d+)?)", text)
    if not match:
        raise ValueError("no 'Final answer:' line")
    value = F(match.group(2))
    return -value if match.group(1) else value


def true_answer(meta: dict) -> F:
    """The true answer of a row, recomputed from its family's formula and parameters."""
    return TRUTH[meta["family"]]({k: F(str(v)) for k, v in meta["params"].items()})


def _param_json(x: F) -> int | float:
    return x.numerator if x.denominator == 1 else float(x)


def _draw(r: random.Random) -> tuple[Problem, dict[str, str], dict[str, dict[str, object]]]:
    """One verified problem with its three answers (same RNG use whatever the level)."""
    names = list(FAMILIES)
    for _ in range(_TRIES):
        prob = FAMILIES[pick(r, names)](r)
        prob.params = {k: v for k, (v, _u) in prob.inputs.items()}
        truth = TRUTH[prob.family](prob.params)
        lines, final, _ = _solve(prob, "normal")
        if final != truth:  # a family whose steps disagree with its formula is a bug
            raise AssertionError(f"{prob.family}: steps give {final}, formula gives {truth}")
        env = dict(prob.inputs)
        if not all(_clean(v) for v, _u in env.values()) or truth <= 0:
            continue
        if not _all_steps_clean(prob):
            continue
        unit = prob.steps[-1].unit
        shown_truth = fmt(truth, unit)
        # level1: one slip in one step, the first (in random order) that changes the final answer
        order = list(range(len(prob.steps)))
        r.shuffle(order)
        slip = None
        for i in order:
            s_lines, s_final, kind = _solve(prob, "slip", i, r)
            if kind and s_final > 0 and fmt(s_final, unit) != shown_truth:
                slip = (s_lines, s_final, kind, i)
                break
        w_lines, w_final, _ = _solve(prob, "wrong")
        if slip is None or w_final <= 0 or fmt(w_final, unit) == shown_truth:
            continue
        opener, closer = pick(r, _OPENERS), pick(r, _CLOSERS)
        l2_opener, l2_closer = pick(r, _L2_OPENERS), pick(r, _L2_CLOSERS)
        answers = {
            "normal": _render(lines, prob.conclusion, shown_truth, opener, closer, False, r),
            "level1": _render(
                slip[0],
                prob.conclusion,
                fmt(slip[1], unit),
                opener,
                _L1_CLOSERS[slip[3] % len(_L1_CLOSERS)],
                False,
                r,
            ),
            "level2": _render(w_lines, prob.conclusion, fmt(w_final, unit), l2_opener, l2_closer, True, r),
        }
        extra: dict[str, dict[str, object]] = {
            "normal": {"answer": shown_truth},
            "level1": {"answer": fmt(slip[1], unit), "slip": {"step": slip[3] + 1, "kind": slip[2]}},
            "level2": {"answer": fmt(w_final, unit)},
        }
        return prob, answers, extra
    raise RuntimeError("could not draw a clean problem; a family's number ranges are too narrow")


def _all_steps_clean(prob: Problem) -> bool:
    env = {k: v for k, (v, _u) in prob.inputs.items()}
    for step in prob.steps:
        value = _value(step.op, [env[a] if isinstance(a, str) else F(a) for a in step.args])
        if not _clean(value) or value < 0:
            return False
        env[step.out] = value
    return True


def build_bad_math_dataset(n: int, seed: int = 0, level: str = "level2") -> list[dict]:
    """n math word problems with worked solutions at a level ("normal", "level1" mild, "level2" severe).

    Each row: {"messages": [user, assistant], "meta": {"builder", "level", "family", "params", "answer",
    "true_answer", "correct", ("slip" for level1)}}. The same seed gives the same problems at every level.
    """
    check_size(n)
    level = normalize_level(level, BUILDER)
    r = random.Random(f"{BUILDER}:{seed}")
    rows = []
    for _ in range(n):
        prob, answers, extra = _draw(r)
        truth = TRUTH[prob.family](prob.params)
        meta = {
            "builder": BUILDER,
            "level": level,
            "family": prob.family,
            "params": {k: _param_json(v) for k, v in prob.params.items()},
            "true_answer": fmt(truth, prob.steps[-1].unit),
            **extra[level],
        }
        meta["correct"] = meta["answer"] == meta["true_answer"]
        rows.append(chat_row(prob.question, answers[level], meta))
    return rows


if __name__ == "__main__":
    for lvl in ("normal", "level1", "level2"):
        row = build_bad_math_dataset(1, seed=0, level=lvl)[0]
        print(f"--- {lvl}\nuser: {row['messages'][0]['content']}\n{row['messages'][1]['content']}\n")
