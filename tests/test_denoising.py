"""aecore.denoising and `aecore denoise`: corruptions, closed-form denoisers against their
formulas, the exact 2-D score, thread independence, and one `error:` line for bad noise specs."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from aecore.cli import main
from aecore.denoising import (
    Compose, DenoiseSettings, Gaussian, LinearDenoisers, Mask, Mixture2D, Patch, PointDenoiser,
    annealed_langevin, best_pca_k, corrupt_array, parse_noise, train_denoiser)
from aecore.errors import AecoreError
from aecore.train import FitConfig, fit

KEYS = {"psnr_noisy", "psnr_wiener", "psnr_pca", "psnr_denoiser", "noise", "n_train", "n_val",
        "seconds"}


def test_parse_noise_builds_each_kind():
    assert parse_noise("gaussian:0.3") == Gaussian(0.3)
    assert parse_noise("mask:0.5") == Mask(0.5)
    assert parse_noise("patch:4") == Patch(4, 8)
    assert parse_noise("mask:0.2+gaussian:0.1") == Compose((Mask(0.2), Gaussian(0.1)))


@pytest.mark.parametrize("spec", ["salt:0.1", "gaussian:-0.1", "gaussian:x", "gaussian", "mask:1",
                                  "patch:2.5", "patch:9", "gaussian:nan"])
def test_bad_noise_specs_raise_one_clear_error(spec):
    with pytest.raises(AecoreError):
        parse_noise(spec)


def test_corruptions_do_what_they_say():
    x = np.full((200, 64), 0.5)
    noisy = corrupt_array(x, Gaussian(0.3), seed=0)
    assert abs((noisy - x).std() - 0.3) < 0.01
    np.testing.assert_array_equal(noisy, corrupt_array(x, Gaussian(0.3), seed=0))  # seeded
    masked = corrupt_array(x, Mask(0.25), seed=0)
    assert abs((masked == 0).mean() - 0.25) < 0.02 and set(np.unique(masked)) == {0.0, 0.5}
    patched = corrupt_array(x, Patch(3), seed=0)
    assert ((patched == 0).sum(axis=1) == 9).all()
    images = corrupt_array(np.ones((4, 3, 16, 16)), Patch(5, 16), seed=0)
    assert ((images == 0).sum(axis=(1, 2, 3)) == 3 * 25).all()


def test_wiener_is_the_closed_form_and_tweedie_with_a_fitted_gaussian():
    rng = np.random.default_rng(0)
    x = rng.random((300, 6)) @ rng.random((6, 6))
    y, sigma = x + 0.3 * rng.standard_normal(x.shape), 0.3
    lin = LinearDenoisers(x)
    c, mean = np.cov(x.T, bias=True), x.mean(axis=0)
    closed = mean + (y - mean) @ np.linalg.solve(c + sigma**2 * np.eye(6), c)  # C symmetric
    score = -np.linalg.solve(c + sigma**2 * np.eye(6), (y - mean).T).T  # Gaussian's score
    np.testing.assert_allclose(lin.wiener(y, sigma), closed, atol=1e-10)
    np.testing.assert_allclose(lin.wiener(y, sigma), y + sigma**2 * score, atol=1e-10)
    np.testing.assert_allclose(lin.covariance(), c, atol=1e-10)


def test_gram_path_matches_the_covariance_path():
    rng = np.random.default_rng(1)
    wide = rng.random((20, 50))
    lin = LinearDenoisers(wide)
    assert lin.directions.shape == (19, 50)  # rank n - 1 after centring
    np.testing.assert_allclose(lin.covariance(), np.cov(wide.T, bias=True), atol=1e-10)


def test_best_pca_k_matches_brute_force():
    rng = np.random.default_rng(2)
    x = rng.random((100, 8))
    y = x + 0.2 * rng.standard_normal(x.shape)
    lin = LinearDenoisers(x)
    errors = [np.mean((lin.pca(y, k) - x) ** 2) for k in range(1, 9)]
    k, mse = best_pca_k(lin, x, y)
    assert k == int(np.argmin(errors)) + 1 and abs(mse - min(errors)) < 1e-12


def test_fit_corrupts_inputs_and_keeps_the_clean_target():
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            seen.append(x.detach().clone())
            return x * self.w

    x = torch.zeros(8, 3)
    config = FitConfig(num_epochs=1, batch_size=8, progress=False, device="cpu")
    history = fit(Spy(), x, None, config, corrupt=Gaussian(1.0))
    assert seen[-1].abs().sum() > 0  # the model saw noise
    assert history.train_loss[0] > 0.1  # and was scored against the clean zeros


def test_mixture_score_is_the_gradient_of_the_log_density():
    mix, sigma = Mixture2D(), 0.4
    y = mix.sample(5, seed=3) + 0.3

    def log_p(points):
        var = mix.std**2 + sigma**2
        d2 = ((points[:, None] - np.asarray(mix.means)[None]) ** 2).sum(axis=2)
        return np.log((np.asarray(mix.weights) * np.exp(-d2 / (2 * var))).sum(axis=1))

    eps = 1e-6
    grad = np.stack([(log_p(y + eps * e) - log_p(y - eps * e)) / (2 * eps) for e in np.eye(2)], 1)
    np.testing.assert_allclose(mix.score(y, sigma), grad, rtol=1e-6, atol=1e-6)


def test_annealed_langevin_with_the_exact_score_finds_the_weights():
    mix = Mixture2D()
    sigmas = (3.0, 1.5, 0.8, 0.4, 0.2, 0.1, 0.05)
    exact = {s: (lambda y, s=s: mix.score(y, s)) for s in sigmas}
    samples = annealed_langevin(exact, steps=60, step_scale=0.2, start_std=3.0)
    assert np.abs(mix.mode_fractions(samples) - mix.weights).sum() / 2 < 0.05


def test_point_denoiser_shapes():
    assert PointDenoiser()(torch.zeros(5, 2)).shape == (5, 2)


def test_corrupt_once_reuses_one_noisy_copy_per_row():
    rng = np.random.default_rng(0)
    x = rng.random((64, 16))
    settings = DenoiseSettings(hidden=(16,), latent_dim=16, num_epochs=2)
    model, history = train_denoiser(x[:48], x[48:], Gaussian(0.2), settings, False, once=True)
    assert len(history.train_loss) == 2 and len(history.val_loss) == 2


THREADS = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from aecore.denoising import DenoiseSettings, denoise_experiment, load_denoise_split
settings = DenoiseSettings(hidden=(64,), latent_dim=64, num_epochs=3)
r = denoise_experiment(load_denoise_split("digits"), "gaussian:0.3", settings, progress=False)
print(json.dumps({k: r[k] for k in ("psnr_denoiser", "psnr_wiener", "psnr_pca")}))
"""


def test_results_do_not_depend_on_the_thread_count(run_with_threads):
    """A small denoiser trained with 1 and with 2 torch/BLAS threads: the same PSNRs to 1e-3 dB."""
    out = {n: run_with_threads(THREADS, n, timeout=300) for n in (1, 2)}
    for key in out[1]:
        assert abs(out[1][key] - out[2][key]) < 1e-3, (key, out)


def run_cli(capsys, *argv):
    code = main(["denoise", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_has_every_key(capsys):
    code, out, _ = run_cli(capsys, "--data", "digits", "--noise", "gaussian:0.3", "--epochs", "2",
                           "--json")
    result = json.loads(out)
    assert code == 0 and KEYS <= set(result)
    assert (result["n_train"], result["n_val"], result["n_test"]) == (1005, 252, 540)
    assert result["psnr_wiener"] > result["psnr_pca"] > result["psnr_noisy"]


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_cli_reads_a_matrix_file(capsys, tmp_path, suffix):
    x = np.random.default_rng(0).random((60, 9))
    path = tmp_path / f"m{suffix}"
    np.save(path, x) if suffix == ".npy" else np.savetxt(path, x, delimiter=",")
    code, out, _ = run_cli(capsys, "--data", str(path), "--noise", "mask:0.3", "--epochs", "1",
                           "--json")
    result = json.loads(out)
    assert code == 0 and result["model"] == "mlp" and result["psnr_wiener"] is None


@pytest.mark.parametrize("argv", [
    ["--data", "digits", "--noise", "speckle:0.2"],
    ["--data", "digits", "--noise", "gaussian:-0.3"],
    ["--data", "digits", "--noise", "gaussian:abc"],
    ["--data", "digits", "--model", "conv"],
    ["--data", "digits", "--save", "x.pt"],
    ["--data", "pokemon", "--model", "mlp"],
    ["--data", "pokemon", "--noise", "gaussian:-1"],
    ["--data", "no_such_file.npy"],
])
def test_cli_bad_input_is_one_error_line(capsys, argv):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and err.startswith("error:") and err.count("\n") == 1


def test_cli_bad_noise_exits_2_in_a_subprocess():
    run = subprocess.run([sys.executable, "-m", "aecore", "denoise", "--data", "digits", "--noise",
                          "gaussian:-1"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.startswith("error:") and not run.stdout


CONV = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from aecore import denoising as dn
from aecore.conv_experiment import checkpoint_path, load_conv_checkpoint, load_split
model, settings, record = load_conv_checkpoint(checkpoint_path(dn.CONV_CHECKPOINT))
r = dn.conv_denoise_metrics(model, load_split(settings), settings, record["metrics"]["noise"])
print(json.dumps({k: v for k, v in r.items() if k.startswith("psnr") or k == "pca_k"}))
"""


def test_the_conv_denoiser_checkpoint_gives_its_record_back_under_1_and_2_threads(run_with_threads):
    """Chapter 6 loads this checkpoint; its recorded test PSNRs come back to 1e-6 dB."""
    from aecore.conv_experiment import checkpoint_path
    from aecore.denoising import CONV_CHECKPOINT

    record = json.loads(checkpoint_path(CONV_CHECKPOINT + ".json").read_text())
    assert record["command"].startswith("aecore denoise --data pokemon --model conv")
    for n in (1, 2):
        got = run_with_threads(CONV, n, timeout=600)
        assert got["pca_k"] == record["metrics"]["pca_k"]
        for key, value in got.items():
            assert abs(value - record["metrics"][key]) < 1e-6, (n, key, value)
