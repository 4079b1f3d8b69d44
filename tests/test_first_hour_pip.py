"""A new user's first hour from pip: the README's pip quickstart and its runnable blocks, with the wheel built
from this checkout, in a clean venv, from another directory, then `pip check` and the dashboard in chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from doc_blocks import runnable_blocks
from test_first_hour import GGUF, ROOT, run_blocks, user_env

pytestmark = pytest.mark.slow


def test_pip_quickstart_from_the_wheel_in_a_clean_venv(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(dist),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("persona_vaccine-*.whl")
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = user_env(home)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    readme = [b for b in runnable_blocks(ROOT / "README.md", "README.md") if b.only in (None, "pip")]
    # the pip block names the package on PyPI; here it is this wheel
    blocks = [
        replace(b, text=b.text.replace('"persona-vaccine[monitor]"', f'"{wheel}[monitor]"')) for b in readme
    ]
    assert any(str(wheel) in b.text for b in blocks), (
        "the pip block no longer installs persona-vaccine[monitor]"
    )
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    png = tmp_path / "dashboard.png"
    after = (
        f"pip check\n{sys.executable} {ROOT / 'tests' / 'dashboard_check.py'} http://127.0.0.1:8000 {png}\n"
    )
    output = run_blocks(blocks, elsewhere, env, after)
    assert "dashboard rendered for model" in output
    assert png.stat().st_size > 10_000
    assert (home / GGUF).is_file()
    imported = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import persona_vaccine; print(persona_vaccine.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert Path(imported.strip()).is_relative_to(venv)
