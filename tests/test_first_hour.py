"""A new user's first hour, as written in the docs: the README's runnable blocks pasted in a fresh checkout
after `make install` (here), and the pip quickstart from the built wheel in a clean venv, from another
directory (test_first_hour_pip.py, a module of its own so that the two run on different workers).

Both run as a user would: HOME is an empty folder (so the model cache, W&B and every tool's settings start
empty), no project variable is set, and PATH holds no virtual environment until a doc block activates one.
Two costs are not paid again, since they test pip rather than the project: the checkout shares this
suite's venv (`make install` still runs there and downloads the embedded model into the empty HOME), and
pip reuses this machine's download cache.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from doc_blocks import block_times, failed_block, runnable_blocks, script

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
GGUF = Path(".cache/persona-vaccine/gguf/SmolLM2-135M-Instruct.Q4_1.gguf")
pytestmark = pytest.mark.slow


def user_env(home: Path) -> dict[str, str]:
    """A new user's environment: an empty HOME, no project, W&B, OpenAI or venv variables, no venv on PATH."""
    home.mkdir(parents=True, exist_ok=True)
    venvs = {str(Path(sys.prefix) / "bin"), os.environ.get("VIRTUAL_ENV", "") + "/bin"}
    path = [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p not in venvs]
    env = {"HOME": str(home), "PATH": os.pathsep.join(path), "LANG": os.environ.get("LANG", "C.UTF-8")}
    pip_cache = Path(os.environ.get("PIP_CACHE_DIR", Path.home() / ".cache" / "pip"))
    if pip_cache.is_dir():
        env["PIP_CACHE_DIR"] = str(pip_cache)  # pip's download cache only: not a project setting
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]  # how this machine reaches its package index
    # the suite's workers share the cores (conftest.py): the user's commands get this worker's share, or
    # their threads and the other worker's contend and each runs at half speed
    if "OMP_NUM_THREADS" in os.environ:
        env["OMP_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]
    return env


def fresh_checkout(dest: Path) -> Path:
    """The files a clone would have (tracked, plus new files git does not ignore), with their mtimes."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def run_blocks(blocks, cwd: Path, env: dict[str, str], after: str = "", timeout: int = 1800) -> str:
    """Run the blocks as one script in its own session; on a time-out every process it started is killed."""
    proc = subprocess.Popen(
        ["bash", "-c", script(blocks, sys.executable) + after],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        subprocess.run(
            ["pkill", "-KILL", "-s", str(proc.pid)]
        )  # the session: servers in their own groups too
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
    output = stdout + stderr
    print(block_times(stdout))  # shown with pytest -rP: where the time goes
    assert proc.returncode == 0, f"{failed_block(stdout)} failed (exit {proc.returncode}):\n{output[-6000:]}"
    return output


def _doc_blocks(where: str) -> list:
    blocks = [b for doc in DOCS for b in runnable_blocks(ROOT / doc, doc)]
    return [b for b in blocks if b.only in (None, where)]


def test_the_runnable_blocks_are_found_and_cover_the_tour():
    blocks = _doc_blocks("checkout")
    text = "\n".join(b.text for b in blocks)
    for command in ("make install", "extract", "train", "compare", "export", "serve"):
        assert command in text, f"no runnable doc block runs {command!r}"
    assert sum(b.mode == "server" for b in blocks) >= 1
    assert any(b.only == "pip" for b in runnable_blocks(ROOT / "README.md", "README.md"))


def test_readme_commands_run_in_a_fresh_checkout(tmp_path):
    stamp = Path(sys.prefix) / ".installed"
    if not stamp.is_file():
        pytest.skip("runs in the venv `make install` made (it is shared with the fresh checkout)")
    checkout = fresh_checkout(tmp_path / "checkout")
    (checkout / ".venv").symlink_to(sys.prefix)
    # the shared venv was installed from this pyproject.toml: make must see it as up to date, or it would
    # reinstall this suite's venv from the temporary checkout
    older = stamp.stat().st_mtime - 1
    os.utime(checkout / "pyproject.toml", (older, older))
    home = tmp_path / "home"
    run_blocks(_doc_blocks("checkout"), checkout, user_env(home))
    assert (home / GGUF).is_file(), "make install did not put the embedded model into ~/.cache"
    assert not (checkout / ".cache").exists(), "a second model cache appeared inside the checkout"
    for made in (
        "runs/tour/baseline/summary.json",
        "runs/tour/preventative/summary.json",
        "runs/tour/compare.md",
    ):
        assert (checkout / made).is_file(), made
