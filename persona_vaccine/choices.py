"""Closed sets of names: one check that turns a bad value into a one-line error, and deprecated spellings.

Each package defines its own sets as a `Literal` type and its tuple of values, beside the code that uses
them (steering modes in `steering.options`, levels in `data.levels`, schedules in `training.config`...).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TypeVar

_Name = TypeVar("_Name", bound=str)


def check_choice(field: str, value: object, allowed: Sequence[_Name]) -> _Name:
    """`value` if it is one of `allowed`, else a ValueError naming the field and the choices."""
    if value not in allowed:
        raise ValueError(f"{field}={value!r}: expected one of {', '.join(allowed)}")
    return value  # type: ignore[return-value]  # checked just above


def canonical(kind: str, name: str, aliases: Mapping[str, str]) -> str:
    """`name`, or the new name of a deprecated one (with a FutureWarning saying which to write)."""
    new = aliases.get(name)
    if new is None:
        return name
    warnings.warn(f"{kind} {name!r} is deprecated: use {new!r}", FutureWarning, stacklevel=3)
    return new
