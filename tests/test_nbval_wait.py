"""``make nbval`` loads the plugin that lets nbval wait more than 5 s for a cell's outputs."""

import re
from pathlib import Path

import nbformat
import pytest

from tests import nbval_output_wait

ROOT = Path(__file__).resolve().parents[1]


def test_make_nbval_loads_the_plugin():
    recipe = re.search(r"^nbval:\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, "the Makefile has no nbval target"
    assert "-p tests.nbval_output_wait" in recipe.group(1).replace("\\\n", " ")


def test_collected_cells_wait_longer(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("print(x)")])
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)

    class Probe:
        waits = []

        def pytest_collection_finish(self, session):
            self.waits = [item.output_timeout for item in session.items]

    probe = Probe()
    code = pytest.main(["--collect-only", "-q", "--nbval-lax", "-p", "no:cacheprovider",
                        "-p", "tests.nbval_output_wait", str(path)], plugins=[probe])
    assert code == 0
    assert probe.waits == [nbval_output_wait.OUTPUT_WAIT] * 2
    assert nbval_output_wait.OUTPUT_WAIT > 5  # nbval's own, hard-coded wait
