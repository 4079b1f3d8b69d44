"""persona-vaccine training: the preventative steering trainer, its configs, drift logging and runs.

The names below are imported on first use (recipes are checked before torch and TRL load).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from persona_vaccine.training.config import DataArguments, PreventativeSFTConfig
    from persona_vaccine.training.trainer import PreventativeSFTTrainer

_EXPORTS = {
    "DataArguments": "config",
    "PreventativeSFTConfig": "config",
    "PreventativeSFTTrainer": "trainer",
}

__all__ = ["DataArguments", "PreventativeSFTConfig", "PreventativeSFTTrainer"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
