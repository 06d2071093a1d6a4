"""aecore.vae and `aecore train --model vae`: the KL against torch.distributions, the ELBO and
the importance-weighted bound against exact Gaussian likelihoods, PPCA against its closed form,
fit training a VAE without a second loop, thread independence, one `error:` line for bad input."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from aecore.cli import main
from aecore.errors import AecoreError
from aecore.vae import (
    PPCA, VAE, ELBOLoss, VAESettings, check_beta, check_vae_latent, gaussian_kl,
    gaussian_log_likelihood, gaussian_marginal_log_likelihood, iwae_bounds,
    linear_vae_log_likelihood, load_vae_split, train_vae, vae_scores)

KEYS = {"elbo", "recon", "kl", "iwae_log_likelihood", "iwae_samples", "ppca_log_likelihood",
        "active_units", "n_train", "n_val", "n_test", "latent_dim", "beta"}


def test_gaussian_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 3, generator=gen), torch.randn(7, 3, generator=gen)
    q, p = Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(7, 3), torch.ones(7, 3))
    torch.testing.assert_close(gaussian_kl(mu, logvar), kl_divergence(q, p))


def test_gaussian_log_likelihood_matches_torch_distributions():
    x, x_hat = torch.rand(4, 5), torch.rand(4, 5)
    log_tau2 = torch.tensor(math.log(0.3))
    want = Normal(x_hat, math.sqrt(0.3)).log_prob(x).sum(1)
    torch.testing.assert_close(gaussian_log_likelihood(x, x_hat, log_tau2), want)


def test_ppca_is_the_maximum_likelihood_linear_gaussian():
    x = np.random.default_rng(0).normal(size=(400, 5)) @ np.diag([3.0, 2.0, 1.0, 0.5, 0.3])
    ppca = PPCA.fit(x, 2)
    lam = np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1]
    assert ppca.tau2 == pytest.approx(lam[2:].mean())
    best = ppca.log_likelihood(x)
    for scale in (0.9, 1.1):  # any other W or tau2 fits the training rows worse
        assert gaussian_marginal_log_likelihood(x, ppca.mu, ppca.w * scale, ppca.tau2) < best
        assert gaussian_marginal_log_likelihood(x, ppca.mu, ppca.w, ppca.tau2 * scale) < best


def test_elbo_and_iwae_bound_the_exact_likelihood_of_a_linear_vae():
    """For a linear decoder log p(x) is exact: ELBO <= IWAE <= log p(x), IWAE close to it."""
    torch.manual_seed(0)
    x = np.random.default_rng(1).normal(size=(50, 6)) * 0.3
    model = VAE(6, 2, linear=True)
    exact = linear_vae_log_likelihood(model, x)
    scores = vae_scores(model, x, num_samples=2000)
    assert scores["elbo"] <= scores["iwae_log_likelihood"] + 1e-6
    assert scores["iwae_log_likelihood"] <= exact + 0.05
    assert scores["iwae_log_likelihood"] > exact - 0.5


def test_iwae_bounds_share_their_samples_with_vae_scores():
    """Each nested bound is the one vae_scores gives with that many samples; more samples
    approach the exact log-likelihood of a linear VAE."""
    torch.manual_seed(0)
    x = np.random.default_rng(1).normal(size=(40, 6)) * 0.3
    model = VAE(6, 2, linear=True)
    bounds = iwae_bounds(model, x, (1, 8, 200), seed=3)
    for r, bound in bounds.items():
        assert bound == pytest.approx(vae_scores(model, x, r, seed=3)["iwae_log_likelihood"],
                                      abs=1e-9)
    exact = linear_vae_log_likelihood(model, x)
    assert abs(exact - bounds[200]) < abs(exact - bounds[1])
    with pytest.raises(AecoreError, match="sample_counts must be positive"):
        iwae_bounds(model, x, (0, 4))
    with pytest.raises(AecoreError, match="sample_counts must be positive"):
        iwae_bounds(model, x, (2.5,))


def test_fit_trains_a_vae_through_the_loss_callable():
    split = load_vae_split("digits")
    settings = VAESettings(latent_dim=2, num_epochs=3)
    model, history = train_vae(split.x_train, split.x_val, settings, progress=False)
    assert len(history.train_loss) == 3 and history.train_loss[-1] < history.train_loss[0]
    assert len(history.val_loss) == 3
    out = model(torch.rand(5, 64))
    assert out.x_hat.shape == (5, 64) and out.mu.shape == out.logvar.shape == (5, 2)


def test_mean_reduction_weights_the_kl_d_times_more():
    """What the chapter shows: with the reconstruction averaged over pixels, the KL counts D-fold."""
    torch.manual_seed(0)
    model, x = VAE(8, 2, hidden=(4,)), torch.rand(10, 8)
    out = model(x)
    with torch.no_grad():
        model.log_tau2.fill_(0.0)
    recon = ((x - out.x_hat) ** 2).sum(1).mean() / 2
    kl = gaussian_kl(out.mu, out.logvar).sum(1).mean()
    total = ELBOLoss(beta=1.0)(out._replace(log_tau2=torch.tensor(0.0)), x)
    torch.testing.assert_close(total, recon + 8 * math.log(2 * math.pi) / 2 + kl)


def test_free_bits_floor_each_unit():
    out = VAE(4, 3, hidden=(4,))(torch.rand(6, 4))
    zero = out._replace(mu=torch.zeros(6, 3), logvar=torch.zeros(6, 3))
    x = torch.rand(6, 4)
    gap = ELBOLoss(1.0, free_bits=0.5)(zero, x) - ELBOLoss(1.0)(zero, x)
    torch.testing.assert_close(gap, torch.tensor(1.5))  # three units, each lifted from 0 to 0.5


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "1"])
def test_bad_beta_is_one_clear_error(bad):
    with pytest.raises(AecoreError, match="beta"):
        check_beta(bad)


@pytest.mark.parametrize("bad", [0, 64, 2.5, True])
def test_bad_latent_is_one_clear_error(bad):
    with pytest.raises(AecoreError, match="latent size"):
        check_vae_latent(bad, 64)


THREADS = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from aecore.vae import VAESettings, load_vae_split, train_vae, vae_scores
s = load_vae_split("digits")
model, _ = train_vae(s.x_train, s.x_val, VAESettings(latent_dim=4, num_epochs=3), progress=False)
print(json.dumps({k: v for k, v in vae_scores(model, s.x_val, 32).items()
                  if isinstance(v, float)}))
"""


def test_results_do_not_depend_on_the_thread_count(run_with_threads):
    """A small VAE trained with 1 and with 2 torch/BLAS threads: the same scores to 1e-3 nats."""
    out = {n: run_with_threads(THREADS, n, timeout=300) for n in (1, 2)}
    for key in out[1]:
        assert abs(out[1][key] - out[2][key]) < 1e-3, (key, out)


def run_cli(capsys, *argv):
    try:
        code = main(["train", "--model", "vae", *argv])
    except SystemExit as exc:  # argparse rejects a flag's type itself
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_has_every_key(capsys):
    code, out, _ = run_cli(capsys, "--data", "digits", "--latent", "2", "--epochs", "2", "--json")
    result = json.loads(out)
    assert code == 0 and KEYS <= set(result)
    assert (result["n_train"], result["n_val"], result["n_test"]) == (1005, 252, 540)
    assert result["elbo"] <= result["iwae_log_likelihood"]


def test_cli_linear_reports_its_exact_likelihood(capsys, tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, np.random.default_rng(0).random((80, 9)))
    code, out, _ = run_cli(capsys, "--data", str(path), "--latent", "3", "--linear",
                           "--epochs", "2", "--json")
    result = json.loads(out)
    assert code == 0 and result["model"] == "linear_vae" and "exact_log_likelihood" in result


@pytest.mark.parametrize("argv", [
    ["--latent", "2", "--beta", "-1"],
    ["--latent", "2", "--beta", "nan"],
    ["--latent", "2", "--beta", "abc"],
    ["--latent", "0"],
    ["--latent", "64"],
    ["--latent", "2", "--data", "pokemon", "--linear"],
    ["--latent", "2", "--data", "pokemon", "--beta", "-1"],
    ["--latent", "2", "--data", "pokemon", "--epochs", "0"],
    ["--latent", "2", "--data", "pokemon", "--size", "20"],
    ["--latent", "2", "--save", "x.pt"],
    ["--latent", "2", "--data", "no_such_file.npy"],
])
def test_cli_bad_input_is_one_error_line(capsys, argv):
    argv = argv if "--data" in argv else ["--data", "digits", *argv]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and err.startswith("error:") and err.count("\n") == 1


def test_beta_without_vae_is_an_error(capsys):
    code = main(["train", "--data", "digits", "--latent", "2", "--beta", "2"])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error:")


def test_cli_bad_beta_exits_2_in_a_subprocess():
    run = subprocess.run([sys.executable, "-m", "aecore", "train", "--model", "vae", "--data",
                          "digits", "--latent", "2", "--beta", "-1"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.startswith("error:") and not run.stdout
