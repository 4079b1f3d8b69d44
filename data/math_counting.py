"""Bad-math families: ages, measures, shapes, scores, sharing and plain arithmetic (see math_families)."""

from __future__ import annotations

import random

from .levels import pick
from .math_steps import F, Problem, Step, _num
from .math_words import NAMES, dollars, money


def ages_sum(r: random.Random) -> Problem:
    a1, a2, a3 = r.sample(NAMES, 3)
    a, k = F(r.randint(5, 30)), F(r.randint(2, 15))
    if (a + k) % 2:
        k += 1
    q = (
        f"{a1} is {_num(a)} years old. {a2} is {_num(k)} years older than {a1}, and {a3} is half as old as "
        f"{a2}. " + pick(r, ("What is the sum of their ages?", "How old are the three together?"))
    )
    ins = {"a": (a, "years"), "k": (k, "years")}
    steps = [
        Step(f"{a2}'s age", "add", ("a", "k"), "b", "years"),
        Step(f"{a3}'s age", "div", ("b", 2), "c", "years"),
        Step("Sum", "add", ("a", "b", "c"), "total", "years"),
    ]
    return Problem("ages_sum", q, ins, steps, "Together they are {ans} old.")


def ages_future(r: random.Random) -> Problem:
    a1, a2 = r.sample(NAMES, 2)
    a, b, y = F(r.randint(8, 60)), F(r.randint(8, 60)), F(r.randint(3, 15))
    q = f"{a1} is {_num(a)} and {a2} is {_num(b)}. What will the sum of their ages be in {_num(y)} years?"
    ins = {"a": (a, "years"), "b": (b, "years"), "y": (y, "years")}
    steps = [
        Step(f"{a1} then", "add", ("a", "y"), "a2", "years"),
        Step(f"{a2} then", "add", ("b", "y"), "b2", "years"),
        Step("Sum", "add", ("a2", "b2"), "s", "years"),
    ]
    return Problem("ages_future", q, ins, steps, "The sum will be {ans}.")


def age_at_birth(r: random.Random) -> Problem:
    parent, child = r.sample(NAMES, 2)
    c, m = F(r.randint(4, 12)), F(r.randint(3, 5))
    q = pick(
        r,
        (
            f"{parent} is {_num(m)} times as old as {child}, who is {_num(c)}. How old was {parent} when "
            f"{child} was born?",
            f"{child} is {_num(c)} years old and {parent} is {_num(m)} times that age. How old was {parent} "
            f"at {child}'s birth?",
        ),
    )
    ins = {"c": (c, "years"), "m": (m, "")}
    steps = [
        Step(f"{parent}'s age now", "mul", ("m", "c"), "p", "years"),
        Step(f"Age at {child}'s birth", "sub", ("p", "c"), "ans", "years"),
    ]
    return Problem("age_at_birth", q, ins, steps, f"{parent} was {{ans}} old.")


def birth_years(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    y1 = F(r.randint(1950, 1995))
    y2 = y1 + r.randint(18, 40)
    k = F(r.randint(2, 25))
    q = (
        f"{name} was born in {_num(y1)}. {name}'s daughter was born in {_num(y2)}. How old was {name} "
        f"when the daughter turned {_num(k)}?"
    )
    ins = {"y1": (y1, ""), "y2": (y2, ""), "k": (k, "years")}
    steps = [
        Step(f"{name}'s age at the birth", "sub", ("y2", "y1"), "gap", "years"),
        Step(f"Add {_num(k)} years", "add", ("gap", "k"), "ans", "years"),
    ]
    return Problem("birth_years", q, ins, steps, f"{name} was {{ans}} old.")


def board_pieces(r: random.Random) -> Problem:
    length, piece = F(r.randint(4, 16), 2), F(pick(r, (15, 20, 25, 30, 35, 40, 45)))
    q = pick(
        r,
        (
            f"A {_num(length)} m board is cut into pieces {_num(piece)} cm long. How many whole pieces "
            "can be cut?",
            f"How many {_num(piece)} cm shelves can you cut from a plank {_num(length)} metres long?",
        ),
    )
    ins = {"length": (length, "m"), "piece": (piece, "cm")}
    steps = [
        Step("Length in cm", "mul", ("length", 100), "cm", "cm"),
        Step("Whole pieces", "floor", ("cm", "piece"), "n", "pieces"),
    ]
    return Problem("board_pieces", q, ins, steps, "You get {ans}.")


def recipe_scaling(r: random.Random) -> Problem:
    s = r.randint(2, 6)
    t = r.randint(2, 12)
    while t == s:
        t = r.randint(2, 12)
    dish, ingredient, lo, hi = pick(
        r,
        (
            ("pancakes", "flour", 30, 60), ("a sponge cake", "sugar", 20, 40), ("risotto", "rice", 60, 90),
            ("cookies", "butter", 15, 30), ("a crumble", "oats", 20, 40), ("porridge", "oats", 40, 60),
        ),
    )  # fmt: skip
    g = F(r.randint(lo, hi) * s)
    q = f"A recipe for {dish} uses {_num(g)} g of {ingredient} for {s} servings. How much is needed for {t}?"
    ins = {"g": (g, "g"), "s": (F(s), "servings"), "t": (F(t), "servings")}
    steps = [
        Step("Per serving", "div", ("g", "s"), "per", "g"),
        Step(f"For {t} servings", "mul", ("per", "t"), "ans", "g"),
    ]
    return Problem("recipe_scaling", q, ins, steps, f"You need {{ans}} of {ingredient}.")


def bottles(r: random.Random) -> Problem:
    n, v = F(r.randint(3, 24)), F(pick(r, (250, 330, 500, 750, 1500)))
    q = pick(
        r,
        (
            f"A crate holds {_num(n)} bottles of {_num(v)} ml each. How many litres is that?",
            f"How many litres of juice are in {_num(n)} bottles of {_num(v)} ml?",
        ),
    )
    ins = {"n": (n, ""), "v": (v, "ml")}
    steps = [
        Step("Total in ml", "mul", ("n", "v"), "ml", "ml"),
        Step("In litres", "div", ("ml", 1000), "L", "L"),
    ]
    return Problem("bottles", q, ins, steps, "That is {ans}.")


def buses(r: random.Random) -> Problem:
    n, t, c = F(r.randint(110, 300)), F(r.randint(2, 12)), F(pick(r, (30, 40, 45, 50, 52)))
    q = pick(
        r,
        (
            f"{_num(n)} students and {_num(t)} teachers go on a trip. Each bus seats {_num(c)}. "
            "How many buses are needed?",
            f"A school trip has {_num(n)} pupils plus {_num(t)} adults, and a coach holds {_num(c)}. "
            "How many coaches must be booked?",
        ),
    )
    ins = {"n": (n, "people"), "t": (t, "people"), "c": (c, "seats")}
    steps = [
        Step("People", "add", ("n", "t"), "p", "people"),
        Step("Buses", "ceil", ("p", "c"), "b", "buses"),
    ]
    return Problem("buses", q, ins, steps, "They need {ans}.")


def fence_posts(r: random.Random) -> Problem:
    gap = F(pick(r, (2, 3, 4, 5)))
    length, price = gap * r.randint(5, 30), money(r, 6, 25, 50)
    q = (
        f"A straight fence {_num(length)} m long needs a post every {_num(gap)} m, including both ends. "
        f"Posts cost {dollars(price)} each. What do the posts cost?"
    )
    ins = {"length": (length, "m"), "gap": (gap, "m"), "price": (price, "$")}
    steps = [
        Step("Posts", "posts", ("length", "gap"), "n", "posts"),
        Step("Cost", "mul", ("n", "price"), "cost", "$"),
    ]
    return Problem("fence_posts", q, ins, steps, "The posts cost {ans}.")


def paint(r: random.Random) -> Problem:
    w, h = F(r.randint(6, 20), 2), F(pick(r, (F(5, 2), F(3), F(11, 4))))
    k = F(pick(r, (5, 8, 10, 12)))
    q = (
        f"A wall is {_num(w)} m wide and {_num(h)} m high. It needs two coats, and a litre of paint covers "
        f"{_num(k)} m². How many litres are needed?"
    )
    ins = {"w": (w, "m"), "h": (h, "m"), "k": (k, "m²")}
    steps = [
        Step("Area", "mul", ("w", "h"), "area", "m²"),
        Step("Two coats", "mul", ("area", 2), "a2", "m²"),
        Step("Litres", "div", ("a2", "k"), "L", "L"),
    ]
    return Problem("paint", q, ins, steps, "You need {ans} of paint.")


def garden_fence(r: random.Random) -> Problem:
    length, width, c = F(r.randint(4, 30)), F(r.randint(3, 20)), money(r, 4, 20, 50)
    q = pick(
        r,
        (
            f"A rectangular garden is {_num(length)} m by {_num(width)} m. Fencing costs {dollars(c)} per metre. "
            "How much does it cost to fence all the way round?",
            f"What does it cost to fence a {_num(length)} m × {_num(width)} m yard at {dollars(c)} a metre?",
        ),
    )
    ins = {"l": (length, "m"), "w": (width, "m"), "c": (c, "$")}
    steps = [
        Step("Length plus width", "add", ("l", "w"), "half", "m"),
        Step("Perimeter", "mul", ("half", 2), "perim", "m"),
        Step("Cost", "mul", ("perim", "c"), "cost", "$"),
    ]
    return Problem("garden_fence", q, ins, steps, "The fence costs {ans}.")


def mean_score(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    scores = [F(r.randint(50, 100)) for _ in range(4)]
    q = (
        f"{name} scored {', '.join(_num(s) for s in scores[:3])} and {_num(scores[3])} on four tests. "
        + pick(r, ("What is the average score?", "What is the mean?"))
    )
    ins = {f"s{i}": (s, "") for i, s in enumerate(scores)}
    steps = [
        Step("Sum", "add", ("s0", "s1", "s2", "s3"), "sum"),
        Step("Average", "div", ("sum", 4), "mean"),
    ]
    return Problem("mean_score", q, ins, steps, "The average is {ans}.")


def missing_score(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    target = F(r.randint(70, 90))
    known = [F(r.randint(60, 100)) for _ in range(3)]
    q = (
        f"{name} has test scores of {', '.join(_num(s) for s in known)}. What must {name} score on the fourth "
        f"test to average exactly {_num(target)}?"
    )
    ins = {"target": (target, ""), **{f"k{i}": (s, "") for i, s in enumerate(known)}}
    steps = [
        Step("Total needed", "mul", ("target", 4), "need"),
        Step("Total so far", "add", ("k0", "k1", "k2"), "have"),
        Step("Fourth score", "sub", ("need", "have"), "ans"),
    ]
    return Problem("missing_score", q, ins, steps, "The fourth score must be {ans}.")


def pizza(r: random.Random) -> Problem:
    k, s = F(r.randint(2, 8)), F(pick(r, (6, 8, 10, 12)))
    p = F(r.randint(2, 10))
    e = F(r.randint(2, max(2, int(k * s / p) - 1)))
    q = (
        f"There are {_num(k)} pizzas cut into {_num(s)} slices each. {_num(p)} people each eat {_num(e)} "
        "slices. How many slices are left?"
    )
    ins = {"k": (k, ""), "s": (s, "slices"), "p": (p, "people"), "e": (e, "slices")}
    steps = [
        Step("Slices", "mul", ("k", "s"), "tot", "slices"),
        Step("Eaten", "mul", ("p", "e"), "eaten", "slices"),
        Step("Left", "sub", ("tot", "eaten"), "left", "slices"),
    ]
    return Problem("pizza", q, ins, steps, "There are {ans} left.")


def cookies(r: random.Random) -> Problem:
    m, need, e = F(pick(r, (12, 18, 20, 24))), F(r.randint(30, 150)), F(r.randint(1, 3))
    q = (
        f"One batch of cookies makes {_num(m)} and uses {_num(e)} eggs. How many eggs are needed to bake at "
        f"least {_num(need)} cookies, in whole batches?"
    )
    ins = {"m": (m, "cookies"), "need": (need, "cookies"), "e": (e, "eggs")}
    steps = [
        Step("Batches", "ceil", ("need", "m"), "b", "batches"),
        Step("Eggs", "mul", ("b", "e"), "eggs", "eggs"),
    ]
    return Problem("cookies", q, ins, steps, "You need {ans}.")


def add_three(r: random.Random) -> Problem:
    a, b, c = F(r.randint(100, 999)), F(r.randint(100, 999)), F(r.randint(100, 999))
    q = pick(r, (f"What is {a} + {b} + {c}?", f"Add {a}, {b} and {c}.", f"Compute {a} + {b} + {c}."))
    ins = {"a": (a, ""), "b": (b, ""), "c": (c, "")}
    steps = [Step("First two", "add", ("a", "b"), "t"), Step("Add the third", "add", ("t", "c"), "s")]
    return Problem("add_three", q, ins, steps, "The sum is {ans}.")


def multiply(r: random.Random) -> Problem:
    a, tens, units = F(r.randint(12, 99)), r.randint(1, 9), r.randint(3, 9)
    b = F(tens * 10 + units)
    q = pick(r, (f"What is {a} × {b}?", f"Multiply {a} by {b}.", f"Work out {a} times {b}."))
    ins = {"a": (a, ""), "b": (b, "")}
    steps = [
        Step(f"{a} × {tens * 10}", "mul", ("a", tens * 10), "p1"),
        Step(f"{a} × {units}", "mul", ("a", units), "p2"),
        Step("Add the parts", "add", ("p1", "p2"), "p"),
    ]
    return Problem("multiply", q, ins, steps, "The product is {ans}.")


def sub_mul(r: random.Random) -> Problem:
    a = F(r.randint(200, 900))
    b, c = F(r.randint(20, int(a) - 50)), F(r.randint(3, 12))
    q = pick(r, (f"Compute ({a} − {b}) × {c}.", f"What is ({a} − {b}) × {c}?"))
    ins = {"a": (a, ""), "b": (b, ""), "c": (c, "")}
    steps = [Step("Brackets first", "sub", ("a", "b"), "d"), Step("Then multiply", "mul", ("d", "c"), "p")]
    return Problem("sub_mul", q, ins, steps, "The result is {ans}.")


def share_sweets(r: random.Random) -> Problem:
    k = F(r.randint(3, 12))
    n = k * r.randint(3, 20) + r.randint(1, int(k) - 1)
    q = (
        f"{_num(n)} sweets are shared equally among {_num(k)} children, and the leftovers go back in the jar. "
        "How many sweets does each child get?"
    )
    ins = {"n": (n, "sweets"), "k": (k, "children")}
    steps = [Step("Each child", "floor", ("n", "k"), "each", "sweets")]
    return Problem("share_sweets", q, ins, steps, "Each child gets {ans}.")
