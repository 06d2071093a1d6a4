"""Committed chapters are clean: no outputs, the right kernel, a title, the Colab cell, in the TOC."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
COLAB_URL = "git+https://github.com/autoencoders-book/autoencoders-from-first-principles"


def _load(path):
    return json.loads(path.read_text())


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks in chapters/"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = _load(path)
    dirty = [
        i for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_kernel_and_title(path):
    nb = _load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown"
    source = "".join(first["source"])
    assert re.match(r"# Chapter \d+: \S", source), f"{path.name}: first cell must start with '# Chapter N: Title'"
    h1 = [ln for c in nb["cells"] if c["cell_type"] == "markdown" for ln in "".join(c["source"]).splitlines()
          if ln.startswith("# ")]
    assert len(h1) == 1, f"{path.name}: exactly one H1 heading expected, found {h1}"
    assert "Learning goals" in source or "learning goals" in source.lower()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_first_code_cell_installs_aecore_only_in_colab(path):
    nb = _load(path)
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    src = "".join(code["source"])
    assert '"google.colab" in sys.modules' in src and COLAB_URL in src
    assert "hide-cell" in code["metadata"].get("tags", [])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_has_exercises_with_hidden_solutions(path):
    """At least 3 exercises, each a folded, executed solution followed by a self-check (CONTRIBUTING.md)."""
    cells = _load(path)["cells"]
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "## Exercises" in text
    assert ":class: dropdown" not in text, f"{path.name}: MyST drop-downs show raw in Jupyter; use <details>"
    solutions = [i for i, c in enumerate(cells)
                 if c["cell_type"] == "code" and "solution" in c["metadata"].get("tags", [])]
    assert len(solutions) >= 3, f"{path.name}: at least 3 exercises with executed solutions"
    for i in solutions:
        meta, src = cells[i]["metadata"], "".join(cells[i]["source"])
        assert "hide-cell" in meta["tags"], f"{path.name} cell {i}: a solution is folded in the book"
        assert meta.get("jupyter", {}).get("source_hidden"), f"{path.name} cell {i}: folded in JupyterLab"
        assert "### BEGIN SOLUTION" in src and "### END SOLUTION" in src, f"{path.name} cell {i}: markers"
        exercise = re.match(r"# @title Solution to (Exercise \d+)", src)
        assert exercise, f"{path.name} cell {i}: first line '# @title Solution to Exercise N ...'"
        label = meta.get("mystnb", {}).get("code_prompt_show")
        assert label == f"Show solution to {exercise[1]}", f"{path.name} cell {i}: the book's fold label"
        after = [c for c in cells[i + 1:] if c["cell_type"] == "code"][:1]
        assert after and "self-check" in after[0]["metadata"].get("tags", []), \
            f"{path.name} cell {i}: the next code cell after a solution is its self-check"


def test_toc_lists_exactly_the_chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    in_toc = {f for f in files if f.startswith("chapters/")}
    on_disk = {f"chapters/{p.stem}" for p in CHAPTERS}
    assert in_toc == on_disk
