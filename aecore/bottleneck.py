"""Experiments on the bottleneck: latent-size sweeps, merged digits, identity maps, small data.

Each function trains ordinary :class:`~aecore.models.MLPAutoencoder` models with Chapter 2's
settings (:class:`~aecore.experiments.MLPConfig`) through :func:`aecore.train.fit` and returns
plain numbers, so Chapter 4 and ``aecore sweep`` print the same results.
Introduced in Chapter 4, "The bottleneck".
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from aecore.data import Split
from aecore.errors import AecoreError
from aecore.experiments import MLPConfig, build_mlp, to_numpy
from aecore.linear import PCA, mse
from aecore.models import ACTIVATIONS, MLPAutoencoder
from aecore.train import History, fit


def train_mlp(x_train, x_val, latent_dim: int, config: MLPConfig | None = None) -> tuple[MLPAutoencoder, History]:
    """Seed, build and fit one MLP autoencoder with Chapter 2's settings; any ``latent_dim`` >= 1.

    Unlike :func:`aecore.experiments.train_mlp_on` this allows a code as wide as the input, or
    wider: that is one of the experiments here.
    """
    config = config or MLPConfig()
    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise AecoreError(f"latent_dim must be a positive integer; got {latent_dim!r}")
    model = build_mlp(x_train, latent_dim, config)
    return model, fit(model, x_train, x_val, config.fit)


def parse_latent_list(text: str) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]``; every size must be a positive integer.

    >>> parse_latent_list("1, 2,8")
    [1, 2, 8]
    """
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise AecoreError(f"latent sizes must be comma-separated integers such as 1,2,4; got '{text}'") from None
    if not sizes or min(sizes) < 1:
        raise AecoreError(f"latent sizes must be positive integers such as 1,2,4; got '{text}'")
    return sizes


def latent_sweep(split: Split, latent_dims, num_seeds: int = 3, config: MLPConfig | None = None,
                 progress: bool = True, return_models: bool = False):
    """Validation MSE of the MLP autoencoder for each latent size over ``num_seeds`` seeds, beside PCA.

    Returns one row per latent size: ``latent_dim``, ``val_mse_mean``, ``val_mse_std``,
    ``val_mse_min``, ``val_mse_max``, ``val_mse_seeds`` (one per seed) and ``pca_val_mse``
    (PCA fitted on the same training split; a code as wide as the input gives PCA zero error).
    With ``return_models=True`` it returns ``(rows, models)``, ``models[latent_dim, seed]`` the
    trained models, so that a chapter can study them without training them again.
    """
    if not isinstance(num_seeds, int) or num_seeds < 1:
        raise AecoreError(f"the number of seeds must be a positive integer; got {num_seeds!r}")
    if not latent_dims:
        raise AecoreError("no latent sizes given; pass sizes such as 1,2,4")
    from tqdm.auto import tqdm

    config = (config or MLPConfig()).with_fit(progress=False)
    runs = [(k, seed) for k in latent_dims for seed in range(num_seeds)]
    per_run, models = {}, {}
    for k, seed in tqdm(runs, desc="sweep", unit="model", disable=not progress):
        model, _ = train_mlp(split.x_train, split.x_val, k, config.with_fit(seed=seed))
        per_run[k, seed] = mse(split.x_val, to_numpy(model, split.x_val))
        if return_models:
            models[k, seed] = model
    d = split.n_features
    rows = []
    for k in latent_dims:
        vals = np.array([per_run[k, seed] for seed in range(num_seeds)])
        pca_mse = mse(split.x_val, PCA.fit(split.x_train, min(k, d)).reconstruct(split.x_val))
        rows.append({"latent_dim": k, "val_mse_mean": float(vals.mean()), "val_mse_std": float(vals.std()),
                     "val_mse_min": float(vals.min()), "val_mse_max": float(vals.max()),
                     "val_mse_seeds": [float(v) for v in vals], "pca_val_mse": pca_mse})
    return (rows, models) if return_models else rows


def run_sweep(split: Split, latent_dims, num_seeds: int = 3, progress: bool = False) -> dict:
    """The experiment behind ``aecore sweep``: the sweep's rows plus the data's sizes and the time taken."""
    start = time.perf_counter()
    rows = latent_sweep(split, latent_dims, num_seeds, progress=progress)
    return {"data": split.name, "model": "mlp", "n_train": len(split.x_train), "n_val": len(split.x_val),
            "seeds": num_seeds, "rows": rows, "seconds": time.perf_counter() - start}


def knn_confusion(z_train, y_train, z_val, y_val, n_neighbors: int = 5) -> np.ndarray:
    """Row-normalised confusion matrix (true label x predicted) of an ``n_neighbors``-nearest-neighbour classifier on codes."""
    from sklearn.metrics import confusion_matrix
    from sklearn.neighbors import KNeighborsClassifier

    predicted = KNeighborsClassifier(n_neighbors).fit(z_train, y_train).predict(z_val)
    return confusion_matrix(y_val, predicted, normalize="true")


def most_confused_pairs(confusion: np.ndarray, top: int = 5) -> list[tuple[int, int, float]]:
    """The ``top`` (true, predicted, rate) pairs off the diagonal, largest first.

    >>> most_confused_pairs(np.array([[0.7, 0.3], [0.1, 0.9]]), top=1)
    [(0, 1, 0.3)]
    """
    off = np.array(confusion, dtype=float)
    np.fill_diagonal(off, 0.0)
    order = np.argsort(off, axis=None)[::-1][:top]
    return [(int(i), int(j), float(off[i, j])) for i, j in zip(*np.unravel_index(order, off.shape))]


def label_flip_rate(x_hat, y, pixel_classifier) -> float:
    """Fraction of reconstructions that a classifier trained on real images labels differently from ``y``."""
    return float(np.mean(pixel_classifier.predict(x_hat) != y))


def dead_unit_fraction(model: MLPAutoencoder, x) -> float:
    """Fraction of hidden ReLU units (encoder and decoder) that output zero for every row of ``x``."""
    activations = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: activations.append(out.detach()))
             for m in list(model.encoder) + list(model.decoder) if isinstance(m, nn.ReLU)]
    try:
        to_numpy(model, x)
    finally:
        for h in hooks:
            h.remove()
    if not activations:
        raise AecoreError("the model has no ReLU units to check; dead units are a ReLU failure")
    dead = sum(int((a <= 0).all(dim=0).sum()) for a in activations)
    return dead / sum(a.shape[1] for a in activations)


def flat_unit_fraction(model: MLPAutoencoder, x, tol: float = 1e-3) -> float:
    """Fraction of hidden units whose activation's slope is below ``tol`` in size for every row of ``x``.

    The slope is the derivative of the unit's activation function at its input, the factor by
    which every gradient through the unit is multiplied. For ReLU it is exactly 0 for a negative
    input, so with any ``tol`` in (0, 1] this equals :func:`dead_unit_fraction`. GELU, ELU and
    SiLU have slopes that are small but not zero for very negative inputs: a unit pushed far
    below zero for every image is flat, and learns almost nothing, without being dead.

    >>> model = MLPAutoencoder(4, 1, hidden=(3,), activation="elu")
    >>> with torch.no_grad():  # encoder units at inputs -20, -20, 20; decoder units at 1, 1, 1
    ...     for layer, bias in [(model.encoder[0], [-20.0, -20.0, 20.0]), (model.decoder[0], [1.0] * 3)]:
    ...         _ = layer.weight.zero_(), layer.bias.copy_(torch.tensor(bias))
    >>> round(flat_unit_fraction(model, torch.zeros(2, 4)), 3)  # 2 flat units of 6
    0.333
    """
    if not tol > 0:
        raise AecoreError(f"tol must be a positive number; got {tol!r}")
    hidden = tuple(ACTIVATIONS.values())
    inputs = []
    hooks = [m.register_forward_hook(lambda mod, inp, _out: inputs.append((mod, inp[0].detach())))
             for m in list(model.encoder) + list(model.decoder) if isinstance(m, hidden)]
    try:
        to_numpy(model, x)
    finally:
        for h in hooks:
            h.remove()
    if not inputs:
        raise AecoreError("the model has no hidden activation units to check")
    flat = 0
    for module, u in inputs:  # u: (B, units), the inputs of one activation layer
        u = u.clone().requires_grad_(True)
        with torch.enable_grad():
            (slope,) = torch.autograd.grad(module(u).sum(), u)  # elementwise: d act / d u
        flat += int((slope.abs() < tol).all(dim=0).sum())
    return flat / sum(u.shape[1] for _, u in inputs)


def data_size_curve(split: Split, sizes, latent_dims, config: MLPConfig | None = None,
                    num_steps: int = 900, progress: bool = True) -> list[dict]:
    """Train and validation MSE when training on the first ``n`` training images, for each size and latent.

    Every run takes about ``num_steps`` optimiser steps, so small sets are not simply undertrained.
    """
    from tqdm.auto import tqdm

    config = (config or MLPConfig()).with_fit(progress=False)
    rows = []
    runs = [(n, k) for n in sizes for k in latent_dims]
    for n, k in tqdm(runs, desc="data sizes", unit="model", disable=not progress):
        if not 2 <= n <= len(split.x_train):
            raise AecoreError(f"training-set size {n} must be between 2 and {len(split.x_train)}")
        x = split.x_train[:n]
        steps_per_epoch = -(-n // min(config.fit.batch_size, n))
        model, _ = train_mlp(x, split.x_val, k, config.with_fit(num_epochs=max(1, round(num_steps / steps_per_epoch))))
        train, val = mse(x, to_numpy(model, x)), mse(split.x_val, to_numpy(model, split.x_val))
        rows.append({"n_train": n, "latent_dim": k, "train_mse": train, "val_mse": val, "gap": val - train})
    return rows
