"""nbval waits more than its hard-coded 5 s for a chapter cell's outputs (chapters/conftest.py)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_collected_chapter_cells_wait_longer():
    spec = importlib.util.spec_from_file_location("chapters_conftest",
                                                  ROOT / "chapters" / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)

    class Probe:
        waits = []

        def pytest_collection_finish(self, session):
            self.waits = [item.output_timeout for item in session.items]

    probe = Probe()
    chapter = ROOT / "chapters" / "03_latent_space.ipynb"
    code = pytest.main(["--collect-only", "-q", "--nbval-lax", "-p", "no:cacheprovider",
                        "--rootdir", str(ROOT), str(chapter)], plugins=[probe])
    assert code == 0
    assert len(probe.waits) > 10
    assert set(probe.waits) == {conftest.OUTPUT_WAIT}
    assert conftest.OUTPUT_WAIT > 5  # nbval's own, hard-coded wait
