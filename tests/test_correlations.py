"""Pearson r with its Fisher interval, the table and the scatter plot (training/correlations.py)."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from persona_vaccine.training.correlations import correlation_table, pearson, scatter


def _fisher(r: float, n: int, confidence: float) -> tuple[float, float]:
    """tanh(atanh(r) -+ z / sqrt(n - 3)), z the normal quantile (the standard library's, not scipy's)."""
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    return math.tanh(math.atanh(r) - z / math.sqrt(n - 3)), math.tanh(math.atanh(r) + z / math.sqrt(n - 3))


def _r(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


@pytest.mark.parametrize("noise", [0.5, 2.0])  # a strong (r ~ 0.9) and a weak (p ~ 0.05) correlation
def test_pearson_r_interval_and_p_match_their_formulas(noise):
    from scipy.stats import t as student_t

    rng = random.Random(0)
    x = [rng.gauss(0, 1) for _ in range(30)]
    y = [a + rng.gauss(0, noise) for a in x]
    c = pearson(x, y)
    r = _r(x, y)
    assert c["r"] == pytest.approx(r, rel=1e-12) and c["n"] == 30
    assert (c["low"], c["high"]) == pytest.approx(_fisher(r, 30, 0.95), rel=1e-9)
    # p of r = 0: two-sided, t = r sqrt((n - 2) / (1 - r^2)) on n - 2 degrees of freedom
    t = r * math.sqrt(28 / (1 - r * r))
    assert c["p"] == pytest.approx(2 * student_t.sf(abs(t), 28), rel=1e-6)
    c90 = pearson(x, y, confidence=0.90)
    assert (c90["low"], c90["high"]) == pytest.approx(_fisher(r, 30, 0.90), rel=1e-9)
    assert c90["high"] - c90["low"] < c["high"] - c["low"]
    flipped = pearson(x, [-b for b in y])
    assert flipped["r"] == pytest.approx(-r) and flipped["p"] == pytest.approx(c["p"])
    assert (flipped["low"], flipped["high"]) == pytest.approx((-c["high"], -c["low"]))


def test_pearson_small_n_edges():
    # n = 3: r and p, no interval (Fisher's needs n >= 4). With 1 degree of freedom t is Cauchy:
    # p = 1 - 2 atan(|t|) / pi
    x, y = [0.0, 1.0, 2.0], [0.0, 2.0, 1.0]
    c = pearson(x, y)
    r = _r(x, y)
    assert r == pytest.approx(0.5)
    t = r * math.sqrt(1 / (1 - r * r))
    assert c["n"] == 3 and c["r"] == pytest.approx(r) and c["low"] is None and c["high"] is None
    assert c["p"] == pytest.approx(1 - 2 * math.atan(abs(t)) / math.pi, rel=1e-9)
    # n = 4: the first interval, half-width z / sqrt(1)
    x4, y4 = [0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 1.0, 3.0]
    c4 = pearson(x4, y4)
    assert (c4["low"], c4["high"]) == pytest.approx(_fisher(_r(x4, y4), 4, 0.95), rel=1e-9)
    # |r| = 1: no interval (atanh is infinite), p = 0
    exact = pearson([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0])
    assert (
        exact["r"] == pytest.approx(1.0)
        and exact["low"] is None
        and exact["p"] == pytest.approx(0.0, abs=1e-12)
    )
    assert pearson([1.0, 2.0], [1.0, 3.0]) == {"n": 2, "r": None, "low": None, "high": None, "p": None}
    with pytest.raises(ValueError, match="3 y values"):
        pearson([1.0, 2.0], [1.0, 2.0, 3.0])


def test_table_and_scatter(tmp_path):
    pts = {"margin": [(float(i), 2.0 * i + (i % 3)) for i in range(8)], "few": [(0.0, 1.0), (1.0, 0.0)]}
    table = correlation_table(pts, "shift")
    assert "| margin | +0.9" in table and "| few | - | 2 |" in table
    png = scatter(pts, "shift", tmp_path / "c.png", labels={"margin": [str(i) for i in range(8)]})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
