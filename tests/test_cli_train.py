"""`aecore train`: the JSON it prints, checkpoints, and one `error:` line (exit 2) for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from aecore.cli import main
from aecore.models import MLPAutoencoder
from aecore.train import load_checkpoint

KEYS = {"latent_dim", "model", "n_train", "n_val", "epochs", "train_mse", "val_mse", "pca_val_mse", "seconds", "device"}


def run(capsys, *argv):
    code = main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def small_matrix(n=40, d=10):
    return np.random.default_rng(0).random((n, d))


def test_json_has_every_field(capsys):
    code, out, _ = run(capsys, "--data", "digits", "--latent", "3", "--epochs", "2", "--json")
    result = json.loads(out)
    assert code == 0 and KEYS <= set(result)
    assert (result["latent_dim"], result["model"], result["epochs"], result["n_train"], result["n_val"]) == (3, "mlp", 2, 1438, 359)
    assert result["device"] in {"cpu", "cuda", "mps"}


def test_defaults_reproduce_the_chapter_headline(capsys):
    """Chapter 2's claim: at latent_dim 2 the autoencoder's validation MSE is at most 0.60 x PCA's."""
    code, out, _ = run(capsys, "--data", "digits", "--latent", "2", "--json")
    result = json.loads(out)
    assert code == 0 and result["val_mse"] <= 0.60 * result["pca_val_mse"]


def test_table_output_and_saved_checkpoint(capsys, tmp_path):
    path = tmp_path / "mlp.pt"
    code, out, _ = run(capsys, "--data", "digits", "--latent", "2", "--epochs", "1", "--save", str(path))
    assert code == 0 and "val_mse" in out and str(path) in out
    record = load_checkpoint(path)
    model = MLPAutoencoder(**record["config"]["model"])
    load_checkpoint(path, model)
    assert record["epoch"] == 1 and record["config"]["fit"]["num_epochs"] == 1
    assert record["metrics"]["latent_dim"] == 2
    assert model(torch.zeros(1, 64)).shape == (1, 64)


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_reads_a_users_matrix(capsys, tmp_path, suffix):
    x, path = small_matrix(), tmp_path / f"data{suffix}"
    np.save(path, x) if suffix == ".npy" else np.savetxt(path, x, delimiter=",")
    code, out, _ = run(capsys, "--data", str(path), "--latent", "2", "--epochs", "2", "--batch-size", "500", "--json")
    result = json.loads(out)
    assert code == 0 and result["n_train"] + result["n_val"] == 40


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_text(content)
    return str(path)


BAD = {
    "missing file": lambda t: ["--data", str(t / "nope.npy"), "--latent", "2"],
    "unreadable npy": lambda t: ["--data", _write(t, "x.npy", "not numpy"), "--latent", "2"],
    "non-numeric csv": lambda t: ["--data", _write(t, "x.csv", "1,2\n3,abc\n"), "--latent", "1"],
    "ragged csv": lambda t: ["--data", _write(t, "x.csv", "1,2,3\n4,5\n"), "--latent", "1"],
    "nan values": lambda t: ["--data", _write(t, "x.npy", np.array([[0.1, np.nan], [0.2, 0.3]])), "--latent", "1"],
    "inf values": lambda t: ["--data", _write(t, "x.npy", np.array([[0.1, np.inf], [0.2, 0.3]])), "--latent", "1"],
    "one sample": lambda t: ["--data", _write(t, "x.npy", np.ones((1, 5))), "--latent", "1"],
    "latent 0": lambda t: ["--data", "digits", "--latent", "0"],
    "latent too big": lambda t: ["--data", "digits", "--latent", "64"],
    "negative epochs": lambda t: ["--data", "digits", "--latent", "2", "--epochs", "-1"],
    "unknown model": lambda t: ["--data", "digits", "--latent", "2", "--model", "transformer"],
    "unknown device": lambda t: ["--data", "digits", "--latent", "2", "--device", "tpu"],
    "zero lr": lambda t: ["--data", "digits", "--latent", "2", "--lr", "0"],
    "negative lr": lambda t: ["--data", "digits", "--latent", "2", "--lr", "-0.1"],
    "text lr": lambda t: ["--data", "digits", "--latent", "2", "--lr", "fast"],
    "zero batch size": lambda t: ["--data", "digits", "--latent", "2", "--batch-size", "0"],
    "negative batch size": lambda t: ["--data", "digits", "--latent", "2", "--batch-size", "-8"],
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_error_line_and_exit_2(capsys, tmp_path, case):
    try:
        code, out, err = run(capsys, *BAD[case](tmp_path))
    except SystemExit as exc:  # argparse rejects some flags before main() runs the command
        code, (out, err) = exc.code, capsys.readouterr()
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and out == ""


def test_unavailable_device_in_a_real_process():
    # A machine never has both CUDA and Apple's MPS, so one of the two is always unavailable.
    device = "mps" if torch.cuda.is_available() else "cuda"
    proc = subprocess.run([sys.executable, "-m", "aecore", "train", "--data", "digits", "--latent", "2",
                           "--device", device], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: device '{device}' is not available"), proc.stderr
    assert proc.stderr.count("\n") == 1
