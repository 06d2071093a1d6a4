"""aecore.conv_vae: the convolutional VAE of Chapter 7 on tiny synthetic images, its checkpoint
and record, the scale factor of latent diffusion, PPCA with more pixels than images, and
`aecore train --model vae` on a folder of images."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from aecore.cli import main
from aecore.conv_experiment import load_split, training_images
from aecore.conv_vae import (ConvVAE, ConvVAESettings, MeanDecoder, checkpoint_name,
                             code_statistics, conv_vae_experiment, load_conv_vae_checkpoint)
from aecore.errors import AecoreError
from aecore.vae import PPCA, ELBOLoss, gaussian_kl, gaussian_marginal_log_likelihood, vae_scores


pytestmark = pytest.mark.usefixtures("private_cache")


TINY = ConvVAESettings(size=16, latent_dim=4, widths=(4, 8), refine=4, num_epochs=2,
                       batch_size=8, val_fraction=0.25, test_fraction=0.25, device="cpu",
                       iwae_samples=8)


def test_shapes_and_the_mean_image_in_both_maps():
    model = ConvVAE(latent_dim=3, widths=(4, 8), size=16, refine=0)
    x = torch.rand(5, 3, 16, 16)
    model.init_from_data(x)
    out = model(x)
    assert out.x_hat.shape == x.shape and out.mu.shape == out.logvar.shape == out.z.shape == (5, 3)
    shifts = [m.offset for m in model.modules() if hasattr(m, "offset")]
    assert len(shifts) == 2 and all(torch.equal(s, x.mean(0, keepdim=True)) for s in shifts)
    with pytest.raises(AecoreError, match="do not fit"):
        model.init_from_data(torch.rand(2, 3, 8, 8))
    with pytest.raises(AecoreError, match="latent_dim"):
        ConvVAE(latent_dim=0)


def test_elbo_loss_on_images_sums_over_every_pixel():
    """The loss of an image batch is the loss of the same batch flattened to rows."""
    torch.manual_seed(0)
    model = ConvVAE(latent_dim=3, widths=(4, 8), size=16, refine=0)
    out = model(torch.rand(4, 3, 16, 16))
    x = torch.rand(4, 3, 16, 16)
    flat = out._replace(x_hat=out.x_hat.flatten(1))
    loss = ELBOLoss(beta=0.5)
    torch.testing.assert_close(loss(out, x), loss(flat, x.flatten(1)))
    se = ((x - out.x_hat) ** 2).sum((1, 2, 3))
    tau2 = out.log_tau2.exp()
    want = (0.5 * (se / tau2 + 768 * torch.log(2 * torch.pi * tau2))).mean() \
        + 0.5 * gaussian_kl(out.mu, out.logvar).sum(1).mean()
    torch.testing.assert_close(loss(out, x), want)


def test_ppca_with_more_pixels_than_images_is_exact():
    """The Gram-matrix route gives the same likelihood as the d x d covariance written out."""
    rng = np.random.default_rng(0)
    x = rng.random((30, 120)) @ rng.random((120, 200))  # rank 30 in 200 dimensions
    x = x / x.max()
    ppca = PPCA.fit(x[:20], 5)
    want = gaussian_marginal_log_likelihood(x[20:], ppca.mu, ppca.w, ppca.tau2)
    assert ppca.log_likelihood(x[20:]) == pytest.approx(want, rel=1e-9)
    cov = np.cov(x[:20].T, bias=True)
    lam = np.linalg.eigvalsh(cov)[::-1]
    assert ppca.tau2 == pytest.approx(lam[5:].mean(), rel=1e-9)
    np.testing.assert_allclose(ppca.lam, lam[:5], rtol=1e-9)
    with pytest.raises(AecoreError, match="more than 20"):
        PPCA.fit(x[:20], 20)


def test_code_statistics_give_the_scale_that_whitens_the_codes():
    mu = torch.tensor([[3.0] * 4, [-3.0] * 4]).repeat(50, 1)  # (100, 4): each unit has std 3
    stats = code_statistics(mu, torch.full((100, 4), -12.0))
    assert stats["code_std"] == pytest.approx(3.0, rel=0.02)
    assert stats["scale_factor"] * stats["code_std"] == pytest.approx(1.0)
    assert stats["posterior_sigma_mean"] == pytest.approx(np.exp(-6.0), rel=1e-6)


def test_experiment_scores_and_checkpoint_round_trips(species_folder, tmp_path):
    settings = replace(TINY, data=str(species_folder))
    path = tmp_path / checkpoint_name(4, 1.0)
    result = conv_vae_experiment(settings, save=path, command="test", progress=False)
    split = load_split(settings)
    assert (result["n_train_seen"], result["n_val"], result["n_test"]) == (12, 3, 3)
    x_seen = training_images(split, settings)
    assert result["ppca_log_likelihood"] == pytest.approx(
        PPCA.fit(x_seen, 4).log_likelihood(split.x_test))
    assert result["elbo"] <= result["iwae_log_likelihood"]
    assert result["scale_factor"] == pytest.approx(1 / result["code_std"])
    record = json.loads((tmp_path / "vae_k4_beta1_seed0.pt.json").read_text())
    assert record["command"] == "test" and record["metrics"]["elbo"] == result["elbo"]
    model, saved, _ = load_conv_vae_checkpoint(path)
    assert saved == settings
    again = vae_scores(model, split.x_test, settings.iwae_samples, settings.seed)
    for key in ("elbo", "iwae_log_likelihood", "kl"):
        assert again[key] == pytest.approx(result[key], abs=1e-3)
    from aecore.conv_experiment import reconstruct
    x_hat = reconstruct(MeanDecoder(model), split.x_val)
    assert float(((x_hat - split.x_val) ** 2).mean()) == pytest.approx(result["val_mse"], abs=1e-7)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(AecoreError, match="sha256.*make it again with `test`"):
        load_conv_vae_checkpoint(path)
    missing = tmp_path / "vae_k8_beta0.001_seed2.pt"
    with pytest.raises(AecoreError, match="not found; make it with `aecore train --data pokemon "
                                          "--model vae --latent 8 --beta 0.001 --seed 2"):
        load_conv_vae_checkpoint(missing)


def test_cli_trains_a_conv_vae_on_a_folder(species_folder, tmp_path, capsys):
    path = tmp_path / "m.pt"
    code = main(["train", "--model", "vae", "--data", str(species_folder), "--size", "16", "--latent",
                 "3", "--epochs", "1", "--batch-size", "8", "--beta", "0.5", "--device", "cpu",
                 "--save", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["model"] == "conv_vae" and out["beta"] == 0.5
    keys = {"elbo", "recon", "kl", "iwae_log_likelihood", "iwae_samples", "ppca_log_likelihood",
            "active_units", "scale_factor", "val_mse", "pca_val_mse", "checkpoint"}
    assert keys <= set(out)
    record = json.loads(path.with_name("m.pt.json").read_text())
    assert record["command"].startswith(f"aecore train --model vae --data {species_folder} --size 16 "
                                        "--latent 3 --beta 0.5 --epochs 1")


@pytest.mark.parametrize("argv, message", [
    (["--latent", "3", "--linear"], "--linear belongs to rows"),
    (["--latent", "3", "--beta", "-2"], "beta"),
    (["--latent", "3", "--size", "20"], "divisible"),
    (["--latent", "3", "--device", "cuda"] if not torch.cuda.is_available()
     else ["--latent", "3", "--device", "mps"], "not available"),
    (["--latent", "300"], "latent size 300 needs more training images"),
    (["--latent", "3", "--save", "/no/such/folder/m.pt"], "folder /no/such/folder does not exist"),
])
def test_cli_bad_input_with_images_is_one_error_line(species_folder, capsys, argv, message):
    code = main(["train", "--model", "vae", "--data", str(species_folder), "--size", "16", "--json",
                 *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.startswith("error:") and err.count("\n") == 1
    assert message in err


THREADS = """
import json, sys
from aecore.conv_vae import ConvVAESettings, conv_vae_experiment
settings = ConvVAESettings(data=sys.argv[2], size=16, latent_dim=4, widths=(4, 8), refine=4,
                           num_epochs=2, batch_size=8, val_fraction=0.25, test_fraction=0.25,
                           device="cpu", iwae_samples=8)  # trains on 1 thread, as the book does
r = conv_vae_experiment(settings, progress=False)
print(json.dumps({k: r[k] for k in ("elbo", "iwae_log_likelihood", "ppca_log_likelihood",
                                    "val_mse", "scale_factor")}))
"""


def test_results_do_not_depend_on_the_thread_count(species_folder, run_with_threads):
    """The tiny conv VAE in a process with 1 and with 2 torch/BLAS threads: the same numbers.

    Training uses one thread whatever the machine has (``num_threads=1``, the book's setting);
    the scoring, PPCA and the scale factor run with the process's threads.
    """
    out = {n: run_with_threads(THREADS, n, str(species_folder), timeout=300) for n in (1, 2)}
    for key in out[1]:
        assert out[1][key] == pytest.approx(out[2][key], rel=1e-4, abs=1e-4), (key, out)
