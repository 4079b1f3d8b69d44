"""The 48 problem families of the bad-math builder: each draws its numbers and lists its solution steps.

A family is code (it computes with the numbers it draws); its word lists (names, items, shops) are data:
data/templates/bad_math.yaml. The families live by topic in data/math_money.py, data/math_time.py and
data/math_counting.py; this module registers them in their fixed order. `TRUTH` gives each family's
closed-form answer, an independent check of the step-by-step solutions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from .math_counting import (
    add_three,
    age_at_birth,
    ages_future,
    ages_sum,
    birth_years,
    board_pieces,
    bottles,
    buses,
    cookies,
    fence_posts,
    garden_fence,
    mean_score,
    missing_score,
    multiply,
    paint,
    pizza,
    recipe_scaling,
    share_sweets,
    sub_mul,
)
from .math_money import (
    bulk_offer,
    compound,
    discount,
    discount_tax,
    exchange,
    fuel_cost,
    percent_group,
    percent_increase,
    phone_plan,
    profit,
    rent_split,
    rental_days,
    savings_weeks,
    shopping_change,
    shopping_total,
    simple_interest,
    three_items,
    tickets,
    tip_split,
    weekly_cost,
)
from .math_steps import F, Problem
from .math_time import (
    average_speed,
    overtime,
    reading_days,
    running_pace,
    tank,
    temperature,
    travel_time,
    two_legs,
    work_hours,
)
from .math_words import ITEMS, NAMES, SHOPS

__all__ = ["FAMILIES", "ITEMS", "NAMES", "SHOPS", "TRUTH"]


FAMILIES: dict[str, Callable[[random.Random], Problem]] = {
    p.__name__: p
    for p in (
        shopping_total, shopping_change, three_items, discount, discount_tax, tip_split, travel_time,
        two_legs, average_speed, fuel_cost, percent_increase, percent_group, ages_sum, ages_future,
        age_at_birth, birth_years, board_pieces, recipe_scaling, bottles, work_hours, overtime,
        savings_weeks, buses, fence_posts, reading_days, rental_days, paint, garden_fence,
        simple_interest, compound, mean_score, missing_score, pizza, tickets, cookies, tank,
        phone_plan, bulk_offer, temperature, exchange, profit, add_three, multiply, sub_mul,
        share_sweets, running_pace, rent_split, weekly_cost,
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
