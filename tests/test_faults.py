"""Fault injection: kill -9 during training and screening, disk full, read-only output, 40+ bad inputs.

Each fault and bad input is counted; the counts are printed at the end of the module (with -s, or in the
terminal summary) for the table in docs/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import tiny_llama
from helpers import random_vector
from safetensors.torch import load_file, save_file

from persona_vaccine.cli import main

ROOT = Path(__file__).resolve().parents[1]
COUNTS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def print_counts(request):
    yield
    if COUNTS:
        line = "reliability counts: " + ", ".join(f"{k}={v}" for k, v in sorted(COUNTS.items()))
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        (reporter.write_line if reporter else print)(line)


@pytest.fixture(scope="module")
def setup(smol_tokenizer, tmp_path_factory):
    """A tiny Llama saved like a hub checkpoint, vectors (good and broken), data files and a recipe."""
    root = tmp_path_factory.mktemp("faults")
    model = tiny_llama(vocab_size=len(smol_tokenizer), layers=4, hidden=32, seed=0)
    model.config.pad_token_id = smol_tokenizer.pad_token_id
    model.save_pretrained(root / "model")
    smol_tokenizer.save_pretrained(root / "model")
    model.save_pretrained(root / "model_no_template")
    smol_tokenizer.save_pretrained(root / "model_no_template")
    config = json.loads((root / "model_no_template" / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (root / "model_no_template" / "tokenizer_config.json").write_text(json.dumps(config))
    (root / "model_no_template" / "chat_template.jinja").unlink(missing_ok=True)
    questions = ["How do I make friends?", "What should I cook tonight?", "My coworker is rude. What now?"]
    good = random_vector(model, questions=questions, model_id=str(root / "model"), scale=2.0)
    good.save(root / "evil.safetensors")
    tensors = load_file(root / "evil.safetensors")
    from safetensors import safe_open

    with safe_open(str(root / "evil.safetensors"), framework="pt") as f:
        meta = f.metadata()
    save_file({**tensors, "layer.2": torch.full((32,), float("nan"))}, str(root / "nan.safetensors"), meta)
    save_file(tensors, str(root / "nan_norm.safetensors"), {**meta, "mean_norms": '{"1": NaN}'})
    save_file(tensors, str(root / "inf_coef.safetensors"), {**meta, "coef": "Infinity"})
    other = tiny_llama(vocab_size=len(smol_tokenizer), layers=4, hidden=64, seed=1)
    random_vector(other, model_id="other").save(root / "other_model.safetensors")
    torch.save({"layer.1": torch.zeros(32)}, root / "pickle.pt")
    (root / "truncated.safetensors").write_bytes((root / "evil.safetensors").read_bytes()[:100])
    (root / "empty_dir").mkdir()
    (root / "data.txt").write_text("hello\n")
    (root / "prompt_only.jsonl").write_text(json.dumps({"prompt": "hi"}) + "\n")
    (root / "bad_spec.json").write_text("{not json")
    (root / "run_no_summary").mkdir()
    recipe = root / "recipe.yaml"
    recipe.write_text(f"""
model_name_or_path: {root / "model"}
dataset: builtin:evil
dataset_size: 24
use_peft: true
lora_r: 8
lora_alpha: 16
lora_target_modules: [q_proj, v_proj]
persona_vectors: [{root / "evil.safetensors"}]
steering_traits: [evil]
steering_layers: [2]
steering_coefs: [3.0]
output_dir: {root / "out"}
learning_rate: 1.0e-3
max_steps: 6
per_device_train_batch_size: 4
logging_steps: 1
save_strategy: steps
save_steps: 2
report_to: none
seed: 0
max_length: 128
capability_benchmarks: [mc]  # work after the last checkpoint, so a kill can land there
capability_mc_limit: 430
""")
    return root, recipe


def _write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- bad inputs
def _recipe_with(root: Path, recipe: Path, name: str, **fields) -> str:
    lines = [line for line in recipe.read_text().splitlines() if line.split(":")[0] not in fields]
    lines += [f"{k}: {v}" for k, v in fields.items()]
    return str(_write(root, name, "\n".join(lines) + "\n"))


def bad_inputs(root: Path, recipe: Path) -> list[tuple[str, list[str], str]]:
    """(name, argv, a word the error line must contain)."""
    r = str(recipe)
    v = str(root / "evil.safetensors")
    m = str(root / "model")

    def train(name, match, **fields):
        return (name, ["train", _recipe_with(root, recipe, f"{name}.yaml", **fields)], match)

    screen = [
        "screen",
        "--vectors",
        v,
        "--model",
        m,
        "--dataset_size",
        "4",
        "--output_dir",
        str(root / "scr"),
    ]
    return [
        ("train: recipe not found", ["train", str(root / "missing.yaml")], "not found"),
        ("train: invalid YAML", ["train", str(_write(root, "bad.yaml", "a: [1, 2\n"))], "YAML"),
        ("train: YAML list", ["train", str(_write(root, "list.yaml", "- a\n- b\n"))], "mapping"),
        ("train: binary recipe", ["train", str(_write(root, "bin.yaml", ""))], "mapping"),
        train("unknown field", "learnig_rate", learnig_rate=1),
        train("wrong type", "learning_rate", learning_rate="fast"),
        train("NaN coef", "steering_coefs", steering_coefs="[.nan]"),
        train("inf coef", "steering_coefs", steering_coefs="[.inf]"),
        ("train: NaN coef override", ["train", r, "--steering_coefs", "nan"], "steering_coefs"),
        ("train: unknown override", ["train", r, "--learnig_rate", "3"], "learnig_rate"),
        train("NaN penalty", "projection_penalty", projection_penalty=".nan"),
        train("inf inference coef", "inference_steering_coef", inference_steering_coef="-.inf"),
        train("missing vector", "not found", persona_vectors=f"[{root / 'nope.safetensors'}]"),
        train("pickle vector", "pickle.pt", persona_vectors=f"[{root / 'pickle.pt'}]"),
        train("truncated vector", "truncated", persona_vectors=f"[{root / 'truncated.safetensors'}]"),
        train("NaN vector", "NaN", persona_vectors=f"[{root / 'nan.safetensors'}]"),
        train("NaN mean norm", "mean_norms", persona_vectors=f"[{root / 'nan_norm.safetensors'}]"),
        train("inf calibrated coef", "coef", persona_vectors=f"[{root / 'inf_coef.safetensors'}]"),
        train(
            "vector of another model", "hidden size", persona_vectors=f"[{root / 'other_model.safetensors'}]"
        ),
        train("trait mismatch", "steering_traits", steering_traits="[sycophantic]"),
        train("layer 99", "out of range", steering_layers="[99]"),
        train("layer 0", "out of range", steering_layers="[0]"),
        train("missing model path", "not found", model_name_or_path=str(root / "nope")),
        train("model folder without config", "empty_dir", model_name_or_path=str(root / "empty_dir")),
        train("bad hub id", "hub id", model_name_or_path="'not a/valid//id'"),
        (
            "train: resume from missing",
            ["train", r, "--resume_from_checkpoint", str(root / "ck")],
            "checkpoint",
        ),
        train(
            "resume true, no checkpoint",
            "checkpoint",
            resume_from_checkpoint="true",
            output_dir=str(root / "fresh"),
        ),
        train("dataset file missing", "not found", dataset=str(root / "nope.jsonl")),
        train("dataset unsupported type", "data.txt", dataset=str(root / "data.txt")),
        train("prompt-only rows", "prompt_only", dataset=str(root / "prompt_only.jsonl")),
        train("unknown builder", "nope", dataset="builtin:nope"),
        train("steering mode", "steering_mode", steering_mode="banana"),
        train("too many coefs", "steering_coefs", steering_coefs="[1.0, 2.0]"),
        train("penalty without LoRA", "use_peft", use_peft="false", projection_penalty=0.1),
        train("no chat template", "chat template", model_name_or_path=str(root / "model_no_template")),
        (
            "extract: no chat template",
            ["extract", "--model", str(root / "model_no_template"), "--max_questions", "1"],
            "chat template",
        ),
        ("extract: calibrate without judge", ["extract", "--model", m, "--calibrate", "true"], "judge"),
        train("NaN drop threshold", "screen_drop_above", screen_drop_above=".nan", screen_vectors=f"[{v}]"),
        ("screen: no vectors", ["screen", "--model", m, "--output_dir", str(root / "scr0")], "vector"),
        ("screen: missing vector", [*screen[:2], str(root / "nope.safetensors"), *screen[3:]], "not found"),
        ("screen: NaN vector", [*screen[:2], str(root / "nan.safetensors"), *screen[3:]], "NaN"),
        ("screen: layer 99", [*screen, "--layers", "99"], "out of range"),
        ("screen: dataset missing", [*screen, "--dataset", str(root / "nope.csv")], "not found"),
        ("screen: method", [*screen, "--method", "banana"], "method"),
        ("screen: unknown field", ["screen", str(_write(root, "s.yaml", "vektors: []\n"))], "vectors"),
        ("screen: missing model", [*screen[:3], "--model", str(root / "nope"), *screen[5:]], "not found"),
        ("extract: unknown trait", ["extract", "--trait", "nope_trait", "--model", m], "nope_trait"),
        (
            "extract: bad spec file",
            ["extract", "--trait", str(root / "bad_spec.json"), "--model", m],
            "bad_spec",
        ),
        ("extract: missing model", ["extract", "--model", str(root / "nope")], "not found"),
        ("extract: NaN threshold", ["extract", "--model", m, "--trait_threshold", "nan"], "trait_threshold"),
        (
            "extract: NaN calibration coef",
            ["extract", "--model", m, "--calibration_coefs", "1,nan"],
            "calibration",
        ),
        ("extract: recipe typo", ["extract", str(_write(root, "e.yaml", "triat: evil\n"))], "trait"),
        (
            "score: missing vector",
            ["score", "--vector", str(root / "nope.safetensors"), "--text", "hi"],
            "not found",
        ),
        ("score: NaN vector", ["score", "--vector", str(root / "nan.safetensors"), "--text", "hi"], "NaN"),
        (
            "score: missing file",
            ["score", "--vector", v, "--model", m, "--file", str(root / "n.jsonl")],
            "n.jsonl",
        ),
        ("export: missing run", ["export", str(root / "no_run")], "no_run"),
        ("export: run without summary", ["export", str(root / "run_no_summary")], "summary"),
        ("compare: missing run", ["compare", str(root / "no_run")], "no_run"),
        ("compare: run without summary", ["compare", str(root / "run_no_summary")], "summary"),
    ]


def test_bad_inputs_exit_2_with_one_line(setup, capsys, monkeypatch):
    """Every bad input: exit code 2, one `error:` line naming the problem, no traceback, nothing silent."""
    root, recipe = setup
    monkeypatch.chdir(root)
    monkeypatch.delenv("PERSONA_VACCINE_DEBUG", raising=False)
    failures = []
    cases = bad_inputs(root, recipe)
    for name, argv, match in cases:
        capsys.readouterr()
        try:
            code = main(argv)
        except BaseException as e:  # a traceback in the CLI (SystemExit from argparse included)
            kind = "traceback" if not isinstance(e, SystemExit) else f"exit {e.code}"
            failures.append(f"{name}: {kind}: {type(e).__name__}: {e}")
            COUNTS["bad_input_traceback"] += kind == "traceback"
            continue
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        if code == 0:
            COUNTS["bad_input_silent"] += 1
            failures.append(f"{name}: accepted silently")
        elif code != 2 or len(errors) != 1 or match.lower() not in errors[0].lower():
            failures.append(f"{name}: exit {code}, errors {errors}")
        else:
            COUNTS["bad_input_clear"] += 1
    COUNTS["bad_input_tried"] = len(cases)
    assert len(cases) >= 40
    assert not failures, "\n".join(failures)


def test_bad_input_from_a_shell_has_no_traceback_and_fails_fast(setup):
    root, recipe = setup
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bad = _recipe_with(root, recipe, "typo.yaml", learnig_rate=1)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), "train", bad],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {bad}: unknown field 'learnig_rate': did you mean 'learning_rate'?"
    ]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), "--debug", "train", bad],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "RecipeError" in proc.stderr


def test_committed_field_schema_is_current():
    """recipe_fields.json must match the config dataclasses (refresh: python -m persona_vaccine.training.recipe)."""
    from persona_vaccine.training.precheck import known_fields
    from persona_vaccine.training.recipe import RECIPE_TYPES, recipe_fields

    assert known_fields("train") == recipe_fields(RECIPE_TYPES)


# ---------------------------------------------------------------- kill -9 and resume
def _env() -> dict:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WANDB_API_KEY", None)
    return env


def _cmd(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "launch.py"), *args]


def _kill_when(cmd: list[str], cwd: Path, ready, timeout: float = 600) -> bool:
    """Start `cmd`, SIGKILL it as soon as `ready()` holds; False if it finished first."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    return False


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)


def _train_result(out: Path) -> tuple[dict, list, list, dict]:
    weights = load_file(out / "adapter_model.safetensors")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [(r["step"], r["loss"], r.get("drift/evil/shift")) for r in rows if "loss" in r]
    summary = json.loads((out / "summary.json").read_text())
    # the run's bookkeeping: one row per step, the whole run's train_loss and drift counters
    end = {"steps": [r["step"] for r in rows], "train_loss": rows[-1]["train_loss"],
           "measurements": rows[-1]["drift/measurements"], "runtime_s": summary["train"]["runtime_s"]}  # fmt: skip
    return weights, losses, summary["losses"], end


@pytest.fixture(scope="module")
def uninterrupted_training(setup):
    root, recipe = setup
    out = root / "train_full"
    proc = _run(_cmd("train", str(recipe), "--output_dir", str(out)), root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _train_result(out)


def _error_lines(stderr: str) -> list[str]:
    """The `error:` lines (a progress bar may leave the cursor mid-line, so split at carriage returns too)."""
    return [line for line in stderr.replace("\r", "\n").splitlines() if line.startswith("error:")]


def _has(path: Path):
    return lambda: path.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "moment",
    ["after checkpoint-2", "while checkpoint-4 is written", "after the last checkpoint"],
)
def test_training_killed_and_resumed_equals_uninterrupted(setup, uninterrupted_training, moment):
    root, recipe = setup
    out = root / f"train_{moment.replace(' ', '_')}"
    cmd = _cmd("train", str(recipe), "--output_dir", str(out))
    ready = {
        "after checkpoint-2": _has(out / "checkpoint-2" / "trainer_state.json"),
        "while checkpoint-4 is written": _has(out / "checkpoint-4"),
        "after the last checkpoint": _has(out / "checkpoint-6" / "trainer_state.json"),
    }[moment]
    COUNTS["fault_injected"] += 1
    assert _kill_when(cmd, root, ready), "the run finished before the kill"
    assert not (out / "summary.json").exists()  # nothing looks finished
    from persona_vaccine.training.precheck import last_checkpoint

    before = json.loads((last_checkpoint(out) / "run_clock.json").read_text())["elapsed_s"]
    proc = _run([*cmd, "--resume_from_checkpoint", "true"], root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    weights, losses, summary_losses, end = _train_result(out)
    full_weights, full_losses, full_summary, full_end = uninterrupted_training
    assert losses == full_losses and summary_losses == full_summary
    assert end["steps"] == full_end["steps"] == list(range(7))  # each step once, step 0 the base model
    assert end["train_loss"] == pytest.approx(full_end["train_loss"], rel=1e-6)
    # the drift counters continue from the checkpoint; resumed at the last step, the final drift is measured
    # once more (the measurement of that step was lost with the process)
    assert end["measurements"] == full_end["measurements"] + (moment == "after the last checkpoint")
    assert end["runtime_s"] >= before  # the time before the checkpoint is kept
    assert weights.keys() == full_weights.keys()
    for key in weights:
        assert torch.equal(weights[key], full_weights[key]), key
    COUNTS["fault_survived"] += 1


@pytest.mark.slow
def test_diverging_run_stops_and_keeps_the_last_good_checkpoint(setup):
    root, recipe = setup
    out = root / "diverged"
    proc = _run(
        _cmd(
            "train",
            str(recipe),
            "--output_dir",
            str(out),
            "--learning_rate",
            "1e30",
            "--steering_coefs",
            "0.0",
            "--max_grad_norm",
            "0",
            "--save_steps",
            "1",
        ),
        root,
    )
    errors = _error_lines(proc.stderr)
    COUNTS["fault_injected"] += 1
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(errors) == 1 and "not finite" in errors[0] and "checkpoint" in errors[0]
    assert not (out / "summary.json").exists()
    kept = sorted(out.glob("checkpoint-*"))
    for checkpoint in kept:
        for tensor in load_file(checkpoint / "adapter_model.safetensors").values():
            assert torch.isfinite(tensor).all()
    COUNTS["fault_survived"] += 1


# ---------------------------------------------------------------- screening
def _screen_cmd(root: Path, out: Path) -> list[str]:
    return _cmd(
        "screen",
        "--vectors",
        str(root / "evil.safetensors"),
        "--model",
        str(root / "model"),
        "--dataset",
        "builtin:evil",
        "--dataset_level",
        "normal,level2",
        "--dataset_size",
        "12",
        "--max_new_tokens",
        "8",
        "--batch_size",
        "2",
        "--chunk_size",
        "2",
        "--output_dir",
        str(out),
    )


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


@pytest.fixture(scope="module")
def uninterrupted_screening(setup):
    root, _ = setup
    out = root / "screen_full"
    proc = _run(_screen_cmd(root, out), root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (out / "screened.jsonl").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("after_rows", [2, 10, 20])
def test_screening_killed_and_resumed_equals_uninterrupted(setup, uninterrupted_screening, after_rows):
    root, _ = setup
    out = root / f"screen_kill_{after_rows}"
    shard = out / "shards" / "rank0.jsonl"
    COUNTS["fault_injected"] += 1
    wrapper = [
        sys.executable,
        str(ROOT / "tests" / "fault_wrappers" / "screen_killed_after.py"),
        str(after_rows),
    ]
    killed = _run(wrapper + _screen_cmd(root, out)[2:], root)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (out / "screened.jsonl").exists()
    assert _lines(shard) <= after_rows
    before = shard.read_text().splitlines()
    proc = _run(_screen_cmd(root, out), root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = shard.read_text().splitlines()
    assert after[: len(before) - 1] == before[:-1]  # finished rows kept (the last one may be torn)
    indices = [json.loads(line)["index"] for line in after]
    assert sorted(indices) == sorted(set(indices))  # none redone
    assert (out / "screened.jsonl").read_text() == uninterrupted_screening
    COUNTS["fault_survived"] += 1


# ---------------------------------------------------------------- disk full and read-only output
def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.fixture
def small_disk(tmp_path):
    """A 300 KB tmpfs when root can mount one; else None (a file-size limit is used instead)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        not _can_mount()
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)]).returncode
    ):
        yield None
        return
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def _fsize_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _files(folder: Path) -> list[Path]:
    return [f for f in folder.rglob("*") if f.is_file()]


@pytest.mark.slow
def test_disk_full_during_screening_is_one_clear_line_and_resumes(setup, small_disk, uninterrupted_screening):
    root, _ = setup
    out = (small_disk or root) / "screen_disk"
    filler = (small_disk or root) / "filler"
    cmd = _screen_cmd(root, out)
    full = _files(root / "screen_full")  # what the uninterrupted run wrote: the limit is set from it
    COUNTS["fault_injected"] += 1
    if small_disk is not None:
        # leave free half the space the uninterrupted run's output took, so it cannot fit
        used = sum(f.stat().st_blocks * 512 for f in full)
        st = os.statvfs(small_disk)
        free = st.f_bavail * st.f_frsize
        assert free > used // 2, f"the {free}-byte tmpfs cannot hold a filler for an output of {used} bytes"
        filler.write_bytes(b"\0" * (free - used // 2))
        proc = subprocess.run(
            [*cmd, "--report_top", "1000"], cwd=root, env=_env(), capture_output=True, text=True, timeout=900
        )
    else:
        # half the size of the largest file the uninterrupted run wrote: that file's write must fail
        limit = max(f.stat().st_size for f in full) // 2
        assert limit > 0
        proc = subprocess.run(
            cmd,
            cwd=root,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=900,
            preexec_fn=_fsize_limit(limit),
        )
    errors = _error_lines(proc.stderr)
    # the injected limit is smaller than the output, so exit 0 means a failed write went unreported
    assert proc.returncode != 0, (
        "the run exited 0 although its output cannot fit: a write error was swallowed"
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(errors) == 1 and ("no space" in errors[0] or "too large" in errors[0])
    summary = out / "summary.json"
    assert not summary.exists() or json.loads(summary.read_text())  # nothing half-written looks finished
    filler.unlink(missing_ok=True)
    proc = _run(cmd, root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "screened.jsonl").read_text() == uninterrupted_screening
    COUNTS["fault_survived"] += 1


@pytest.fixture
def read_only_dir(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if (
        _can_mount()
        and not subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)]).returncode
    ):
        yield folder
        subprocess.run(["umount", str(folder)], check=False)
        return
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize("command", ["train", "screen"])
def test_read_only_output_dir_is_one_clear_line(setup, read_only_dir, command, capsys):
    root, recipe = setup
    out = read_only_dir / "out"
    argv = (
        ["train", str(recipe), "--output_dir", str(out)] if command == "train" else _screen_cmd(root, out)[2:]
    )
    COUNTS["fault_injected"] += 1
    code = main(argv)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "writ" in errors[0], errors
    assert not out.exists()
    COUNTS["fault_survived"] += 1
