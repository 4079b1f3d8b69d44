"""RunSummary: summary.json as the run writes it, read back by every reader; clear errors for bad files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from persona_vaccine.training.summary import SUMMARY_VERSION, RunSummary, SummaryError

# A summary as training/run.py wrote it before RunSummary existed (keys in its order).
WRITTEN = {
    "recipe": "recipes/tiny/evil/preventative.yaml",
    "model": "tiny",
    "cwd": "/work",
    "config": "config.yaml",
    "train": {
        "steps": 3, "final_loss": 2.5, "mean_loss": 2.75, "runtime_s": 1.25, "resumed_from_step": 0,
        "examples": 12, "world_size": 1, "engine": "PeftModel", "num_layers": 4,
    },
    "trait_drift": {"evil": {"layer": 2, "base_projection": 0.5, "final_projection": 0.25, "shift": -0.25}},
    "steering": [
        {"trait": "evil", "layer": 2, "coef": 4.0, "mode": "add", "positions": "all", "coef_unit": "raw"}
    ],
    "persona_vectors": ["vectors/evil.safetensors"],
    "persona_vector_copies": ["persona_vectors/0_evil.safetensors"],
    "inference_steering_coef": None,
    "evaluation": {
        "capability_benchmarks": ["mc"], "capability_mc_limit": 8, "judge_after_training": "none",
        "judge_answer_prefix": "Score: ", "judge_questions": 10,
    },
    "dataset": {"source": "builtin:evil", "level": "level2", "size": 12, "builder_size": 16, "seed": 0},
    "losses": [3.0, 2.75, 2.5],
    "capability": {"capability/mc_chat_letter_accuracy": 0.25},
    "drift_alerts": {"alert_above": {"*": 1.0}, "stop_above": {}, "alerts": [], "stopped": None},
}  # fmt: skip


def test_a_summary_written_before_versions_reads_and_writes_back_the_same_bytes(tmp_path):
    old = tmp_path / "summary.json"
    old.write_text(json.dumps(WRITTEN, indent=2))
    summary = RunSummary.read(old)
    assert (
        summary.version == 1 and summary.train["steps"] == 3 and summary.trait_drift["evil"]["shift"] == -0.25
    )
    assert summary.trait_expression is None and summary.screening is None  # sections that did not run
    again = summary.write(tmp_path / "again" / "summary.json")
    assert again.read_text() == json.dumps({"version": SUMMARY_VERSION, **WRITTEN}, indent=2)
    assert not list(again.parent.glob("*.tmp"))


def test_unknown_keys_are_kept_after_the_known_ones(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"notes": "by hand", **WRITTEN, "new_section": {"a": 1}}))
    summary = RunSummary.read(path)
    assert summary.extra == {"notes": "by hand", "new_section": {"a": 1}}
    assert list(summary.to_dict())[-2:] == ["notes", "new_section"]


def test_a_partial_summary_reads_with_empty_sections(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"train": {"steps": 2}, "steering": None}))
    summary = RunSummary.read(tmp_path)  # the run directory works too
    assert summary.train == {"steps": 2} and summary.steering == [] and summary.model is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, r"run: no summary\.json \(not a finished training run directory\)"),
        ('{"train": {"steps": 2', r"summary\.json: not a readable summary"),
        ("[1, 2]", r"summary\.json: expected a JSON object, got list"),
        ('{"version": 99}', r"summary version 99 is newer than this persona-vaccine reads \(1\): upgrade"),
        ('{"version": "one"}', r"field 'version' must be a positive integer"),
        ('{"train": [1]}', r"summary\.json: field 'train' must be an object, got \[1\]"),
        ('{"losses": {"a": 1}}', r"field 'losses' must be a list"),
        ('{"capability": 0.5}', r"field 'capability' must be an object"),
    ],
)
def test_bad_summary_files_are_one_clear_error_naming_the_file(tmp_path, text, message):
    run = tmp_path / "run"
    run.mkdir()
    if text is not None:
        (run / "summary.json").write_text(text)
    with pytest.raises(SummaryError, match=message) as info:
        RunSummary.read(run / "summary.json")
    assert str(run) in str(info.value)


def test_a_write_cut_short_leaves_the_previous_summary_whole(tmp_path):
    """A full disk (here: a file-size limit) mid-write leaves the earlier summary.json as it was."""
    path = RunSummary.from_dict(WRITTEN).write(tmp_path / "summary.json")
    before = path.read_bytes()
    script = (
        "import resource, sys; from persona_vaccine.training.summary import RunSummary\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n    RunSummary(losses=[0.123456789] * 5000).write(sys.argv[1])\n"
        "except OSError as e:\n    print('failed:', e.errno)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.startswith("failed:"), proc.stderr
    assert path.read_bytes() == before and not list(tmp_path.glob("*.tmp"))
