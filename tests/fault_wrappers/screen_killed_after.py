"""Run `launch.py screen ...` and SIGKILL this process once N samples are scored (N = argv[1]).

The kill lands at an exact row count instead of racing a poll loop against a fast machine.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path

import persona_vaccine.data.screening as screening

ROOT = Path(__file__).resolve().parents[2]
kill_after = int(sys.argv[1])
scored = 0
_score_chunk = screening.score_chunk


def _score_chunk_then_die(*args, **kwargs):
    global scored
    for result in _score_chunk(*args, **kwargs):
        if scored >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        scored += 1
        yield result


screening.score_chunk = _score_chunk_then_die
sys.argv = [str(ROOT / "launch.py"), *sys.argv[2:]]
runpy.run_path(str(ROOT / "launch.py"), run_name="__main__")
