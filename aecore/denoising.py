"""Denoising autoencoders: corruptions, the classical denoisers to beat, and the score.

Introduced in Chapter 6, "Denoising autoencoders". A corruption is a small callable
``corruption(x, generator) -> x_noisy`` that :func:`aecore.train.fit` applies to every
training batch (``fit(..., corrupt=corruption)``); the clean batch stays the target. The
baselines are closed forms: clipping, PCA projection and the Wiener filter (the best linear
denoiser), all fitted on the training rows only. A 2-D mixture of Gaussians, whose noisy
density is known exactly, checks Tweedie's formula and drives annealed Langevin sampling.
The same experiment functions serve the chapter and ``aecore denoise``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from tqdm.auto import tqdm

from aecore.conv_experiment import psnr
from aecore.errors import AecoreError
from aecore.models import MLPAutoencoder
from aecore.train import FitConfig, fit, set_seed

NOISE_KINDS = ("gaussian", "mask", "patch")


@dataclass(frozen=True)
class Gaussian:
    """Adds ``sigma`` times standard normal noise to every pixel (values may leave [0, 1])."""

    sigma: float

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + self.sigma * torch.randn(x.shape, generator=generator).to(x.device)


@dataclass(frozen=True)
class Mask:
    """Sets each pixel to 0 with probability ``p`` (dropped pixels)."""

    p: float

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        keep = torch.rand(x.shape, generator=generator).to(x.device) >= self.p
        return x * keep


@dataclass(frozen=True)
class Patch:
    """Sets one ``size x size`` square per image, at a random place, to 0 (an occluder).

    Rows are flat images of side ``side`` (Digits: 8) or ``(B, C, H, W)`` tensors.
    """

    size: int
    side: int = 8

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        flat = x.ndim == 2
        img = x.reshape(len(x), 1, self.side, self.side) if flat else x.clone()
        corners = torch.randint(0, self.side - self.size + 1, (len(x), 2), generator=generator)
        rows = torch.arange(self.side)
        r, c = corners[:, :1], corners[:, 1:]  # (B, 1) each
        inside_r = (rows >= r) & (rows < r + self.size)  # (B, side)
        inside_c = (rows >= c) & (rows < c + self.size)
        hole = (inside_r[:, :, None] & inside_c[:, None, :]).to(x.device)  # (B, side, side)
        img = img * ~hole[:, None]
        return img.reshape(x.shape)


@dataclass(frozen=True)
class Compose:
    """Applies several corruptions in order, e.g. ``Compose((Mask(0.2), Gaussian(0.1)))``."""

    parts: tuple

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for part in self.parts:
            x = part(x, generator)
        return x


def parse_noise(spec: str, side: int = 8):
    """A corruption from ``kind:level``: ``gaussian:0.3``, ``mask:0.5`` or ``patch:4``.

    Several joined by ``+`` are applied in order. Bad specs raise one clear error.

    >>> parse_noise("gaussian:0.3")
    Gaussian(sigma=0.3)
    >>> parse_noise("gaussian:-1")
    Traceback (most recent call last):
    ...
    aecore.errors.AecoreError: noise level must be a number >= 0; got '-1' in 'gaussian:-1'
    """
    if "+" in spec:
        return Compose(tuple(parse_noise(part, side) for part in spec.split("+")))
    kind, _, text = spec.partition(":")
    if kind not in NOISE_KINDS:
        raise AecoreError(f"unknown noise kind '{kind}' in '{spec}'; write one of "
                          "gaussian:SIGMA, mask:P or patch:SIZE (e.g. gaussian:0.3)")
    try:
        level = float(text)
    except ValueError:
        level = float("nan")
    if not (math.isfinite(level) and level >= 0):
        raise AecoreError(f"noise level must be a number >= 0; got '{text}' in '{spec}'")
    if kind == "gaussian":
        return Gaussian(level)
    if kind == "mask":
        if level >= 1:
            raise AecoreError(f"mask:P drops a fraction P of the pixels, 0 <= P < 1; got {text}")
        return Mask(level)
    if level != int(level) or not 1 <= level <= side:
        raise AecoreError(f"patch:SIZE needs a whole number of pixels from 1 to {side}; got {text}")
    return Patch(int(level), side)


def corrupt_array(x: np.ndarray, corruption, seed: int = 0) -> np.ndarray:
    """``corruption`` applied once to a NumPy array with a seeded generator (fixed test noise)."""
    generator = torch.Generator().manual_seed(seed)
    out = corruption(torch.as_tensor(np.asarray(x, dtype=np.float32)), generator)
    return out.numpy().astype(np.float64)


class LinearDenoisers:
    """PCA projection and the Wiener filter, from the eigendecomposition of the training covariance.

    The covariance is ``C = (x - mean)^T (x - mean) / n`` (that of a Gaussian fitted to the
    rows), written as ``V^T diag(variances) V`` with orthonormal rows ``V``. With fewer rows
    than features it comes from the ``n x n`` Gram matrix (never a ``d x d`` one).
    The Wiener filter for Gaussian noise of level ``sigma`` shrinks the coordinate along
    direction ``i`` by ``variances[i] / (variances[i] + sigma^2)``.

    >>> lin = LinearDenoisers(np.array([[0.0, 0.0], [2.0, 0.0]]))
    >>> lin.wiener(np.array([[2.0, 1.0]]), sigma=1.0)
    array([[1.5, 0. ]])
    """

    def __init__(self, x_train: np.ndarray):
        a = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
        self.mean = a.mean(axis=0)
        a = a - self.mean
        if len(a) < a.shape[1]:  # Gram matrix: eigenvectors of a a^T give V = U^T a / s
            evals, evecs = np.linalg.eigh(a @ a.T)
            keep = evals > 1e-10 * evals.max()
            evals, evecs = evals[keep][::-1], evecs[:, keep][:, ::-1]
            self.directions = (evecs.T @ a) / np.sqrt(evals)[:, None]  # (r, d)
        else:
            evals, evecs = np.linalg.eigh(a.T @ a)
            evals, self.directions = evals[::-1].clip(0), evecs[:, ::-1].T  # (d, d)
        self.variances = evals / len(a)  # largest first

    def coordinates(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, np.float64).reshape(len(y), -1) - self.mean) @ self.directions.T

    def wiener(self, y: np.ndarray, sigma: float) -> np.ndarray:
        """``E[x | y]`` if ``x`` were Gaussian with the training mean and covariance."""
        shrink = self.variances / (self.variances + sigma**2)
        out = self.mean + (self.coordinates(y) * shrink) @ self.directions
        return out.reshape(np.shape(y))

    def pca(self, y: np.ndarray, latent_dim: int) -> np.ndarray:
        """Projection onto the top ``latent_dim`` directions (PCA reconstruction of ``y``)."""
        out = self.mean + self.coordinates(y)[:, :latent_dim] @ self.directions[:latent_dim]
        return out.reshape(np.shape(y))

    def covariance(self) -> np.ndarray:
        return self.directions.T @ (self.variances[:, None] * self.directions)


def psnr_of(x: np.ndarray, x_hat: np.ndarray) -> float:
    """PSNR in dB (peak 1) of ``x_hat`` against the clean ``x``."""
    return psnr(float(np.mean((np.asarray(x_hat, np.float64) - x) ** 2)))


def per_image_se(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Mean squared error of each row (image) ``(N,)``."""
    return ((np.asarray(x_hat, np.float64) - x) ** 2).reshape(len(x), -1).mean(axis=1)


@dataclass(frozen=True)
class DenoiseSplit:
    """Training, validation and test rows; the test rows are for the final claim only."""

    x_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    name: str


def load_denoise_split(source: str = "digits", seed: int = 0) -> DenoiseSplit:
    """70/30 train/test split (stratified for Digits), then 20% of the 70% for validation."""
    from sklearn.datasets import load_digits

    from aecore.data import read_matrix

    if source == "digits":
        bunch = load_digits()
        x, y = bunch.data / 16.0, bunch.target  # (1797, 64) in [0, 1], labels 0..9
    else:
        x, y = read_matrix(source), None
        if x.min() < 0 or x.max() > 1:
            raise AecoreError(f"{source}: values must lie in [0, 1] (PSNR has peak 1); "
                              f"got [{x.min():g}, {x.max():g}]: rescale the matrix first")
    if len(x) < 10:
        raise AecoreError(f"{source}: need at least 10 rows to split; got {len(x)}")
    labels = np.zeros(len(x)) if y is None else y  # no labels: an unstratified split
    x_rest, x_test, y_rest, _ = train_test_split(x, labels, test_size=0.3, random_state=seed,
                                                 stratify=None if y is None else y)
    x_train, x_val = train_test_split(x_rest, test_size=0.2, random_state=seed,
                                      stratify=None if y is None else y_rest)
    return DenoiseSplit(x_train, x_val, x_test, source)


@dataclass(frozen=True)
class DenoiseSettings:
    """The chapter's MLP denoiser: a wide one-hidden-layer autoencoder and its training."""

    hidden: tuple = (512,)
    latent_dim: int = 512  # overcomplete: wider than Digits' 64 pixels
    num_epochs: int = 60
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    num_threads: int | None = 1

    def fit_config(self, progress: bool = True) -> FitConfig:
        return FitConfig(num_epochs=self.num_epochs, batch_size=self.batch_size, lr=self.lr,
                         warmup=0.1, seed=self.seed, num_threads=self.num_threads,
                         fused=True, device="cpu", progress=progress)


def train_denoiser(x_train, x_val, corruption, settings: DenoiseSettings = DenoiseSettings(),
                   progress: bool = True, once: bool = False):
    """An :class:`~aecore.models.MLPAutoencoder` trained to map ``corruption(x)`` to ``x``; ``(model, history)``.

    ``corruption=None`` trains a plain autoencoder. ``once=True`` corrupts the training set a
    single time (seed ``settings.seed + 3``) and trains on those fixed noisy copies instead of
    drawing fresh corruption for every batch.
    """
    set_seed(settings.seed)
    model = MLPAutoencoder(np.shape(x_train)[1], settings.latent_dim, settings.hidden)
    model.init_output_bias(x_train)
    config = settings.fit_config(progress)
    if once and corruption is not None:
        fixed = corrupt_array(x_train, corruption, settings.seed + 3)
        corruption = _FixedCopies(x_train, fixed, corruption)
    history = fit(model, x_train, x_val, config, corrupt=corruption)
    return model.eval(), history


class _FixedCopies:
    """Returns the one stored noisy copy of each training row; other rows get ``base``."""

    def __init__(self, clean: np.ndarray, noisy: np.ndarray, base):
        clean = np.asarray(clean, dtype=np.float32)
        self.index = {row.tobytes(): i for i, row in enumerate(clean)}
        self.noisy, self.base = torch.as_tensor(noisy, dtype=torch.float32), base

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        rows = [self.index.get(row.tobytes()) for row in x.cpu().numpy()]
        if None in rows:  # not training rows (the validation set): corrupt them as usual
            return self.base(x, generator)
        return self.noisy[rows].to(x.device)


@torch.no_grad()
def apply(model: nn.Module, y: np.ndarray) -> np.ndarray:
    """``model(y)`` for a NumPy array, in eval mode, as float64."""
    model.eval()
    return model(torch.as_tensor(np.asarray(y, dtype=np.float32))).double().numpy()


VAL_NOISE_SEED, TEST_NOISE_SEED = 1, 2  # every model is scored on the same noisy images


def best_pca_k(lin: LinearDenoisers, x: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """The number of directions whose projection of noisy ``y`` is closest to clean ``x``.

    Returns ``(k, mse)``, from one pass over every ``k`` (cumulative sums of coordinates).
    """
    c, b = lin.coordinates(y), lin.coordinates(x)  # noisy and clean coordinates (N, r)
    rest = ((np.asarray(x, np.float64).reshape(len(x), -1) - lin.mean) ** 2).sum(axis=1)
    rest = rest - (b**2).sum(axis=1)  # the part of x outside every direction
    kept = np.cumsum((c - b) ** 2, axis=1)  # error along the k kept directions
    dropped = (b**2).sum(axis=1, keepdims=True) - np.cumsum(b**2, axis=1)  # x along the rest
    err = kept + dropped + rest[:, None]  # (N, r): squared error with k = 1..r directions
    mse = err.mean(axis=0) / np.prod(np.shape(x)[1:])
    k = int(np.argmin(mse)) + 1
    return k, float(mse[k - 1])


def baseline_outputs(x_train, x_val, y_val, y_test, corruption, lin=None) -> tuple[dict, int]:
    """Test outputs of the closed-form denoisers, fitted on ``x_train``; PCA's k chosen on validation.

    Returns ``({name: x_hat}, k)`` with the names ``noisy``, ``clip``, ``pca`` and, for
    Gaussian noise, ``wiener``. ``lin`` reuses a :class:`LinearDenoisers` fitted on ``x_train``.
    """
    lin = LinearDenoisers(x_train) if lin is None else lin
    k, _ = best_pca_k(lin, x_val, y_val)
    out = {"noisy": y_test, "clip": np.clip(y_test, 0.0, 1.0), "pca": lin.pca(y_test, k)}
    if isinstance(corruption, Gaussian):
        out["wiener"] = lin.wiener(y_test, corruption.sigma)
    return out, k


def denoise_experiment(split: DenoiseSplit, noise: str, settings: DenoiseSettings = DenoiseSettings(),
                       progress: bool = True) -> dict:
    """Train the MLP denoiser on ``split`` and score it and every baseline on the noisy test rows.

    Returns the JSON-ready metrics of ``aecore denoise`` plus ``outputs`` (test outputs by
    name), ``y_test``, ``model`` and ``history``. PSNR in dB, peak 1, on the test rows.
    """
    side = int(round(math.sqrt(split.x_train.shape[1])))
    corruption = parse_noise(noise, side)
    y_val = corrupt_array(split.x_val, corruption, VAL_NOISE_SEED)
    y_test = corrupt_array(split.x_test, corruption, TEST_NOISE_SEED)
    outputs, k = baseline_outputs(split.x_train, split.x_val, y_val, y_test, corruption)
    start = time.perf_counter()
    model, history = train_denoiser(split.x_train, split.x_val, corruption, settings, progress)
    seconds = time.perf_counter() - start
    outputs["denoiser"] = apply(model, y_test)
    metrics = {"data": split.name, "model": "mlp", "noise": noise,
               "psnr_noisy": psnr_of(split.x_test, outputs["noisy"]),
               "psnr_clip": psnr_of(split.x_test, outputs["clip"]),
               "psnr_pca": psnr_of(split.x_test, outputs["pca"]), "pca_k": k,
               "psnr_wiener": (psnr_of(split.x_test, outputs["wiener"]) if "wiener" in outputs
                               else None),
               "psnr_denoiser": psnr_of(split.x_test, outputs["denoiser"]),
               "n_train": len(split.x_train), "n_val": len(split.x_val),
               "n_test": len(split.x_test), "settings": asdict(settings), "seconds": seconds}
    return metrics | {"outputs": outputs, "y_test": y_test, "denoiser": model, "history": history}


CONV_CHECKPOINT = "denoise_conv_k64_gaussian0.3_seed0.pt"  # made by `aecore denoise --model conv`


def conv_denoise_metrics(model, split, settings, noise: str, lin=None) -> dict:
    """Chapter 5's split: the conv denoiser and the baselines (fitted on the training images,
    mirrors included) on the noisy *test* species; PSNR in dB, plus the test outputs."""
    from aecore.conv_experiment import reconstruct, training_images

    corruption = parse_noise(noise, settings.size)
    x_seen, x_val, x_test = training_images(split, settings), split.x_val, split.x_test
    y_val = corrupt_array(x_val, corruption, VAL_NOISE_SEED)
    y_test = corrupt_array(x_test, corruption, TEST_NOISE_SEED)
    outputs, k = baseline_outputs(x_seen, x_val, y_val, y_test, corruption, lin)
    outputs["denoiser"] = reconstruct(model, y_test.astype(np.float32)).astype(np.float64)
    metrics = {f"psnr_{name}": psnr_of(x_test, out) for name, out in outputs.items()}
    return metrics | {"pca_k": k, "noise": noise, "outputs": outputs, "y_test": y_test}


def conv_denoise_experiment(settings, noise: str, save=None, command: str = "",
                            progress: bool = True) -> dict:
    """Train Chapter 5's :class:`~aecore.conv.ConvAutoencoder` as a denoiser on its species split.

    Returns the metrics of ``aecore denoise`` (test species); with ``save`` also writes the
    checkpoint and its record (see :func:`aecore.conv_experiment.save_conv_checkpoint`).
    """
    from aecore.conv_experiment import (evaluate_conv, load_split, save_conv_checkpoint,
                                        training_images)

    corruption = parse_noise(noise, settings.size)  # a bad spec fails before any work
    split = load_split(settings)
    x_seen = training_images(split, settings)
    start = time.perf_counter()
    set_seed(settings.seed)
    model = settings.model().init_from_data(x_seen)
    history = fit(model, x_seen, split.x_val, settings.fit_config(progress), corrupt=corruption)
    seconds = time.perf_counter() - start
    found = conv_denoise_metrics(model, split, settings, noise)
    clean = evaluate_conv(model, split, settings, train=False)  # clean inputs, as in Chapter 5
    metrics = clean | {k: v for k, v in found.items() if k not in ("outputs", "y_test")}
    metrics |= {"data": settings.data, "model": "conv", "latent_dim": settings.latent_dim,
                "n_train": len(split.x_train), "n_train_seen": len(x_seen),
                "n_val": len(split.x_val), "n_test": len(split.x_test),
                "epochs": len(history.train_loss), "seconds": seconds}
    if save is not None:
        save_conv_checkpoint(save, model, settings, metrics | {"history": {
            "train_loss": history.train_loss, "val_loss": history.val_loss,
            "epoch_seconds": history.epoch_seconds}}, command)
    return metrics


@dataclass(frozen=True)
class Mixture2D:
    """A 2-D mixture of round Gaussians: ``weights``, ``means`` and one ``std``; exact in closed form.

    Noisy points ``y = x + sigma * e`` follow the same mixture with variance ``std^2 + sigma^2``,
    so ``score(y, sigma)`` (the gradient of log p_sigma) and ``posterior_mean`` are exact.
    """

    weights: tuple = (0.5, 0.3, 0.2)
    means: tuple = ((2.0, 0.0), (-1.0, 1.7320508), (-1.0, -1.7320508))
    std: float = 0.15

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        which = rng.choice(len(self.weights), size=n, p=self.weights)
        return np.asarray(self.means)[which] + self.std * rng.standard_normal((n, 2))

    def responsibilities(self, y: np.ndarray, sigma: float) -> np.ndarray:
        var = self.std**2 + sigma**2
        d2 = ((y[:, None, :] - np.asarray(self.means)[None]) ** 2).sum(axis=2)  # (N, K)
        logits = np.log(self.weights)[None] - d2 / (2 * var)
        logits -= logits.max(axis=1, keepdims=True)
        r = np.exp(logits)
        return r / r.sum(axis=1, keepdims=True)

    def score(self, y: np.ndarray, sigma: float) -> np.ndarray:
        """``grad log p_sigma(y)`` ``(N, 2)``: responsibilities times ``(mean - y) / var``."""
        r = self.responsibilities(y, sigma)
        return (r @ np.asarray(self.means) - y) / (self.std**2 + sigma**2)

    def posterior_mean(self, y: np.ndarray, sigma: float) -> np.ndarray:
        """``E[x | y]`` by Tweedie's formula: ``y + sigma^2 * score(y)``."""
        return y + sigma**2 * self.score(y, sigma)

    def mode_fractions(self, points: np.ndarray) -> np.ndarray:
        """Fraction of ``points`` nearest to each mean, in the order of ``means``."""
        d2 = ((points[:, None, :] - np.asarray(self.means)[None]) ** 2).sum(axis=2)
        return np.bincount(d2.argmin(axis=1), minlength=len(self.means)) / len(points)


class PointDenoiser(nn.Module):
    """A small MLP for 2-D points: ``encoder`` 2 -> width -> width, ``decoder`` width -> 2."""

    def __init__(self, width: int = 128):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(2, width), nn.SiLU(), nn.Linear(width, width),
                                     nn.SiLU())  # (B, 2) -> (B, width)
        self.decoder = nn.Linear(width, 2)  # (B, width) -> (B, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def train_point_denoisers(x_train: np.ndarray, sigmas, num_epochs: int = 100, seed: int = 0,
                          progress: bool = True) -> dict:
    """One :class:`PointDenoiser` per noise level, trained by ``fit`` with fresh Gaussian noise."""
    config = FitConfig(num_epochs=num_epochs, batch_size=256, lr=3e-3, warmup=0.1, seed=seed,
                       num_threads=1, device="cpu", fused=True, progress=False)
    models = {}
    for sigma in tqdm(sigmas, desc="denoisers", unit="level", disable=not progress):
        set_seed(seed)
        models[sigma] = PointDenoiser()
        fit(models[sigma], x_train, None, config, corrupt=Gaussian(sigma))
        models[sigma].eval()
    return models


def annealed_langevin(score_fns: dict, n: int = 2000, steps: int = 60, step_scale: float = 0.2,
                      start_std: float = 3.0, seed: int = 0,
                      denoise_last: bool = True) -> np.ndarray:
    """Annealed Langevin dynamics (Song and Ermon, 2019), from wide noise down the noise levels.

    ``score_fns`` maps each ``sigma`` to a function ``y -> score (N, 2)``. At each level,
    largest first, ``steps`` updates ``y += a / 2 * score(y) + sqrt(a) * e`` with step
    ``a = step_scale * sigma^2``. Ends with one denoising step at the smallest level (Tweedie's
    formula), unless ``denoise_last`` is false.
    """
    rng = np.random.default_rng(seed)
    y = start_std * rng.standard_normal((n, 2))
    sigmas = sorted(score_fns, reverse=True)
    for sigma in sigmas:
        a = step_scale * sigma**2
        for _ in range(steps):
            y = y + a / 2 * score_fns[sigma](y) + math.sqrt(a) * rng.standard_normal(y.shape)
    return y + sigmas[-1] ** 2 * score_fns[sigmas[-1]](y) if denoise_last else y


def learned_score(model: nn.Module, sigma: float):
    """Tweedie's formula read backwards: ``(denoiser(y) - y) / sigma^2``, a function of NumPy ``y``."""
    return lambda y: (apply(model, y) - y) / sigma**2


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``(N, d)`` arrays."""
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

