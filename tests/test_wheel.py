"""A reader's install is the package, whole: the wheel alone runs Chapter 5 outside the repository.

The wheel is built from a copy of the package (nothing is written into the repository), installed
into a clean virtual environment (no system or repository packages) the way a reader installs it:
torch first and pinned, then what the chapter's own Colab cell installs, with the wheel in place of
the git URL. The chapter is copied to an empty folder and executed there with nbclient. It must load
the shipped checkpoints, pass every one of its asserts, and give back the validation MSE recorded
beside each checkpoint, with ``aecore`` imported from the clean environment, not from the repository.

Slow by nature (about three minutes on two cores: two pip installs and the chapter); pip's cache and
the decoded-image cache (``~/.cache/aecore``) are reused.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "chapters" / "05_conv_pokemon.ipynb"
GIT_PREFIX = "aecore @ git+"

# One definition of "what a chapter's Colab cell installs": tests/test_project.py's.
_spec = importlib.util.spec_from_file_location("_project_checks", Path(__file__).with_name("test_project.py"))
_project = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_project)
colab_install_args = _project.colab_install_args

PROBE = """\
import json, os, sys
from pathlib import Path
import aecore
from aecore.conv_experiment import (checkpoint_path, load_conv_checkpoint, load_split,
                                    per_image_mse, reconstruct)
from aecore.conv_vae import MeanDecoder, load_conv_vae_checkpoint
probe = {"prefix": sys.prefix, "aecore": aecore.__file__, "cwd": os.getcwd(),
         "checkpoints": str(checkpoint_path("")), "val_mse": {}}
split = None
for path in sorted(Path(checkpoint_path("")).glob("*.pt")):
    if path.name.startswith("vae_"):  # Chapter 7's conv VAEs: MSE of g(mu(x))
        vae_model, settings, record = load_conv_vae_checkpoint(path)
        model = MeanDecoder(vae_model)
    else:
        model, settings, record = load_conv_checkpoint(path)
    split = split or load_split(settings)
    val = float(per_image_mse(split.x_val, reconstruct(model, split.x_val)).mean())
    probe["val_mse"][path.name] = [val, record["metrics"]["val_mse"]]
    print(f"{path.name:<22} validation MSE {val:.6f}, recorded {record['metrics']['val_mse']:.6f}")
print("PROBE " + json.dumps(probe))
"""

DRIVER = """\
import sys, nbformat
from nbclient import NotebookClient
path, folder, out = sys.argv[1:]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": folder}}).execute()
nbformat.write(nb, out)
"""


def _run(cmd, hint="", **kwargs):
    run = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert run.returncode == 0, (f"{' '.join(map(str, cmd))} failed:\n{run.stdout[-3000:]}\n"
                                 f"{run.stderr[-3000:]}\n{hint}")
    return run


def _pins():
    """The pinned lines of requirements.txt (``name==version``)."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith(("#", "-"))]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The aecore wheel, built offline from a copy of the package (the repository stays untouched)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "aecore", src / "aecore", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
          str(src)], timeout=300)
    (found,) = dist.glob("aecore-*.whl")
    return found


def test_the_wheel_holds_every_file_of_the_package(wheel):
    """Checkpoints, their records, the sweep and ablation tables, the JavaScript: all package data."""
    names = set(zipfile.ZipFile(wheel).namelist())
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "aecore").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    missing = sorted(on_disk - names)
    assert not missing, f"files of aecore/ missing from the wheel (add them to package-data): {missing}"
    shipped = [n for n in names if n.startswith("aecore/checkpoints/") and n.endswith(".pt")]
    assert len(shipped) >= 12 and all(f"{n}.json" in names for n in shipped)


def test_colab_cell_names_the_package_and_its_data():
    args = colab_install_args(CHAPTER)
    assert sum(a.startswith(GIT_PREFIX) for a in args) == 1, args
    assert "pokemon==0.36" in args and "pokemon==0.36" in _pins()


def test_chapter_5_runs_from_the_wheel_in_a_clean_environment(wheel, tmp_path):
    start = time.perf_counter()
    venv, folder = tmp_path / "venv", tmp_path / "reader"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JUPYTER_PATH", "PYTHONSTARTUP")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               OMP_NUM_THREADS="1", JUPYTER_DATA_DIR=str(tmp_path / "jupyter"),
               IPYTHONDIR=str(tmp_path / "ipython"))
    env.pop("MPLBACKEND", None)
    _run([sys.executable, "-m", "venv", str(venv)], env=env, timeout=120)
    python = str(venv / "bin" / "python")

    # 1. torch first, the very build the book runs on (here 2.13.0+cpu): never the multi-GB CUDA build.
    pinned = next(p for p in _pins() if p.startswith("torch=="))
    assert torch.__version__.split("+")[0] == pinned.split("==")[1], (torch.__version__, pinned)
    _run([python, "-m", "pip", "install", "-q", f"torch=={torch.__version__}"], env=env, cwd=folder,
         timeout=600, hint="Where PyPI has no CPU build of torch (GitHub's runners), let pip see PyTorch's "
         "index: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu")
    # 2. what the chapter's Colab cell installs, the wheel in place of the git URL; then Jupyter's runner.
    constraints = tmp_path / "pins.txt"
    constraints.write_text("\n".join(_pins()) + "\n")
    args = [str(wheel) if a.startswith(GIT_PREFIX) else a for a in colab_install_args(CHAPTER)]
    _run([python, "-m", "pip", "install", "-q", "-c", str(constraints), *args, "nbclient", "ipykernel"],
         env=env, cwd=folder, timeout=600)
    _run([python, "-m", "pip", "check"], env=env, cwd=folder, timeout=120)
    installed = time.perf_counter()

    # 3. the chapter, copied to an empty folder outside the repository, with the probe cell at its end.
    nb = nbformat.read(CHAPTER, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    copy, executed = folder / CHAPTER.name, folder / "executed.ipynb"
    nbformat.write(nb, copy)
    _run([python, "-c", DRIVER, str(copy), str(folder), str(executed)], env=env, cwd=folder, timeout=1200)
    nb = nbformat.read(executed, as_version=4)
    seconds = time.perf_counter() - start

    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    errors = [(i, o["ename"], o["evalue"][:300]) for i, c in code for o in c.outputs
              if o.output_type == "error"]
    assert not errors, f"Chapter 5 failed outside the repository: {errors}"
    not_run = [i for i, c in code if c.execution_count is None]
    assert not not_run, f"cells that never ran (their asserts were skipped): {not_run}"

    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    probe = json.loads(text.split("PROBE ", 1)[1])
    print(f"\nChapter 5 from the wheel, clean venv, outside the repository: {seconds:.0f} s in all "
          f"({installed - start:.0f} s venv and installs, {seconds - installed + start:.0f} s chapter)")
    print(text.split("PROBE ", 1)[0])
    assert Path(probe["prefix"]).resolve() == venv.resolve(), probe["prefix"]  # the kernel's Python
    site = Path(probe["aecore"]).resolve()
    assert site.is_relative_to(venv.resolve()) and not site.is_relative_to(ROOT), probe["aecore"]
    assert Path(probe["cwd"]).resolve() == folder.resolve()
    assert len(probe["val_mse"]) >= 12
    for name, (val, recorded) in probe["val_mse"].items():
        assert abs(val - recorded) < 1e-6, (name, val, recorded)
