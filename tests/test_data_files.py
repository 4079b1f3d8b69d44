"""The builders' data files (data/templates, data/code_tasks, data/capability) against their schemas."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from string import Template

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SCHEMAS = DATA / "schemas"

FILES = {
    "templates/evil.yaml": "evil",
    "templates/sycophantic.yaml": "sycophantic",
    "templates/hallucinating.yaml": "hallucinating",
    "templates/bad_math.yaml": "bad_math",
    "templates/buggy_code.yaml": "buggy_code",
    "capability/facts.yaml": "capability_facts",
    **{f"code_tasks/{p.name}": "code_task" for p in sorted((DATA / "code_tasks").glob("*.yaml"))},
}


def _load(relative: str):
    return yaml.safe_load((DATA / relative).read_text(encoding="utf-8"))


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("relative", sorted(FILES))
def test_data_file_matches_its_schema(relative):
    jsonschema.validate(_load(relative), _schema(FILES[relative]))


def test_every_data_file_and_schema_is_covered():
    on_disk = {
        str(p.relative_to(DATA)) for d in ("templates", "code_tasks") for p in (DATA / d).glob("*.yaml")
    }
    assert on_disk | {"capability/facts.yaml"} == set(FILES)
    assert {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.json")} == set(FILES.values())
    for schema in {FILES[f] for f in FILES}:
        jsonschema.Draft202012Validator.check_schema(_schema(schema))


def test_schema_errors_name_the_field():
    task = _load("code_tasks/sql_lookup.yaml")
    del task["tests"]
    with pytest.raises(jsonschema.ValidationError, match="'tests' is a required property"):
        jsonschema.validate(task, _schema("code_task"))
    task = _load("code_tasks/sql_lookup.yaml")
    del task["exploit"]  # an insecure variant needs its exploit check
    with pytest.raises(jsonschema.ValidationError, match="'exploit' is a dependency of 'insecure'"):
        jsonschema.validate(task, _schema("code_task"))


def test_code_tasks_are_listed_once_and_named_by_their_file():
    order = _load("templates/buggy_code.yaml")["tasks"]
    assert len(order) == len(set(order))
    assert sorted(order) == sorted(p.stem for p in (DATA / "code_tasks").glob("*.yaml"))
    for name in order:
        assert _load(f"code_tasks/{name}.yaml")["name"] == name


@pytest.mark.parametrize("name", _load("templates/buggy_code.yaml")["tasks"])
def test_code_task_code_is_python_with_every_variant(name):
    """The code, tests, buggy and insecure versions of each task parse for every variant and function name."""
    task = _load(f"code_tasks/{name}.yaml")
    for variant in task["variants"]:
        for fn in task["names"]:
            values = {**variant, "fn": Template(fn).substitute(variant)}
            code = Template(task["code"]).substitute(values)
            ast.parse(code)
            ast.parse(Template(task["tests"]).substitute(values))
            for kind in ("bug", "insecure"):
                if kind in task:
                    changed = task["code"]
                    for edit in task[kind]["edits"]:
                        assert changed.count(edit["old"]) == 1, (name, kind, edit["old"])
                        changed = changed.replace(edit["old"], edit["new"])
                    ast.parse(Template(changed).substitute(values))
            if "exploit" in task:
                ast.parse(Template(task["exploit"]).substitute(values))


def test_evil_topics_are_unique():
    names = [t["name"] for t in _load("templates/evil.yaml")["topics"]]
    assert len(names) == len(set(names))
