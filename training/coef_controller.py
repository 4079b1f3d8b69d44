"""Automatic steering coefficients: a proportional-integral controller that keeps each trait's shift near 0.

Every `steering_auto_every` steps the trait drift is measured (hooks off, as for logging) and each
trait's coefficient is set to

    coef = kp * e + ki * sum(e),   e = shift / |v_l|

e is the shift in coefficient units: adding `c * v_l` moves the projection by `c * |v_l|`. A positive
shift (towards the trait) raises the coefficient, so more of the undesired direction is supplied by
the hook and less is learnt by the weights; a negative shift lowers it. The coefficient is clipped
to [-limit, limit], and the integral with it (no wind-up).

The weights integrate whatever the hook leaves unexplained, so the coefficient of the first steps,
when a linear schedule's learning rate is highest, decides most of the shift. `balanced_start` picks
it before step 1: the coefficient that minimises the training loss of a few training batches with
the weights fixed. There dL/dc = sum_t <dL/dh_t, v> = 0: the data's mean pull along v is met by the
hook, so the gradient gives the weights no reason to move along it. The controller trims from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

START_GRID = (-0.5, -0.25, -0.125, 0.0, 0.125, 0.25, 0.5, 1.0)  # fractions of steering_auto_max


@dataclass
class PIController:
    """One trait's controller; `update(error)` returns the new coefficient."""

    kp: float = 1.0
    ki: float = 0.5
    limit: float = 8.0
    integral: float = 0.0
    coef: float = 0.0
    bias: float = 0.0  # a start coefficient without an integral to hold it (ki = 0)

    def update(self, error: float) -> float:
        self.integral += error
        if self.ki:
            bound = self.limit / abs(self.ki)
            self.integral = max(-bound, min(bound, self.integral))
        self.coef = max(-self.limit, min(self.limit, self.bias + self.kp * error + self.ki * self.integral))
        return self.coef


def parabola_minimum(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The x of the smallest y, refined by the parabola through it and its two neighbours."""
    i = min(range(len(ys)), key=ys.__getitem__)
    if i == 0 or i == len(xs) - 1:
        return float(xs[i])
    (x0, x1, x2), (y0, y1, y2) = xs[i - 1 : i + 2], ys[i - 1 : i + 2]
    denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / denom
    if a <= 0:
        return float(x1)
    return float(min(max(-b / (2 * a), x0), x2))


def balanced_start(
    loss_at: Callable[[], float], steerer, specs, limit: float
) -> list[dict[str, list[float]]]:
    """Set each spec's coefficient to the loss minimiser over `START_GRID * limit` (one trait at a time,
    the others at their values so far); returns each trait's grid and losses."""
    grid = [f * limit for f in START_GRID]
    scans = []
    for spec in specs:
        losses = []
        for coef in grid:
            steerer.set_coef(spec, coef)
            losses.append(loss_at())
        steerer.set_coef(spec, parabola_minimum(grid, losses))
        scans.append({"coefs": grid, "losses": losses, "start": spec.coef})
    return scans


class CoefController:
    """Sets the coefficients of a Steerer's specs from measured shifts (`drift/<trait>/shift`)."""

    def __init__(self, steerer, specs, names: list[str], kp: float, ki: float, limit: float):
        self.steerer, self.specs, self.names = steerer, list(specs), list(names)
        self.pis = [PIController(kp, ki, limit) for _ in self.specs]
        self.start_from_specs()

    def start_from_specs(self) -> None:
        """Start at the specs' coefficients (steering_coefs, or balanced_start's): the integral that
        reproduces each one at zero error."""
        for spec, pi in zip(self.specs, self.pis, strict=True):
            pi.coef = spec.coef
            pi.integral = pi.coef / pi.ki if pi.ki else 0.0
            pi.bias = 0.0 if pi.ki else pi.coef

    def coefs(self) -> dict[str, float]:
        return {f"steering/coef/{name}": spec.coef for name, spec in zip(self.names, self.specs, strict=True)}

    def state(self) -> dict[str, dict[str, float]]:
        """Per trait: coefficient and integral (saved in each checkpoint, so a resumed run continues)."""
        return {
            name: {"coef": pi.coef, "integral": pi.integral, "bias": pi.bias}
            for name, pi in zip(self.names, self.pis, strict=True)
        }

    def load_state(self, state: dict[str, dict[str, float]]) -> None:
        for name, spec, pi in zip(self.names, self.specs, self.pis, strict=True):
            if name in state:
                pi.coef, pi.integral = float(state[name]["coef"]), float(state[name]["integral"])
                pi.bias = float(state[name].get("bias", 0.0))
                self.steerer.set_coef(spec, pi.coef)

    def update(self, drift: dict[str, float]) -> dict[str, float]:
        """New coefficients from the drift metrics of this step; returns `steering/coef/<trait>`."""
        for name, spec, pi in zip(self.names, self.specs, self.pis, strict=True):
            shift = drift.get(f"drift/{name}/shift")
            if shift is None:
                continue
            layer = spec.layers[0]
            if spec.coef_unit == "relative":  # coef is a fraction of the layer's mean norm
                norm = float(spec.vector.mean_norms[layer]) or 1.0
            else:
                norm = float(spec.vector[layer].float().norm()) or 1.0
            self.steerer.set_coef(spec, pi.update(shift / norm))
        return self.coefs()
