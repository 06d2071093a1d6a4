"""Write student notebooks: the chapters with their exercise solutions stripped.

The chapters follow CONTRIBUTING.md: a solution is a code cell tagged ``solution`` whose answer
sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines, a discussion is a markdown
cell tagged ``solution``, and a code cell tagged ``self-check`` follows every solution. In the
student notebook

- a solution cell keeps only the lines outside the markers, with ``# YOUR CODE HERE`` in place of
  each answer, and is shown (no ``hide-cell`` tag, no folded source or outputs, no Colab form);
- discussion cells are removed;
- self-checks stay: they print "not answered yet" until the student defines the answer;
- every output is cleared, and a note at the top says how the self-checks work.

Usage::

    python scripts/student_notebooks.py chapters/*.ipynb --out _build/student --zip

Bad input (a solution cell without markers, unbalanced markers, a solution with no self-check
after it, a marker or a discussion outside a solution cell) stops with one ``error:`` line that
names the notebook and the cell, and exit status 2.
"""

import argparse
import re
import sys
import zipfile
from pathlib import Path

import nbformat

from aecore.errors import AecoreError

BEGIN = re.compile(r"^(\s*)### BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
TITLE = re.compile(r"^# @title Solution to (Exercise \S+?)\b.*$")
DISCUSSION = re.compile(r"<summary>\s*Discussion of", re.IGNORECASE)
PLACEHOLDER = "# YOUR CODE HERE"
ZIP_NAME = "student-notebooks.zip"
NOTE_ID = "student-version-note"
NOTE = """\
> **Student version.** This notebook is the book's chapter with the exercise solutions removed.
> Run it from the top. In each exercise, replace `# YOUR CODE HERE` with your answer and define
> the names the question asks for (they start with `ex` and the exercise number), then run the
> self-check cell below it. It prints *not answered yet* until those names exist, *correct* when
> the answer is right, and otherwise stops with an `AssertionError` and a hint. The book's page
> for this chapter shows a worked solution and a discussion under each exercise."""


def tags(cell):
    """The cell's tags (a list, possibly empty)."""
    return list(cell.get("metadata", {}).get("tags", []))


def strip_solution(source, where):
    """Return ``source`` with every BEGIN/END SOLUTION block replaced by ``# YOUR CODE HERE``.

    >>> source = "x = 1\\n### BEGIN SOLUTION\\nex1_y = x + 1\\n### END SOLUTION"
    >>> print(strip_solution(source, "cell 4"))
    x = 1
    # YOUR CODE HERE
    >>> strip_solution("ex1_y = 2", "cell 4")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    aecore.errors.AecoreError: cell 4: a solution cell needs '### BEGIN SOLUTION' and ...
    """
    kept, inside, blocks = [], False, 0
    for line in source.splitlines():
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise AecoreError(f"{where}: '### BEGIN SOLUTION' again before '### END SOLUTION'")
            inside, blocks = True, blocks + 1
            indent = begin.group(1)
            kept.append(indent + PLACEHOLDER)
            if indent:  # an indented block must not be left empty
                kept.append(indent + "pass")
        elif END.match(line):
            if not inside:
                raise AecoreError(f"{where}: '### END SOLUTION' without a "
                                  "'### BEGIN SOLUTION' before it")
            inside = False
        elif not inside:
            title = TITLE.match(line)
            kept.append(f"# {title.group(1)}: your answer" if title else line)
    if inside:
        raise AecoreError(f"{where}: '### BEGIN SOLUTION' without a matching '### END SOLUTION'")
    if not blocks:
        raise AecoreError(f"{where}: a solution cell needs '### BEGIN SOLUTION' and "
                          "'### END SOLUTION' lines around the answer")
    return "\n".join(kept)


def _show(cell):
    """Unfold a cell: drop hide-cell and solution tags, folded source/outputs and Colab's form."""
    meta = cell.metadata
    remaining = [t for t in tags(cell) if t not in ("solution", "hide-cell")]
    if remaining:
        meta["tags"] = remaining
    else:
        meta.pop("tags", None)
    meta.pop("cellView", None)
    meta.pop("mystnb", None)  # the book's "Show solution" button label
    jupyter = meta.get("jupyter", {})
    jupyter.pop("source_hidden", None)
    jupyter.pop("outputs_hidden", None)
    if "jupyter" in meta and not jupyter:
        del meta["jupyter"]


def student_version(nb, name="notebook"):
    """Return a student copy of the notebook ``nb`` (the input is not changed).

    Raises AecoreError, naming ``name`` and the cell, when the notebook breaks the convention.
    """
    nb = nbformat.from_dict(nb)  # a deep copy
    cells, solutions = [], 0
    for i, cell in enumerate(nb.cells):
        where = f"{name}: cell {i}"
        source = cell.source
        is_solution = "solution" in tags(cell)
        if not is_solution and cell.cell_type == "code" and (
                any(BEGIN.match(ln) or END.match(ln) for ln in source.splitlines())):
            raise AecoreError(f"{where}: solution markers in a cell not tagged 'solution' "
                              "(the answer would reach the students)")
        if not is_solution and cell.cell_type == "markdown" and DISCUSSION.search(source):
            raise AecoreError(f"{where}: a discussion of an exercise in a cell not tagged "
                              "'solution' (the answer would reach the students)")
        if is_solution and cell.cell_type == "markdown":
            continue  # a discussion: removed
        if is_solution and cell.cell_type == "code":
            following = next((c for c in nb.cells[i + 1:] if c.cell_type == "code"), None)
            if following is None or "self-check" not in tags(following):
                raise AecoreError(f"{where}: a solution with no self-check after it (the next "
                                  "code cell must be tagged 'self-check')")
            cell.source = strip_solution(source, where)
            _show(cell)
            solutions += 1
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    if any(c.get("id") == NOTE_ID for c in cells):
        raise AecoreError(f"{name}: is already a student notebook")
    note = nbformat.v4.new_markdown_cell(NOTE)
    note["id"] = NOTE_ID  # a fixed id: the same chapter always gives the same file
    nb.cells = [note] + cells
    nbformat.validate(nb)
    return nb, solutions


def write_student_notebooks(paths, out, make_zip=False):
    """Write a student notebook for each chapter in ``paths`` into the folder ``out``.

    Returns the written paths (the zip of all of them last, with ``make_zip``). Every input is
    checked before anything is written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AecoreError(f"--out {out} is a file, not a folder")
    made = []
    for path in map(Path, paths):
        if not path.is_file():
            raise AecoreError(f"{path}: no such notebook")
        if path.suffix != ".ipynb":
            raise AecoreError(f"{path}: not a notebook (expected a .ipynb file)")
        if path.resolve().parent == out.resolve():
            raise AecoreError(f"{path}: --out is the chapter's own folder; the student notebook "
                              "would overwrite the chapter")
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as exc:  # nbformat raises several types for a broken file
            raise AecoreError(f"{path}: not a readable notebook ({type(exc).__name__})") from exc
        made.append((path.name, student_version(nb, str(path))[0]))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, nb in made:
        nbformat.write(nb, out / filename)
        written.append(out / filename)
    if make_zip:
        archive = out / ZIP_NAME
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in written:  # a fixed date: the same chapters always give the same zip
                info = zipfile.ZipInfo(f"student-notebooks/{path.name}", (2026, 1, 1, 0, 0, 0))
                zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        written.append(archive)
    return written


def main(argv=None):
    """Command line: parse, write, report; one ``error:`` line and status 2 on bad input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="+", help="chapter notebooks (.ipynb)")
    parser.add_argument("--out", required=True, help="folder for the student notebooks")
    parser.add_argument("--zip", action="store_true", help=f"also write {ZIP_NAME} of all of them")
    args = parser.parse_args(argv)
    try:
        written = write_student_notebooks(args.chapters, args.out, make_zip=args.zip)
    except AecoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
