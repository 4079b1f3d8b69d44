"""User errors: one base class, and the one place that turns them into a one-line message and exit code 2.

Every error caused by input (a recipe, a vector file, a trait spec, a dataset, a path, a model name)
derives from `UserError` and is printed as `error: <message>` without a traceback. `--debug` as the
first argument of launch.py, or PERSONA_VACCINE_DEBUG=1, shows the traceback instead.
"""

from __future__ import annotations

import errno
import math
import os
import sys
from collections.abc import Callable

DEBUG_ENV = "PERSONA_VACCINE_DEBUG"
USER_ERROR_EXIT = 2
ENVIRONMENT_ERROR_EXIT = 1  # the disk filled up: not the input's fault, but still one clear line


class UserError(Exception):
    """Bad input: the message names the file, the field and the fix."""


class InvalidInput(UserError, ValueError):
    """A value or combination of settings that can't work (a ValueError, for callers that catch those)."""


class ModelNotFound(UserError):
    """A model path or hub id that can't be loaded."""


class NonFiniteValue(UserError, ValueError):
    """A NaN or infinite number where a real one is needed (a coefficient, a vector, a threshold)."""


class TrainingDiverged(UserError):
    """The loss or the drift turned NaN/inf during training; the last good checkpoint is kept."""


_DISK_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (a file-size limit was reached)",
}
_ACCESS_ERRNOS = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied"}


def require_finite(value: float | None, name: str) -> None:
    """Raise NonFiniteValue for NaN or +-inf (None passes: an unset optional number)."""
    if value is not None and not math.isfinite(value):
        raise NonFiniteValue(f"{name}={value!r}: expected a finite number (not NaN or infinity)")


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


def _fresh_line() -> str:
    """A newline when a progress bar has left the cursor mid-line, so the error starts its own line."""
    tqdm = sys.modules.get("tqdm")
    return "\n" if tqdm is not None and len(getattr(tqdm.tqdm, "_instances", ())) else ""


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 2000 else text[:2000] + " ..."


def _extra_user_errors() -> tuple[type[BaseException], ...]:
    """Input errors defined in modules that don't derive from UserError (checked without importing them)."""
    extra: list[type[BaseException]] = [FileNotFoundError, NotADirectoryError, IsADirectoryError]
    layers = sys.modules.get("persona_vaccine.models.layers")
    if layers is not None:
        extra.append(layers.UnsupportedArchitecture)
    return tuple(extra)


def report(error: BaseException) -> int | None:
    """Print a user or environment error as one line and return its exit code; None for a bug."""
    if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
        where = f" writing {error.filename}" if error.filename else ""
        print(
            f"{_fresh_line()}error: {_DISK_ERRNOS[error.errno]}{where}: free space or choose another output_dir; "
            "rerun the same command to resume (finished work is kept)",
            file=sys.stderr,
        )
        return ENVIRONMENT_ERROR_EXIT
    if isinstance(error, OSError) and error.errno in _ACCESS_ERRNOS:
        where = f" {error.filename}" if error.filename else ""
        print(
            f"{_fresh_line()}error: can't write{where} ({_ACCESS_ERRNOS[error.errno]}): choose a writable output_dir",
            file=sys.stderr,
        )
        return USER_ERROR_EXIT
    if isinstance(error, (UserError, *_extra_user_errors())):
        print(f"{_fresh_line()}error: {_one_line(error)}", file=sys.stderr)
        return USER_ERROR_EXIT
    return None


def run_command(command: Callable[[list[str]], int], argv: list[str], debug: bool = False) -> int:
    """Run a CLI command; user errors become one line and exit 2 unless debugging."""
    if debug or debug_enabled():
        return command(argv)
    try:
        return command(argv)
    except Exception as e:
        code = report(e)
        if code is None:
            raise
        return code
