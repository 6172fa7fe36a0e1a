"""Wall time and peak memory of `make train`, the first command a new user runs.

Measured after set-up (the virtual environment exists and the default data set is cached), so
the figure is the training itself: `make train` is run ``--repeats`` times in a row and the
median wall time is reported, with the largest peak RSS of the training process. Writes the
figures as JSON (default ``docs/make_train.json``) and prints them.

    .venv/bin/python scripts/benchmark_make_train.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "benchmark_make_train")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "make_train.json")
    args = parser.parse_args()

    subprocess.run(["make", "-s", "install"], cwd=ROOT, check=True)
    # Generate the default data once, so the timed runs measure training, not generation.
    subprocess.run(
        [sys.executable, "-m", "rolefusion.train", "train=false", "test=false", "logger=none",
         f"paths.log_dir={args.work}"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    walls = []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        subprocess.run(
            ["make", "-s", "train", f"ARGS=paths.log_dir={args.work}"],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        walls.append(time.perf_counter() - start)
        print(f"make train #{repeat + 1}: {walls[-1]:.1f} s", flush=True)
    # ru_maxrss of children: the largest peak of any child waited for, in KiB on Linux.
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures = {
        "date": str(date.today()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "wall_s": [round(w, 1) for w in walls],
        "wall_s_median": round(statistics.median(walls), 1),
        "peak_rss_mib": round(peak_mib),
    }
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
