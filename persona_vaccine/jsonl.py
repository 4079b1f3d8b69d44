"""Append-only JSONL files that survive a crash: a line cut short is skipped, and repaired before appending."""

from __future__ import annotations

import json
from pathlib import Path


def _parsed_lines(text: str) -> list[tuple[str, dict]]:
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash: its work is redone
        if isinstance(record, dict):
            out.append((line, record))
    return out


def read_records(path: str | Path) -> list[dict]:
    """The JSON objects of a JSONL file, in order (none when the file is missing)."""
    path = Path(path)
    return [record for _, record in _parsed_lines(path.read_text())] if path.is_file() else []


def repair(path: str | Path) -> list[dict]:
    """Rewrite the file without torn lines (so appends start on a fresh line); return its records."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text()
    parsed = _parsed_lines(text)
    if len(parsed) != len(text.splitlines()) or (text and not text.endswith("\n")):
        path.write_text("".join(line + "\n" for line, _ in parsed))
    return [record for _, record in parsed]
