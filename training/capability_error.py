"""The error of the capability benchmarks."""

from __future__ import annotations

from persona_vaccine.errors import UserError


class CapabilityError(UserError, ValueError):
    """A capability benchmark cannot run (a missing package, unreachable data, bad input)."""
