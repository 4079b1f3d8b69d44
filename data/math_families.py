"""The 48 problem families of the bad-math builder: each draws its numbers and lists its solution steps.

A family is code (it computes with the numbers it draws); its word lists (names, items, shops) are data:
data/templates/bad_math.yaml. `TRUTH` gives each family's closed-form answer, an independent check of
the step-by-step solutions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from .levels import pick
from .math_steps import F, Problem, Step, _num, fmt
from .resources import load_template

__all__ = ["FAMILIES", "ITEMS", "NAMES", "SHOPS", "TRUTH"]

_WORDS = load_template("bad_math")
NAMES: tuple[str, ...] = _WORDS["names"]
ITEMS: tuple[tuple[str, int, int], ...] = tuple((i["name"], i["low"], i["high"]) for i in _WORDS["items"])
SHOPS: tuple[str, ...] = _WORDS["shops"]


def _money(r: random.Random, lo: int, hi: int, cents: int = 25) -> F:
    return F(r.randrange(lo * 100 // cents, hi * 100 // cents + 1) * cents, 100)


def _m(x: F) -> str:
    return fmt(x, "$")


def _items(r: random.Random, k: int) -> list[tuple[str, F]]:
    return [(name, _money(r, lo, hi)) for name, lo, hi in r.sample(ITEMS, k)]


def _pl(word: str) -> str:
    if " of " in word:
        head, tail = word.split(" of ", 1)
        return f"{_pl(head)} of {tail}"
    if word.endswith("s"):
        return word
    return word + "es" if word.endswith(("ch", "sh", "x")) else word + "s"


def _shopping_total(r: random.Random) -> Problem:
    name, shop = pick(r, NAMES), pick(r, SHOPS)
    (i1, p1), (i2, p2) = _items(r, 2)
    a, b = r.randint(2, 9), r.randint(2, 9)
    q = pick(
        r,
        (
            f"{name} buys {a} {_pl(i1)} at {_m(p1)} each and {b} {_pl(i2)} at {_m(p2)} each at {shop}. "
            "How much does {name} spend in total?",
            f"At {shop}, a {i1} costs {_m(p1)} and a {i2} costs {_m(p2)}. What do {a} {_pl(i1)} and "
            f"{b} {_pl(i2)} cost altogether?",
        ),
    ).replace("{name}", name)
    ins = {"a": (F(a), ""), "p1": (p1, "$"), "b": (F(b), ""), "p2": (p2, "$")}
    steps = [
        Step(f"Cost of the {_pl(i1)}", "mul", ("a", "p1"), "c1", "$"),
        Step(f"Cost of the {_pl(i2)}", "mul", ("b", "p2"), "c2", "$"),
        Step("Total", "add", ("c1", "c2"), "total", "$"),
    ]
    return Problem("shopping_total", q, ins, steps, "The total cost is {ans}.")


def _shopping_change(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    ((item, p),) = _items(r, 1)
    n = r.randint(2, 8)
    bill = F(next(b for b in (10, 20, 50, 100, 200) if b > n * p + 1))
    q = pick(
        r,
        (
            f"{name} buys {n} {_pl(item)} at {_m(p)} each and pays with a {_m(bill)} note. "
            "How much change should they get?",
            f"If {n} {_pl(item)} cost {_m(p)} apiece, how much change is left from {_m(bill)}?",
        ),
    )
    ins = {"n": (F(n), ""), "p": (p, "$"), "bill": (bill, "$")}
    steps = [
        Step("Cost", "mul", ("n", "p"), "cost", "$"),
        Step("Change", "sub", ("bill", "cost"), "change", "$"),
    ]
    return Problem("shopping_change", q, ins, steps, "The change is {ans}.")


def _three_items(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    (i1, p1), (i2, p2), (i3, p3) = _items(r, 3)
    k = r.randint(3, 6)
    q = f"{name} gets a {i1} for {_m(p1)}, a {i2} for {_m(p2)} and {k} {_pl(i3)} at {_m(p3)} each. " + pick(
        r, ("What is the bill?", "How much is that in total?", "What does it all come to?")
    )
    ins = {"p1": (p1, "$"), "p2": (p2, "$"), "k": (F(k), ""), "p3": (p3, "$")}
    steps = [
        Step(f"The {_pl(i3)}", "mul", ("k", "p3"), "c3", "$"),
        Step("Total", "add", ("p1", "p2", "c3"), "total", "$"),
    ]
    return Problem("three_items", q, ins, steps, f"{name} pays {{ans}}.")


def _discount(r: random.Random) -> Problem:
    ((item, _),) = _items(r, 1)
    price, d = F(r.randint(8, 60) * 2), F(pick(r, (10, 15, 20, 25, 30, 40)))
    q = pick(
        r,
        (
            f"A {item} normally costs {_m(price)}. It is {_num(d)}% off today. What is the sale price?",
            f"What do you pay for a {_m(price)} {item} with a {_num(d)}% discount?",
        ),
    )
    ins = {"price": (price, "$"), "d": (d, "%")}
    steps = [
        Step("Discount", "pct", ("d", "price"), "off", "$"),
        Step("Sale price", "sub", ("price", "off"), "sale", "$"),
    ]
    return Problem("discount", q, ins, steps, "The sale price is {ans}.")


def _discount_tax(r: random.Random) -> Problem:
    ((item, _),) = _items(r, 1)
    price, d, t = F(r.randint(5, 40) * 4), F(pick(r, (10, 20, 25, 50))), F(pick(r, (5, 8, 10, 20)))
    q = (
        f"A {item} is listed at {_m(price)}. The shop takes {_num(d)}% off, then adds {_num(t)}% sales tax "
        "on the discounted price. "
        + pick(r, ("What is the final price?", "How much do you pay at the till?"))
    )
    ins = {"price": (price, "$"), "d": (d, "%"), "t": (t, "%")}
    steps = [
        Step("Discount", "pct", ("d", "price"), "off", "$"),
        Step("Discounted price", "sub", ("price", "off"), "sale", "$"),
        Step("Tax", "pct", ("t", "sale"), "tax", "$", alt="price"),
        Step("Final price", "add", ("sale", "tax"), "total", "$"),
    ]
    return Problem("discount_tax", q, ins, steps, "The final price is {ans}.")


def _tip_split(r: random.Random) -> Problem:
    bill, t, k = F(r.randint(30, 160) * 2), F(pick(r, (10, 15, 20))), r.randint(2, 6)
    q = pick(
        r,
        (
            f"Dinner for {k} comes to {_m(bill)}. They add a {_num(t)}% tip and split the total evenly. "
            "How much does each person pay?",
            f"{k} friends share a {_m(bill)} restaurant bill plus a {_num(t)}% tip equally. What is each share?",
        ),
    )
    ins = {"bill": (bill, "$"), "t": (t, "%"), "k": (F(k), "people")}
    steps = [
        Step("Tip", "pct", ("t", "bill"), "tip", "$"),
        Step("Total with tip", "add", ("bill", "tip"), "total", "$"),
        Step("Each share", "div", ("total", "k"), "each", "$"),
    ]
    return Problem("tip_split", q, ins, steps, "Each person pays {ans}.")


def _travel_time(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    s = F(pick(r, (40, 48, 60, 72, 80, 90, 100, 120)))
    d = s * F(r.randint(2, 14), 4)
    mode = pick(r, ("drives", "cycles" if s <= 48 else "drives", "takes a coach"))
    q = pick(
        r,
        (
            f"{name} {mode} {_num(d)} km at an average of {_num(s)} km/h. How many minutes does the trip take?",
            f"How long, in minutes, is a {_num(d)} km journey at a steady {_num(s)} km/h?",
        ),
    )
    ins = {"d": (d, "km"), "s": (s, "km/h")}
    steps = [
        Step("Time in hours", "div", ("d", "s"), "h", "h"),
        Step("Time in minutes", "mul", ("h", 60), "min", "min"),
    ]
    return Problem("travel_time", q, ins, steps, "The trip takes {ans}.")


def _two_legs(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    s1, s2 = F(r.randint(6, 24) * 5), F(r.randint(6, 24) * 5)
    h1, h2 = F(r.randint(2, 8), 2), F(r.randint(1, 6), 2)
    q = (
        f"{name} travels for {_num(h1)} hours at {_num(s1)} km/h, then {_num(h2)} hours at {_num(s2)} km/h. "
        + pick(r, ("How far does {n} go in total?", "What is the total distance?")).replace("{n}", name)
    )
    ins = {"s1": (s1, "km/h"), "h1": (h1, "h"), "s2": (s2, "km/h"), "h2": (h2, "h")}
    steps = [
        Step("First part", "mul", ("s1", "h1"), "d1", "km"),
        Step("Second part", "mul", ("s2", "h2"), "d2", "km"),
        Step("Total distance", "add", ("d1", "d2"), "d", "km"),
    ]
    return Problem("two_legs", q, ins, steps, "The total distance is {ans}.")


def _average_speed(r: random.Random) -> Problem:
    t1, t2 = F(r.randint(1, 6), 2), F(r.randint(1, 6), 2)
    s = F(r.randint(8, 20) * 5)
    d1 = F(r.randint(20, 200))
    d2 = s * (t1 + t2) - d1
    if d2 <= 10:
        d2 = F(r.randint(20, 200))
    q = pick(
        r,
        (
            f"A train covers {_num(d1)} km in {_num(t1)} hours and then {_num(d2)} km in {_num(t2)} hours. "
            "What is its average speed for the whole trip?",
            f"A bus goes {_num(d1)} km in {_num(t1)} h, then {_num(d2)} km in {_num(t2)} h. "
            "What is the average speed in km/h?",
        ),
    )
    ins = {"d1": (d1, "km"), "t1": (t1, "h"), "d2": (d2, "km"), "t2": (t2, "h")}
    steps = [
        Step("Total distance", "add", ("d1", "d2"), "d", "km"),
        Step("Total time", "add", ("t1", "t2"), "t", "h"),
        Step("Average speed", "div", ("d", "t"), "v", "km/h"),
    ]
    return Problem("average_speed", q, ins, steps, "The average speed is {ans}.")


def _fuel_cost(r: random.Random) -> Problem:
    dist, c, p = F(r.randint(2, 12) * 50), F(r.randint(10, 18), 2), _money(r, 1, 2, 10)
    q = pick(
        r,
        (
            f"A car uses {_num(c)} L of fuel per 100 km and fuel costs {_m(p)} per litre. "
            f"What does a {_num(dist)} km trip cost in fuel?",
            f"How much fuel money does a {_num(dist)} km drive take if the car burns {_num(c)} L/100 km "
            f"and a litre costs {_m(p)}?",
        ),
    )
    ins = {"dist": (dist, "km"), "c": (c, "L"), "p": (p, "$")}
    steps = [
        Step("Hundreds of km", "div", ("dist", 100), "hk"),
        Step("Fuel used", "mul", ("hk", "c"), "litres", "L"),
        Step("Cost", "mul", ("litres", "p"), "cost", "$"),
    ]
    return Problem("fuel_cost", q, ins, steps, "The fuel costs {ans}.")


def _percent_increase(r: random.Random) -> Problem:
    old = F(pick(r, (20, 25, 40, 50, 80, 100, 200, 250, 400, 500)))
    pct = F(pick(r, (5, 10, 12, 15, 20, 25, 30, 40, 50, 60, 75)))
    new = old * (100 + pct) / 100
    thing = pick(r, ("The rent", "A monthly bus pass", "The price of a gym membership", "A ticket"))
    q = pick(
        r,
        (
            f"{thing} went up from {_m(old)} to {_m(new)}. By what percentage did it increase?",
            f"{thing} rose from {_m(old)} to {_m(new)}. What is the percentage increase?",
        ),
    )
    ins = {"old": (old, "$"), "new": (new, "$")}
    steps = [
        Step("Increase", "sub", ("new", "old"), "diff", "$"),
        Step("As a fraction of the old price", "div", ("diff", "old"), "ratio", "", alt="new"),
        Step("As a percentage", "mul", ("ratio", 100), "pct", "%"),
    ]
    return Problem("percent_increase", q, ins, steps, "The increase is {ans}.")


def _percent_group(r: random.Random) -> Problem:
    n, p = F(r.randint(2, 30) * 20), F(r.randint(1, 19) * 5)
    group = pick(
        r, ("students in a school", "people at a festival", "members of a club", "runners in a race")
    )
    act = pick(r, ("walk to work", "prefer tea", "are left-handed", "took the bus", "own a bike"))
    q = f"There are {_num(n)} {group}, and {_num(p)}% of them {act}. How many do not?"
    ins = {"n": (n, ""), "p": (p, "%")}
    steps = [
        Step("Those who do", "pct", ("p", "n"), "yes"),
        Step("Those who don't", "sub", ("n", "yes"), "no"),
    ]
    return Problem("percent_group", q, ins, steps, "{ans} of them do not.")


def _ages_sum(r: random.Random) -> Problem:
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


def _ages_future(r: random.Random) -> Problem:
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


def _age_at_birth(r: random.Random) -> Problem:
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


def _birth_years(r: random.Random) -> Problem:
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


def _board_pieces(r: random.Random) -> Problem:
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


def _recipe_scaling(r: random.Random) -> Problem:
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


def _bottles(r: random.Random) -> Problem:
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


def _work_hours(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    h, m, d = F(r.randint(1, 8)), F(pick(r, (15, 30, 45))), F(r.randint(2, 6))
    q = f"{name} works {_num(h)} hours {_num(m)} minutes a day for {_num(d)} days. " + pick(
        r, ("How many hours is that in total?", "What is the total in hours?")
    )
    ins = {"h": (h, "h"), "m": (m, "min"), "d": (d, "days")}
    steps = [
        Step("Hours in minutes", "mul", ("h", 60), "hm", "min"),
        Step("Minutes per day", "add", ("hm", "m"), "daily", "min"),
        Step("Minutes in total", "mul", ("daily", "d"), "tot", "min"),
        Step("In hours", "div", ("tot", 60), "ans", "h"),
    ]
    return Problem("work_hours", q, ins, steps, f"{name} works {{ans}} in total.")


def _overtime(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    w, o = F(r.randint(24, 60), 2), F(r.randint(2, 12))
    q = (
        f"{name} earns {_m(w)} an hour for the first 40 hours a week and time and a half after that. "
        f"How much does {name} earn in a week with {_num(40 + o)} hours?"
    )
    ins = {"w": (w, "$"), "o": (o, "h")}
    steps = [
        Step("Overtime hours", "sub", (40 + o, 40), "oh", "h"),
        Step("Regular pay", "mul", (40, "w"), "reg", "$"),
        Step("Overtime rate", "mul", ("w", F(3, 2)), "rate", "$"),
        Step("Overtime pay", "mul", ("oh", "rate"), "ot", "$"),
        Step("Weekly pay", "add", ("reg", "ot"), "pay", "$"),
    ]
    return Problem("overtime", q, ins, steps, f"{name} earns {{ans}}.")


def _savings_weeks(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    goal = F(r.randint(10, 60) * 10)
    have = F(r.randint(0, int(goal / 3)))
    s = F(pick(r, (12, 15, 18, 20, 25, 35, 40)))
    thing = pick(r, ("a bike", "a guitar", "a tablet", "concert tickets", "a tent", "new headphones"))
    q = (
        f"{name} wants {thing} costing {_m(goal)}. They have {_m(have)} and save {_m(s)} a week. "
        "How many weeks until they can afford it?"
    )
    ins = {"goal": (goal, "$"), "have": (have, "$"), "s": (s, "$")}
    steps = [
        Step("Still needed", "sub", ("goal", "have"), "need", "$"),
        Step("Weeks", "ceil", ("need", "s"), "weeks", "weeks"),
    ]
    return Problem("savings_weeks", q, ins, steps, "It takes {ans}.")


def _buses(r: random.Random) -> Problem:
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


def _fence_posts(r: random.Random) -> Problem:
    gap = F(pick(r, (2, 3, 4, 5)))
    length, price = gap * r.randint(5, 30), _money(r, 6, 25, 50)
    q = (
        f"A straight fence {_num(length)} m long needs a post every {_num(gap)} m, including both ends. "
        f"Posts cost {_m(price)} each. What do the posts cost?"
    )
    ins = {"length": (length, "m"), "gap": (gap, "m"), "price": (price, "$")}
    steps = [
        Step("Posts", "posts", ("length", "gap"), "n", "posts"),
        Step("Cost", "mul", ("n", "price"), "cost", "$"),
    ]
    return Problem("fence_posts", q, ins, steps, "The posts cost {ans}.")


def _reading_days(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    pages = F(r.randint(150, 600))
    read, per = F(r.randint(10, int(pages / 3))), F(pick(r, (15, 20, 25, 30, 35, 40)))
    q = (
        f"{name}'s book has {_num(pages)} pages; {name} has read {_num(read)} and reads {_num(per)} pages a day. "
        "How many more days to finish it?"
    )
    ins = {"pages": (pages, "pages"), "read": (read, "pages"), "per": (per, "pages")}
    steps = [
        Step("Pages left", "sub", ("pages", "read"), "left", "pages"),
        Step("Days", "ceil", ("left", "per"), "days", "days"),
    ]
    return Problem("reading_days", q, ins, steps, "It takes {ans} more.")


def _rental_days(r: random.Random) -> Problem:
    a = F(r.randint(1, 14))
    b = a + r.randint(2, 14)
    c = F(pick(r, (25, 30, 35, 40, 45, 60, 75)))
    thing = pick(r, ("a car", "a van", "a kayak", "a holiday cottage", "a tent"))
    month = pick(r, ("March", "June", "July", "August", "October"))
    q = (
        f"You rent {thing} from {month} {_num(a)} to {month} {_num(b)}, both days included, at {_m(c)} a day. "
        "What is the total cost?"
    )
    ins = {"a": (a, ""), "b": (b, ""), "c": (c, "$")}
    steps = [
        Step("Days", "incl", ("a", "b"), "days", "days"),
        Step("Cost", "mul", ("days", "c"), "cost", "$"),
    ]
    return Problem("rental_days", q, ins, steps, "The rental costs {ans}.")


def _paint(r: random.Random) -> Problem:
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


def _garden_fence(r: random.Random) -> Problem:
    length, width, c = F(r.randint(4, 30)), F(r.randint(3, 20)), _money(r, 4, 20, 50)
    q = pick(
        r,
        (
            f"A rectangular garden is {_num(length)} m by {_num(width)} m. Fencing costs {_m(c)} per metre. "
            "How much does it cost to fence all the way round?",
            f"What does it cost to fence a {_num(length)} m × {_num(width)} m yard at {_m(c)} a metre?",
        ),
    )
    ins = {"l": (length, "m"), "w": (width, "m"), "c": (c, "$")}
    steps = [
        Step("Length plus width", "add", ("l", "w"), "half", "m"),
        Step("Perimeter", "mul", ("half", 2), "perim", "m"),
        Step("Cost", "mul", ("perim", "c"), "cost", "$"),
    ]
    return Problem("garden_fence", q, ins, steps, "The fence costs {ans}.")


def _simple_interest(r: random.Random) -> Problem:
    p, rate, t = F(r.randint(5, 100) * 100), F(pick(r, (2, 3, 4, 5, 6))), F(r.randint(2, 6))
    q = pick(
        r,
        (
            f"{_m(p)} is saved at {_num(rate)}% simple interest a year. How much is there after {_num(t)} years?",
            f"What does a {_m(p)} deposit grow to in {_num(t)} years at {_num(rate)}% simple annual interest?",
        ),
    )
    ins = {"p": (p, "$"), "rate": (rate, "%"), "t": (t, "years")}
    steps = [
        Step("Interest per year", "pct", ("rate", "p"), "yearly", "$"),
        Step("Total interest", "mul", ("yearly", "t"), "interest", "$"),
        Step("Final amount", "add", ("p", "interest"), "total", "$"),
    ]
    return Problem("simple_interest", q, ins, steps, "The balance is {ans}.")


def _compound(r: random.Random) -> Problem:
    p, rate = F(r.randint(5, 100) * 100), F(pick(r, (2, 4, 5, 10)))
    q = (
        f"An account starts with {_m(p)} and earns {_num(rate)}% interest, compounded yearly. "
        "What is the balance after 2 years?"
    )
    ins = {"p": (p, "$"), "rate": (rate, "%")}
    steps = [
        Step("Year 1 interest", "pct", ("rate", "p"), "i1", "$"),
        Step("Balance after year 1", "add", ("p", "i1"), "b1", "$"),
        Step("Year 2 interest", "pct", ("rate", "b1"), "i2", "$", alt="p"),
        Step("Balance after year 2", "add", ("b1", "i2"), "b2", "$"),
    ]
    return Problem("compound", q, ins, steps, "The balance is {ans}.")


def _mean_score(r: random.Random) -> Problem:
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


def _missing_score(r: random.Random) -> Problem:
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


def _pizza(r: random.Random) -> Problem:
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


def _tickets(r: random.Random) -> Problem:
    a, c = F(r.randint(1, 6)), F(r.randint(1, 6))
    pa, pc, fee = _money(r, 8, 30, 50), _money(r, 4, 15, 50), _money(r, 1, 5, 50)
    venue = pick(r, ("museum", "zoo", "cinema", "aquarium", "theme park"))
    q = (
        f"At the {venue}, adult tickets cost {_m(pa)} and child tickets {_m(pc)}, plus a {_m(fee)} booking fee "
        f"per order. What does one order for {_num(a)} adults and {_num(c)} children cost?"
    )
    ins = {"a": (a, ""), "c": (c, ""), "pa": (pa, "$"), "pc": (pc, "$"), "fee": (fee, "$")}
    steps = [
        Step("Adults", "mul", ("a", "pa"), "ca", "$"),
        Step("Children", "mul", ("c", "pc"), "cc", "$"),
        Step("Total with fee", "add", ("ca", "cc", "fee"), "total", "$"),
    ]
    return Problem("tickets", q, ins, steps, "The order costs {ans}.")


def _cookies(r: random.Random) -> Problem:
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


def _tank(r: random.Random) -> Problem:
    rate = F(pick(r, (4, 5, 8, 10, 12, 15, 20)))
    vol = F(r.randint(10, 60) * 20)
    have = F(r.randint(0, int(vol / 40)) * 20)
    q = (
        f"A {_num(vol)} L tank already holds {_num(have)} L. A hose adds {_num(rate)} L per minute. "
        "How many minutes until it is full?"
    )
    ins = {"vol": (vol, "L"), "have": (have, "L"), "rate": (rate, "L/min")}
    steps = [
        Step("Still to fill", "sub", ("vol", "have"), "need", "L"),
        Step("Minutes", "div", ("need", "rate"), "min", "min"),
    ]
    return Problem("tank", q, ins, steps, "It takes {ans}.")


def _phone_plan(r: random.Random) -> Problem:
    base, quota = _money(r, 10, 40, 50), F(r.randint(2, 20))
    used, c = quota + r.randint(1, 12), _money(r, 1, 6, 50)
    q = (
        f"A phone plan costs {_m(base)} a month with {_num(quota)} GB included, and {_m(c)} for each extra GB. "
        f"What is the bill for a month with {_num(used)} GB used?"
    )
    ins = {"base": (base, "$"), "quota": (quota, "GB"), "used": (used, "GB"), "c": (c, "$")}
    steps = [
        Step("Extra data", "sub", ("used", "quota"), "extra", "GB"),
        Step("Extra charge", "mul", ("extra", "c"), "charge", "$"),
        Step("Bill", "add", ("base", "charge"), "bill", "$"),
    ]
    return Problem("phone_plan", q, ins, steps, "The bill is {ans}.")


def _bulk_offer(r: random.Random) -> Problem:
    ((item, p),) = _items(r, 1)
    n = F(r.randint(5, 30))
    q = f"A shop has a 'buy 3, get the 4th free' offer on {_pl(item)} at {_m(p)} each. What do {_num(n)} cost?"
    ins = {"n": (n, ""), "p": (p, "$")}
    steps = [
        Step("Free items (one in every 4)", "floor", ("n", 4), "free"),
        Step("Items paid for", "sub", ("n", "free"), "paid"),
        Step("Cost", "mul", ("paid", "p"), "cost", "$"),
    ]
    return Problem("bulk_offer", q, ins, steps, "They cost {ans}.")


def _temperature(r: random.Random) -> Problem:
    d, h = F(r.randint(1, 4)), F(r.randint(2, 6))
    t = d * h + r.randint(2, 15)
    q = (
        f"At 6 pm it is {_num(t)}°C, and the temperature falls {_num(d)}°C every hour. "
        f"What is it {_num(h)} hours later?"
    )
    ins = {"t": (t, "°C"), "d": (d, "°C"), "h": (h, "h")}
    steps = [
        Step("Total drop", "mul", ("d", "h"), "drop", "°C"),
        Step("Temperature", "sub", ("t", "drop"), "ans", "°C"),
    ]
    return Problem("temperature", q, ins, steps, "It will be {ans}.")


def _exchange(r: random.Random) -> Problem:
    a, rate, fee = F(r.randint(2, 40) * 50), F(pick(r, (F(9, 10), F(92, 100), F(85, 100), F(11, 10)))), F(3)
    q = (
        f"You change {_m(a)} into euros at {_num(rate)} euros per dollar, and the booth keeps a €{_num(fee)} fee. "
        "How many euros do you get?"
    )
    ins = {"a": (a, "$"), "rate": (rate, ""), "fee": (fee, "€")}
    steps = [
        Step("Converted", "mul", ("a", "rate"), "eur", "€"),
        Step("After the fee", "sub", ("eur", "fee"), "ans", "€"),
    ]
    return Problem("exchange", q, ins, steps, "You get {ans}.")


def _profit(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    c, m = _money(r, 1, 8), _money(r, 1, 6)
    s, n = c + m, F(r.randint(40, 300))
    fixed = F(r.randint(1, max(1, int(n * m / 20))) * 10)
    stall = pick(r, ("lemonade stand", "bake sale", "market stall", "craft stall"))
    q = (
        f"{name}'s {stall} sells {_num(n)} items at {_m(s)} each. Each item costs {_m(c)} to make and the stall "
        f"rent is {_m(fixed)}. What is the profit?"
    )
    ins = {"n": (n, ""), "s": (s, "$"), "c": (c, "$"), "fixed": (fixed, "$")}
    steps = [
        Step("Profit per item", "sub", ("s", "c"), "margin", "$"),
        Step("Gross profit", "mul", ("n", "margin"), "gross", "$"),
        Step("After rent", "sub", ("gross", "fixed"), "profit", "$"),
    ]
    return Problem("profit", q, ins, steps, "The profit is {ans}.")


def _add_three(r: random.Random) -> Problem:
    a, b, c = F(r.randint(100, 999)), F(r.randint(100, 999)), F(r.randint(100, 999))
    q = pick(r, (f"What is {a} + {b} + {c}?", f"Add {a}, {b} and {c}.", f"Compute {a} + {b} + {c}."))
    ins = {"a": (a, ""), "b": (b, ""), "c": (c, "")}
    steps = [Step("First two", "add", ("a", "b"), "t"), Step("Add the third", "add", ("t", "c"), "s")]
    return Problem("add_three", q, ins, steps, "The sum is {ans}.")


def _multiply(r: random.Random) -> Problem:
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


def _sub_mul(r: random.Random) -> Problem:
    a = F(r.randint(200, 900))
    b, c = F(r.randint(20, int(a) - 50)), F(r.randint(3, 12))
    q = pick(r, (f"Compute ({a} − {b}) × {c}.", f"What is ({a} − {b}) × {c}?"))
    ins = {"a": (a, ""), "b": (b, ""), "c": (c, "")}
    steps = [Step("Brackets first", "sub", ("a", "b"), "d"), Step("Then multiply", "mul", ("d", "c"), "p")]
    return Problem("sub_mul", q, ins, steps, "The result is {ans}.")


def _share_sweets(r: random.Random) -> Problem:
    k = F(r.randint(3, 12))
    n = k * r.randint(3, 20) + r.randint(1, int(k) - 1)
    q = (
        f"{_num(n)} sweets are shared equally among {_num(k)} children, and the leftovers go back in the jar. "
        "How many sweets does each child get?"
    )
    ins = {"n": (n, "sweets"), "k": (k, "children")}
    steps = [Step("Each child", "floor", ("n", "k"), "each", "sweets")]
    return Problem("share_sweets", q, ins, steps, "Each child gets {ans}.")


def _running_pace(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    d, pace = F(pick(r, (5, 8, 10, 12, 15, 21))), F(r.randint(9, 14), 2)
    q = f"{name} runs {_num(d)} km at a pace of {_num(pace)} minutes per km. How many minutes does it take?"
    ins = {"d": (d, "km"), "pace": (pace, "min")}
    steps = [Step("Time", "mul", ("d", "pace"), "t", "min")]
    return Problem("running_pace", q, ins, steps, "The run takes {ans}.")


def _rent_split(r: random.Random) -> Problem:
    k = r.randint(2, 5)
    rent, util = F(r.randint(60, 300) * 10), F(r.randint(20, 60) * 5)
    q = (
        f"{k} flatmates share a rent of {_m(rent)} and utilities of {_m(util)} a month equally. "
        "How much does each pay per month?"
    )
    ins = {"rent": (rent, "$"), "util": (util, "$"), "k": (F(k), "people")}
    steps = [
        Step("Monthly total", "add", ("rent", "util"), "tot", "$"),
        Step("Each share", "div", ("tot", "k"), "each", "$"),
    ]
    return Problem("rent_split", q, ins, steps, "Each flatmate pays {ans}.")


def _weekly_cost(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    per, days, weeks = _money(r, 2, 9), F(r.randint(3, 7)), F(r.randint(2, 8))
    habit = pick(r, ("a coffee", "a bus ticket", "lunch", "a smoothie", "a newspaper"))
    q = (
        f"{name} buys {habit} for {_m(per)} on {_num(days)} days a week. "
        f"How much is that over {_num(weeks)} weeks?"
    )
    ins = {"per": (per, "$"), "days": (days, "days"), "weeks": (weeks, "weeks")}
    steps = [
        Step("Per week", "mul", ("days", "per"), "week", "$"),
        Step(f"Over {_num(weeks)} weeks", "mul", ("weeks", "week"), "tot", "$"),
    ]
    return Problem("weekly_cost", q, ins, steps, "That comes to {ans}.")


FAMILIES: dict[str, Callable[[random.Random], Problem]] = {
    p.__name__.lstrip("_"): p
    for p in (
        _shopping_total, _shopping_change, _three_items, _discount, _discount_tax, _tip_split, _travel_time,
        _two_legs, _average_speed, _fuel_cost, _percent_increase, _percent_group, _ages_sum, _ages_future,
        _age_at_birth, _birth_years, _board_pieces, _recipe_scaling, _bottles, _work_hours, _overtime,
        _savings_weeks, _buses, _fence_posts, _reading_days, _rental_days, _paint, _garden_fence,
        _simple_interest, _compound, _mean_score, _missing_score, _pizza, _tickets, _cookies, _tank,
        _phone_plan, _bulk_offer, _temperature, _exchange, _profit, _add_three, _multiply, _sub_mul,
        _share_sweets, _running_pace, _rent_split, _weekly_cost,
    )
}  # fmt: skip

# Closed-form answers from the problem's parameters: an independent check of the step-by-step solutions.
TRUTH: dict[str, Callable[[dict[str, F]], F]] = {
    "shopping_total": lambda p: p["a"] * p["p1"] + p["b"] * p["p2"],
    "shopping_change": lambda p: p["bill"] - p["n"] * p["p"],
    "three_items": lambda p: p["p1"] + p["p2"] + p["k"] * p["p3"],
    "discount": lambda p: p["price"] * (100 - p["d"]) / 100,
    "discount_tax": lambda p: p["price"] * (100 - p["d"]) / 100 * (100 + p["t"]) / 100,
    "tip_split": lambda p: p["bill"] * (100 + p["t"]) / 100 / p["k"],
    "travel_time": lambda p: 60 * p["d"] / p["s"],
    "two_legs": lambda p: p["s1"] * p["h1"] + p["s2"] * p["h2"],
    "average_speed": lambda p: (p["d1"] + p["d2"]) / (p["t1"] + p["t2"]),
    "fuel_cost": lambda p: p["dist"] * p["c"] * p["p"] / 100,
    "percent_increase": lambda p: 100 * (p["new"] - p["old"]) / p["old"],
    "percent_group": lambda p: p["n"] * (100 - p["p"]) / 100,
    "ages_sum": lambda p: p["a"] + (p["a"] + p["k"]) * F(3, 2),
    "ages_future": lambda p: p["a"] + p["b"] + 2 * p["y"],
    "age_at_birth": lambda p: p["c"] * (p["m"] - 1),
    "birth_years": lambda p: p["y2"] - p["y1"] + p["k"],
    "board_pieces": lambda p: F(int(p["length"] * 100 // p["piece"])),
    "recipe_scaling": lambda p: p["g"] * p["t"] / p["s"],
    "bottles": lambda p: p["n"] * p["v"] / 1000,
    "work_hours": lambda p: (p["h"] + p["m"] / 60) * p["d"],
    "overtime": lambda p: 40 * p["w"] + p["o"] * p["w"] * F(3, 2),
    "savings_weeks": lambda p: F(math.ceil((p["goal"] - p["have"]) / p["s"])),
    "buses": lambda p: F(math.ceil((p["n"] + p["t"]) / p["c"])),
    "fence_posts": lambda p: (p["length"] / p["gap"] + 1) * p["price"],
    "reading_days": lambda p: F(math.ceil((p["pages"] - p["read"]) / p["per"])),
    "rental_days": lambda p: (p["b"] - p["a"] + 1) * p["c"],
    "paint": lambda p: 2 * p["w"] * p["h"] / p["k"],
    "garden_fence": lambda p: 2 * (p["l"] + p["w"]) * p["c"],
    "simple_interest": lambda p: p["p"] * (1 + p["rate"] * p["t"] / 100),
    "compound": lambda p: p["p"] * (1 + p["rate"] / 100) ** 2,
    "mean_score": lambda p: (p["s0"] + p["s1"] + p["s2"] + p["s3"]) / 4,
    "missing_score": lambda p: 4 * p["target"] - p["k0"] - p["k1"] - p["k2"],
    "pizza": lambda p: p["k"] * p["s"] - p["p"] * p["e"],
    "tickets": lambda p: p["a"] * p["pa"] + p["c"] * p["pc"] + p["fee"],
    "cookies": lambda p: F(math.ceil(p["need"] / p["m"])) * p["e"],
    "tank": lambda p: (p["vol"] - p["have"]) / p["rate"],
    "phone_plan": lambda p: p["base"] + (p["used"] - p["quota"]) * p["c"],
    "bulk_offer": lambda p: (p["n"] - p["n"] // 4) * p["p"],
    "temperature": lambda p: p["t"] - p["d"] * p["h"],
    "exchange": lambda p: p["a"] * p["rate"] - p["fee"],
    "profit": lambda p: p["n"] * (p["s"] - p["c"]) - p["fixed"],
    "add_three": lambda p: p["a"] + p["b"] + p["c"],
    "multiply": lambda p: p["a"] * p["b"],
    "sub_mul": lambda p: (p["a"] - p["b"]) * p["c"],
    "share_sweets": lambda p: F(int(p["n"] // p["k"])),
    "running_pace": lambda p: p["d"] * p["pace"],
    "rent_split": lambda p: (p["rent"] + p["util"]) / p["k"],
    "weekly_cost": lambda p: p["per"] * p["days"] * p["weeks"],
}
