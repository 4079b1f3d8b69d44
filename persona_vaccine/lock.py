"""One writer per output directory: a lock file naming its holder (pid, host, since when).

Two runs writing into one directory would redo each other's work and, with different seeds, leave
several answers per key. The second run stops with a message naming the holder instead. A lock
left by a process that no longer runs (same host, dead pid) is taken over with a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from persona_vaccine.errors import UserError

logger = logging.getLogger(__name__)

LOCK_NAME = ".persona-vaccine.lock"


class OutputDirLocked(UserError, RuntimeError):
    """Another live process holds the output directory's lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(path: Path) -> dict:
    try:
        holder = json.loads(path.read_text())
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    since = holder.get("since")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if isinstance(since, int | float) else "?"
    )
    return f"{holder.get('command', 'a run')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {when})"


def acquire(directory: str | Path, command: str = "run") -> Path:
    """Create DIRECTORY/.persona-vaccine.lock for this process; OutputDirLocked if a live process has it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "command": command}
    for _ in range(40):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            pid, host = holder.get("pid"), holder.get("host")
            if pid == me["pid"] and host == me["host"]:
                raise OutputDirLocked(
                    f"{directory} is already locked by this process ({_describe(holder)})"
                ) from None
            if not holder:  # unreadable: stale unless it is being written right now
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - path.stat().st_mtime < 10:
                        time.sleep(0.5)
                        continue
            stale = not holder or (host == me["host"] and isinstance(pid, int) and not _alive(pid))
            if not stale:
                raise OutputDirLocked(
                    f"{directory} is in use by {_describe(holder)}; wait for it to finish or use another "
                    f"output directory (if that process is gone, delete {path})"
                ) from None
            logger.warning("taking over the stale lock %s of %s", path, _describe(holder))
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        return path
    raise OutputDirLocked(f"{directory}: could not take the lock {path} (another run keeps taking it)")


def release(path: Path) -> None:
    """Remove the lock file if this process still holds it."""
    if _read(path).get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def output_lock(directory: str | Path, command: str = "run", enabled: bool = True) -> Iterator[Path | None]:
    """Hold DIRECTORY's lock for the block (`enabled=False`: no lock, e.g. on non-main ranks)."""
    if not enabled:
        yield None
        return
    path = acquire(directory, command)
    try:
        yield path
    finally:
        release(path)
