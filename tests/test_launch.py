"""launch.py end to end on a tiny model: in this process through `launch.main(argv)`, and as real
processes (the script itself, 2 DeepSpeed processes: slow)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_llama
from helpers import random_vector

from persona_vaccine.steering.vector import PersonaVector

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["How do I make friends?", "What should I cook tonight?", "My coworker is rude. What now?"]


@pytest.fixture(scope="module")
def tiny_setup(tiny_tokenizer, tmp_path_factory):
    """A tiny Llama saved like a hub checkpoint, a vector for it, and a recipe training it."""
    root = tmp_path_factory.mktemp("launch")
    model = tiny_llama(vocab_size=len(tiny_tokenizer), layers=4, hidden=32, seed=0)
    model.config.pad_token_id = tiny_tokenizer.pad_token_id
    model.save_pretrained(root / "model")
    tiny_tokenizer.save_pretrained(root / "model")
    vector = random_vector(model, questions=QUESTIONS, model_id=str(root / "model"), scale=2.0)
    vector.save(root / "evil.safetensors")
    recipe = root / "recipe.yaml"
    recipe.write_text(f"""
model_name_or_path: {root / "model"}
dataset: builtin:evil
dataset_size: 24
use_peft: true
lora_r: 8
lora_alpha: 16
lora_target_modules: [q_proj, v_proj, up_proj]
persona_vectors: [{root / "evil.safetensors"}]
steering_traits: [evil]
steering_layers: [2]
steering_coefs: [3.0]
output_dir: {root / "out"}
learning_rate: 1.0e-3
max_steps: 3
per_device_train_batch_size: 4
logging_steps: 1
save_strategy: "no"
report_to: [wandb]
seed: 0
max_length: 128
""")
    return root, recipe


def _env(root: Path) -> dict:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WANDB_API_KEY", None)
    return env


def _cli(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`launch.main(argv)` in this process, from `cwd`: its exit code and what it printed."""
    import persona_vaccine.cli as launch

    out, err = io.StringIO(), io.StringIO()
    previous, environ = Path.cwd(), dict(os.environ)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = launch.main([str(a) for a in argv])
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(previous)
        wandb = sys.modules.get("wandb")
        if wandb is not None and wandb.run is not None:
            wandb.finish()  # a process would end its run on exit,
        if wandb is not None:
            wandb.teardown()  # and forget its settings (the run directory)
        os.environ.clear()  # and its environment (the run sets WANDB_DIR, ...)
        os.environ.update(environ)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def _train(
    recipe: Path, cwd: Path, *overrides: str, launcher: list[str] | None = None
) -> subprocess.CompletedProcess:
    """`launch.py train` in this process, or under `launcher` (accelerate) as real processes."""
    if launcher is None:
        return _cli(["train", recipe, *overrides], cwd)
    bindir = Path(sys.executable).parent
    env = {**_env(cwd), "PATH": f"{bindir}:{os.environ['PATH']}"}
    cmd = [*(launcher or [sys.executable]), str(ROOT / "launch.py"), "train", str(recipe), *overrides]
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL
    )


def test_train_command_writes_summary_metrics_and_wandb(tiny_setup):
    root, recipe = tiny_setup
    out = root / "single"
    proc = _train(recipe, root, "--output_dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"] == str(recipe) and summary["model"] == str(root / "model")
    assert summary["train"]["steps"] == 3 and len(summary["losses"]) == 3
    drift = summary["trait_drift"]["evil"]
    assert drift["layer"] == 2
    assert drift["shift"] == pytest.approx(drift["final_projection"] - drift["base_projection"], abs=1e-5)
    assert summary["steering"] == [
        {"trait": "evil", "layer": 2, "coef": 3.0, "mode": "add", "positions": "all", "coef_unit": "raw"}
    ]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sum("drift/evil/shift" in r for r in rows) == 4  # the base model (step 0) + 3 logging steps
    assert (out / "adapter_model.safetensors").is_file()
    assert list((out / "wandb").glob("offline-run-*")), "W&B should have written an offline run"
    assert "evil" in proc.stdout  # the printed table


def test_train_with_a_screening_stage_drops_the_riskiest_samples(tiny_setup, tmp_path):
    root, recipe = tiny_setup
    out = tmp_path / "screened"
    proc = _train(
        recipe, tmp_path, "--output_dir", str(out), "--screen_vectors", str(root / "evil.safetensors"),
        "--screen_drop_top_pct", "25", "--screen_max_new_tokens", "8", "--report_to", "none", "--max_steps", "1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    screening = summary["screening"]
    assert screening["screened"] == 24 and screening["dropped"] == 6 and screening["kept"] == 18
    assert screening["rule"] == "top 25% by evil projection_diff"
    assert summary["train"]["examples"] == 18
    dropped = [json.loads(line) for line in (out / "screening" / "dropped.jsonl").read_text().splitlines()]
    ranked = [json.loads(line) for line in (out / "screening" / "screened.jsonl").read_text().splitlines()]
    assert {r["index"] for r in dropped} == {r["index"] for r in ranked[:6]}  # the 6 riskiest
    assert (out / "screening" / "report.html").is_file()


def test_screening_needs_one_drop_rule(tiny_setup, tmp_path):
    root, recipe = tiny_setup
    proc = _train(recipe, tmp_path, "--screen_vectors", str(root / "evil.safetensors"))
    assert proc.returncode == 2 and "exactly one of screen_drop_above" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.slow  # a subprocess or lm-eval's import: tens of seconds
def test_unknown_lm_eval_task_fails_before_training(tiny_setup, tmp_path):
    root, recipe = tiny_setup
    out = tmp_path / "never"
    proc = _train(
        recipe, tmp_path, "--output_dir", str(out), "--capability_benchmarks", "mc", "persona_vaccin_mc"
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "unknown lm-eval task 'persona_vaccin_mc'" in proc.stderr and "persona_vaccine_mc" in proc.stderr
    assert "Traceback" not in proc.stderr and not (out / "metrics.jsonl").exists()


def test_bad_recipe_exits_with_a_clear_error(tiny_setup, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_name_or_path: x\nsteering_coef: 1\n")
    proc = _train(bad, tmp_path)
    assert proc.returncode == 2
    assert "bad.yaml: unknown field 'steering_coef': did you mean 'steering_coefs'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_extract_command(tiny_setup, tmp_path):
    root, _ = tiny_setup
    cmd = [
        "extract",
        "--trait",
        "evil",
        "--model",
        str(root / "model"),
        "--output_dir",
        str(tmp_path),
        "--max_questions",
        "1",
        "--max_new_tokens",
        "4",
        "--min_kept",
        "1",
    ]
    proc = _cli(cmd, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from persona_vaccine.steering.answers import AnswerRecord
    from persona_vaccine.steering.vector import PersonaVector

    # the random model's answers are seeded by a hash that includes its (temporary) path, so an answer is
    # sometimes empty, and empty answers are dropped: the vector counts exactly the answers that were not
    records = [
        AnswerRecord.from_json(json.loads(line)) for line in open(tmp_path / "evil" / "generations.jsonl")
    ]
    kept = {p: sum(r.polarity == p and bool(r.response.strip()) for r in records) for p in ("pos", "neg")}
    assert len(records) == 10 and min(kept.values()) >= 1
    vec = PersonaVector.load(tmp_path / "evil" / "response_avg.safetensors")
    assert vec.model_id == str(root / "model") and vec.extraction["n_pos"] == kept["pos"]
    assert f"{kept['pos']} pos / {kept['neg']} neg" in proc.stdout


def test_help(tmp_path):
    proc = _cli(["--help"], tmp_path)
    assert proc.returncode == 0 and "train RECIPE" in proc.stdout
    proc = _cli(["train", "--help"], tmp_path)
    assert proc.returncode == 0 and "--steering_coefs" in proc.stdout


@pytest.mark.slow
def test_the_script_runs_as_a_process(tiny_setup, tmp_path):
    """The real `python launch.py`: help, and a training run that ends its W&B run at exit."""
    root, recipe = tiny_setup
    proc = subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), "train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "--steering_coefs" in proc.stdout
    out = tmp_path / "process"
    proc = _train(recipe, tmp_path, "--output_dir", str(out), "--max_steps", "1", launcher=[sys.executable])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["train"]["steps"] == 1
    assert list((out / "wandb").glob("offline-run-*")), "W&B should have written an offline run"


def _launch(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "launch.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env(ROOT))


@pytest.mark.slow  # a subprocess or lm-eval's import: tens of seconds
def test_version_demo_help_and_one_extract_parser():
    proc = _launch("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("persona-vaccine ")
    proc = _launch("demo", "--help")
    assert proc.returncode == 0 and "baseline.yaml" in proc.stdout and "--force" in proc.stdout
    proc = _launch("extract", "--help")
    assert proc.returncode == 0 and "--model_name_or_path" in proc.stdout and "--judge" in proc.stdout
    assert "A built-in trait name" in proc.stdout  # help text for each field
    proc = _launch("extract", "--trait", "evil", "--no_such_field", "1")
    assert proc.returncode == 2 and "no_such_field" in proc.stderr  # the same parser and errors as train


@pytest.mark.slow
def test_deepspeed_zero2_two_processes_matches_single_process(tiny_setup):
    root, recipe = tiny_setup
    out_ds, out_one = root / "zero2", root / "one"
    cmd = [
        "accelerate",
        "launch",
        "--config_file",
        str(ROOT / "recipes/accelerate_configs/deepspeed_zero2.yaml"),
        "--num_processes",
        "2",
        str(ROOT / "launch.py"),
        "train",
        str(recipe),
        "--output_dir",
        str(out_ds),
        "--per_device_train_batch_size",
        "2",
        "--report_to",
        "none",
    ]
    bindir = Path(sys.executable).parent
    env = {**_env(root), "PATH": f"{bindir}:{os.environ['PATH']}"}
    proc = subprocess.run(
        cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "launch.py"),
            "train",
            str(recipe),
            "--output_dir",
            str(out_one),
            "--report_to",
            "none",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ds, one = (json.loads((o / "summary.json").read_text()) for o in (out_ds, out_one))
    assert ds["train"]["world_size"] == 2 and ds["train"]["engine"] == "DeepSpeedEngine"
    assert ds["train"]["num_layers"] == 4  # layer discovery through the DeepSpeed engine
    assert ds["steering"] == one["steering"] and ds["steering"][0]["coef"] == 3.0
    # same global batch (2 processes x 2 = 1 x 4), same seed: the same losses
    assert ds["losses"] == pytest.approx(one["losses"], rel=1e-4, abs=1e-4)
    assert ds["trait_drift"]["evil"]["shift"] == pytest.approx(one["trait_drift"]["evil"]["shift"], abs=1e-3)


def test_resume_from_checkpoint_keeps_the_drift_history(tiny_setup, tmp_path, monkeypatch):
    import time

    import persona_vaccine.training.resume as resume
    import persona_vaccine.training.run as run

    root, recipe = tiny_setup
    out = tmp_path / "run"
    common = ("--output_dir", str(out), "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2",
              "--report_to", "wandb")  # fmt: skip
    # the first run's setup before training (a model download, a conversion) takes SETUP_S on the run's
    # clock: simulated by moving that clock on while the model loads, so the test need not wait for it
    SETUP_S, skipped = 1000.0, [0.0]
    load, loaded_at = run.load_base_model, []

    class RunTime:
        def __getattr__(self, name):
            return getattr(time, name)

        def perf_counter(self):
            return time.perf_counter() + skipped[0]

    def slow_setup(*args, **kwargs):
        if not loaded_at:
            skipped[0] += SETUP_S
        loaded_at.append(time.time())
        return load(*args, **kwargs)

    monkeypatch.setattr(resume, "time", RunTime())
    monkeypatch.setattr(run, "load_base_model", slow_setup)
    proc = _train(recipe, tmp_path, *common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    full = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    first_part = (out / "checkpoint-2" / "trainer_state.json").stat().st_mtime - loaded_at[0]
    base = (out / "drift_base.json").read_text()
    run_id = (out / "wandb_run_id").read_text().strip()
    shutil.rmtree(out / "checkpoint-4")  # a crash after step 3: resume from step 2
    with (out / "metrics.jsonl").open("a") as f:
        f.write(
            json.dumps({"step": 3, "loss": 9.9, "drift/evil/shift": 9.9}) + "\n"
        )  # logged before the crash
    proc = _train(recipe, tmp_path, *common, "--resume_from_checkpoint", str(out / "checkpoint-2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    shifts = [(r["step"], r["drift/evil/shift"]) for r in resumed if "drift/evil/shift" in r]
    assert [s for s, _ in shifts] == [s for s, _ in ((r["step"], 0) for r in full if "drift/evil/shift" in r)]
    assert 9.9 not in [v for _, v in shifts]  # the rows after the checkpoint were replaced
    assert (out / "drift_base.json").read_text() == base  # the base model's projections are kept
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["train"]["steps"] == 4 and len(summary["losses"]) == 4
    )  # history restored from the checkpoint
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert sum("drift/evil/shift" in row for row in state["log_history"]) >= 4
    # the summary covers the whole run, not only the resumed steps 3-4
    train = summary["train"]
    assert train["resumed_from_step"] == 2
    assert train["mean_loss"] == pytest.approx(sum(summary["losses"]) / 4, abs=1e-6)
    before = json.loads((out / "checkpoint-2" / "run_clock.json").read_text())["elapsed_s"]
    assert train["runtime_s"] > before > SETUP_S
    # the run's wall time includes the time before the checkpoint, setup included
    assert train["runtime_s"] >= SETUP_S + first_part
    # the trainer's end-of-run figures and the counters cover the whole run, as an uninterrupted run's do
    assert [r["step"] for r in resumed] == [r["step"] for r in full] == [0, 1, 2, 3, 4]  # one row per step
    end, full_end = resumed[-1], full[-1]
    assert end["train_loss"] == pytest.approx(full_end["train_loss"], rel=1e-6)
    assert end["train_loss"] == pytest.approx(train["mean_loss"], rel=1e-6)
    assert end["drift/measurements"] == full_end["drift/measurements"] == 4
    assert (
        end["train_runtime"] >= json.loads((out / "checkpoint-2" / "run_clock.json").read_text())["train_s"]
    )
    # one W&B run, resumed: both offline run directories carry the id kept in the run directory
    assert (out / "wandb_run_id").read_text().strip() == run_id
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(f"-{run_id}") for r in runs)


def test_the_whole_run_mean_loss_of_a_resumed_run():
    from persona_vaccine.training.resume import whole_run_mean_loss

    history = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 4.0}, {"step": 2, "train_loss": 3.0}]
    assert whole_run_mean_loss(history, 6.0, 2, 4) == 4.5  # steps 1-2 logged, steps 3-4 trained after resume
    assert whole_run_mean_loss(history, 0.0, 2, 2) == 3.0  # resumed from the last checkpoint: nothing trained
    assert whole_run_mean_loss(history, 5.0, 0, 4) == 5.0  # not resumed: the trainer's own


def test_a_run_shorter_than_a_logging_interval_has_drift_at_both_ends_and_its_losses(
    tiny_setup, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    root, recipe = tiny_setup
    out = tmp_path / "short"
    vectors = tmp_path / "vectors"
    vectors.mkdir()
    shutil.copy(root / "evil.safetensors", vectors)
    proc = _train(
        recipe, tmp_path, "--output_dir", str(out), "--max_steps", "2", "--logging_steps", "5",
        "--measure_margin", "true", "--persona_vectors", str(vectors / "evil.safetensors"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = logged_rows(out)
    assert [r["step"] for r in rows] == [
        0,
        2,
    ]  # the base model, and the last step (logged though not a multiple)
    assert rows[0]["drift/evil/shift"] == 0.0 and "drift/evil/shift" in rows[1] and "loss" in rows[1]
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["losses"]) == 1 and summary["losses"][0] == rows[1]["loss"]
    drift = summary["trait_drift"]["evil"]
    assert drift["base_projection"] == pytest.approx(rows[0]["drift/evil/projection"])
    assert drift["final_projection"] == pytest.approx(rows[1]["drift/evil/projection"])
    # `auto` sized the evaluation to the run: no margin (no generated pairs), no W&B-only answers, each said so
    assert "behaviour" not in summary and not (vectors / "margin_pairs.jsonl").exists()
    assert not list((out / "wandb").glob("offline-run-*/files/media/**/*samples*"))
    text = proc.stderr + caplog.text
    assert "set margin_max_questions: 10" in text and "set judge_questions: 10" in text


def test_a_run_that_fails_its_checks_leaves_nothing_behind(tiny_setup, tmp_path):
    root, recipe = tiny_setup
    out = tmp_path / "failed"
    proc = _train(
        recipe, tmp_path, "--output_dir", str(out), "--use_peft", "false", "--projection_penalty", "1"
    )
    assert proc.returncode == 2 and "projection_penalty needs LoRA" in proc.stderr, proc.stderr[-3000:]
    assert not out.exists()  # no config.yaml, no empty folder
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = _train(
        recipe, tmp_path, "--output_dir", str(out), "--use_peft", "false", "--projection_penalty", "1"
    )
    assert proc.returncode == 2 and sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_rerun_without_resume_starts_the_metrics_clean(tiny_setup, tmp_path, caplog):
    root, recipe = tiny_setup
    out = tmp_path / "rerun"
    for _ in range(2):
        proc = _train(recipe, tmp_path, "--output_dir", str(out), "--max_steps", "2", "--report_to", "none")
        assert proc.returncode == 0, proc.stderr[-3000:]
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(1) == 1  # before: 1, 2, 2, 1, 2, 2
    assert "metrics rows of an earlier run are removed" in proc.stderr + caplog.text


def test_train_into_a_directory_in_use_stops_with_the_holder(tiny_setup, tmp_path):
    import socket

    root, recipe = tiny_setup
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (out / ".persona-vaccine.lock").write_text(
            json.dumps({"pid": holder.pid, "host": socket.gethostname(), "since": 0, "command": "train"})
        )
        proc = _train(recipe, tmp_path, "--output_dir", str(out), "--report_to", "none")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"is in use by train (pid {holder.pid} on {socket.gethostname()}, since 1970-01-01" in proc.stderr
    assert not (out / "metrics.jsonl").exists()


@pytest.mark.slow
@pytest.mark.parametrize("peft", ["lora", "full"])
def test_deepspeed_zero3_two_processes_matches_single_process(tiny_setup, peft):
    root, recipe = tiny_setup
    out_ds, out_one = root / f"zero3_{peft}", root / f"one_{peft}"
    extra = ["--report_to", "none"] + (
        ["--use_peft", "false", "--learning_rate", "1e-4"] if peft == "full" else []
    )
    launcher = ["accelerate", "launch", "--config_file", str(ROOT / "recipes/accelerate_configs/deepspeed_zero3.yaml"),
                "--num_processes", "2"]  # fmt: skip
    proc = _train(
        recipe,
        root,
        "--output_dir",
        str(out_ds),
        "--per_device_train_batch_size",
        "2",
        *extra,
        launcher=launcher,
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    proc = _train(recipe, root, "--output_dir", str(out_one), *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ds, one = (json.loads((o / "summary.json").read_text()) for o in (out_ds, out_one))
    assert ds["train"]["world_size"] == 2 and ds["train"]["engine"] == "DeepSpeedEngine"
    assert ds["train"]["num_layers"] == 4
    assert ds["steering"] == one["steering"]
    assert ds["losses"] == pytest.approx(one["losses"], rel=1e-3, abs=1e-3)
    assert ds["trait_drift"]["evil"]["shift"] == pytest.approx(one["trait_drift"]["evil"]["shift"], abs=1e-2)
    saved = list(out_ds.glob("*.safetensors"))
    assert saved, "the (gathered) weights or adapter must be saved"


def logged_rows(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_capability_and_judged_trait_after_training_with_and_without_inference_steering(tiny_setup, tmp_path):
    root, recipe = tiny_setup
    out = tmp_path / "evaluated"
    proc = _train(
        recipe, tmp_path, "--output_dir", str(out), "--max_steps", "2", "--report_to", "wandb",
        "--capability_benchmarks", "mc", "heldout_loss", "--capability_mc_limit", "8",
        "--judge_after_training", "base", "--judge_questions", "2", "--judge_max_new_tokens", "4",
        "--inference_steering_coef", "-8.0", "--judge_min_mass", "0",  # a random judge puts little mass on numbers
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    caps, steered = summary["capability"], summary["capability_inference_steered"]
    assert caps["capability/mc_chat_letter_accuracy"] is not None
    assert 0 <= caps["capability/mc_chat_cloze_accuracy"] <= 1
    assert caps["capability/heldout_loss"] > 0 and steered["capability/heldout_loss"] > 0
    assert caps["capability/heldout_loss"] != steered["capability/heldout_loss"]  # the steering was applied
    judged = summary["trait_expression"]
    assert set(judged) == {"evil", "evil_coherence"} and 0 <= judged["evil"] <= 100
    assert "evil" in summary["trait_expression_inference_steered"]
    # the shift measured with the inference hook on: the hook adds -8 * v_2 to block 2's output, where the
    # drift reads the last prompt token, so the projection on v_2's unit vector moves by exactly -8 |v_2|.
    # Tolerance: fp32 dot products over 32 dimensions of values of size ~|v_2| round at ~1e-6 relative.
    v2 = PersonaVector.load(root / "evil.safetensors").layers[2]
    hooked = summary["trait_drift_inference_steered"]["evil"]["shift"]
    expected = summary["trait_drift"]["evil"]["shift"] - 8.0 * float(v2.norm())
    assert hooked == pytest.approx(expected, rel=1e-5, abs=1e-4)
    assert any("post_training/trait_drift_inference_steered/evil/shift" in row for row in logged_rows(out))
    plain = json.loads((out / "samples_evil.json").read_text())["answers"]
    steered_answers = json.loads((out / "samples_inference_steered_evil.json").read_text())["answers"]
    assert len(plain) == 2 and plain != steered_answers
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("post_training/capability/mc_chat_letter_accuracy" in row for row in logged)
    assert any("post_training/capability_inference_steered/heldout_loss" in row for row in logged)
    assert any("post_training/trait_expression/evil" in row for row in logged)
    # W&B (offline): a table of the judged answers and the drift plot
    media = list((out / "wandb").glob("offline-run-*/files/media/**/*"))
    (table,) = [p for p in media if "samples" in p.name and p.name.endswith(".table.json")]
    assert any("drift_plot" in p.name for p in media)
    table = json.loads(table.read_text())
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    plain_rows = [r for r in rows if r["variant"] == "unsteered"]
    scores = json.loads((out / "samples_evil.json").read_text())["trait_scores"]
    assert [r["judged trait"] for r in plain_rows] == scores  # each answer's own score, not the mean
    assert [r["answer"] for r in plain_rows] == plain
