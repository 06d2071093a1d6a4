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
