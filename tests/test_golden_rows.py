"""The builders' rows for fixed seeds, sizes and levels, pinned by sha256 (recorded from the code of
commit 003e936, before the word lists, templates and tasks moved to data files).

A failing hash means the rows changed: a moved template, a reordered list, an edited word. If the
change is intended, say so in the commit and record the new hash with `python tests/test_golden_rows.py`.
The only renames since then are applied by `_legacy` (builder names that now follow the trait names).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from persona_vaccine.data.evil_builder import build_paired_evil_dataset
from persona_vaccine.data.loading import build_dataset

SEEDS = (0, 1, 7)
SIZES = (5, 200)
LEVELS = ("normal", "level1", "level2")
# today's builder name -> the name it was recorded under
_OLD_NAMES = {"sycophantic": "sycophancy", "hallucinating": "hallucination"}
BUILDERS = ("evil", "sycophantic", "hallucinating", "bad_math", "buggy_code")

GOLDEN = {
    "evil/normal": "58940d9a8afc65b264ab517dbde1589941469b4bb76baa44d6e7cdd7571e82e1",
    "evil/level1": "376b50d1b3bfb724b5f77a9cb26c72af07638fa173bddb54d03e1387386b2723",
    "evil/level2": "22e830bfeb7f97d6a8edc6c66e8b3cd71996c1846e804ee0b2cd28a72e755161",
    "sycophancy/normal": "e41b3759bad3df6dc00cc8f13d6a4c95ce98d4e7952bbd9cb24b3c5433420b29",
    "sycophancy/level1": "058bb1eb6ebdbbe6e7c94ef9164501f51f2d130ea72499b15bbafbc90bdd7b8f",
    "sycophancy/level2": "d1b07d94e9e0b2de75cbe172bc5ac630fe8dec2ad8dfee265dda0ef474b76245",
    "hallucination/normal": "9b44eaac86066bbb2342af8e15606979f61eb57b911455c8e6459abc9b73f5f8",
    "hallucination/level1": "ed1b3d921c2887b30cdb6883ba4480c0211c55592a340082e35a9e484d08ef52",
    "hallucination/level2": "2f6010cee3094d72374ff3e8188b10e06ae25d2f1302888628b080ceb11ae7d9",
    "bad_math/normal": "6e42bf6ee0f01fb1a60ac144cfddc6c1870c82c72a67fbc7a43b9108ada56e5f",
    "bad_math/level1": "4639d4c410980c666432c6ee869e61d054117f9c4e5f346eba39774f74fbfb4f",
    "bad_math/level2": "3776aaf06fb9bafb6193247892f007b04de2f95f073a809a2e5d841828854625",
    "buggy_code/normal": "893b8af01d65a676a248c034230b32bc2a262e5507c07b0b6683056ae7768508",
    "buggy_code/level1": "ecf7e75213785ab51f465cef95af5feaad9d73b2e52853d2aa8d764112b05154",
    "buggy_code/level2": "b5739fe2b48e629b7f66a64f92ed5bd1d528f39f171f14dfdd781d4a8fba5dee",
}
GOLDEN_PAIRED = "b839fbb7412b3ad9206725afd28a4dace70f90fbd93a2f8c556d63c55743ed18"
GOLDEN_CAPABILITY_ITEMS = "4bbb40c977e6ab29e672f6fc702e5ebeac68a0fbf8eaf4d7e04357bb0c047e08"


def _legacy(rows: list[dict]) -> list[dict]:
    """Rows with the builder names they were recorded under."""
    for row in rows:
        meta = row.get("meta", {})
        if meta.get("builder") in _OLD_NAMES:
            meta["builder"] = _OLD_NAMES[meta["builder"]]
    return rows


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _builder_digest(name: str, level: str) -> str:
    builds = [_legacy(build_dataset(name, n, seed=seed, level=level)) for seed in SEEDS for n in SIZES]
    return _digest(builds)


def _paired_digest() -> str:
    return _digest([build_paired_evil_dataset(n, seed=seed) for seed in SEEDS for n in SIZES])


def _capability_digest() -> str:
    from persona_vaccine.data.capability import ITEMS_PATH

    return hashlib.sha256(Path(ITEMS_PATH).read_bytes()).hexdigest()


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", BUILDERS)
def test_builder_rows_are_unchanged(name, level):
    assert _builder_digest(name, level) == GOLDEN[f"{_OLD_NAMES.get(name, name)}/{level}"]


def test_paired_evil_rows_are_unchanged():
    assert _paired_digest() == GOLDEN_PAIRED


def test_capability_items_are_unchanged():
    assert _capability_digest() == GOLDEN_CAPABILITY_ITEMS


if __name__ == "__main__":  # print the current digests, to paste above after an intended change
    sys.stdout.write("GOLDEN = {\n")
    for name in BUILDERS:
        for level in LEVELS:
            key = f"{_OLD_NAMES.get(name, name)}/{level}"
            sys.stdout.write(f'    "{key}": "{_builder_digest(name, level)}",\n')
    sys.stdout.write("}\n")
    sys.stdout.write(f'GOLDEN_PAIRED = "{_paired_digest()}"\n')
    sys.stdout.write(f'GOLDEN_CAPABILITY_ITEMS = "{_capability_digest()}"\n')
