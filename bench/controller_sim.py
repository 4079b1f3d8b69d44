"""A model of the steering_auto loop, to choose its gains without training runs (pure Python, no model).

    python bench/controller_sim.py

The plant: each step the shift moves by a * lr_k * m_k, where m_k is Adam's bias-corrected momentum
(beta 0.9) of the coefficient error (c* - c_k) and lr_k decays linearly to 0 over the run. a = 0.77
projection units per unit of coefficient per step and c* = 1.75 fit the embedded model's coefficient sweep
(docs/RESULTS.md: shift +27.15 at coef 0, -3.80 at coef 2 after 20 steps); |v_20| = 20.2. The
table gives, for each gain pair, the final shift of the nominal plant and the worst |final shift| /
baseline shift over plants with a in {0.4, 0.77, 1.5} and c* in {1, 1.75, 3}.
"""

from __future__ import annotations

import itertools


def simulate(kp: float, ki: float, a: float = 0.77, c_star: float = 1.75, c0: float = 0.0, norm: float = 20.2,
             steps: int = 20, every: int = 1, limit: float = 8.0, beta: float = 0.9) -> float:  # fmt: skip
    """The final shift of one run of the PI loop of training/coef_controller.py on the model plant."""
    shift = momentum = 0.0
    integral = c0 / ki if ki else 0.0
    coef = c0
    for k in range(1, steps + 1):
        momentum = beta * momentum + (1 - beta) * (c_star - coef)
        shift += 2 * a * (1 - (k - 1) / steps) * momentum / (1 - beta**k)
        if k % every == 0:
            error = shift / norm
            integral = max(-limit / ki, min(limit / ki, integral + error)) if ki else 0.0
            coef = max(-limit, min(limit, (0.0 if ki else c0) + kp * error + ki * integral))
    return shift


def main() -> None:
    plants = list(itertools.product([0.4, 0.77, 1.5], [1.0, 1.75, 3.0]))
    print("| kp | ki | every | final shift (nominal) | worst |shift| / baseline |")
    print("|---|---|---|---|---|")
    for kp, ki, every in [(1, 0.5, 2), (1, 0.5, 1), (4, 1, 1), (8, 2, 1), (8, 2, 2), (12, 3, 1)]:
        worst = max(abs(simulate(kp, ki, a, c, every=every)) / simulate(0, 0, a, c) for a, c in plants)
        print(f"| {kp} | {ki} | {every} | {simulate(kp, ki, every=every):+.2f} | {worst:.2f} |")
    print(f"\nbaseline (coef 0): {simulate(0, 0):+.2f}; fixed coef 2: {simulate(0, 0, c0=2.0):+.2f}")


if __name__ == "__main__":
    main()
