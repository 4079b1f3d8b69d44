"""The installed distribution: one import name, shipped recipes, the console script from any directory.

Builds the wheel with pip, installs it (without dependencies: they are this venv's) into a folder, and runs it
from a directory outside the repository, so neither the checkout nor its editable install is imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import tiny_llama
from helpers import random_vector

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(ROOT), "-w", str(tmp / "dist")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("persona_vaccine-*.whl")
    site = tmp / "site"
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    env.pop("WANDB_API_KEY", None)
    return wheel, site, elsewhere, env


def _run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_wheel_has_one_import_name_and_ships_recipes(installed):
    wheel, site, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"persona_vaccine"}
    for shipped in (
        "persona_vaccine/recipes/smollm2-135m/evil/baseline.yaml",
        "persona_vaccine/recipes/accelerate_configs/deepspeed_zero2.yaml",
        "persona_vaccine/traits/evil.json",
        "persona_vaccine/monitoring/traffic/ordinary_prompts.jsonl",
        "persona_vaccine/monitoring/traffic/conversations.jsonl",
        "persona_vaccine/data/capability/items.jsonl",
        "persona_vaccine/monitoring/static/dashboard.html",
        "persona_vaccine/training/lm_eval_tasks/persona_vaccine_mc.yaml",
    ):
        assert shipped in names, shipped
    assert not (site / "data").exists() and not (site / "launch.py").exists()


def test_installed_package_is_imported_not_the_checkout(installed):
    _, site, elsewhere, env = installed
    proc = _run(
        [sys.executable, "-c", "import persona_vaccine.steering.hooks as h; print(h.__file__)"],
        elsewhere,
        env,
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(site)


def test_a_users_own_data_package_is_not_shadowed(installed):
    _, site, elsewhere, env = installed
    find = "import importlib.util as u; s = u.find_spec('data'); print(s.origin if s else None)"
    proc = _run([sys.executable, "-c", find], elsewhere, env)
    assert proc.returncode == 0, proc.stderr
    found = proc.stdout.strip()  # None here, unless some other installed distribution ships a `data`
    assert found == "None" or not (Path(found).is_relative_to(ROOT) or Path(found).is_relative_to(site))
    user = elsewhere / "user_project"
    (user / "data").mkdir(parents=True)
    (user / "data" / "__init__.py").write_text("")
    (user / "data" / "loading.py").write_text("WHOSE = 'user'\n")
    script = (
        "import data.loading, persona_vaccine.data.loading as ours; print(data.loading.WHOSE, ours.__name__)"
    )
    proc = _run([sys.executable, "-c", script], user, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["user", "persona_vaccine.data.loading"]


def test_console_script_help_version_and_a_tiny_training_from_another_directory(installed, tiny_tokenizer):
    import json
    import math

    import persona_vaccine
    from persona_vaccine.cli import COMMANDS

    _, site, elsewhere, env = installed
    script = site / "bin" / "persona-vaccine"
    helped = _run([str(script), "--help"], elsewhere, env)
    assert helped.returncode == 0, helped.stderr
    assert (
        "persona-vaccine train RECIPE" in helped.stdout
        and "launch.py" not in helped.stdout.split("accelerate")[0]
    )
    listed = helped.stdout.split("commands:")[1].split("(")[0]
    assert {c.strip() for c in listed.split(",")} == set(COMMANDS)
    version = _run([str(script), "--version"], elsewhere, env)
    assert (
        version.returncode == 0 and version.stdout.strip() == f"persona-vaccine {persona_vaccine.__version__}"
    )
    model = tiny_llama(vocab_size=len(tiny_tokenizer), layers=4, hidden=32, seed=0)
    model.config.pad_token_id = tiny_tokenizer.pad_token_id
    model.save_pretrained(elsewhere / "model")
    tiny_tokenizer.save_pretrained(elsewhere / "model")
    random_vector(model, model_id="model", scale=2.0).save(elsewhere / "evil.safetensors")
    overrides = {
        "model_name_or_path": "model",
        "persona_vectors": "evil.safetensors",
        "steering_layers": "2",
        "lora_target_modules": "q_proj",
        "dataset_size": "24",
        "max_steps": "2",
        "per_device_train_batch_size": "4",
        "max_length": "128",
        "save_strategy": "no",
        "report_to": "none",
        "output_dir": "run",
    }
    argv = [str(script), "train", "recipes/smollm2-135m/evil/preventative.yaml"]
    for name, value in overrides.items():
        argv += [f"--{name}", value]
    proc = _run(argv, elsewhere, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((elsewhere / "run" / "summary.json").read_text())
    assert summary["recipe"] == "recipes/smollm2-135m/evil/preventative.yaml"
    assert not (elsewhere / "recipes").exists()  # so the shipped copy was read
    assert summary["train"]["steps"] == 2 and summary["dataset"]["size"] == 24
    assert [(s["trait"], s["layer"]) for s in summary["steering"]] == [("evil", 2)]
    assert summary["steering"][0]["coef"] != 0
    assert math.isfinite(summary["trait_drift"]["evil"]["shift"])
    assert (elsewhere / "run" / "adapter_model.safetensors").is_file()
