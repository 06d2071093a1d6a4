"""Shared test set-up: figures render off-screen in unit tests (never in notebooks), and a helper
that runs a script in a fresh process with a given number of threads."""

import json
import os
import subprocess
import sys

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def run_with_threads():
    """``run(script, n, *args)``: ``python -c script n *args`` with ``n`` OMP/BLAS threads.

    The script prints one JSON object on its last line; ``run`` returns it parsed.
    """

    def run(script: str, n: int, *args: str, timeout: int = 600):
        env = dict(os.environ, OMP_NUM_THREADS=str(n), OPENBLAS_NUM_THREADS=str(n),
                   MKL_NUM_THREADS=str(n))
        proc = subprocess.run([sys.executable, "-c", script, str(n), *args], env=env,
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run
