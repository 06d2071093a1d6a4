"""Shared test set-up: figures render off-screen in unit tests (never in notebooks), a helper
that runs a script in a fresh process with a given number of threads, a private image cache and
a tiny folder of twelve image species for the convolutional models."""

import json
import os
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
from PIL import Image

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


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """Decoded images go to a cache in this test's own temporary folder."""
    monkeypatch.setenv("AECORE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def species_folder(tmp_path):
    """Twelve 24x24 images, one species each: a coloured rectangle on white."""
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(1, 13):
        img = Image.new("RGB", (24, 24), "white")
        img.paste(tuple(int(c) for c in rng.integers(0, 200, 3)), (4, 4 + i % 5, 20, 20))
        img.save(d / f"{i}.png")
    return d
