"""Bad-math families: shopping, prices, discounts, percentages, interest, bills (see math_families)."""

from __future__ import annotations

import random

from .levels import pick
from .math_steps import F, Problem, Step, _num
from .math_words import NAMES, SHOPS, dollars, money, pick_items, plural


def shopping_total(r: random.Random) -> Problem:
    name, shop = pick(r, NAMES), pick(r, SHOPS)
    (i1, p1), (i2, p2) = pick_items(r, 2)
    a, b = r.randint(2, 9), r.randint(2, 9)
    q = pick(
        r,
        (
            f"{name} buys {a} {plural(i1)} at {dollars(p1)} each and {b} {plural(i2)} at {dollars(p2)} each at {shop}. "
            "How much does {name} spend in total?",
            f"At {shop}, a {i1} costs {dollars(p1)} and a {i2} costs {dollars(p2)}. What do {a} {plural(i1)} and "
            f"{b} {plural(i2)} cost altogether?",
        ),
    ).replace("{name}", name)
    ins = {"a": (F(a), ""), "p1": (p1, "$"), "b": (F(b), ""), "p2": (p2, "$")}
    steps = [
        Step(f"Cost of the {plural(i1)}", "mul", ("a", "p1"), "c1", "$"),
        Step(f"Cost of the {plural(i2)}", "mul", ("b", "p2"), "c2", "$"),
        Step("Total", "add", ("c1", "c2"), "total", "$"),
    ]
    return Problem("shopping_total", q, ins, steps, "The total cost is {ans}.")


def shopping_change(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    ((item, p),) = pick_items(r, 1)
    n = r.randint(2, 8)
    bill = F(next(b for b in (10, 20, 50, 100, 200) if b > n * p + 1))
    q = pick(
        r,
        (
            f"{name} buys {n} {plural(item)} at {dollars(p)} each and pays with a {dollars(bill)} note. "
            "How much change should they get?",
            f"If {n} {plural(item)} cost {dollars(p)} apiece, how much change is left from {dollars(bill)}?",
        ),
    )
    ins = {"n": (F(n), ""), "p": (p, "$"), "bill": (bill, "$")}
    steps = [
        Step("Cost", "mul", ("n", "p"), "cost", "$"),
        Step("Change", "sub", ("bill", "cost"), "change", "$"),
    ]
    return Problem("shopping_change", q, ins, steps, "The change is {ans}.")


def three_items(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    (i1, p1), (i2, p2), (i3, p3) = pick_items(r, 3)
    k = r.randint(3, 6)
    q = (
        f"{name} gets a {i1} for {dollars(p1)}, a {i2} for {dollars(p2)} and {k} {plural(i3)} at {dollars(p3)} each. "
        + pick(r, ("What is the bill?", "How much is that in total?", "What does it all come to?"))
    )
    ins = {"p1": (p1, "$"), "p2": (p2, "$"), "k": (F(k), ""), "p3": (p3, "$")}
    steps = [
        Step(f"The {plural(i3)}", "mul", ("k", "p3"), "c3", "$"),
        Step("Total", "add", ("p1", "p2", "c3"), "total", "$"),
    ]
    return Problem("three_items", q, ins, steps, f"{name} pays {{ans}}.")


def discount(r: random.Random) -> Problem:
    ((item, _),) = pick_items(r, 1)
    price, d = F(r.randint(8, 60) * 2), F(pick(r, (10, 15, 20, 25, 30, 40)))
    q = pick(
        r,
        (
            f"A {item} normally costs {dollars(price)}. It is {_num(d)}% off today. What is the sale price?",
            f"What do you pay for a {dollars(price)} {item} with a {_num(d)}% discount?",
        ),
    )
    ins = {"price": (price, "$"), "d": (d, "%")}
    steps = [
        Step("Discount", "pct", ("d", "price"), "off", "$"),
        Step("Sale price", "sub", ("price", "off"), "sale", "$"),
    ]
    return Problem("discount", q, ins, steps, "The sale price is {ans}.")


def discount_tax(r: random.Random) -> Problem:
    ((item, _),) = pick_items(r, 1)
    price, d, t = F(r.randint(5, 40) * 4), F(pick(r, (10, 20, 25, 50))), F(pick(r, (5, 8, 10, 20)))
    q = (
        f"A {item} is listed at {dollars(price)}. The shop takes {_num(d)}% off, then adds {_num(t)}% sales tax "
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


def tip_split(r: random.Random) -> Problem:
    bill, t, k = F(r.randint(30, 160) * 2), F(pick(r, (10, 15, 20))), r.randint(2, 6)
    q = pick(
        r,
        (
            f"Dinner for {k} comes to {dollars(bill)}. They add a {_num(t)}% tip and split the total evenly. "
            "How much does each person pay?",
            f"{k} friends share a {dollars(bill)} restaurant bill plus a {_num(t)}% tip equally. What is each share?",
        ),
    )
    ins = {"bill": (bill, "$"), "t": (t, "%"), "k": (F(k), "people")}
    steps = [
        Step("Tip", "pct", ("t", "bill"), "tip", "$"),
        Step("Total with tip", "add", ("bill", "tip"), "total", "$"),
        Step("Each share", "div", ("total", "k"), "each", "$"),
    ]
    return Problem("tip_split", q, ins, steps, "Each person pays {ans}.")


def fuel_cost(r: random.Random) -> Problem:
    dist, c, p = F(r.randint(2, 12) * 50), F(r.randint(10, 18), 2), money(r, 1, 2, 10)
    q = pick(
        r,
        (
            f"A car uses {_num(c)} L of fuel per 100 km and fuel costs {dollars(p)} per litre. "
            f"What does a {_num(dist)} km trip cost in fuel?",
            f"How much fuel money does a {_num(dist)} km drive take if the car burns {_num(c)} L/100 km "
            f"and a litre costs {dollars(p)}?",
        ),
    )
    ins = {"dist": (dist, "km"), "c": (c, "L"), "p": (p, "$")}
    steps = [
        Step("Hundreds of km", "div", ("dist", 100), "hk"),
        Step("Fuel used", "mul", ("hk", "c"), "litres", "L"),
        Step("Cost", "mul", ("litres", "p"), "cost", "$"),
    ]
    return Problem("fuel_cost", q, ins, steps, "The fuel costs {ans}.")


def percent_increase(r: random.Random) -> Problem:
    old = F(pick(r, (20, 25, 40, 50, 80, 100, 200, 250, 400, 500)))
    pct = F(pick(r, (5, 10, 12, 15, 20, 25, 30, 40, 50, 60, 75)))
    new = old * (100 + pct) / 100
    thing = pick(r, ("The rent", "A monthly bus pass", "The price of a gym membership", "A ticket"))
    q = pick(
        r,
        (
            f"{thing} went up from {dollars(old)} to {dollars(new)}. By what percentage did it increase?",
            f"{thing} rose from {dollars(old)} to {dollars(new)}. What is the percentage increase?",
        ),
    )
    ins = {"old": (old, "$"), "new": (new, "$")}
    steps = [
        Step("Increase", "sub", ("new", "old"), "diff", "$"),
        Step("As a fraction of the old price", "div", ("diff", "old"), "ratio", "", alt="new"),
        Step("As a percentage", "mul", ("ratio", 100), "pct", "%"),
    ]
    return Problem("percent_increase", q, ins, steps, "The increase is {ans}.")


def percent_group(r: random.Random) -> Problem:
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


def simple_interest(r: random.Random) -> Problem:
    p, rate, t = F(r.randint(5, 100) * 100), F(pick(r, (2, 3, 4, 5, 6))), F(r.randint(2, 6))
    q = pick(
        r,
        (
            f"{dollars(p)} is saved at {_num(rate)}% simple interest a year. How much is there after {_num(t)} years?",
            f"What does a {dollars(p)} deposit grow to in {_num(t)} years at {_num(rate)}% simple annual interest?",
        ),
    )
    ins = {"p": (p, "$"), "rate": (rate, "%"), "t": (t, "years")}
    steps = [
        Step("Interest per year", "pct", ("rate", "p"), "yearly", "$"),
        Step("Total interest", "mul", ("yearly", "t"), "interest", "$"),
        Step("Final amount", "add", ("p", "interest"), "total", "$"),
    ]
    return Problem("simple_interest", q, ins, steps, "The balance is {ans}.")


def compound(r: random.Random) -> Problem:
    p, rate = F(r.randint(5, 100) * 100), F(pick(r, (2, 4, 5, 10)))
    q = (
        f"An account starts with {dollars(p)} and earns {_num(rate)}% interest, compounded yearly. "
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


def tickets(r: random.Random) -> Problem:
    a, c = F(r.randint(1, 6)), F(r.randint(1, 6))
    pa, pc, fee = money(r, 8, 30, 50), money(r, 4, 15, 50), money(r, 1, 5, 50)
    venue = pick(r, ("museum", "zoo", "cinema", "aquarium", "theme park"))
    q = (
        f"At the {venue}, adult tickets cost {dollars(pa)} and child tickets {dollars(pc)}, plus a {dollars(fee)} booking fee "
        f"per order. What does one order for {_num(a)} adults and {_num(c)} children cost?"
    )
    ins = {"a": (a, ""), "c": (c, ""), "pa": (pa, "$"), "pc": (pc, "$"), "fee": (fee, "$")}
    steps = [
        Step("Adults", "mul", ("a", "pa"), "ca", "$"),
        Step("Children", "mul", ("c", "pc"), "cc", "$"),
        Step("Total with fee", "add", ("ca", "cc", "fee"), "total", "$"),
    ]
    return Problem("tickets", q, ins, steps, "The order costs {ans}.")


def phone_plan(r: random.Random) -> Problem:
    base, quota = money(r, 10, 40, 50), F(r.randint(2, 20))
    used, c = quota + r.randint(1, 12), money(r, 1, 6, 50)
    q = (
        f"A phone plan costs {dollars(base)} a month with {_num(quota)} GB included, and {dollars(c)} for each extra GB. "
        f"What is the bill for a month with {_num(used)} GB used?"
    )
    ins = {"base": (base, "$"), "quota": (quota, "GB"), "used": (used, "GB"), "c": (c, "$")}
    steps = [
        Step("Extra data", "sub", ("used", "quota"), "extra", "GB"),
        Step("Extra charge", "mul", ("extra", "c"), "charge", "$"),
        Step("Bill", "add", ("base", "charge"), "bill", "$"),
    ]
    return Problem("phone_plan", q, ins, steps, "The bill is {ans}.")


def bulk_offer(r: random.Random) -> Problem:
    ((item, p),) = pick_items(r, 1)
    n = F(r.randint(5, 30))
    q = f"A shop has a 'buy 3, get the 4th free' offer on {plural(item)} at {dollars(p)} each. What do {_num(n)} cost?"
    ins = {"n": (n, ""), "p": (p, "$")}
    steps = [
        Step("Free items (one in every 4)", "floor", ("n", 4), "free"),
        Step("Items paid for", "sub", ("n", "free"), "paid"),
        Step("Cost", "mul", ("paid", "p"), "cost", "$"),
    ]
    return Problem("bulk_offer", q, ins, steps, "They cost {ans}.")


def exchange(r: random.Random) -> Problem:
    a, rate, fee = F(r.randint(2, 40) * 50), F(pick(r, (F(9, 10), F(92, 100), F(85, 100), F(11, 10)))), F(3)
    q = (
        f"You change {dollars(a)} into euros at {_num(rate)} euros per dollar, and the booth keeps a €{_num(fee)} fee. "
        "How many euros do you get?"
    )
    ins = {"a": (a, "$"), "rate": (rate, ""), "fee": (fee, "€")}
    steps = [
        Step("Converted", "mul", ("a", "rate"), "eur", "€"),
        Step("After the fee", "sub", ("eur", "fee"), "ans", "€"),
    ]
    return Problem("exchange", q, ins, steps, "You get {ans}.")


def profit(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    c, m = money(r, 1, 8), money(r, 1, 6)
    s, n = c + m, F(r.randint(40, 300))
    fixed = F(r.randint(1, max(1, int(n * m / 20))) * 10)
    stall = pick(r, ("lemonade stand", "bake sale", "market stall", "craft stall"))
    q = (
        f"{name}'s {stall} sells {_num(n)} items at {dollars(s)} each. Each item costs {dollars(c)} to make and the stall "
        f"rent is {dollars(fixed)}. What is the profit?"
    )
    ins = {"n": (n, ""), "s": (s, "$"), "c": (c, "$"), "fixed": (fixed, "$")}
    steps = [
        Step("Profit per item", "sub", ("s", "c"), "margin", "$"),
        Step("Gross profit", "mul", ("n", "margin"), "gross", "$"),
        Step("After rent", "sub", ("gross", "fixed"), "profit", "$"),
    ]
    return Problem("profit", q, ins, steps, "The profit is {ans}.")


def weekly_cost(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    per, days, weeks = money(r, 2, 9), F(r.randint(3, 7)), F(r.randint(2, 8))
    habit = pick(r, ("a coffee", "a bus ticket", "lunch", "a smoothie", "a newspaper"))
    q = (
        f"{name} buys {habit} for {dollars(per)} on {_num(days)} days a week. "
        f"How much is that over {_num(weeks)} weeks?"
    )
    ins = {"per": (per, "$"), "days": (days, "days"), "weeks": (weeks, "weeks")}
    steps = [
        Step("Per week", "mul", ("days", "per"), "week", "$"),
        Step(f"Over {_num(weeks)} weeks", "mul", ("weeks", "week"), "tot", "$"),
    ]
    return Problem("weekly_cost", q, ins, steps, "That comes to {ans}.")


def rent_split(r: random.Random) -> Problem:
    k = r.randint(2, 5)
    rent, util = F(r.randint(60, 300) * 10), F(r.randint(20, 60) * 5)
    q = (
        f"{k} flatmates share a rent of {dollars(rent)} and utilities of {dollars(util)} a month equally. "
        "How much does each pay per month?"
    )
    ins = {"rent": (rent, "$"), "util": (util, "$"), "k": (F(k), "people")}
    steps = [
        Step("Monthly total", "add", ("rent", "util"), "tot", "$"),
        Step("Each share", "div", ("tot", "k"), "each", "$"),
    ]
    return Problem("rent_split", q, ins, steps, "Each flatmate pays {ans}.")


def rental_days(r: random.Random) -> Problem:
    a = F(r.randint(1, 14))
    b = a + r.randint(2, 14)
    c = F(pick(r, (25, 30, 35, 40, 45, 60, 75)))
    thing = pick(r, ("a car", "a van", "a kayak", "a holiday cottage", "a tent"))
    month = pick(r, ("March", "June", "July", "August", "October"))
    q = (
        f"You rent {thing} from {month} {_num(a)} to {month} {_num(b)}, both days included, at {dollars(c)} a day. "
        "What is the total cost?"
    )
    ins = {"a": (a, ""), "b": (b, ""), "c": (c, "$")}
    steps = [
        Step("Days", "incl", ("a", "b"), "days", "days"),
        Step("Cost", "mul", ("days", "c"), "cost", "$"),
    ]
    return Problem("rental_days", q, ins, steps, "The rental costs {ans}.")


def savings_weeks(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    goal = F(r.randint(10, 60) * 10)
    have = F(r.randint(0, int(goal / 3)))
    s = F(pick(r, (12, 15, 18, 20, 25, 35, 40)))
    thing = pick(r, ("a bike", "a guitar", "a tablet", "concert tickets", "a tent", "new headphones"))
    q = (
        f"{name} wants {thing} costing {dollars(goal)}. They have {dollars(have)} and save {dollars(s)} a week. "
        "How many weeks until they can afford it?"
    )
    ins = {"goal": (goal, "$"), "have": (have, "$"), "s": (s, "$")}
    steps = [
        Step("Still needed", "sub", ("goal", "have"), "need", "$"),
        Step("Weeks", "ceil", ("need", "s"), "weeks", "weeks"),
    ]
    return Problem("savings_weeks", q, ins, steps, "It takes {ans}.")
