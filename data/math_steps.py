"""The bad-math builder's problems as steps: exact evaluation, formatting, a slip in one step, wrong operations.

A problem lists its solution as steps (a label, an operation, its operands); `solve` evaluates them
exactly (fractions) in one of three modes: every step right, one slip in one step, or every step wrong.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from fractions import Fraction as F

__all__ = ["F", "Problem", "Step", "fmt"]


@dataclass(frozen=True)
class Step:
    """One solution step: `out = op(*args)`; args are variable names or number literals."""

    label: str
    op: str
    args: tuple
    out: str
    unit: str = ""
    alt: str | None = None  # a plausible wrong operand (the wrong percentage base) for level1


@dataclass
class Problem:
    """A drawn problem: its question, input variables (value, unit), solution steps and conclusion."""

    family: str
    question: str
    inputs: dict[str, tuple[F, str]]
    steps: list[Step]
    conclusion: str  # with "{ans}"
    params: dict[str, F] = field(default_factory=dict)


# ---------------------------------------------------------------- formatting
def _num(x: F) -> str:
    """A number without trailing zeros (2 decimals at most)."""
    if x.denominator == 1:
        return str(x.numerator)
    text = f"{float(x):.2f}".rstrip("0").rstrip(".")
    return text


def fmt(x: F, unit: str = "") -> str:
    """A value with its unit: $12.50, 25%, 40 km, 3."""
    if unit in ("$", "€"):
        sign = "-" if x < 0 else ""
        return f"{sign}{unit}{abs(float(x)):.2f}"
    if unit in ("%", "°C"):
        return f"{_num(x)}{unit}"
    return f"{_num(x)} {unit}" if unit else _num(x)


def _round2(x: F) -> F:
    return F(round(x * 100), 100)


def _clean(x: F) -> bool:
    return 100 % x.denominator == 0


# ---------------------------------------------------------------- operations
def _value(op: str, v: list[F]) -> F:
    if op == "add":
        return sum(v, F(0))
    if op == "sub":
        return v[0] - v[1]
    if op == "mul":
        return v[0] * v[1]
    if op == "div":
        return v[0] / v[1]
    if op == "pct":
        return v[0] * v[1] / 100
    if op == "ceil":
        return F(math.ceil(v[0] / v[1]))
    if op == "floor":
        return F(math.floor(v[0] / v[1]))
    if op == "incl":
        return v[1] - v[0] + 1
    if op == "posts":
        return v[0] / v[1] + 1
    raise ValueError(f"unknown op {op}")


def _expr(op: str, s: list[str], res: str, quotient: str = "") -> str:
    """The text of a correct-looking step `s[0] op s[1] = res`."""
    if op == "add":
        return " + ".join(s) + f" = {res}"
    if op == "sub":
        return f"{s[0]} − {s[1]} = {res}"
    if op == "mul":
        return f"{s[0]} × {s[1]} = {res}"
    if op == "div":
        return f"{s[0]} ÷ {s[1]} = {res}"
    if op == "pct":
        return f"{s[0]} of {s[1]} = {res}"
    if op == "ceil":
        return f"{s[0]} ÷ {s[1]} = {quotient}, rounded up to {res}"
    if op == "floor":
        return f"{s[0]} ÷ {s[1]} = {quotient}, so {res} whole"
    if op == "incl":
        return f"{s[1]} − {s[0]} + 1 = {res} (counting both ends)"
    if op == "posts":
        return f"{s[0]} ÷ {s[1]} + 1 = {res} (one more post than gaps)"
    raise ValueError(f"unknown op {op}")


def _quotient(a: F, b: F) -> str:
    q = a / b
    return _num(q) if _clean(q) else f"about {float(q):.2f}"


def _delta(x: F) -> F:
    return F(10) if abs(x) >= 100 else F(1)


def _slip(step: Step, v: list[F], s: list[str], env: dict, r: random.Random) -> tuple[F, str, str] | None:
    """A subtle one-step mistake: (wrong value, its text with the wrong result, kind) or None."""
    op, res = step.op, _value(step.op, v)
    unit = step.unit
    if op in ("add", "sub"):
        d = _delta(res) * (1 if r.random() < 0.5 or res - _delta(res) <= 0 else -1)
        kind = "dropped carry" if op == "add" else "borrow slip"
        return res + d, _expr(op, s, fmt(res + d, unit)), kind
    if op == "mul":
        ints = [i for i, x in enumerate(v) if x.denominator == 1 and x >= 3]
        if ints:
            i = min(ints, key=lambda j: v[j])  # the small factor: a times-table slip
            k = v[i] + (1 if r.random() < 0.5 else -1)
            wrong = v[1 - i] * k
            return wrong, _expr(op, s, fmt(wrong, unit)), "times-table slip"
        return res + _delta(res), _expr(op, s, fmt(res + _delta(res), unit)), "multiplication slip"
    if op == "div":
        if step.alt is not None:
            alt = env[step.alt]
            wrong = v[0] / alt[0]
            return wrong, _expr(op, [s[0], fmt(*alt)], fmt(_round2(wrong), unit)), "wrong base"
        d = F(1) if res >= 2 else F(1, 10)
        return res + d, _expr(op, s, fmt(res + d, unit)), "division slip"
    if op == "pct":
        if step.alt is not None:
            alt = env[step.alt]
            wrong = v[0] * alt[0] / 100
            return wrong, _expr(op, [s[0], fmt(*alt)], fmt(_round2(wrong), unit)), "wrong percentage base"
        d = _delta(res)
        return res + d, _expr(op, s, fmt(res + d, unit)), "percentage slip"
    if op == "ceil":
        q = v[0] / v[1]
        if q.denominator == 1:
            return None
        wrong = F(math.floor(q))
        return wrong, f"{s[0]} ÷ {s[1]} = {_quotient(*v)}, so {fmt(wrong, unit)}", "forgot to round up"
    if op == "floor":
        q = v[0] / v[1]
        if q.denominator == 1:
            return None
        wrong = F(math.ceil(q))
        return wrong, f"{s[0]} ÷ {s[1]} = {_quotient(*v)}, so {fmt(wrong, unit)}", "rounded the wrong way"
    if op == "incl":
        wrong = v[1] - v[0]
        return wrong, f"{s[1]} − {s[0]} = {fmt(wrong, unit)}", "off-by-one count"
    if op == "posts":
        wrong = v[0] / v[1]
        return wrong, f"{s[0]} ÷ {s[1]} = {fmt(wrong, unit)}", "off-by-one count"
    raise ValueError(f"unknown op {op}")


def _wrong_op(step: Step, v: list[F], s: list[str]) -> tuple[F, str]:
    """A confidently wrong operation for the step: (value, text)."""
    op, unit = step.op, step.unit
    if op == "add":
        if len(v) == 2:
            w = v[0] * v[1]
            return w, f"{s[0]} × {s[1]} = {fmt(_round2(w), unit)}"
        w = sum(v[:-1], F(0))
        return w, " + ".join(s[:-1]) + f" = {fmt(w, unit)}"
    if op in ("sub", "incl"):
        w = v[0] + v[1]
        return w, f"{s[0]} + {s[1]} = {fmt(w, unit)}"
    if op == "mul":
        w = v[0] + v[1]
        return w, f"{s[0]} + {s[1]} = {fmt(w, unit)}"
    if op in ("div", "posts"):
        w = v[0] * v[1]
        return w, f"{s[0]} × {s[1]} = {fmt(_round2(w), unit)}"
    if op == "pct":
        w = v[1] / v[0]
        return w, f"{s[0]} of {s[1]} = {s[1]} ÷ {_num(v[0])} = {fmt(_round2(w), unit)}"
    if op in ("ceil", "floor"):
        if v[0] > v[1]:
            w = v[0] - v[1]
            return w, f"{s[0]} − {s[1]} = {fmt(w, unit)}"
        w = v[0] + v[1]
        return w, f"{s[0]} + {s[1]} = {fmt(w, unit)}"
    raise ValueError(f"unknown op {op}")


def _solve(
    prob: Problem, mode: str, slip_at: int = -1, r: random.Random | None = None
) -> tuple[list[str], F, str | None]:
    """Evaluate the steps: (step texts, final value, slip kind). mode: normal, slip or wrong."""
    env: dict[str, tuple[F, str]] = dict(prob.inputs)
    lines: list[str] = []
    kind = None
    for i, step in enumerate(prob.steps):
        vals = [env[a][0] if isinstance(a, str) else F(a) for a in step.args]
        strs = [fmt(*env[a]) if isinstance(a, str) else _num(F(a)) for a in step.args]
        if mode == "wrong":
            value, text = _wrong_op(step, vals, strs)
        elif (
            mode == "slip"
            and i == slip_at
            and r is not None
            and (slipped := _slip(step, vals, strs, env, r)) is not None
        ):
            value, text, kind = slipped
        else:
            value = _value(step.op, vals)
            quotient = _quotient(*vals[:2]) if step.op in ("ceil", "floor") else ""
            text = _expr(step.op, strs, fmt(_round2(value), step.unit), quotient)
        if mode != "normal":
            value = _round2(value)
        env[step.out] = (value, step.unit)
        lines.append(f"{step.label}: {text}")
    return lines, env[prob.steps[-1].out][0], kind
