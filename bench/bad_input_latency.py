"""How long a bad input takes to be reported: `python bench/bad_input_latency.py [--repeats 3]`.

Runs launch.py on a recipe with a typo, a NaN coefficient and a missing vector file, and prints the
median wall time of each (a fresh interpreter every time, as a user would run it).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "typo in a recipe field": "model_name_or_path: smollm2-135m\nlearnig_rate: 1.0e-4\n",
    "NaN steering coefficient": "model_name_or_path: smollm2-135m\nsteering_coefs: [.nan]\n",
    "missing vector file": "model_name_or_path: smollm2-135m\npersona_vectors: [/nonexistent.safetensors]\n",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in CASES.items():
            recipe = Path(tmp) / "recipe.yaml"
            recipe.write_text(text)
            times, codes = [], set()
            for _ in range(opts.repeats):
                start = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, str(ROOT / "launch.py"), "train", str(recipe)],
                    capture_output=True,
                    text=True,
                )
                times.append(time.perf_counter() - start)
                codes.add(proc.returncode)
            error = next(
                (line for line in proc.stderr.splitlines() if line.startswith("error:")), "(no error line)"
            )
            print(f"{name:28s} median {statistics.median(times):5.1f} s  exit {sorted(codes)}  {error[:90]}")


if __name__ == "__main__":
    main()
