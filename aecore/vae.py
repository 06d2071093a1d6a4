"""Variational autoencoders: the Gaussian KL, the ELBO, the importance-weighted bound, and PPCA.

Introduced in Chapter 7, "From autoencoder to variational autoencoder". A :class:`VAE`
returns ``(x_hat, mu, logvar, z)``; :class:`ELBOLoss` turns that into the negative ELBO per
image, so :func:`aecore.train.fit` trains it with ``raw_output=True`` and no second loop.
The decoder is an isotropic Gaussian ``N(x_hat, tau^2 I)`` with a learned ``tau``, the same
likelihood as probabilistic PCA, whose exact optimum (:class:`PPCA`) is the bar every VAE is
compared with. All log-likelihoods are in nats per image. :func:`vae_experiment` serves the
chapter and ``aecore train --model vae``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from aecore.data import Split, check_matrix
from aecore.errors import AecoreError
from aecore.train import FitConfig, fit, set_seed

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) per latent unit, same shape as ``mu``.

    >>> gaussian_kl(torch.zeros(1, 2), torch.zeros(1, 2))
    tensor([[0., 0.]])
    """
    return 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)


def gaussian_log_likelihood(x: torch.Tensor, x_hat: torch.Tensor, log_tau2: torch.Tensor) -> torch.Tensor:
    """log N(x; x_hat, tau^2 I) per row (or image), summed over its features (nats).

    Rows ``(B, D)`` or images ``(B, C, H, W)``; computed in float32 even under mixed precision.
    """
    d = x[0].numel()  # features per sample: D, or C * H * W
    se = ((x.float() - x_hat.float()) ** 2).flatten(1).sum(1)  # (B,)
    return -0.5 * (se / log_tau2.float().exp() + d * (LOG_2PI + log_tau2.float()))


class VAEOutput(NamedTuple):
    """What a :class:`VAE` returns: the decoder mean, q(z|x)'s mean and log-variance, the
    sampled code and the decoder's log-variance ``log tau^2``."""

    x_hat: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    log_tau2: torch.Tensor


class VAE(nn.Module):
    """A VAE for flat rows: ``x (B, D) -> (mu, logvar) (B, k) -> z -> x_hat (B, D)``.

    The encoder ``f`` is an MLP (ReLU) ending in ``2 * latent_dim`` numbers, the mean and the
    log-variance of ``q(z|x)``; the decoder ``g`` mirrors it with a linear output (the mean of a
    Gaussian, not a sigmoid). ``log_tau2`` is the decoder's learned log-variance. With
    ``linear=True`` both maps are affine and ``logvar`` is one learned vector, independent of
    ``x``: the linear VAE whose optimum is probabilistic PCA (Lucas et al., 2019).

    >>> model = VAE(64, 2, hidden=(16,))
    >>> [t.shape[1] for t in model(torch.rand(5, 64))[:4]]
    [64, 2, 2, 2]
    """

    def __init__(self, input_dim: int = 64, latent_dim: int = 2, hidden=(128,),
                 linear: bool = False):
        super().__init__()
        for name, value in (("input_dim", input_dim), ("latent_dim", latent_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise AecoreError(f"{name} must be a positive integer; got {value!r}")
        self.input_dim, self.latent_dim, self.linear = input_dim, latent_dim, linear
        self.hidden = () if linear else tuple(hidden)
        if linear:
            self.encoder = nn.Linear(input_dim, latent_dim)  # the mean of q(z|x)
            self.decoder = nn.Linear(latent_dim, input_dim)
            self.enc_logvar = nn.Parameter(torch.zeros(latent_dim))  # one variance per unit
        else:
            widths = (input_dim, *self.hidden)
            self.encoder = nn.Sequential(*_mlp(widths), nn.Linear(widths[-1], 2 * latent_dim))
            back = (latent_dim, *self.hidden[::-1])
            self.decoder = nn.Sequential(*_mlp(back), nn.Linear(back[-1], input_dim))
        self.log_tau2 = nn.Parameter(torch.tensor(math.log(0.05)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each ``(B, latent_dim)``."""
        h = self.encoder(x)
        if self.linear:
            return h, self.enc_logvar.expand_as(h)
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def forward(self, x: torch.Tensor) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)  # the reparameterisation trick
        return VAEOutput(self.decoder(z), mu, logvar, z, self.log_tau2)

    def init_output_bias(self, x_train) -> VAE:
        """Start the decoder at the mean training image."""
        last = self.decoder if self.linear else self.decoder[-1]
        with torch.no_grad():
            last.bias.copy_(torch.as_tensor(np.asarray(x_train).mean(0), dtype=torch.float32))
        return self


def _mlp(widths) -> list:
    return [m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), nn.ReLU())]


@dataclass(frozen=True)
class ELBOLoss:
    """The negative ELBO per image, ``-(E_q log p(x|z) - beta KL(q(z|x) || p(z)))``, in nats.

    Sums over pixels and latent units and averages over the batch: a mean over pixels would
    silently weight the KL ``D`` times more (Chapter 7). ``free_bits`` is a floor on each
    unit's batch-mean KL (0: none). ``fit(..., raw_output=True)`` calls it with the
    :class:`VAEOutput`.
    """

    beta: float = 1.0
    free_bits: float = 0.0

    def __call__(self, output: VAEOutput, x: torch.Tensor) -> torch.Tensor:
        recon = -gaussian_log_likelihood(x, output.x_hat, output.log_tau2).mean()
        kl = gaussian_kl(output.mu, output.logvar).mean(0)  # (k,), mean over the batch
        if self.free_bits > 0:
            kl = kl.clamp(min=self.free_bits)
        return recon + self.beta * kl.sum()


def _log_weights(model: VAE, x: torch.Tensor, num_samples: int, seed: int):
    """``log p(x, z_s) - log q(z_s | x)`` and ``log p(x | z_s)``, each (S, B), for S codes
    ``z_s ~ q(z|x)`` drawn in order from one seeded generator; and the posterior ``mu, logvar``."""
    generator = torch.Generator().manual_seed(seed)
    mu, logvar = model.encode(x)  # (B, k) each
    std = (0.5 * logvar).exp()
    log_w, log_px = [], []
    for _ in range(num_samples):
        eps = torch.randn(mu.shape, generator=generator)
        z = mu + std * eps
        log_px.append(gaussian_log_likelihood(x, model.decoder(z), model.log_tau2))
        log_pz = -0.5 * (z**2 + LOG_2PI).sum(1)
        log_qz = -0.5 * (eps**2 + LOG_2PI + logvar).sum(1)
        log_w.append(log_px[-1] + log_pz - log_qz)
    return torch.stack(log_w), torch.stack(log_px), mu, logvar


def _iwae(log_w: torch.Tensor) -> torch.Tensor:
    """(B,) importance-weighted bounds from (S, B) log-weights, in float64."""
    return torch.logsumexp(log_w.double(), 0) - math.log(len(log_w))


@torch.no_grad()
def vae_scores(model: VAE, x, num_samples: int = 256, seed: int = 0) -> dict:
    """Per-image ELBO, reconstruction term, KL, importance-weighted log-likelihood, active units.

    ``iwae_log_likelihood`` is ``log mean_s p(x, z_s) / q(z_s | x)`` over ``num_samples`` codes
    from q (Burda et al., 2016): a lower bound on ``log p(x)`` that tightens as the number
    grows. ``active_units`` counts latent units whose posterior mean varies over the data
    (variance above 0.01; 0 for a single row). All in nats per image, averaged over the rows of ``x``.
    """
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    was_training = model.training
    model.eval()
    log_w, log_px, mu, logvar = _log_weights(model, x, num_samples, seed)
    kl_units = gaussian_kl(mu, logvar).mean(0)  # (k,)
    recon = log_px.mean(0)  # (B,), E_q log p(x|z) by Monte Carlo
    model.train(was_training)
    return {"elbo": float((recon - gaussian_kl(mu, logvar).sum(1)).mean()),
            "recon": float(recon.mean()), "kl": float(kl_units.sum()),
            "kl_per_unit": kl_units.tolist(),
            "iwae_log_likelihood": float(_iwae(log_w).mean()), "iwae_samples": num_samples,
            "active_units": int((mu.var(0) > 0.01).sum()) if len(mu) > 1 else 0}


@torch.no_grad()
def iwae_bounds(model: VAE, x, sample_counts=(1, 16, 64, 256), seed: int = 0) -> dict:
    """``{r: bound}``: the importance-weighted bound (nats per image) from the first ``r`` of
    ``max(sample_counts)`` codes per image. The counts share their samples, so the bounds differ
    only by the samples added, and each equals ``vae_scores(model, x, r, seed)``'s."""
    counts = tuple(sample_counts)
    if not counts or not all(isinstance(r, int) and r >= 1 for r in counts):
        raise AecoreError(f"sample_counts must be positive integers, got {counts}")
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    was_training = model.training
    model.eval()
    log_w = _log_weights(model, x, max(counts), seed)[0]
    model.train(was_training)
    return {r: float(_iwae(log_w[:r]).mean()) for r in counts}


@dataclass
class PPCA:
    """Probabilistic PCA fitted exactly (Tipping and Bishop, 1999): ``x ~ N(mu, W W^T + tau^2 I)``.

    ``tau2`` is the mean of the discarded eigenvalues of the training covariance and
    ``W = U_k (Lambda_k - tau^2 I)^(1/2)``: the maximum-likelihood solution, and the optimum of
    a linear VAE with an isotropic Gaussian decoder. With more features than images (Pokemon:
    12288 pixels, 1612 images) the top eigenvectors come from the ``n x n`` Gram matrix and the
    likelihood from the eigenvalues, never from a ``d x d`` covariance.

    >>> x = np.random.default_rng(0).normal(size=(500, 3)) * [3.0, 1.0, 0.5]
    >>> round(PPCA.fit(x, 1).tau2, 2)  # the mean of the two smaller variances, near (1 + 0.25) / 2
    0.59
    """

    mu: np.ndarray  # (d,)
    u: np.ndarray  # (d, k): the top k eigenvectors of the training covariance
    lam: np.ndarray  # (k,): their eigenvalues
    tau2: float

    @property
    def w(self) -> np.ndarray:
        """``W = U_k (Lambda_k - tau^2 I)^(1/2)``, ``(d, k)``."""
        return self.u * np.sqrt(np.maximum(self.lam - self.tau2, 0.0))

    @classmethod
    def fit(cls, x, latent_dim: int) -> PPCA:
        x = check_matrix(np.asarray(x).reshape(len(x), -1))
        n, d = x.shape
        check_vae_latent(latent_dim, d)
        mu = x.mean(0)
        a = x.astype(np.float64) - mu  # (n, d)
        if d <= n:
            lam, u = np.linalg.eigh(a.T @ a / n)  # the covariance, ascending
        else:  # the Gram matrix has the same non-zero eigenvalues
            lam, v = np.linalg.eigh(a @ a.T / n)  # (n,), (n, n)
            if latent_dim >= n:
                raise AecoreError(f"latent size {latent_dim} needs more than {latent_dim} "
                                  f"training images; there are {n}")
            u = a.T @ v / np.sqrt(n * np.maximum(lam, 1e-300))  # (d, n), unit columns
        top = np.argsort(lam)[::-1][:latent_dim]
        tau2 = float(((a**2).sum() / n - lam[top].sum()) / (d - latent_dim))
        return cls(mu, u[:, top], lam[top], tau2)

    def log_likelihood(self, x, per_image: bool = False):
        """Mean ``log p(x)`` over the rows of ``x``, in nats per image (or one per row).

        Exact, through the eigenvalues: ``W W^T + tau^2 I`` has ``lam`` along ``U_k`` and
        ``tau^2`` everywhere else.
        """
        diff = np.asarray(x, dtype=np.float64).reshape(len(x), -1) - self.mu  # (N, d)
        d, k = diff.shape[1], len(self.lam)
        coords = diff @ self.u  # (N, k)
        maha = (diff**2).sum(1) / self.tau2 - (coords**2 @ (1 / self.tau2 - 1 / self.lam))
        logdet = np.log(self.lam).sum() + (d - k) * math.log(self.tau2)
        values = -0.5 * (d * LOG_2PI + logdet + maha)
        return values if per_image else float(np.mean(values))


def gaussian_marginal_log_likelihood(x, mu, w, tau2: float, per_image: bool = False):
    """Mean log N(x; mu, W W^T + tau2 I) over rows: the exact likelihood of a linear decoder
    (``per_image=True``: one value per row)."""
    x = np.asarray(x, dtype=np.float64)
    cov = w @ w.T + tau2 * np.eye(len(mu))
    _, logdet = np.linalg.slogdet(cov)
    diff = x - mu
    maha = np.einsum("ij,ij->i", diff, np.linalg.solve(cov, diff.T).T)
    values = -0.5 * (len(mu) * LOG_2PI + logdet + maha)
    return values if per_image else float(np.mean(values))


def linear_vae_log_likelihood(model: VAE, x, per_image: bool = False):
    """The exact held-out log-likelihood of a linear VAE's decoder (its marginal is Gaussian)."""
    w = model.decoder.weight.detach().double().numpy()
    b = model.decoder.bias.detach().double().numpy()
    return gaussian_marginal_log_likelihood(x, b, w, float(model.log_tau2.detach().exp()),
                                            per_image)


def check_vae_latent(latent_dim, n_features: int) -> int:
    """``latent_dim`` must be a whole number from 1 to ``n_features - 1``."""
    if not isinstance(latent_dim, (int, np.integer)) or isinstance(latent_dim, bool) \
            or not 1 <= latent_dim < n_features:
        raise AecoreError(f"latent size must be a whole number from 1 to {n_features - 1} "
                          f"for data with {n_features} features; got {latent_dim!r}")
    return int(latent_dim)


def check_beta(beta) -> float:
    """``beta`` must be a finite number >= 0 (0 drops the KL: a plain, noisy autoencoder)."""
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
        raise AecoreError(f"beta weights the KL term and must be a number >= 0; got {beta!r}")
    return float(beta)


@dataclass(frozen=True)
class VAESplit:
    """Train / validation / test rows (and labels) of one data set; test is touched once."""

    x_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray | None
    y_val: np.ndarray | None
    y_test: np.ndarray | None
    name: str


def load_vae_split(source: str = "digits", seed: int = 0) -> VAESplit:
    """Digits (pixels in [0, 1]) or a reader's matrix: 70/30 train/test (stratified for Digits,
    seed ``seed``), then a fifth of the training rows for validation."""
    if source == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x, y = bunch.data / 16.0, bunch.target
    else:
        from aecore.data import read_matrix

        x, y = check_matrix(read_matrix(source), source, min_samples=10), None
    x_tr, x_test, y_tr, y_test = _split(x, y, seed, 0.3)
    x_tr, x_val, y_tr, y_val = _split(x_tr, y_tr, seed, 0.2)
    return VAESplit(x_tr, x_val, x_test, y_tr, y_val, y_test, source)


def _split(x, y, seed: int, fraction: float):
    if y is None:
        a, b = train_test_split(x, test_size=fraction, random_state=seed)
        return a, b, None, None
    return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y)


@dataclass(frozen=True)
class VAESettings:
    """The chapter's VAE settings, shared with ``aecore train --model vae``."""

    latent_dim: int = 2
    beta: float = 1.0
    linear: bool = False
    hidden: tuple = (128,)
    free_bits: float = 0.0
    num_epochs: int = 100
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    iwae_samples: int = 256

    def for_linear(self) -> VAESettings:
        """The linear VAE's settings: it needs more steps at a higher rate to reach PPCA."""
        return replace(self, linear=True, num_epochs=400, lr=5e-2, batch_size=128)

    def fit_config(self, progress: bool = True) -> FitConfig:
        return FitConfig(num_epochs=self.num_epochs, batch_size=self.batch_size, lr=self.lr,
                         warmup=0.1, seed=self.seed, device="cpu", num_threads=1,
                         progress=progress)


def train_vae(x_train, x_val, settings: VAESettings = VAESettings(), progress: bool = True):
    """Seed, build and train a :class:`VAE` on the negative ELBO; returns ``(model, history)``."""
    check_beta(settings.beta)
    check_vae_latent(settings.latent_dim, np.shape(x_train)[1])
    set_seed(settings.seed)
    model = VAE(np.shape(x_train)[1], settings.latent_dim, settings.hidden, settings.linear)
    model.init_output_bias(x_train)
    loss = ELBOLoss(settings.beta, settings.free_bits)
    history = fit(model, x_train, x_val, settings.fit_config(progress), loss_fn=loss,
                  raw_output=True)
    return model, history


def vae_experiment(split: VAESplit, settings: VAESettings = VAESettings(),
                   progress: bool = True) -> dict:
    """Train one VAE and score it on the held-out test rows against exact PPCA (same split,
    same latent size): the numbers ``aecore train --model vae --json`` prints."""
    start = time.perf_counter()
    model, history = train_vae(split.x_train, split.x_val, settings, progress)
    seconds = time.perf_counter() - start
    scores = vae_scores(model, split.x_test, settings.iwae_samples, settings.seed)
    ppca = PPCA.fit(split.x_train, settings.latent_dim)
    result = {"data": split.name, "model": "linear_vae" if settings.linear else "vae",
              **{k: v for k, v in asdict(settings).items() if k != "hidden"},
              "n_train": len(split.x_train), "n_val": len(split.x_val),
              "n_test": len(split.x_test), **scores,
              "ppca_log_likelihood": ppca.log_likelihood(split.x_test),
              "decoder_tau": float(model.log_tau2.detach().exp().sqrt()), "seconds": seconds}
    if settings.linear:
        result["exact_log_likelihood"] = linear_vae_log_likelihood(model, split.x_test)
    result.pop("kl_per_unit")
    return dict(result, history=history, trained=model)
