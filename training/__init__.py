"""persona-vaccine training: the preventative steering trainer, its configs, drift logging and runs."""

from .config import DataArguments, PreventativeSFTConfig
from .trainer import PreventativeSFTTrainer

__all__ = ["DataArguments", "PreventativeSFTConfig", "PreventativeSFTTrainer"]
