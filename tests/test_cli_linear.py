"""`aecore linear` end to end: JSON and table output, and one clear error line for bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

AECORE = shutil.which("aecore") or str(Path(sys.executable).with_name("aecore"))


def run(*args, console_script=False):
    cmd = [AECORE, *args] if console_script else [sys.executable, "-m", "aecore", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def assert_one_error_line(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("console_script", [False, True])
def test_json_on_digits(console_script):
    proc = run("linear", "--data", "digits", "--latent", "5", "--json", console_script=console_script)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in ["latent_dim", "n_train", "n_val", "train_mse", "eckart_young_mse", "val_mse",
                "pca_val_mse", "subspace_angle_deg", "seconds"]:
        assert key in result
    assert (result["latent_dim"], result["n_train"], result["n_val"]) == (5, 1438, 359)
    assert 1 - 1e-9 <= result["train_mse"] / result["eckart_young_mse"] < 1.005
    assert result["subspace_angle_deg"] < 1.0


def test_table_output():
    proc = run("linear", "--data", "digits", "--latent", "2", "--epochs", "50")
    assert proc.returncode == 0, proc.stderr
    rows = dict(line.split(None, 1) for line in proc.stdout.strip().splitlines())
    assert rows["latent_dim"].strip() == "2" and rows["epochs"].strip() == "50"
    assert float(rows["train_mse"]) > float(rows["eckart_young_mse"])


def test_a_users_csv_and_npy(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)) @ rng.normal(size=(3, 6))  # rank 3
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "x.csv").write_text("a,b,c,d,e,f\n" + "\n".join(",".join(map(str, row)) for row in x))
    for name in ["x.npy", "x.csv"]:
        proc = run("linear", "--data", str(tmp_path / name), "--latent", "3", "--json")
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["n_train"] + result["n_val"] == 60
        assert result["eckart_young_mse"] < 1e-20 and result["train_mse"] < 1e-8


BAD_FILES = {
    "garbage.npy": (b"this is not a numpy file", "cannot read"),
    "words.csv": (b"1,2,3\n4,five,6\n", "non-numeric"),
    "ragged.csv": (b"1,2,3\n4,5\n", "columns"),
    "nan.csv": (b"1,2,3\n4,nan,6\n7,8,9\n", "NaN or infinite"),
    "inf.csv": (b"1,2,3\n4,inf,6\n7,8,9\n", "NaN or infinite"),
    "one.csv": (b"1,2,3\n", "at least 2 samples"),
    "empty.csv": (b"", "empty"),
    "data.txt": (b"1,2\n3,4\n", "unsupported file type"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_files(tmp_path, name):
    content, fragment = BAD_FILES[name]
    (tmp_path / name).write_bytes(content)
    assert_one_error_line(run("linear", "--data", str(tmp_path / name), "--latent", "1"), fragment)


BAD_ARRAYS = {
    "nan": (np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]]), "NaN"),
    "inf": (np.array([[1.0, 2.0], [np.inf, 3.0], [4.0, 5.0]]), "NaN or infinite"),
    "one_sample": (np.ones((1, 4)), "at least 2 samples"),
    "one_d": (np.arange(6.0), "must be 2-D"),
    "complex": (np.ones((5, 3)) * (1 + 2j), "complex"),
    "strings": (np.array([["a", "b"], ["c", "d"]]), "numeric"),
    "huge": (np.arange(1.0, 13.0).reshape(6, 2) * 1e200, "too large"),
}


@pytest.mark.parametrize("name", BAD_ARRAYS)
def test_bad_npy(tmp_path, name):
    array, fragment = BAD_ARRAYS[name]
    np.save(tmp_path / "x.npy", array)
    assert_one_error_line(run("linear", "--data", str(tmp_path / "x.npy"), "--latent", "1"), fragment)


def test_latent_as_large_as_a_users_features(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(20, 6)))
    assert_one_error_line(run("linear", "--data", str(tmp_path / "x.npy"), "--latent", "6"),
                          "smaller than the number of features (6)")


@pytest.mark.parametrize("args, fragment", [
    (["--data", "/no/such/file.npy", "--latent", "2"], "file not found"),
    (["--data", "digits", "--latent", "0"], "at least 1"),
    (["--data", "digits", "--latent", "2", "--bogus"], "unrecognized arguments"),
])
def test_console_script_errors(args, fragment):
    assert_one_error_line(run("linear", *args, console_script=True), fragment)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--data", "/no/such/file.csv", "--latent", "2"], "file not found"),
        (["--data", "digits", "--latent", "0"], "at least 1"),
        (["--data", "digits", "--latent", "64"], "smaller than the number of features (64)"),
        (["--data", "digits", "--latent", "two"], "integer"),
        (["--data", "digits", "--latent", "2", "--epochs", "-1"], "0 or more"),
        (["--data", "digits", "--latent", "2", "--bogus"], "unrecognized arguments"),
        (["--latent", "2"], "--data"),
    ],
)
def test_bad_arguments(args, fragment):
    assert_one_error_line(run("linear", *args), fragment)


def test_unknown_subcommand():
    assert_one_error_line(run("nonsense"), "invalid choice")
