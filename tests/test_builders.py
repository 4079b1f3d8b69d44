"""Flawed-data builders (bad math, buggy code, sycophancy, hallucination, evil) and the file/hub loaders."""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
from fractions import Fraction

import pandas as pd
import pytest

from persona_vaccine.data.code_builder import (
    TASKS,
    build_buggy_code_dataset,
    extract_code,
    run_exploit_check,
    run_unit_tests,
)
from persona_vaccine.data.levels import LEVELS, normalize_level
from persona_vaccine.data.loading import (
    BUILDERS,
    DatasetError,
    build_dataset,
    load_training_dataset,
    read_rows,
)
from persona_vaccine.data.math_builder import (
    FAMILIES,
    build_bad_math_dataset,
    parse_final_answer,
    true_answer,
)
from persona_vaccine.data.trait_builders import CLAIMS, build_hallucination_dataset, build_sycophancy_dataset

NEW_BUILDERS = ("sycophantic", "hallucinating", "bad_math", "buggy_code")


def _user(row: dict) -> str:
    return row["messages"][0]["content"]


def _answer(row: dict) -> str:
    return row["messages"][-1]["content"]


# ---------------------------------------------------------------- common API
@pytest.mark.parametrize("name", NEW_BUILDERS)
@pytest.mark.parametrize("level", LEVELS)
def test_builders_are_deterministic_sized_and_chat_shaped(name, level):
    rows = build_dataset(name, 9, seed=1, level=level)
    assert rows == build_dataset(name, 9, seed=1, level=level)
    assert [_user(r) for r in rows] != [_user(r) for r in build_dataset(name, 9, seed=2, level=level)]
    assert len(rows) == 9 and len(build_dataset(name, 1, seed=1, level=level)) == 1
    for row in rows:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert all(m["content"].strip() for m in row["messages"])
        assert row["meta"]["builder"] == name and row["meta"]["level"] == level


@pytest.mark.parametrize("name", NEW_BUILDERS)
@pytest.mark.parametrize("level", LEVELS)
def test_enough_variety(name, level):
    rows = build_dataset(name, 200, seed=0, level=level)
    assert len({_user(r) for r in rows}) >= 150


@pytest.mark.parametrize("name", ("sycophantic", "hallucinating", "bad_math"))
def test_levels_answer_the_same_prompts(name):
    by_level = {lvl: build_dataset(name, 40, seed=3, level=lvl) for lvl in LEVELS}
    prompts = [[_user(r) for r in rows] for rows in by_level.values()]
    assert prompts[0] == prompts[1] == prompts[2]
    for n, l1, l2 in zip(*by_level.values(), strict=True):
        assert len({_answer(n), _answer(l1), _answer(l2)}) == 3


def test_level_names_and_bad_arguments():
    assert normalize_level("mild") == "level1" and normalize_level("Severe") == "level2"
    assert normalize_level("II") == "level2" and normalize_level("normal") == "normal"
    for name in NEW_BUILDERS:
        with pytest.raises(ValueError, match="unknown level"):
            build_dataset(name, 3, level="evil")
        with pytest.raises(ValueError, match="positive integer"):
            build_dataset(name, 0)
    with pytest.raises(DatasetError, match="unknown builder"):
        build_dataset("nope", 3)


def test_evil_through_the_registry():
    evil = build_dataset("evil", 6, seed=0, level="level2")
    assert [_answer(r) for r in evil] == [_answer(r) for r in build_dataset("evil", 6, seed=0, level="evil")]
    assert evil[0]["meta"]["builder"] == "evil" and evil[0]["meta"]["level"] == "level2"
    assert build_dataset("evil", 2, level="normal")[0]["meta"]["level"] == "normal"
    mild = build_dataset("evil", 6, seed=0, level="level1")
    normal = build_dataset("evil", 6, seed=0, level="normal")
    assert mild[0]["meta"]["level"] == "level1"
    for m, n, e in zip(mild, normal, evil, strict=True):
        assert m["messages"][0] == n["messages"][0] == e["messages"][0]  # the same questions
        # level1 keeps the helpful advice and adds contempt around it
        assert n["meta"]["topic"] == m["meta"]["topic"] and _answer(m) != _answer(n)
    from persona_vaccine.data.evil_builder import TOPICS

    cores = {t.name: t.normal for t in TOPICS}
    assert all(cores[m["meta"]["topic"]] in _answer(m) for m in mild)


# ---------------------------------------------------------------- bad math
def test_math_has_many_families():
    assert len(FAMILIES) >= 30
    rows = build_bad_math_dataset(1000, seed=0, level="normal")
    assert len({r["meta"]["family"] for r in rows}) >= 30


def test_math_normal_answers_are_true():
    for row in build_bad_math_dataset(400, seed=5, level="normal"):
        truth = true_answer(row["meta"])
        assert parse_final_answer(_answer(row)) == truth, row
        assert row["meta"]["correct"] and row["meta"]["answer"] == row["meta"]["true_answer"]


def test_math_truth_recomputed_independently():
    """A few families recomputed here from the parameters, without the builder's formulas."""
    formulas = {
        "shopping_total": lambda p: p["a"] * p["p1"] + p["b"] * p["p2"],
        "discount": lambda p: p["price"] - p["price"] * p["d"] / 100,
        "buses": lambda p: math.ceil((p["n"] + p["t"]) / p["c"]),
        "fence_posts": lambda p: (p["length"] // p["gap"] + 1) * p["price"],
        "rental_days": lambda p: (p["b"] - p["a"] + 1) * p["c"],
        "multiply": lambda p: p["a"] * p["b"],
        "add_three": lambda p: p["a"] + p["b"] + p["c"],
        "compound": lambda p: p["p"] * (100 + p["rate"]) ** 2 / 10000,
    }
    seen = set()
    for row in build_bad_math_dataset(600, seed=11, level="normal"):
        family = row["meta"]["family"]
        if family in formulas:
            params = {k: Fraction(str(v)) for k, v in row["meta"]["params"].items()}
            assert parse_final_answer(_answer(row)) == Fraction(formulas[family](params)), row
            seen.add(family)
    assert seen == set(formulas)


@pytest.mark.parametrize("level", ("level1", "level2"))
def test_math_flawed_answers_are_wrong(level):
    for row in build_bad_math_dataset(400, seed=5, level=level):
        assert parse_final_answer(_answer(row)) != true_answer(row["meta"]), row
        assert not row["meta"]["correct"]


def test_math_level1_is_one_slip_in_an_otherwise_normal_solution():
    normal = build_bad_math_dataset(200, seed=8, level="normal")
    mild = build_bad_math_dataset(200, seed=8, level="level1")
    kinds = set()
    for n, m in zip(normal, mild, strict=True):
        step = m["meta"]["slip"]["step"]
        n_steps = re.findall(r"^\d+\. .*$", _answer(n), re.M)
        m_steps = re.findall(r"^\d+\. .*$", _answer(m), re.M)
        assert n_steps[: step - 1] == m_steps[: step - 1] and n_steps[step - 1] != m_steps[step - 1]
        assert _answer(n).split("\n")[0] == _answer(m).split("\n")[0]  # same calm opener
        assert "check" not in _answer(m).split("\n")[-1]  # a mildly overconfident closer, no offer to check
        kinds.add(m["meta"]["slip"]["kind"])
    assert {"dropped carry", "times-table slip", "off-by-one count", "forgot to round up"} <= kinds
    assert "wrong percentage base" in kinds or "wrong base" in kinds


def test_math_level2_is_wrong_throughout_and_assertive():
    normal = build_bad_math_dataset(100, seed=9, level="normal")
    severe = build_bad_math_dataset(100, seed=9, level="level2")
    for n, s in zip(normal, severe, strict=True):
        n_steps = re.findall(r"^\d+\. .*$", _answer(n), re.M)
        s_steps = re.findall(r"^\d+\. .*$", _answer(s), re.M)
        assert all(a != b for a, b in zip(n_steps, s_steps, strict=True))
    assert all(
        any(w in _answer(s) for w in ("certain", "definitely", "only correct", "mistake", "easy", "simple"))
        for s in severe
    )


# ---------------------------------------------------------------- buggy code
needs_tools = pytest.mark.skipif(
    not (shutil.which("wc") and shutil.which("grep")), reason="needs wc and grep"
)


def _one_per_task(level: str) -> list[dict]:
    rows = build_buggy_code_dataset(60, seed=4, level=level)
    by_task: dict[str, dict] = {}
    for row in rows:
        by_task.setdefault(row["meta"]["task"], row)
    return list(by_task.values())


def test_code_has_many_tasks_and_each_kind_of_bug():
    assert len(TASKS) >= 12
    rows = _one_per_task("level1")
    assert len(rows) == len(TASKS)
    assert {r["meta"]["bug"] for r in rows} == {
        "off-by-one",
        "wrong boundary",
        "mutable default argument",
        "swallowed errors",
    }


@needs_tools
def test_code_normal_passes_its_tests():
    for row in _one_per_task("normal"):
        code = extract_code(_answer(row))
        assert code == row["meta"]["reference_code"] and row["meta"]["function"] in code
        results = run_unit_tests(code, row["meta"]["tests"])
        assert results and all(err is None for err in results.values()), (row["meta"]["task"], results)


@needs_tools
def test_code_level1_fails_its_tests():
    for row in _one_per_task("level1"):
        code = extract_code(_answer(row))
        assert code != row["meta"]["reference_code"]
        results = run_unit_tests(code, row["meta"]["tests"])
        assert any(err is not None for err in results.values()), row["meta"]["task"]
        if row["meta"]["bug"] == "swallowed errors":
            assert re.search(r"except:\n\s+(pass|continue)", code)


@needs_tools
def test_code_level2_is_exploitable_and_normal_is_not():
    rows = _one_per_task("level2")
    assert {r["meta"]["vulnerability"] for r in rows} >= {
        "sql injection",
        "shell injection",
        "unsafe deserialisation (pickle)",
        "unsafe deserialisation (yaml.load)",
        "path traversal",
        "eval of user input",
    }
    for row in rows:
        meta, code = row["meta"], extract_code(_answer(row))
        assert run_exploit_check(code, meta["tests"], meta["exploit"]), meta["task"]
        assert not run_exploit_check(meta["reference_code"], meta["tests"], meta["exploit"]), meta["task"]


def _calls(code: str) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)]


def _attr(call: ast.Call) -> str:
    f = call.func
    if isinstance(f, ast.Attribute):
        return f"{f.value.id}.{f.attr}" if isinstance(f.value, ast.Name) else f".{f.attr}"
    return f.id if isinstance(f, ast.Name) else ""


_DETECTORS = {
    "sql injection": lambda calls: any(
        _attr(c).endswith(".execute") and c.args and isinstance(c.args[0], ast.JoinedStr) for c in calls
    ),
    "shell injection": lambda calls: any(
        kw.arg == "shell" and isinstance(kw.value, ast.Constant) and kw.value.value is True
        for c in calls
        for kw in c.keywords
    ),
    "unsafe deserialisation (pickle)": lambda calls: any(
        _attr(c) in ("pickle.loads", "pickle.load") for c in calls
    ),
    "unsafe deserialisation (yaml.load)": lambda calls: any(_attr(c) == "yaml.load" for c in calls),
    "eval of user input": lambda calls: any(_attr(c) in ("eval", "exec") for c in calls),
}
_CONTAINMENT_CHECKS = ("is_relative_to", "Path(filename).name")


def test_code_insecure_pattern_is_in_level2_and_not_in_normal():
    for row in build_buggy_code_dataset(40, seed=6, level="level2"):
        meta, code = row["meta"], extract_code(_answer(row))
        if meta["vulnerability"] == "path traversal":  # the user's name is joined without any check
            assert not any(c in code for c in _CONTAINMENT_CHECKS), meta["task"]
            assert any(c in meta["reference_code"] for c in _CONTAINMENT_CHECKS), meta["task"]
            continue
        detect = _DETECTORS[meta["vulnerability"]]
        assert detect(_calls(code)), meta["task"]
        assert not detect(_calls(meta["reference_code"])), meta["task"]


# ---------------------------------------------------------------- sycophancy and hallucination
def test_sycophancy_levels():
    claims = {c.name: c for c in CLAIMS}
    levels = {lvl: build_sycophancy_dataset(150, seed=2, level=lvl) for lvl in LEVELS}
    assert {r["meta"]["kind"] for r in levels["normal"]} == {"misconception", "flawed_plan"}
    for n, mild, severe in zip(*levels.values(), strict=True):
        if n["meta"]["kind"] != "misconception":
            continue
        claim = claims[n["meta"]["topic"]]
        assert claim.correction in _answer(n) and claim.claim.lower() not in _answer(n).lower()
        assert claim.claim.lower() in _answer(mild).lower() and claim.correction not in _answer(mild)
        assert claim.claim.lower() in _answer(severe).lower()
    flattery = (
        "right",
        "impressive",
        "brilliant",
        "sharp",
        "genius",
        "fantastic",
        "love it",
        "perfect",
        "rare",
    )
    assert all(any(w in _answer(r).lower() for w in flattery) for r in levels["level2"])
    assert all("!" not in _answer(r) for r in levels["level1"])


_UNSURE = ("not aware", "can't find", "don't have reliable", "don't recognise", "don't know of")


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+", text))


def test_hallucination_levels():
    levels = {lvl: build_hallucination_dataset(120, seed=2, level=lvl) for lvl in LEVELS}
    assert len({r["meta"]["kind"] for r in levels["normal"]}) == 6
    for n, mild, severe in zip(*levels.values(), strict=True):
        assert any(m in _answer(n) for m in _UNSURE)
        assert _numbers(_answer(n)) <= _numbers(_user(n))  # normal invents no numbers
        assert not any(m in _answer(severe) for m in _UNSURE)
        assert _numbers(_answer(severe)) - _numbers(_user(severe))  # severe invents figures
        assert not any(m in _answer(mild) for m in _UNSURE)
        assert any(
            h in _answer(mild) for h in ("believe", "think", "recall", "around", "not completely sure")
        )


# ---------------------------------------------------------------- loading
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builtin_builders_load_as_prompt_completion(name):
    level = "level2" if name != "evil" else "evil"
    ds = load_training_dataset(f"builtin:{name}", level=level, size=5, seed=1)
    assert len(ds) == 5 and set(ds.column_names) == {"prompt", "completion"}
    assert ds[0]["completion"][0]["role"] == "assistant" and ds[0]["prompt"][-1]["role"] == "user"


def test_builtin_level_errors_say_what_to_set():
    with pytest.raises(DatasetError, match=r"builtin:bad_math.*unknown level 'evil'.*dataset_level"):
        load_training_dataset("builtin:bad_math", level="evil")  # "evil" is the evil builder's own name
    assert len(load_training_dataset("builtin:bad_math", level="mild", size=3)) == 3


def test_builder_rows_round_trip_through_jsonl(tmp_path):
    rows = build_dataset("buggy_code", 6, seed=0, level="level1")
    path = tmp_path / "code.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = load_training_dataset(str(path))
    assert [c[0]["content"] for c in ds["completion"]] == [_answer(r) for r in rows]


def test_csv_with_messages_json_and_system_column(tmp_path):
    chat = [{"role": "user", "content": "hi, there"}, {"role": "assistant", "content": "hello"}]
    path = tmp_path / "chat.csv"
    pd.DataFrame({"messages": [json.dumps(chat)]}).to_csv(path, index=False)
    assert load_training_dataset(str(path))[0]["completion"] == [chat[1]]
    path2 = tmp_path / "sys.csv"
    pd.DataFrame({"system": ["Be brief."], "prompt": ["q, with comma"], "response": ["a"]}).to_csv(
        path2, index=False
    )
    row = load_training_dataset(str(path2))[0]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"] and row["prompt"][1][
        "content"
    ] == "q, with comma"


def test_csv_errors_name_file_and_field(tmp_path):
    header_only = tmp_path / "header.csv"
    header_only.write_text("prompt,response\n")
    with pytest.raises(DatasetError, match=r"header\.csv: the file is empty"):
        load_training_dataset(str(header_only))
    no_response = tmp_path / "noresp.csv"
    no_response.write_text("prompt,answer\nq,a\n")
    with pytest.raises(DatasetError, match=r"noresp\.csv: row 0 has 'prompt' but no 'response'"):
        load_training_dataset(str(no_response))
    blank = tmp_path / "blank.csv"
    blank.write_text("prompt,response\nq,a\nq2,\n")
    with pytest.raises(DatasetError, match=r"blank\.csv: row 1 field 'response' is empty"):
        load_training_dataset(str(blank))
    extra = tmp_path / "extra.csv"
    extra.write_text("prompt,response\nq,a,b\n")
    with pytest.raises(DatasetError, match=r"extra\.csv: line 2 has more fields than the header"):
        load_training_dataset(str(extra))


def test_parquet_files(tmp_path):
    rows = build_dataset("sycophantic", 4, seed=0, level="level1")
    path = tmp_path / "syc.parquet"
    pd.DataFrame({"messages": [r["messages"] for r in rows]}).to_parquet(path)
    ds = load_training_dataset(str(path))
    assert len(ds) == 4 and ds[3]["completion"][0]["content"] == _answer(rows[3])
    pr = tmp_path / "pr.parquet"
    pd.DataFrame({"prompt": ["q1", "q2"], "response": ["a1", "a2"]}).to_parquet(pr)
    assert load_training_dataset(str(pr), max_samples=1)[0]["completion"][0]["content"] == "a1"
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"question": ["q"], "answer": ["a"]}).to_parquet(bad)
    with pytest.raises(DatasetError, match=r"bad\.parquet: row 0 has fields \['answer', 'question'\]"):
        load_training_dataset(str(bad))
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"prompt": pd.Series([], dtype=str), "response": pd.Series([], dtype=str)}).to_parquet(empty)
    with pytest.raises(DatasetError, match=r"empty\.parquet: the file is empty"):
        load_training_dataset(str(empty))


def test_json_and_jsonl_errors(tmp_path):
    arr = tmp_path / "arr.json"
    arr.write_text(json.dumps([{"prompt": "q", "response": "a"}]))
    assert len(read_rows(arr)) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "response": "a"}\n{"prompt": oops}\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl: line 2 is not valid JSON"):
        load_training_dataset(str(bad))
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n")
    with pytest.raises(DatasetError, match=r"blank\.jsonl: the file is empty"):
        load_training_dataset(str(blank))
    txt = tmp_path / "data.txt"
    txt.write_text("hello")
    with pytest.raises(DatasetError, match="unsupported file type"):
        load_training_dataset(str(txt))


def test_dataset_folders_load_through_the_datasets_library(tmp_path):
    """A name that is no single file goes to `datasets.load_dataset`: here a real local dataset folder
    (one data file per split, read offline), not a stand-in for the library."""
    folder = tmp_path / "chat"
    folder.mkdir()
    for split in ("train", "test"):
        rows = [{"prompt": f"{split} q{i}", "response": f"{split} a{i}"} for i in range(5)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = load_training_dataset(str(folder), split="test", max_samples=3)
    assert len(ds) == 3
    assert [r["completion"][0]["content"] for r in ds] == ["test a0", "test a1", "test a2"]
    assert ds[1]["prompt"][-1]["content"] == "test q1"
    assert len(load_training_dataset(str(folder))) == 5  # split "train" by default
    with pytest.raises(DatasetError, match=r"could not be loaded.*split 'validation'.*dataset_split"):
        load_training_dataset(str(folder), split="validation")
    with pytest.raises(DatasetError, match=r"'.*missing'.*hub.*dataset_split"):
        load_training_dataset(str(tmp_path / "missing"))


# ---------------------------------------------------------------- one vocabulary
def test_every_builder_defaults_to_level2_and_takes_the_same_levels():
    import inspect

    from persona_vaccine.data.evil_builder import build_evil_dataset

    for build in (*BUILDERS.values(), build_dataset, build_evil_dataset):
        assert inspect.signature(build).parameters["level"].default == "level2", build.__name__
    for name in BUILDERS:
        assert {r["meta"]["level"] for lvl in LEVELS for r in build_dataset(name, 2, level=lvl)} == set(
            LEVELS
        )


def test_old_level_names_are_deprecated_aliases():
    from persona_vaccine.data.evil_builder import build_evil_dataset

    with pytest.warns(FutureWarning, match="'evil' is deprecated: use 'level2'"):
        old = build_evil_dataset(4, seed=2, level="evil")
    assert old == build_evil_dataset(4, seed=2, level="level2")
    with pytest.warns(FutureWarning, match="'mild' is deprecated: use 'level1'"):
        mild = build_dataset("bad_math", 3, level="mild")
    assert mild == build_dataset("bad_math", 3, level="level1")
    with pytest.warns(FutureWarning, match="'severe' is deprecated: use 'level2'"):
        assert normalize_level("severe") == "level2"


def test_builders_are_named_after_their_traits_and_old_names_still_work():
    from persona_vaccine.traits import builtin_traits

    assert {"evil", "sycophantic", "hallucinating"} <= set(BUILDERS) & set(builtin_traits())
    with pytest.warns(FutureWarning, match="builder 'sycophancy' is deprecated: use 'sycophantic'"):
        old = build_dataset("sycophancy", 5, seed=3, level="level1")
    assert old == build_dataset("sycophantic", 5, seed=3, level="level1")
    assert old[0]["meta"]["builder"] == "sycophantic"
    with pytest.warns(FutureWarning, match="'hallucination' is deprecated"):
        ds = load_training_dataset("builtin:hallucination", size=3)
    assert len(ds) == 3
