"""A convolutional VAE for colour images, and the scale factor of latent diffusion.

Introduced in Chapter 7, "From autoencoder to variational autoencoder". :class:`ConvVAE` has
Chapter 5's shape (conv + MaxPool encoder, mirrored decoder, the mean image subtracted and
added back), but the encoder ends in ``2 * latent_dim`` numbers, the mean and log-variance of
``q(z|x)``, and the decoder is an isotropic Gaussian with a learned ``tau``, as in
:mod:`aecore.vae`. It trains through :func:`aecore.train.fit` with
:class:`aecore.vae.ELBOLoss` on Chapter 5's species split; :func:`conv_vae_experiment` is the
one code path behind the chapter and ``aecore train --model vae --data pokemon``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import nn

from aecore.conv import ConvAutoencoder, Shift
from aecore.conv_experiment import (evaluate_conv, load_split, read_checked_record,
                                    ready_for_evaluation, save_conv_checkpoint, training_images)
from aecore.errors import AecoreError
from aecore.train import FitConfig, fit, get_device, load_checkpoint, set_seed
from aecore.vae import PPCA, ELBOLoss, VAEOutput, check_beta, vae_scores


class ConvVAE(nn.Module):
    """``x (B, C, S, S) -> (mu, logvar) (B, k) -> z -> x_hat (B, C, S, S)``.

    The encoder is Chapter 5's conv encoder with ``2 * latent_dim`` outputs; the decoder is its
    decoder for ``latent_dim`` inputs (both taken from a :class:`~aecore.conv.ConvAutoencoder`,
    so there is one definition of the blocks). ``log_tau2`` is the decoder's log-variance.

    >>> model = ConvVAE(latent_dim=4, widths=(4, 8), size=16, refine=0)
    >>> [tuple(t.shape) for t in model(torch.rand(2, 3, 16, 16))[:3]]
    [(2, 3, 16, 16), (2, 4), (2, 4)]
    """

    def __init__(self, latent_dim: int = 64, widths=(16, 32, 64, 64), size: int = 64,
                 in_channels: int = 3, norm: str = "batch", refine: int = 16):
        super().__init__()
        if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
            raise AecoreError(f"latent_dim must be a positive integer; got {latent_dim!r}")
        shape = {"widths": tuple(widths), "size": size, "in_channels": in_channels, "norm": norm}
        self.settings = {"latent_dim": latent_dim, **shape, "widths": list(widths), "refine": refine}
        self.latent_dim = latent_dim
        self.encoder = ConvAutoencoder(2 * latent_dim, refine=0, **shape).encoder  # -> (B, 2k)
        self.decoder = ConvAutoencoder(latent_dim, refine=refine, **shape).decoder  # (B, k) -> image
        self.log_tau2 = nn.Parameter(torch.tensor(math.log(0.01)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each ``(B, latent_dim)``, in float32."""
        mu, logvar = self.encoder(x).float().chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def forward(self, x: torch.Tensor) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)  # the reparameterisation trick
        return VAEOutput(self.decoder(z), mu, logvar, z, self.log_tau2)

    @torch.no_grad()
    def init_from_data(self, x_train) -> ConvVAE:
        """Store the mean training image in both maps (subtracted first, added back last)."""
        mean = torch.as_tensor(np.asarray(x_train), dtype=torch.float32).mean(0, keepdim=True)
        if mean.shape != self.encoder[0].offset.shape:
            raise AecoreError(f"images of shape {tuple(mean.shape[1:])} do not fit a model built "
                              f"for {tuple(self.encoder[0].offset.shape[1:])}")
        for shift in (m for m in self.modules() if isinstance(m, Shift)):  # one in each map
            shift.offset.copy_(mean)
        return self

    def config(self) -> dict:
        """The constructor's arguments, so a checkpoint can rebuild the model."""
        return dict(self.settings)


@dataclass(frozen=True)
class ConvVAESettings:
    """Everything that decides a run; the data, split and blocks are Chapter 5's."""

    data: str = "pokemon"
    size: int = 64
    latent_dim: int = 64
    widths: tuple = (16, 32, 64, 64)
    norm: str = "batch"
    refine: int = 16
    beta: float = 1.0
    flip: bool = True  # the mirror image of every training image (training species only)
    num_epochs: int = 40
    lr: float = 2e-3
    batch_size: int = 32
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0  # Chapter 5's species split
    seed: int = 0
    num_threads: int | None = 1
    device: str = "auto"
    iwae_samples: int = 64

    def model(self) -> ConvVAE:
        return ConvVAE(self.latent_dim, tuple(self.widths), self.size, norm=self.norm,
                       refine=self.refine)

    def fit_config(self, progress: bool = True) -> FitConfig:
        return FitConfig(num_epochs=self.num_epochs, batch_size=self.batch_size, lr=self.lr,
                         warmup=0.1, seed=self.seed, device=self.device,
                         num_threads=self.num_threads, progress=progress)


def check_settings(settings: ConvVAESettings) -> ConvVAESettings:
    """Bad beta, latent size or training values fail here, before any image is read."""
    check_beta(settings.beta)
    settings.fit_config()
    settings.model()
    return settings


def train_conv_vae(settings: ConvVAESettings, split, progress: bool = True):
    """Seed, build and train on the (mirrored) training species; returns ``(model, history)``."""
    x_seen = training_images(split, settings)
    set_seed(settings.seed)
    model = settings.model().init_from_data(x_seen)
    loss = ELBOLoss(settings.beta)
    history = fit(model, x_seen, split.x_val, settings.fit_config(progress), loss_fn=loss,
                  raw_output=True)
    return model, history


class MeanDecoder(nn.Module):
    """``x -> g(mu(x))``: the VAE's reconstruction without sampling, for MSE and pictures."""

    def __init__(self, model: ConvVAE):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.decoder(self.model.encode(x)[0])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x)[0]


@torch.no_grad()
def posterior(model: ConvVAE, x: np.ndarray, batch_size: int = 256):
    """``(mu, logvar)`` of ``q(z|x)`` for every image of ``x``, (n, k) each, on the CPU.

    The images are encoded in batches of ``batch_size``, on the model's device, in eval mode.
    """
    model.eval()
    device = next(model.parameters()).device
    parts = [model.encode(torch.as_tensor(x[i:i + batch_size], device=device))
             for i in range(0, len(x), batch_size)]
    return torch.cat([mu for mu, _ in parts]).cpu(), torch.cat([lv for _, lv in parts]).cpu()


def code_statistics(mu: torch.Tensor, logvar: torch.Tensor, seed: int = 0) -> dict:
    """The spread of the codes a diffusion model would see, and the scale factor that whitens it.

    Latent diffusion encodes its training images (``mu, logvar = posterior(model, x)``), samples
    ``z ~ q(z|x)`` once, and multiplies every code by ``scale_factor = 1 / std(z)`` (one number
    over all units and images) so the diffusion model works on codes of unit variance. Also
    returned: the standard deviation of the posterior means and the mean posterior standard
    deviation. The noise is drawn in float64, 256 rows at a time, as the shipped records were.
    """
    generator = torch.Generator().manual_seed(seed)
    mu, sigma = mu.double(), (0.5 * logvar).exp().double()
    eps = torch.cat([torch.randn(mu[i:i + 256].shape, generator=generator, dtype=torch.float64)
                     for i in range(0, len(mu), 256)])
    z = mu + sigma * eps
    std = float(z.std())
    return {"code_std": std, "scale_factor": 1.0 / std, "code_mean": float(z.mean()),
            "mu_std": float(mu.std()), "posterior_sigma_mean": float(sigma.mean())}


def conv_vae_metrics(model: ConvVAE, split, settings: ConvVAESettings) -> dict:
    """Held-out scores (nats per image) on the test species, against PPCA at the same size;
    MSE of the mean reconstruction beside PCA's; the code's scale factor."""
    x_seen = training_images(split, settings)
    model.eval()
    device = next(model.parameters()).device
    scores = {}
    for name, x in (("val", split.x_val), ("test", split.x_test)):
        s = vae_scores(model.cpu(), x, settings.iwae_samples, settings.seed)
        scores[name] = s
    model.to(device)
    ppca = PPCA.fit(x_seen, settings.latent_dim)
    test = scores["test"]
    out = {"data": settings.data, "model": "conv_vae", "latent_dim": settings.latent_dim,
           "beta": settings.beta, "n_train": len(split.x_train), "n_train_seen": len(x_seen),
           "n_val": len(split.x_val), "n_test": len(split.x_test),
           **{k: test[k] for k in ("elbo", "recon", "kl", "iwae_log_likelihood", "iwae_samples",
                                   "active_units")},
           "ppca_log_likelihood": ppca.log_likelihood(split.x_test),
           "val_elbo": scores["val"]["elbo"],
           "val_iwae_log_likelihood": scores["val"]["iwae_log_likelihood"],
           "ppca_val_log_likelihood": ppca.log_likelihood(split.x_val),
           "decoder_tau": float(model.log_tau2.detach().exp().sqrt())}
    mean_model = MeanDecoder(model)
    mse = evaluate_conv(mean_model, split, settings, train=False)
    out.update({k: mse[k] for k in ("val_mse", "test_mse", "pca_val_mse", "pca_test_mse")})
    out.update(code_statistics(*posterior(model, x_seen), settings.seed))
    return out


def conv_vae_experiment(settings: ConvVAESettings = ConvVAESettings(), save=None,
                        command: str = "", progress: bool = True) -> dict:
    """Load and split the images, train, score; optionally save a checkpoint with its record."""
    check_settings(settings)
    get_device(settings.device)  # an unavailable device fails before any work
    split = load_split(settings)
    if settings.latent_dim >= len(training_images(split, settings)):
        raise AecoreError(f"latent size {settings.latent_dim} needs more training images than "
                          f"{len(training_images(split, settings))}")
    start = time.perf_counter()
    model, history = train_conv_vae(settings, split, progress)
    seconds = time.perf_counter() - start
    result = dict(conv_vae_metrics(model, split, settings), seconds=seconds,
                  epochs=len(history.train_loss),
                  history={"train_loss": history.train_loss, "val_loss": history.val_loss,
                           "epoch_seconds": history.epoch_seconds})
    if save is not None:
        save_conv_checkpoint(save, model, settings, result, command)
    return result


def checkpoint_name(latent_dim: int, beta: float, seed: int = 0) -> str:
    """File name of a shipped conv VAE checkpoint, e.g. ``vae_k64_beta1_seed0.pt``."""
    return f"vae_k{latent_dim}_beta{beta:g}_seed{seed}.pt"


def load_conv_vae_checkpoint(path, device: str = "cpu"):
    """``(model, settings, record)`` from a checkpoint whose sha256 matches its record.

    The model comes back in eval mode, on a CPU channels-last (``ready_for_evaluation``).
    A missing or damaged file raises :class:`~aecore.errors.AecoreError` with the command that
    makes it again.
    """
    record = read_checked_record(path)
    known = {f.name for f in fields(ConvVAESettings)}
    settings = replace(ConvVAESettings(), **{k: v for k, v in record["settings"].items()
                                             if k in known})
    settings = replace(settings, widths=tuple(settings.widths))
    model = settings.model()
    load_checkpoint(path, model)
    return ready_for_evaluation(model, device), settings, record

