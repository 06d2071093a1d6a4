"""aecore.bottleneck and `aecore sweep`: the sweep's numbers, confusion tools, dead units, bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from aecore import bottleneck as bn
from aecore.data import Split, load_digits
from aecore.errors import AecoreError
from aecore.experiments import MLPConfig, to_numpy
from aecore.linear import mse

FAST = MLPConfig(hidden=(32,)).with_fit(num_epochs=3, progress=False)


@pytest.fixture(scope="module")
def small_split():
    s = load_digits()
    return Split(s.x_train[:300], s.x_val[:100], s.y_train[:300], s.y_val[:100], "digits-small", (8, 8))


def test_sweep_rows_match_individual_runs(small_split):
    rows = bn.latent_sweep(small_split, [1, 64], num_seeds=2, config=FAST, progress=False)
    assert [r["latent_dim"] for r in rows] == [1, 64]
    assert rows[1]["pca_val_mse"] < 1e-25, "a code as wide as the input gives PCA zero error"
    # the row for latent 1, seed 1 is exactly what one run with that seed gives
    model, _ = bn.train_mlp(small_split.x_train, small_split.x_val, 1, FAST.with_fit(seed=1))
    assert rows[0]["val_mse_seeds"][1] == pytest.approx(mse(small_split.x_val, to_numpy(model, small_split.x_val)))
    r = rows[0]
    assert r["val_mse_min"] <= r["val_mse_mean"] <= r["val_mse_max"]
    assert r["val_mse_std"] == pytest.approx(np.std(r["val_mse_seeds"]))


def test_same_seed_same_result(small_split):
    a = bn.latent_sweep(small_split, [2], 1, FAST, progress=False)
    b = bn.latent_sweep(small_split, [2], 1, FAST, progress=False)
    assert a == b


@pytest.mark.parametrize("text", ["", "0", "1,-2", "a,b", "1.5"])
def test_bad_latent_lists(text):
    with pytest.raises(AecoreError, match="latent sizes"):
        bn.parse_latent_list(text)


def test_bad_sweep_arguments(small_split):
    with pytest.raises(AecoreError, match="seeds"):
        bn.latent_sweep(small_split, [2], 0, FAST)
    with pytest.raises(AecoreError, match="latent_dim"):
        bn.train_mlp(small_split.x_train, small_split.x_val, 0, FAST)


def test_confusion_tools():
    z = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    y = np.array([0, 0, 1, 1, 1, 1])
    confusion = bn.knn_confusion(z, y, z, y, n_neighbors=3)
    np.testing.assert_allclose(confusion.sum(axis=1), 1.0)
    assert bn.most_confused_pairs(confusion, top=1)[0][:2] == (1, 0)


def test_dead_units_counted():
    from aecore.models import MLPAutoencoder
    import torch

    model = MLPAutoencoder(4, 1, hidden=(3,))
    with torch.no_grad():
        first = model.encoder[0]
        first.weight.zero_()
        first.bias.copy_(torch.tensor([-1.0, -1.0, 1.0]))  # two of three encoder units are dead
        last = model.decoder[0]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([1.0, 1.0, 1.0]))  # decoder units alive
    assert bn.dead_unit_fraction(model, np.random.rand(10, 4)) == pytest.approx(2 / 6)
    with pytest.raises(AecoreError, match="ReLU"):
        bn.dead_unit_fraction(MLPAutoencoder(4, 1, hidden=(3,), activation="tanh"), np.random.rand(5, 4))


def test_data_size_curve_rejects_impossible_sizes(small_split):
    with pytest.raises(AecoreError, match="between 2 and 300"):
        bn.data_size_curve(small_split, [1000], [2], FAST, progress=False)


def run(*args):
    return subprocess.run([sys.executable, "-m", "aecore", *args], capture_output=True, text=True, timeout=300)


def test_cli_sweep_json_one_object_per_row(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(80, 6))
    np.save(tmp_path / "x.npy", x)
    proc = run("sweep", "--data", str(tmp_path / "x.npy"), "--latent", "1,3", "--seeds", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert [r["latent_dim"] for r in rows] == [1, 3]
    for r in rows:
        assert len(r["val_mse_seeds"]) == 2 and r["n_train"] + r["n_val"] == 80
        assert {"val_mse_mean", "val_mse_std", "pca_val_mse"} <= set(r)


def test_cli_sweep_table():
    proc = run("sweep", "--data", "digits", "--latent", "2", "--seeds", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[1].split()[0] == "latent_dim"
    values = lines[2].split()
    assert values[0] == "2" and float(values[1]) < float(values[-1]), "the MLP beats PCA at latent 2"


@pytest.mark.parametrize("args, fragment", [
    (["--data", "digits", "--latent", "1,zero"], "latent sizes"),
    (["--data", "digits", "--latent", "2", "--seeds", "0"], "positive integer"),
    (["--data", "digits", "--latent", "2", "--model", "vae"], "invalid choice"),
    (["--data", "nowhere.csv", "--latent", "2"], "file not found"),
])
def test_cli_sweep_bad_input(args, fragment):
    proc = run("sweep", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0]
