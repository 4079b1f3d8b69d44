"""persona-vaccine training: the preventative steering trainer, its configs, drift logging and runs.

The names below are imported on first use (recipes are checked before torch and TRL load).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DataArguments": "config",
    "PreventativeSFTConfig": "config",
    "PreventativeSFTTrainer": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
