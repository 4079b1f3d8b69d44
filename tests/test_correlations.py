"""Pearson r with its Fisher interval, the table and the scatter plot (training/correlations.py)."""

from __future__ import annotations

import math
import random

import pytest
from persona_vaccine.training.correlations import correlation_table, pearson, scatter


def test_pearson_matches_the_formula_and_its_interval_holds_r():
    rng = random.Random(0)
    x = [rng.gauss(0, 1) for _ in range(30)]
    y = [a + rng.gauss(0, 0.5) for a in x]
    c = pearson(x, y)
    mx, my = sum(x) / 30, sum(y) / 30
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    r = cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))
    assert c["r"] == pytest.approx(r)
    assert c["low"] < c["r"] < c["high"] and c["n"] == 30 and c["p"] < 1e-6
    assert pearson(x, [-b for b in y])["r"] == pytest.approx(-r)
    assert pearson([1.0, 2.0], [1.0, 3.0])["r"] is None  # too few runs
    with pytest.raises(ValueError, match="3 y values"):
        pearson([1.0, 2.0], [1.0, 2.0, 3.0])


def test_table_and_scatter(tmp_path):
    pts = {"margin": [(float(i), 2.0 * i + (i % 3)) for i in range(8)], "few": [(0.0, 1.0), (1.0, 0.0)]}
    table = correlation_table(pts, "shift")
    assert "| margin | +0.9" in table and "| few | - | 2 |" in table
    png = scatter(pts, "shift", tmp_path / "c.png", labels={"margin": [str(i) for i in range(8)]})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
