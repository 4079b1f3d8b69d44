"""W&B tracking read back with wandb's own offline reader (`wandb leet inspect --json`): one W&B run per
training run, with its own config and drift history; W&B credentials found the way wandb finds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import tiny_llama
from helpers import random_vector

ROOT = Path(__file__).resolve().parents[1]
WANDB = str(Path(sys.executable).with_name("wandb"))
QUESTIONS = ["How do I make friends?", "What should I cook tonight?"]


def _env(**extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}
    env.pop("WANDB_API_KEY", None)
    return env


def wandb_records(run_dir: Path) -> list[dict]:
    """Every record of the one offline .wandb file under RUN_DIR/wandb, read by wandb itself."""
    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    out = subprocess.run(
        [WANDB, "leet", "inspect", "--json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_back_to_back_runs_are_separate_wandb_runs(smol_tokenizer, tmp_path):
    model = tiny_llama(vocab_size=len(smol_tokenizer), layers=3, hidden=32, seed=0)
    model.config.pad_token_id = smol_tokenizer.pad_token_id
    model.save_pretrained(tmp_path / "model")
    smol_tokenizer.save_pretrained(tmp_path / "model")
    random_vector(model, questions=QUESTIONS, model_id=str(tmp_path / "model"), scale=2.0).save(
        tmp_path / "evil.safetensors"
    )
    family = tmp_path / "recipes" / "tiny" / "evil"
    family.mkdir(parents=True)
    for name, coef, level in (("baseline", 0.0, "evil"), ("preventative", 4.0, "normal")):
        (family / f"{name}.yaml").write_text(f"""
model_name_or_path: {tmp_path / "model"}
dataset: builtin:evil
dataset_level: {level}
dataset_size: 8
persona_vectors: [{tmp_path / "evil.safetensors"}]
steering_layers: [2]
steering_coefs: [{coef}]
learning_rate: 1.0e-3
max_steps: 2
per_device_train_batch_size: 4
logging_steps: 1
save_strategy: "no"
report_to: [wandb]
max_length: 96
""")
    script = textwrap.dedent("""
        from persona_vaccine.training.recipe import parse_recipe
        from persona_vaccine.training.run import run_training
        for name in ("baseline", "preventative"):
            recipe = "recipes/tiny/evil/" + name + ".yaml"
            overrides = ["--output_dir", "runs/" + name, "--dataset_seed", "7"]
            run_training(*parse_recipe(recipe, overrides), recipe, overrides)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=_env(WANDB_MODE="offline"), capture_output=True,
        text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids = set()
    for name, level in (("baseline", "evil"), ("preventative", "normal")):
        run_dir = tmp_path / "runs" / name
        records = wandb_records(run_dir)
        (run,) = [r["run"] for r in records if r.get("type") == "run"]
        ids.add(run["run_id"])
        assert run["display_name"] == name and run["job_type"] == "train"
        assert run["run_group"] == "tiny/evil"
        assert {"evil", "tiny/evil"} <= set(run["tags"])
        assert ("preventative" if name == "preventative" else "baseline") in run["tags"]
        config = run["config"]["update"]
        assert config["data"]["dataset_level"] == level and config["data"]["dataset_seed"] == 7
        assert config["data"]["dataset"] == "builtin:evil" and "screen_vectors" in config["data"]
        assert config["recipe"]["path"] == f"recipes/tiny/evil/{name}.yaml"
        assert config["recipe"]["text"] == (tmp_path / config["recipe"]["path"]).read_text()
        assert config["recipe"]["resolved"]["output_dir"] == f"runs/{name}"
        assert config["model_id"] == str(tmp_path / "model")
        history = [r["history"]["item"] for r in records if r.get("type") == "history"]
        drift: dict[int, list[float]] = {}  # W&B keeps every log call: the final drift comes again at step 2
        for h in history:
            if "drift/evil/shift" in h:
                drift.setdefault(h["train/global_step"], []).append(h["drift/evil/shift"])
        ours = {row["step"]: row["drift/evil/shift"] for row in map(json.loads, (run_dir / "metrics.jsonl").open())
                if "drift/evil/shift" in row}  # fmt: skip
        assert sorted(drift) == sorted(ours) == [0, 1, 2]  # the base model, 2 logging steps; this run's only
        for step, values in drift.items():
            assert values == pytest.approx([ours[step]] * len(values))
        assert any("train/loss" in h for h in history) and not any(
            "train/drift/evil/shift" in h for h in history
        )
        exits = [r for r in records if r.get("type") == "exit"]
        assert len(exits) == 1, "the run must be finished when its training ends"
        metrics = {r["metric"].get("glob_name") for r in records if r.get("type") == "metric"}
        assert "drift*" in metrics and "post_training/*" in metrics
        resolved = (run_dir / "config.yaml").read_text()
        assert "dataset_seed: 7" in resolved and f"output_dir: runs/{name}" in resolved
    assert len(ids) == 2


@pytest.mark.slow  # a subprocess or lm-eval's import: tens of seconds
def test_self_hosted_wandb_credentials_are_found_by_wandb(tmp_path):
    """A netrc entry for WANDB_BASE_URL's host counts as logged in; one for another host does not."""
    netrc = tmp_path / "netrc"
    check = (
        "from persona_vaccine.training.tracking import wandb_logged_in, wandb_mode\n"
        "print(wandb_logged_in(), wandb_mode())"
    )

    def logged_in(base_url: str, machine: str) -> str:
        netrc.write_text(f"machine {machine}\n  login user\n  password {'k' * 40}\n")
        netrc.chmod(0o600)
        env = _env(WANDB_BASE_URL=base_url, NETRC=str(netrc), HOME=str(tmp_path))
        env.pop("WANDB_MODE", None)
        out = subprocess.run(
            [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.split()[-2:]

    assert logged_in("http://127.0.0.1:8765", "127.0.0.1:8765") == ["True", "online"]
    assert logged_in("http://127.0.0.1:8765", "api.wandb.ai") == ["False", "offline"]
