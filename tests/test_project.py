"""The README's promises match what the Makefile and CI actually do."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_gives_exactly_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## The two commands.*?```bash\n(.*?)```", readme, re.S).group(1)
    commands = [ln.split("#")[0].strip() for ln in block.splitlines() if ln.strip()]
    assert commands == ["make book", "make test"]


def test_ci_runs_the_readme_test_command():
    run = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", run, re.M), ".ci/run must call `make test`, nothing weaker"


def test_make_test_runs_every_stage():
    makefile = (ROOT / "Makefile").read_text()
    stages = re.search(r"^test: (.*)$", makefile, re.M).group(1).split()
    assert stages == ["setup", "chromium", "unit", "nbval", "build-strict", "site-check"]
    assert "--nbval-lax" in makefile and "chapters/" in makefile
    assert re.search(r"jupyter-book build \. -W -n --keep-going", makefile)
    assert "export MPLBACKEND" not in makefile, "MPLBACKEND=Agg would blank every figure in the book"


def test_torch_is_pinned_and_installed_first():
    req = (ROOT / "requirements.txt").read_text().splitlines()
    pins = [ln for ln in req if ln and not ln.startswith(("#", "-"))]
    assert pins[0] == "torch==2.13.0"
    assert all("==" in ln for ln in pins), "every requirement is pinned"
    assert any(ln.startswith("jupyter-book==1.") for ln in pins), "Jupyter Book 1.x (2.x cannot build offline)"
    makefile = (ROOT / "Makefile").read_text()
    assert makefile.index("install -q torch==2.13.0") < makefile.index("install -q -r requirements.txt")


def test_site_javascript_is_self_hosted():
    config = (ROOT / "_config.yml").read_text()
    assert "mathjax_path: vendor/mathjax/" in config
    assert "vendor/widgets/require.js" in config and "vendor/widgets/embed-amd.js" in config
    assert not (ROOT / "_static").exists(), "a top-level _static/ would be injected twice by Jupyter Book"


def test_make_book_fails_on_a_chapter_that_failed_to_execute(tmp_path):
    """scripts/check_execution.sh (run after every build) fails, naming the chapter, on an error report."""
    import subprocess

    makefile = (ROOT / "Makefile").read_text()
    book = re.search(r"^book:.*?(?=^\S)", makefile, re.M | re.S).group(0)
    assert "check_execution.sh" in book and "rm -rf _build/html/reports" in book
    assert re.search(r"jupyter-book build \. -W -n --keep-going --all", makefile), "the strict build rebuilds all"
    script = ROOT / "scripts" / "check_execution.sh"
    reports = tmp_path / "reports"
    ok = subprocess.run(["bash", str(script), str(reports)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (reports / "chapters").mkdir(parents=True)
    (reports / "chapters" / "05_conv_pokemon.err.log").write_text("Traceback ...\nAecoreError: checkpoint missing\n")
    bad = subprocess.run(["bash", str(script), str(reports)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "chapters/05_conv_pokemon.err.log" in bad.stdout and "AecoreError: checkpoint missing" in bad.stdout


def test_jupyterlab_is_installed_so_the_readme_line_works():
    """The README says: after `make book`, run `.venv/bin/jupyter lab`. That needs JupyterLab itself."""
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    assert ".venv/bin/jupyter lab" in readme
    assert any(ln.startswith("jupyterlab==4.") for ln in (ROOT / "requirements.txt").read_text().splitlines())
    run = subprocess.run([sys.executable, "-m", "jupyterlab", "--version"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip().startswith("4."), run.stderr[-500:]


# --- A reader's install: one repository URL, Binder's own set-up, no silent skips (issue 11) ---

import ast
import builtins
import json
import types

import yaml

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
CODE_LINE_LIMIT = 88  # CONTRIBUTING.md: the book's code column shows 88 characters


def _code_cells(path):
    """``(index, source)`` of every code cell of a notebook (index counts all cells)."""
    cells = json.loads(path.read_text())["cells"]
    return [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "code"]


def colab_install_args(path):
    """What a chapter's first code cell pip-installs when it runs in Colab.

    The cell is run with a stand-in ``sys`` (one that says "this is Colab") and a stand-in
    ``subprocess`` that records the command instead of running it, so however the cell spells the
    URL (a literal, a variable, an f-string), the test sees what Colab would install.
    """
    calls = []
    fakes = {"sys": types.SimpleNamespace(modules={"google.colab": None}, executable="python"),
             "subprocess": types.SimpleNamespace(run=lambda cmd, **kwargs: calls.append(list(cmd)))}

    def fake_import(name, *args, **kwargs):
        return fakes[name] if name in fakes else builtins.__import__(name, *args, **kwargs)

    source = _code_cells(path)[0][1]
    exec(compile(source, f"{path.name}, first code cell", "exec"),  # noqa: S102 (the cell, sandboxed)
         {"__builtins__": {**vars(builtins), "__import__": fake_import}})
    installs = [c for c in calls if "install" in c]
    assert len(installs) == 1, f"{path.name}: expected one pip install in Colab, got {calls}"
    cmd = installs[0]
    return [a for a in cmd[cmd.index("install") + 1:] if not a.startswith("-")]


def _repository():
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]


def _text_files():
    """The repository's own files (tracked or new, not ignored), as text, binary files left out."""
    import subprocess

    names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for name in names:
        path = ROOT / name
        if path.is_file() and path.stat().st_size < 2_000_000:
            data = path.read_bytes()
            if name.endswith(".ipynb"):  # the cells' text, not JSON's escaped quotes
                cells = json.loads(data)["cells"]
                yield name, "\n".join("".join(c["source"]) for c in cells)
            elif b"\0" not in data:
                yield name, data.decode("utf-8", errors="replace")


def test_every_chapter_installs_aecore_from_the_configured_repository():
    url = _repository()["url"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    for path in CHAPTERS:
        args = colab_install_args(path)
        assert [a for a in args if a.startswith("aecore")] == [f"aecore @ git+{url}"], (path.name, args)


def test_the_repository_url_is_written_once():
    """Every install URL, Binder/Colab launch link and link to the book's GitHub account agrees with
    ``_config.yml`` (repository.url), the one place it is kept."""
    repo = _repository()
    url = repo["url"]
    owner, name = url.rstrip("/").split("/")[-2:]
    tail = r"""[^\s"'`)\]>{}\\]"""  # where a URL ends: space, quote, bracket, a template's brace
    patterns = {
        r"git\+https?://" + tail + "+": lambda m: m == f"git+{url}",
        r"https?://github\.com/" + re.escape(owner) + "/" + tail + "*":
            lambda m: m.rstrip("/.") == url or m.startswith(f"{url}/"),
        r"mybinder\.org/v2/gh/" + tail + "+": lambda m: m.startswith(f"mybinder.org/v2/gh/{owner}/{name}/"),
        r"colab\.research\.google\.com/github/" + tail + "+":
            lambda m: m.startswith(f"colab.research.google.com/github/{owner}/{name}/"),
    }
    wrong, found = [], 0
    for file, text in _text_files():
        for pattern, ok in patterns.items():
            for match in re.findall(pattern, text):
                found += 1
                if not ok(match):
                    wrong.append(f"{file}: {match}")
    assert not wrong, f"URLs that disagree with _config.yml's repository.url {url}: {wrong}"
    assert found > len(CHAPTERS), "expected the URL in every chapter, the README and the tests"


def test_binder_installs_the_cpu_build_of_torch_first_then_the_same_pins():
    """mybinder.org (repo2docker) reads binder/ and then ignores the root's requirements.txt, where
    torch==2.13.0 would resolve to the multi-GB CUDA build. binder/postBuild installs PyTorch's CPU
    build first, then exactly requirements.txt."""
    import os

    binder = ROOT / "binder"
    overriding = [f for f in ("requirements.txt", "environment.yml", "Pipfile", "Dockerfile", "setup.py")
                  if (binder / f).exists()]
    assert not overriding, f"binder/{overriding} would be installed before postBuild (a CUDA torch)"
    post = binder / "postBuild"
    assert post.is_file() and os.access(post, os.X_OK), "binder/postBuild must exist and be executable"
    lines = [ln.strip() for ln in post.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "set -euo pipefail", "a failed install must fail the Binder build"
    installs = [ln for ln in lines if " pip install " in ln]
    pins = [ln for ln in (ROOT / "requirements.txt").read_text().splitlines() if ln and not ln[0] in "#-"]
    torch_pin = next(p for p in pins if p.startswith("torch=="))
    assert torch_pin in installs[0].split() and "--index-url https://download.pytorch.org/whl/cpu" in installs[0]
    assert "-r requirements.txt" in installs[1], "then every pin of requirements.txt"
    assert len(installs) == 2
    runtime = (binder / "runtime.txt").read_text().strip()
    minimum = re.search(r'requires-python = ">=3\.(\d+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert re.fullmatch(r"python-3\.\d+", runtime) and int(runtime.split(".")[1]) >= int(minimum)


def test_the_readme_says_how_to_launch_binder_and_colab():
    readme = (ROOT / "README.md").read_text()
    owner_name = "/".join(_repository()["url"].split("/")[-2:])
    assert f"https://mybinder.org/v2/gh/{owner_name}/{_repository()['branch']}" in readme
    assert "binder/postBuild" in readme and "Colab" in readme


def test_a_missing_checkpoint_is_one_loud_error(tmp_path):
    """No silent skip: a chapter that cannot find a checkpoint stops with one AecoreError that names
    the missing file and the command that makes it."""
    import shutil

    import pytest

    from aecore.conv_experiment import checkpoint_path, load_conv_checkpoint
    from aecore.errors import AecoreError

    missing = checkpoint_path("conv_k3_seed9.pt")
    command = "aecore train --data pokemon --model conv --latent 3 --seed 9 --save"
    with pytest.raises(AecoreError, match=r"conv_k3_seed9\.pt and .*\.json not found.*" + command):
        load_conv_checkpoint(missing)
    shipped = checkpoint_path("conv_k16_seed0.pt")
    alone = tmp_path / shipped.name
    shutil.copy(shipped, alone)  # the weights without their record
    with pytest.raises(AecoreError, match=r"conv_k16_seed0\.pt\.json not found.*--latent 16 --seed 0 --save"):
        load_conv_checkpoint(alone)
    shutil.copy(f"{shipped}.json", f"{alone}.json")
    data = bytearray(alone.read_bytes())
    data[len(data) // 2] ^= 1  # one bit flipped: damaged
    alone.write_bytes(bytes(data))
    record = json.loads(Path(f"{shipped}.json").read_text())
    with pytest.raises(AecoreError, match=re.escape(record["command"])):
        load_conv_checkpoint(alone)


def _guards_asserts_on_presence(test):
    """Whether an ``if`` test checks that something exists or is non-empty (``if runs:``,
    ``if not path.exists():``, ``if os.path.exists(...)``, ``if len(found):``)."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _guards_asserts_on_presence(test.operand)
    if isinstance(test, ast.BoolOp):
        return any(_guards_asserts_on_presence(v) for v in test.values)
    if isinstance(test, (ast.Name, ast.Attribute, ast.Subscript)):
        return True
    if isinstance(test, ast.Call):
        func = test.func.attr if isinstance(test.func, ast.Attribute) else getattr(test.func, "id", "")
        return func in {"exists", "isfile", "is_file", "is_dir", "isdir", "glob", "len", "any", "bool"}
    return False


def test_no_chapter_skips_its_asserts_when_a_file_is_missing():
    """A chapter never wraps its asserts in "if the file is there" or swallows a missing file."""
    found = []
    for path in CHAPTERS:
        for i, source in _code_cells(path):
            code = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.If) and _guards_asserts_on_presence(node.test):
                    if any(isinstance(n, ast.Assert) for part in (node.body, node.orelse) for s in part
                           for n in ast.walk(s)):
                        found.append(f"{path.name} cell {i}, line {node.lineno}: if {ast.unparse(node.test)}")
                if isinstance(node, ast.ExceptHandler) and node.type is not None:
                    caught = ast.unparse(node.type)
                    silent = all(isinstance(s, (ast.Pass, ast.Continue)) for s in node.body)
                    if silent or re.search(r"FileNotFoundError|OSError|IOError", caught):
                        found.append(f"{path.name} cell {i}, line {node.lineno}: except {caught}")
    assert not found, f"asserts that can be skipped, or a missing file swallowed: {found}"


def test_no_test_is_skipped():
    """The project forbids skips: a test that cannot run here fails and says why."""
    skip = re.compile(r"pytest\.(skip|importorskip)\b|mark\.skip|unittest\.skip|Skip[T]est\b")
    found = [f"{p.relative_to(ROOT)}:{n}: {ln.strip()}" for p in sorted((ROOT / "tests").rglob("*.py"))
             for n, ln in enumerate(p.read_text().splitlines(), 1) if skip.search(ln)]
    assert not found, f"skipped tests: {found}"


def test_code_lines_fit_the_book_column():
    """Every line of every code cell is at most 88 characters (CONTRIBUTING.md)."""
    long = [f"{path.name} cell {i}: {len(ln)} characters: {ln[:40]}..." for path in CHAPTERS
            for i, source in _code_cells(path) for ln in source.splitlines() if len(ln) > CODE_LINE_LIMIT]
    assert not long, f"{len(long)} code lines longer than {CODE_LINE_LIMIT} characters:\n" + "\n".join(long)
