"""How long each chapter takes to execute, on an idle machine and beside a competing program.

    .venv/bin/python benchmarks/chapter_timings.py [--chapters chapters/0*.ipynb] [--json out.json]

Each chapter is executed with nbclient, as nbval and the book build do, twice: once on an idle
machine, once while a competing CPU-bound process runs (NumPy matrix products on as many BLAS
threads as there are cores, the kind of load a second notebook or a test run puts on a laptop).
The chapters set their own thread counts (one torch/BLAS thread), so this measures whether that
choice stays fast when the cores are shared. The load average before each run is printed with it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import time

COMPETITOR = (
    "import numpy as np\n"
    "a = np.random.default_rng(0).standard_normal((1500, 1500))\n"
    "while True:\n"
    "    a = a @ a.T\n"
    "    a /= np.abs(a).max()\n"
)


def run_chapter(path: str) -> float:
    """Execute one notebook in a fresh kernel; return seconds; raise if a cell fails."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=1200, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="+", default=sorted(glob.glob("chapters/0*.ipynb")))
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    results = []
    for path in args.chapters:
        row = {"chapter": os.path.basename(path)}
        for mode in ("idle", "busy"):
            competitor = None
            if mode == "busy":
                env = dict(os.environ, OMP_NUM_THREADS=str(os.cpu_count()),
                           OPENBLAS_NUM_THREADS=str(os.cpu_count()))
                competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR], env=env)
                time.sleep(2)  # let it load the cores
            try:
                load = os.getloadavg()[0]
                row[f"{mode}_s"] = round(run_chapter(path), 1)
                row[f"{mode}_load"] = round(load, 2)
            finally:
                if competitor is not None:
                    competitor.kill()
                    competitor.wait()
        row["slowdown"] = round(row["busy_s"] / row["idle_s"], 2)
        print(f"{row['chapter']:32s} idle {row['idle_s']:6.1f} s   busy {row['busy_s']:6.1f} s"
              f"   x{row['slowdown']:.2f}   (load before: {row['idle_load']}, {row['busy_load']})",
              flush=True)
        results.append(row)
    meta = {"cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": meta, "chapters": results}, f, indent=1)


if __name__ == "__main__":
    main()
