"""The runnable code blocks of the docs, turned into one bash script that runs them in order.

A fenced block right after `<!-- runnable -->` runs as it is written (bash, or python through the
`python` on PATH at that point). Tags after a colon (`<!-- runnable: server pip -->`): `server` starts the
block in the background, waits until `http://127.0.0.1:PORT/healthz` answers (PORT from the block's
`--port N`) and stops it when the script ends; `checkout` or `pip` run the block only for a user in a
source checkout or one who installed from pip. Blocks share one shell, so `source .venv/bin/activate` in one
block holds for the next, as it does for a user pasting them into one terminal.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

MARK = re.compile(r"^<!--\s*runnable(?::\s*(?P<tags>[a-z ,]+?))?\s*-->\s*$")
TAGS = {"server", "checkout", "pip"}
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\s*$")
BLOCK_MARKER = "### doc block "  # printed before each block, so a failure names the doc's line


@dataclass(frozen=True)
class Block:
    path: str
    line: int  # 1-based line of the block's first code line
    language: str  # "bash" or "python"
    mode: str  # "run" or "server"
    text: str
    only: str | None = None  # "checkout" or "pip": for that kind of user only

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def port(self) -> int:
        found = re.search(r"--port[ =](\d+)", self.text)
        if found is None:
            raise ValueError(f"{self.where}: a server block needs --port N")
        return int(found.group(1))


def runnable_blocks(path: str | Path, name: str | None = None) -> list[Block]:
    """The blocks of a Markdown file marked runnable, in document order."""
    lines = Path(path).read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        mark = MARK.match(lines[i].strip())
        if mark is None:
            i += 1
            continue
        tags = set(re.split(r"[ ,]+", mark.group("tags") or "")) - {""}
        if tags - TAGS or {"checkout", "pip"} <= tags:
            raise ValueError(f"{name or path}:{i + 1}: runnable tags are server and one of checkout, pip")
        fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if fence is None or fence.group("lang") not in ("bash", "python"):
            raise ValueError(
                f"{name or path}:{i + 1}: a runnable mark must be followed by a bash or python fence"
            )
        end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
        blocks.append(
            Block(
                str(name or path),
                i + 3,
                fence.group("lang"),
                "server" if "server" in tags else "run",
                "\n".join(lines[i + 2 : end]),
                next(iter(tags & {"checkout", "pip"}), None),
            )
        )
        i = end + 1
    return blocks


def script(blocks: list[Block], probe_python: str, server_wait_s: int = 600) -> str:
    """One bash script running the blocks in order; servers are stopped on exit, however it ends."""
    out = [
        "set -euo pipefail",
        "set -m  # background servers get their own process group, stopped as a whole",
        "servers=()",
        'stop_servers() { for pid in "${servers[@]}"; do kill -- "-$pid" 2>/dev/null || true; done; }',
        "trap stop_servers EXIT",
    ]
    for n, block in enumerate(blocks):
        out.append(f"echo {shlex.quote(BLOCK_MARKER + block.where)} @$(date +%s)")
        if block.mode == "server":
            log = f"server_{n}.log"
            out.append(f"( {block.text}\n) > {log} 2>&1 &")
            out.append("servers+=($!)")
            url = f"http://127.0.0.1:{block.port()}/healthz"
            wait = (
                "import sys, time, urllib.request\n"
                f"end = time.time() + {server_wait_s}\n"
                "while time.time() < end:\n"
                "    try:\n"
                f"        urllib.request.urlopen({url!r}, timeout=5); sys.exit(0)\n"
                "    except Exception:\n"
                "        time.sleep(1)\n"
                "sys.exit(1)\n"
            )
            out.append(f"{shlex.quote(probe_python)} -c {shlex.quote(wait)} || {{ cat {log}; exit 1; }}")
        elif block.language == "python":
            out.append(f"python - <<'PYTHON_BLOCK'\n{block.text}\nPYTHON_BLOCK")
        else:
            out.append(block.text)
    out.append(f"echo {shlex.quote(BLOCK_MARKER + 'done')} @$(date +%s)")
    return "\n".join(out) + "\n"


def block_starts(output: str) -> list[tuple[str, int]]:
    """(doc line, start time in epoch seconds) of each block that started, from the script's output."""
    starts = []
    for line in output.splitlines():
        if line.startswith(BLOCK_MARKER):
            where, _, when = line[len(BLOCK_MARKER) :].rpartition(" @")
            starts.append((where, int(when)))
    return starts


def failed_block(output: str) -> str:
    """The doc line of the last block that started, from the script's output."""
    starts = block_starts(output)
    return starts[-1][0] if starts else "(before the first block)"


def block_times(output: str) -> str:
    """Seconds each block took, one line each (for the test's log)."""
    starts = block_starts(output)
    return "\n".join(f"{b - a:5d} s  {where}" for (where, a), (_, b) in zip(starts, starts[1:], strict=False))
