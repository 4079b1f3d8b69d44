"""The command line as a new user meets it: both spellings of every flag, errors that never echo the values of
unknown arguments, the API key from the environment, and help that names the command the user ran."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers import random_vector
from server_helpers import free_port

from persona_vaccine.cli_args import ArgumentParser, command_name, describe_unknown, flag_spellings

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cr3t-value-0123456789"
COMMANDS = (
    "train",
    "extract",
    "screen",
    "score",
    "export",
    "compare",
    "demo",
    "serve",
    "classifier",
    "seeds",
)


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    env.pop("PERSONA_MONITOR_API_KEY", None)
    return env


def _run(script: Path, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def console_script(tmp_path_factory) -> Path:
    """A `persona-vaccine` script as pip writes it for the console entry point (outside the checkout)."""
    bin_dir = tmp_path_factory.mktemp("bin")
    script = bin_dir / "persona-vaccine"
    script.write_text("import sys\nfrom persona_vaccine.cli import main\n\nsys.exit(main())\n")
    return script


@pytest.fixture(scope="module")
def tiny_model(tiny_tokenizer, tmp_path_factory):
    """A tiny Llama saved like a hub checkpoint, and a persona vector for it."""
    from conftest import tiny_llama

    root = tmp_path_factory.mktemp("model")
    model = tiny_llama(vocab_size=len(tiny_tokenizer), layers=4, hidden=32, seed=0)
    model.config.pad_token_id = tiny_tokenizer.pad_token_id
    model.save_pretrained(root / "model")
    tiny_tokenizer.save_pretrained(root / "model")
    vector = root / "evil.safetensors"
    random_vector(model, "evil", model_id=str(root / "model")).save(vector)
    return root / "model", vector


# ---------------------------------------------------------------- both spellings
def test_the_shared_parser_takes_both_spellings_of_every_long_flag():
    parser = ArgumentParser(prog="x")
    parser.add_argument("--api_key")
    parser.add_argument("--bake-steering", dest="bake_vector")
    parser.add_argument("--no-calibrate", action="store_true")
    sub = parser.add_subparsers(dest="action").add_parser("new")
    sub.add_argument("--base_url")
    opts = parser.parse_args(["--api-key", "k", "--bake_steering", "v", "--no_calibrate"])
    assert (opts.api_key, opts.bake_vector, opts.no_calibrate) == ("k", "v", True)
    assert parser.parse_args(["--api_key=k2", "new", "--base-url", "u"]).base_url == "u"
    assert flag_spellings("--C") == ["--C"] and flag_spellings("-h") == ["-h"]


def _help_flags(text: str) -> list[list[str]]:
    """The spellings of each option line of an argparse help text."""
    rows = []
    for line in text.splitlines():
        match = re.match(r"^\s{2}(-\S.*?)(\s{2,}|$)", line)
        if match:
            rows.append(re.findall(r"--[\w-]+", match.group(1)))
    return [r for r in rows if r]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_of_every_command_has_both_spellings(command, console_script, tmp_path):
    """The installed command's help: both spellings of each flag, and its own name, never launch.py."""
    proc = _run(console_script, command, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "launch.py" not in proc.stdout + proc.stderr
    assert f"usage: persona-vaccine {'[demo]' if command == 'demo' else command}" in proc.stdout
    rows = _help_flags(proc.stdout)
    assert rows, proc.stdout[:2000]
    for spellings in rows:
        for flag in spellings:
            if "_" in flag or ("-" in flag[2:]):
                assert set(flag_spellings(flag)) <= set(spellings), (command, spellings)


def test_trait_new_and_serve_parse_kebab_flags_to_the_same_values():
    from persona_vaccine.monitoring.cli import serve_parser
    from persona_vaccine.traits.cli import _parser

    argv = ["--model", "m", "--vectors", "v", "--api-key", SECRET, "--max-tokens-limit", "7", "--log-text"]
    opts = serve_parser().parse_args(argv)
    assert (opts.api_key, opts.max_tokens_limit, opts.log_text) == (SECRET, 7, True)
    snake = serve_parser().parse_args(["--" + a[2:].replace("-", "_") if a[:2] == "--" else a for a in argv])
    assert vars(snake) == vars(opts)
    opts = _parser().parse_args(["new", "n", "d", "--backend", "hf", "--base-url", "http://x"])
    assert opts.base_url == "http://x"


def test_recipe_commands_take_both_spellings_in_the_precheck_and_the_full_parse(tmp_path):
    from persona_vaccine.steering.extract_config import ExtractionConfig
    from persona_vaccine.training.precheck import RecipeError, fields_of, parse_overrides
    from persona_vaccine.training.recipe import parse_config

    fields = fields_of((ExtractionConfig,))
    overrides = [
        "--trait",
        "evil",
        "--max-questions",
        "3",
        "--output-dir",
        str(tmp_path),
        "--no-heldout-eval",
    ]
    assert parse_overrides(overrides, fields) == {
        "trait": "evil",
        "max_questions": "3",
        "output_dir": str(tmp_path),
        "no_heldout_eval": [],
    }
    with pytest.raises(RecipeError, match=r"unknown override 'max-questons' \(did you mean 'max_questions'"):
        parse_overrides(["--max-questons", SECRET], fields)
    cfg = parse_config(ExtractionConfig, None, overrides)
    assert (cfg.max_questions, cfg.output_dir, cfg.trait, cfg.heldout_eval) == (
        3,
        str(tmp_path),
        "evil",
        False,
    )


def test_train_recipe_kebab_overrides_reach_the_config(tmp_path):
    from persona_vaccine.training.recipe import parse_recipe

    recipe = "recipes/smollm2-135m/evil/preventative.yaml"
    _, data_args, args = parse_recipe(
        recipe, ["--learning-rate", "0.25", "--output-dir", str(tmp_path), "--dataset-size", "12"]
    )
    assert (args.learning_rate, args.output_dir, data_args.dataset_size) == (0.25, str(tmp_path), 12)


# ---------------------------------------------------------------- no values in errors
@pytest.mark.parametrize(
    "argv, flag, suggestion",
    [
        (
            ["serve", "--model", "m", "--vectors", "v", "--api-kee", SECRET],
            "--api-kee",
            "--api_key/--api-key",
        ),
        (
            ["serve", "--model", "m", "--vectors", "v", f"--api_kee={SECRET}"],
            "--api_kee",
            "--api_key/--api-key",
        ),
        (["trait", "new", "n", "d", "--backend", "hf", "--bse-url", SECRET], "--bse-url", "--base_url"),
        (["export", "run", "--bake-coeff", SECRET], "--bake-coeff", "--bake_coef/--bake-coef"),
        (["score", "--vector", "v", "--txt", SECRET], "--txt", "--text"),
        (["compare", "run", "--output-dri", SECRET], "--output-dri", "--output_dir/--output-dir"),
        (["classifier", "dir", "--trait", "evil", SECRET], None, "unexpected value"),
        (["demo", "--forse", SECRET], "--forse", "--force"),
        (
            ["seeds", "recipes/smollm2-135m/evil/baseline.yaml", "--seeds", "0", "--lerning-rate", SECRET],
            "lerning-rate",
            "learning_rate",
        ),  # fmt: skip
        (
            ["train", "recipes/smollm2-135m/evil/baseline.yaml", f"--lerning_rate={SECRET}"],
            "lerning_rate",
            "learning_rate",
        ),  # fmt: skip
        (["extract", "--trait", "evil", "--max-questons", SECRET], "max-questons", "max_questions"),
    ],
)
def test_unknown_arguments_are_named_without_their_values(argv, flag, suggestion, tmp_path):
    proc = _run(ROOT / "launch.py", *argv, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert SECRET not in proc.stdout + proc.stderr
    assert (flag is None or flag in proc.stderr) and suggestion in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_the_full_recipe_parse_never_repeats_unknown_values():
    """Past the precheck (no schema), TRL's parser lists the leftover strings: they stay out of the error."""
    from persona_vaccine.steering.extract_config import ExtractionConfig
    from persona_vaccine.training.precheck import RecipeError
    from persona_vaccine.training.recipe import parse_config

    for overrides, named in (
        ([f"--api-kee={SECRET}"], "'api-kee'"),
        (["--api_kee", SECRET], "'api_kee'"),
        (["--max_questions", "3", SECRET], "1 unexpected value"),
        (["--no-calibrate", SECRET], "'no-calibrate' (did you mean 'calibrate'?)"),
    ):
        with pytest.raises(RecipeError) as info:
            parse_config(ExtractionConfig, None, ["--trait", "evil", *overrides])
        assert SECRET not in str(info.value) and named in str(info.value)


def test_describe_unknown_names_flags_only():
    options = ["--api_key", "--api-key", "--port"]
    message = describe_unknown(["--api-kee", SECRET, f"--prot={SECRET}", "-1.5"], options)
    assert SECRET not in message and "-1.5" not in message
    assert message == (
        "unrecognized arguments: --api-kee (did you mean --api_key/--api-key?), --prot (did you mean --port?)"
    )


# ---------------------------------------------------------------- the API key from the environment
def test_serve_help_names_the_api_key_variable(console_script, tmp_path):
    from persona_vaccine.monitoring.server import API_KEY_ENV

    proc = _run(console_script, "serve", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and f"${API_KEY_ENV}" in " ".join(proc.stdout.split())


@pytest.mark.slow  # a real server process on a tiny model
def test_serve_reads_the_api_key_from_the_environment_and_never_prints_it(tiny_model, tmp_path):
    from persona_vaccine.monitoring.server import API_KEY_ENV

    model, vector = tiny_model
    port = free_port()
    argv = [sys.executable, str(ROOT / "launch.py"), "serve", "--model", str(model), "--vectors", str(vector)]
    argv += ["--threshold", "evil=0.0", "--port", str(port), "--max-tokens-limit", "8"]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            argv, cwd=tmp_path, env={**_env(), API_KEY_ENV: SECRET}, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            while True:  # until it answers (the model loads first) or exits
                assert server.poll() is None, log.read_text()[-3000:]
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            assert httpx.get(url + "/v1/models").status_code == 401
            assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
            ok = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {SECRET}"})
            assert ok.status_code == 200 and ok.json()["data"][0]["id"] == str(model)
        finally:
            server.terminate()
            server.wait(timeout=60)
    text = log.read_text()
    assert "API key required" in text, text[-3000:]
    assert SECRET not in text


# ---------------------------------------------------------------- the command the user ran
def test_command_name_follows_the_script_that_ran(console_script, tmp_path):
    assert command_name() in ("persona-vaccine", "python launch.py")
    installed = _run(console_script, "--help", cwd=tmp_path)
    assert installed.returncode == 0 and "persona-vaccine train RECIPE" in installed.stdout
    assert "launch.py" not in installed.stdout
    assert "(persona-vaccine COMMAND --help)" in installed.stdout
    checkout = _run(ROOT / "launch.py", "--help", cwd=tmp_path)
    assert checkout.returncode == 0 and "python launch.py train RECIPE" in checkout.stdout


def test_error_hints_name_the_command_that_ran(console_script, tmp_path):
    missing = str(tmp_path / "missing.safetensors")
    argv = ["serve", "--model", "m", "--vectors", missing]
    installed = _run(console_script, *argv, cwd=tmp_path)
    assert installed.returncode == 2 and "Extract it first with: persona-vaccine extract" in installed.stderr
    assert "launch.py" not in installed.stderr
    checkout = _run(ROOT / "launch.py", *argv, cwd=tmp_path)
    assert checkout.returncode == 2 and "Extract it first with: python launch.py extract" in checkout.stderr
