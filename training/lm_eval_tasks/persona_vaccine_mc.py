"""Data of the persona_vaccine_mc lm-eval task: the built-in items, a local JSON Lines file."""

from __future__ import annotations

from pathlib import Path

ITEMS = Path(__file__).resolve().parents[2] / "data" / "capability" / "items.jsonl"


def load_items(**kwargs):
    """{"test": the items} with datasets' json builder (lm-eval passes the task metadata as kwargs)."""
    import datasets

    return datasets.load_dataset("json", data_files={"test": str(ITEMS)})
