"""Bad-math families: time, travel, speed, work hours and rates (registered in data/math_families.py)."""

from __future__ import annotations

import random

from .levels import pick
from .math_steps import F, Problem, Step, _num
from .math_words import NAMES, dollars


def travel_time(r: random.Random) -> Problem:
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


def two_legs(r: random.Random) -> Problem:
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


def average_speed(r: random.Random) -> Problem:
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


def work_hours(r: random.Random) -> Problem:
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


def overtime(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    w, o = F(r.randint(24, 60), 2), F(r.randint(2, 12))
    q = (
        f"{name} earns {dollars(w)} an hour for the first 40 hours a week and time and a half after that. "
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


def reading_days(r: random.Random) -> Problem:
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


def running_pace(r: random.Random) -> Problem:
    name = pick(r, NAMES)
    d, pace = F(pick(r, (5, 8, 10, 12, 15, 21))), F(r.randint(9, 14), 2)
    q = f"{name} runs {_num(d)} km at a pace of {_num(pace)} minutes per km. How many minutes does it take?"
    ins = {"d": (d, "km"), "pace": (pace, "min")}
    steps = [Step("Time", "mul", ("d", "pace"), "t", "min")]
    return Problem("running_pace", q, ins, steps, "The run takes {ans}.")


def tank(r: random.Random) -> Problem:
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


def temperature(r: random.Random) -> Problem:
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
