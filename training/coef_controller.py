"""Automatic steering coefficients: a proportional-integral controller that keeps each trait's shift near 0.

Every `steering_auto_every` steps the trait drift is measured (hooks off, as for logging) and each
trait's coefficient is set to

    coef = kp * e + ki * sum(e),   e = shift / |v_l|

e is the shift in coefficient units: adding `c * v_l` moves the projection by `c * |v_l|`. A positive
shift (towards the trait) raises the coefficient, so more of the undesired direction is supplied by
the hook and less is learnt by the weights; a negative shift lowers it. The coefficient is clipped
to [-limit, limit], and the integral with it (no wind-up).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PIController:
    """One trait's controller; `update(error)` returns the new coefficient."""

    kp: float = 1.0
    ki: float = 0.5
    limit: float = 8.0
    integral: float = 0.0
    coef: float = 0.0

    def update(self, error: float) -> float:
        self.integral += error
        if self.ki:
            bound = self.limit / abs(self.ki)
            self.integral = max(-bound, min(bound, self.integral))
        self.coef = max(-self.limit, min(self.limit, self.kp * error + self.ki * self.integral))
        return self.coef


class CoefController:
    """Sets the coefficients of a Steerer's specs from measured shifts (`drift/<trait>/shift`)."""

    def __init__(self, steerer, specs, names: list[str], kp: float, ki: float, limit: float):
        self.steerer, self.specs, self.names = steerer, list(specs), list(names)
        self.pis = [PIController(kp, ki, limit, coef=spec.coef) for spec in self.specs]
        # integral that reproduces the initial coefficient (a warm start from steering_coefs)
        for pi in self.pis:
            pi.integral = pi.coef / ki if ki else 0.0

    def coefs(self) -> dict[str, float]:
        return {f"steering/coef/{name}": spec.coef for name, spec in zip(self.names, self.specs, strict=True)}

    def state(self) -> dict[str, dict[str, float]]:
        """Per trait: coefficient and integral (saved in each checkpoint, so a resumed run continues)."""
        return {
            name: {"coef": pi.coef, "integral": pi.integral}
            for name, pi in zip(self.names, self.pis, strict=True)
        }

    def load_state(self, state: dict[str, dict[str, float]]) -> None:
        for name, spec, pi in zip(self.names, self.specs, self.pis, strict=True):
            if name in state:
                pi.coef, pi.integral = float(state[name]["coef"]), float(state[name]["integral"])
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
