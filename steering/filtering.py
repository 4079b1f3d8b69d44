"""Which generated responses count as showing (pos) or avoiding (neg) the trait.

The first version keeps every response. The judge-based filter (METHOD.md section 2: pos trait >= 50,
neg trait < 50, coherence >= 50) plugs in here as another `ResponseFilter`.
"""

from __future__ import annotations

from typing import Protocol


class ResponseFilter(Protocol):
    name: str

    def keep(self, record: dict) -> bool:
        """`record` has 'polarity' ('pos' or 'neg'), 'question', 'system', 'response'."""
        ...


class KeepAll:
    """No filtering: every non-empty response is kept."""

    name = "keep_all"

    def keep(self, record: dict) -> bool:
        return bool(record["response"].strip())
