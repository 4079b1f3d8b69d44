"""The built-in multiple-choice capability benchmark: its facts (`facts.yaml`), the generator
(`make_items.py`) and the generated items (`items.jsonl`, read by training/capability.py)."""

from __future__ import annotations

from pathlib import Path

ITEMS_PATH = Path(__file__).with_name("items.jsonl")
FACTS_PATH = Path(__file__).with_name("facts.yaml")
