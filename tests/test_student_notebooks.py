"""scripts/student_notebooks.py: student notebooks hold no solutions, keep a self-check per
exercise, run without error (each self-check saying "not answered yet"), refuse bad input with
one error line, and are linked from the book where the Makefile puts them in the site."""

import doctest
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "student_notebooks.py"
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
FAST_CHAPTER = ROOT / "chapters" / "03_latent_space.ipynb"   # about 8 s to execute
PAGES = [ROOT / "book" / "instructor.md", ROOT / "book" / "how-to-use.md"]   # instructor first

_spec = importlib.util.spec_from_file_location("student_notebooks", SCRIPT)
sn = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sn)


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def _solution_cell(source):
    cell = nbformat.v4.new_code_cell(source, id="solution-1")
    cell.metadata = {"tags": ["solution", "hide-cell"], "cellView": "form",
                     "jupyter": {"source_hidden": True, "outputs_hidden": True}}
    cell.outputs = [nbformat.v4.new_output("stream", text="6\n")]
    cell.execution_count = 4
    return cell


def synthetic(solution=None, discussion=None, check=True):
    """A small notebook that follows CONTRIBUTING.md: one exercise, its solution, its check."""
    solution = solution if solution is not None else (
        "# @title Solution to Exercise 1 (click to show)\n"
        "### BEGIN SOLUTION\nex1_total = sum(data)\nprint(ex1_total)\n### END SOLUTION")
    discussion = discussion if discussion is not None else (
        "<details>\n<summary>Discussion of Exercise 1</summary>\n\n"
        "The secret sum is 6.\n\n</details>")
    done = nbformat.v4.new_markdown_cell(discussion, id="discussion-1")
    done.metadata["tags"] = ["solution"]
    self_check = nbformat.v4.new_code_cell(
        'from aecore.exercises import check\n'
        'check("Exercise 1", lambda: ex1_total == 6, "Add every element of data.")',
        id="check-1")
    self_check.metadata["tags"] = ["self-check"]
    cells = [nbformat.v4.new_markdown_cell("# Chapter 9: Synthetic", id="title"),
             nbformat.v4.new_code_cell("data = [1, 2, 3]", id="data"),
             nbformat.v4.new_markdown_cell("## Exercises\n\n**Exercise 1.** Add up `data`; "
                                           "store it in `ex1_total`.", id="q1"),
             _solution_cell(solution), done]
    if check:
        cells.append(self_check)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _execute(nb, path):
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path)}}).execute()
    errors = [(i, o["ename"], o["evalue"][:200]) for i, c in enumerate(nb.cells)
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return errors


def _text(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


def test_doctests():
    assert doctest.testmod(sn).failed == 0


def test_synthetic_student_version():
    nb = synthetic()
    student, solutions = sn.student_version(nb, "synthetic")
    assert solutions == 1
    assert student.cells[0].id == sn.NOTE_ID and "Student version" in student.cells[0].source
    sources = [c.source for c in student.cells]
    assert not any("secret" in s or "sum(data)" in s or "SOLUTION" in s for s in sources)
    answer = student.cells[4]
    assert answer.source == "# Exercise 1: your answer\n# YOUR CODE HERE"
    assert answer.metadata == {} and answer.outputs == [] and answer.execution_count is None
    assert "self-check" in _tags(student.cells[5])
    assert len(student.cells) == len(nb.cells)   # the note in, the discussion out
    assert nb.cells[3].metadata["tags"] == ["solution", "hide-cell"]   # the input is unchanged


def test_indented_answer_keeps_the_block_valid():
    student, _ = sn.student_version(synthetic(
        "for v in data:\n    ### BEGIN SOLUTION\n    print(v)\n    ### END SOLUTION\n"
        "ex1_total = 6"))
    source = student.cells[4].source
    assert source == "for v in data:\n    # YOUR CODE HERE\n    pass\nex1_total = 6"
    compile(source, "answer", "exec")


def test_synthetic_runs_not_answered_then_correct(tmp_path):
    student, _ = sn.student_version(synthetic())
    assert _execute(student, tmp_path) == []
    assert _text(student.cells[5]).startswith("Exercise 1: not answered yet. Define `ex1_total`")
    student.cells[4].source = student.cells[4].source.replace(sn.PLACEHOLDER, "ex1_total = 6")
    assert _execute(student, tmp_path) == []
    assert _text(student.cells[5]).strip() == "Exercise 1: correct."


BAD = {
    "no markers": (lambda: synthetic("ex1_total = sum(data)"),
                   "cell 3: a solution cell needs '### BEGIN SOLUTION' and '### END SOLUTION'"),
    "begin without end": (lambda: synthetic("### BEGIN SOLUTION\nex1_total = 6"),
                          "cell 3: '### BEGIN SOLUTION' without a matching '### END SOLUTION'"),
    "end without begin": (lambda: synthetic("ex1_total = 6\n### END SOLUTION"),
                          "cell 3: '### END SOLUTION' without a '### BEGIN SOLUTION' before it"),
    "begin twice": (lambda: synthetic("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"),
                    "cell 3: '### BEGIN SOLUTION' again before '### END SOLUTION'"),
    "no self-check": (lambda: synthetic(check=False),
                      "cell 3: a solution with no self-check after it"),
    "markers untagged": (lambda: _untag(synthetic(), 3),
                         "cell 3: solution markers in a cell not tagged 'solution'"),
    "discussion untagged": (lambda: _untag(synthetic(), 4),
                            "cell 4: a discussion of an exercise in a cell not tagged 'solution'"),
}


def _untag(nb, i):
    nb.cells[i].metadata["tags"] = []
    return nb


@pytest.mark.parametrize("case", BAD)
def test_bad_notebooks_give_one_error_line(case, tmp_path, capsys):
    make, message = BAD[case]
    path = tmp_path / "ch.ipynb"
    nbformat.write(make(), path)
    assert sn.main([str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: {message}"), err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_bad_paths_give_one_error_line(tmp_path, capsys):
    good = tmp_path / "good.ipynb"
    nbformat.write(synthetic(), good)
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    empty = tmp_path / "empty.ipynb"
    empty.write_text("{}")
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    cases = [([str(tmp_path / "missing.ipynb")], "missing.ipynb: no such notebook"),
             ([str(a_file)], "file.txt: not a notebook (expected a .ipynb file)"),
             ([str(broken)], "broken.ipynb: not a readable notebook"),
             ([str(empty)], "empty.ipynb: not a readable notebook"),
             ([str(good), "--out", str(a_file)], "is a file, not a folder"),
             ([str(good), "--out", str(tmp_path)], "would overwrite the chapter")]
    for argv, message in cases:
        if "--out" not in argv:
            argv = argv + ["--out", str(tmp_path / "out")]
        assert sn.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    student = tmp_path / "out" / "good.ipynb"
    assert sn.main([str(good), "--out", str(tmp_path / "out")]) == 0
    assert sn.main([str(student), "--out", str(tmp_path / "again")]) == 2
    assert "already a student notebook" in capsys.readouterr().err


def test_command_line(tmp_path):
    good = tmp_path / "good.ipynb"
    nbformat.write(synthetic(), good)
    run = [sys.executable, str(SCRIPT), str(good), "--out", str(tmp_path / "out"), "--zip"]
    done = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.ipynb", sn.ZIP_NAME]
    first = (tmp_path / "out" / sn.ZIP_NAME).read_bytes()
    subprocess.run(run, capture_output=True, check=True, cwd=ROOT)
    assert (tmp_path / "out" / sn.ZIP_NAME).read_bytes() == first   # reproducible
    bad = subprocess.run(run[:2] + [str(tmp_path / "nope.ipynb"), "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


def _answer_lines(source):
    """Lines between the markers (stripped, non-blank)."""
    lines, inside = [], False
    for line in source.splitlines():
        if sn.BEGIN.match(line) or sn.END.match(line):
            inside = not inside
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_student_notebook_holds_no_solution(path, tmp_path):
    chapter = nbformat.read(path, as_version=4)
    questions = sorted({int(n) for c in chapter.cells if c.cell_type == "markdown"
                        for n in re.findall(r"^\*\*Exercise (\d+)\b", c.source, re.M)})
    assert questions, f"{path.name}: no '**Exercise N' questions (CONTRIBUTING.md)"
    (out,) = sn.write_student_notebooks([path], tmp_path)
    student = nbformat.read(out, as_version=4)
    assert student.cells[0].id == sn.NOTE_ID

    # no solution text: no solution cells, markers or discussions, and no answer line that the
    # chapter does not also show outside its solutions
    assert not [i for i, c in enumerate(student.cells) if "solution" in _tags(c)]
    text = "\n".join(c.source for c in student.cells)
    assert "SOLUTION" not in text and not sn.DISCUSSION.search(text)
    shown = {ln.strip() for c in chapter.cells if "solution" not in _tags(c)
             for ln in c.source.splitlines()}
    answers = {ln for c in chapter.cells if "solution" in _tags(c) and c.cell_type == "code"
               for ln in _answer_lines(c.source)} - shown
    student_lines = {ln.strip() for ln in text.splitlines()}
    assert not answers & student_lines, f"{path.name}: answer lines leaked"
    assert all(c.get("outputs", []) == [] for c in student.cells)

    # every exercise has an answer cell the student can see, followed by its self-check
    code = [c for c in student.cells if c.cell_type == "code"]
    answer_cells = [i for i, c in enumerate(code) if sn.PLACEHOLDER in c.source]
    assert len(answer_cells) == len(questions), f"{path.name}: one answer cell per exercise"
    for i in answer_cells:
        meta = code[i].metadata
        assert "hide-cell" not in meta.get("tags", []) and "cellView" not in meta
        assert not meta.get("jupyter", {}).get("source_hidden")
        assert "self-check" in _tags(code[i + 1])
    checks = " ".join(c.source for c in code if "self-check" in _tags(c))
    for n in questions:
        assert f'"Exercise {n}"' in checks, f"{path.name}: Exercise {n} has no self-check"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_solutions_fold_in_colab_and_discussions_everywhere(path):
    # tests/test_notebooks.py checks the book's and JupyterLab's folding, markers and self-checks;
    # this adds what the student script relies on besides: Colab's form, the @title line that
    # becomes "Exercise N: your answer", outputs folded in JupyterLab, discussions in <details>
    chapter = nbformat.read(path, as_version=4)
    solutions = [c for c in chapter.cells if "solution" in _tags(c)]
    assert solutions, f"{path.name}: no cells tagged 'solution' (CONTRIBUTING.md)"
    for cell in solutions:
        first = cell.source.splitlines()[0] if cell.source else ""
        if cell.cell_type == "code":
            assert cell.metadata.get("cellView") == "form", (path.name, first)
            assert cell.metadata.get("jupyter", {}).get("outputs_hidden"), (path.name, first)
            assert re.match(r"# @title Solution to Exercise \d+ \(click to show\)$", first), \
                (path.name, first)
        else:
            assert first == "<details>" and cell.source.rstrip().endswith("</details>"), \
                (path.name, first)
            assert sn.DISCUSSION.search(cell.source), (path.name, cell.source[:80])


def test_fast_chapter_student_notebook_runs(tmp_path):
    (out,) = sn.write_student_notebooks([FAST_CHAPTER], tmp_path)
    student = nbformat.read(out, as_version=4)
    errors = _execute(student, FAST_CHAPTER.parent)
    assert errors == [], f"student notebook of {FAST_CHAPTER.name} failed: {errors}"
    checks = [c for c in student.cells if "self-check" in _tags(c)]
    assert checks
    for cell in checks:
        assert "not answered yet" in _text(cell), (cell.source, _text(cell))


def _recipe(target):
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert match, f"Makefile: no recipe for {target}"
    return match.group(1)


@pytest.mark.parametrize("target", ["book", "build-strict"])
def test_makefile_puts_student_notebooks_in_the_site(target):
    recipe = _recipe(target).splitlines()
    make = [i for i, ln in enumerate(recipe) if "scripts/student_notebooks.py" in ln]
    build = [i for i, ln in enumerate(recipe) if "jupyter-book build" in ln]
    copy = [i for i, ln in enumerate(recipe) if "cp -r _build/student" in ln]
    assert make and build and copy and make[0] < build[0] < copy[0], recipe
    assert "chapters/*.ipynb" in recipe[make[0]] and "--out _build/student" in recipe[make[0]]
    assert "--zip" in recipe[make[0]] and "_build/html/student" in recipe[copy[0]]


def test_built_pages_link_every_student_notebook(tmp_path):
    # the two pages built by Sphinx with MyST (the book's parser), the student notebooks put where
    # the Makefile puts them (_build/student copied to _build/html/student), every link followed
    src, html = tmp_path / "src", tmp_path / "html"
    (src / "book").mkdir(parents=True)
    for page in PAGES:
        (src / "book" / page.name).write_text(page.read_text())
    build = [sys.executable, "-m", "sphinx", "-q", "-Q", "-b", "html", "-C",
             "-D", "extensions=myst_parser", "-D", "root_doc=book/instructor",
             "-D", "myst_enable_extensions=dollarmath,colon_fence", str(src), str(html)]
    done = subprocess.run(build, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    sn.write_student_notebooks(CHAPTERS, tmp_path / "student", make_zip=True)
    (tmp_path / "student").rename(html / "student")
    for page in PAGES:
        built = html / "book" / (page.stem + ".html")
        hrefs = re.findall(r'<a href="([^"]*student/[^"]*)" download>', built.read_text())
        for href in hrefs:
            assert (built.parent / href).resolve().is_file(), f"{built.name}: {href} is dead"
        linked = {Path(h).name for h in hrefs}
        expected = {p.name for p in CHAPTERS} | {sn.ZIP_NAME}
        assert linked >= expected, f"{built.name}: no link to {expected - linked}"
