"""The latent space of a trained autoencoder: codes, decoding, slider axes and structure scores.

Introduced in Chapter 3, "What the latent space represents". The live sliders
(:mod:`aecore.sliders`) and the static latent explorer (:mod:`aecore.explorer`) share the checks
and the slider axes defined here, so both reject the same bad input with the same message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aecore.errors import AecoreError


def get_decoder(model) -> nn.Module:
    """The ``decoder`` of an autoencoder, or a clear :class:`~aecore.errors.AecoreError`.

    >>> from aecore.models import MLPAutoencoder
    >>> type(get_decoder(MLPAutoencoder(64, 2, hidden=(8,)))).__name__
    'Sequential'
    >>> get_decoder(nn.Linear(2, 64))
    Traceback (most recent call last):
    ...
    aecore.errors.AecoreError: Linear has no .decoder; pass a whole autoencoder with .encoder and .decoder (e.g. aecore.models.MLPAutoencoder)
    """
    decoder = getattr(model, "decoder", None)
    if not isinstance(decoder, nn.Module):
        raise AecoreError(f"{type(model).__name__} has no .decoder; pass a whole autoencoder with "
                          ".encoder and .decoder (e.g. aecore.models.MLPAutoencoder)")
    return decoder


def latent_dim_of(model) -> int:
    """``model.latent_dim``, or the input width of the decoder's first ``nn.Linear``."""
    latent_dim = getattr(model, "latent_dim", None)
    if latent_dim is None:
        first = next((m for m in get_decoder(model).modules() if isinstance(m, nn.Linear)), None)
        if first is None:
            raise AecoreError(f"cannot tell the latent size of {type(model).__name__}: give it a "
                              "latent_dim attribute or a decoder that starts with nn.Linear")
        latent_dim = first.in_features
    return int(latent_dim)


def check_image_shape(image_shape, n_outputs: int) -> tuple[int, ...]:
    """``(H, W)``, ``(1, H, W)`` or ``(3, H, W)`` whose size is ``n_outputs``; ``None`` means square grey.

    >>> check_image_shape(None, 64)
    (8, 8)
    >>> check_image_shape((8, 9), 64)
    Traceback (most recent call last):
    ...
    aecore.errors.AecoreError: image_shape (8, 9) holds 72 pixels but the decoder outputs 64 values; pass the shape of one image, e.g. image_shape=(8, 8) for Digits
    """
    if image_shape is None:
        side = math.isqrt(n_outputs)
        if side * side != n_outputs:
            raise AecoreError(f"the decoder outputs {n_outputs} values, not a square image; "
                              "pass image_shape=(H, W) or (C, H, W)")
        return (side, side)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or min(shape) < 1 or (len(shape) == 3 and shape[0] not in (1, 3)):
        raise AecoreError(f"image_shape must be (H, W), (1, H, W) or (3, H, W); got {tuple(image_shape)}")
    if math.prod(shape) != n_outputs:
        raise AecoreError(f"image_shape {shape} holds {math.prod(shape)} pixels but the decoder outputs "
                          f"{n_outputs} values; pass the shape of one image, e.g. image_shape=(8, 8) for Digits")
    return shape


def encode(model, x) -> np.ndarray:
    """The codes ``z`` of ``x`` as NumPy: ``(n, D) -> (n, latent_dim)``, in eval mode."""
    with torch.no_grad():
        return model.eval().encoder(torch.as_tensor(np.asarray(x), dtype=torch.float32)).numpy()


def decode(model, z) -> np.ndarray:
    """Decoded images ``x_hat`` for codes ``z`` as NumPy: ``(n, latent_dim) -> (n, D)``."""
    decoder = get_decoder(model).eval()
    with torch.no_grad():
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32)
        return decoder(z.reshape(-1, z.shape[-1])).reshape(len(z), -1).numpy()


@dataclass(frozen=True)
class LatentAxes:
    """The directions sliders move along: ``z = base + sum_i (v_i - v0_i) * directions[i]``.

    With few latent coordinates the directions are the coordinates themselves; with many they
    are the leading principal directions of the codes, scaled by their standard deviation, so
    a slider value is "standard deviations along PC i". ``v0`` are the slider values of ``base``.
    """

    origin: np.ndarray  # (latent_dim,) where all sliders read 0
    directions: np.ndarray  # (k, latent_dim)
    low: np.ndarray  # (k,) slider minimum
    high: np.ndarray  # (k,) slider maximum
    names: tuple[str, ...]

    def values(self, z) -> np.ndarray:
        """Slider values of a code ``z`` (its coordinates along the directions), ``(latent_dim,) -> (k,)``."""
        d = self.directions
        return np.linalg.solve(d @ d.T, d @ (np.asarray(z, dtype=np.float64) - self.origin))

    def to_z(self, values, base=None, base_values=None) -> np.ndarray:
        """The code for slider ``values``, moving from ``base`` (default: the origin)."""
        base = self.origin if base is None else np.asarray(base, dtype=np.float64)
        base_values = self.values(base) if base_values is None else np.asarray(base_values, dtype=np.float64)
        return base + (np.asarray(values, dtype=np.float64) - base_values) @ self.directions


def latent_axes(latent_dim: int, z=None, max_sliders: int = 8, margin: float = 0.1) -> LatentAxes:
    """Slider axes for a latent space: one per coordinate up to ``max_sliders``, else principal directions.

    ``z`` (codes of real data, ``(n, latent_dim)``) sets the ranges: each coordinate's span
    plus ``margin`` of it on both sides; without codes the range is -3..3.

    >>> axes = latent_axes(2, np.array([[0.0, -1.0], [2.0, 1.0]]))
    >>> axes.low.tolist(), axes.high.tolist(), axes.names
    ([-0.2, -1.2], [2.2, 1.2], ('z1', 'z2'))
    """
    if not isinstance(max_sliders, int) or max_sliders < 1:
        raise AecoreError(f"max_sliders must be a positive integer; got {max_sliders!r}")
    if z is not None:
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != latent_dim or len(z) < 2 or not np.isfinite(z).all():
            raise AecoreError(f"codes must be a finite (n >= 2, {latent_dim}) array; got shape {z.shape}")
    if latent_dim <= max_sliders:
        eye = np.eye(latent_dim)
        if z is None:
            low, high = np.full(latent_dim, -3.0), np.full(latent_dim, 3.0)
        else:
            lo, hi = z.min(axis=0), z.max(axis=0)
            pad = margin * np.maximum(hi - lo, 1e-6)
            low, high = lo - pad, hi + pad
        return LatentAxes(np.zeros(latent_dim), eye, low, high, tuple(f"z{i + 1}" for i in range(latent_dim)))
    if z is None:
        raise AecoreError(f"latent_dim {latent_dim} is more than max_sliders={max_sliders}: pass codes of real "
                          "data (x=... or z=...) so the sliders can follow their leading principal directions")
    mean = z.mean(axis=0)
    _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
    std = s[:max_sliders] / math.sqrt(len(z) - 1)
    directions = vt[:max_sliders] * np.maximum(std, 1e-12)[:, None]  # (k, latent_dim), one std each
    k = len(directions)
    return LatentAxes(mean, directions, np.full(k, -3.0), np.full(k, 3.0), tuple(f"PC{i + 1}" for i in range(k)))


def latent_grid(low, high, n: int = 12) -> np.ndarray:
    """An ``n x n`` grid of 2-D codes over a box, row by row from the top: ``(n * n, 2)``.

    >>> latent_grid([0, 0], [1, 1], n=2).tolist()
    [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
    """
    z1 = np.linspace(low[0], high[0], n)
    z2 = np.linspace(high[1], low[1], n)  # top row first, as an image is drawn
    return np.stack(np.meshgrid(z1, z2), axis=-1).reshape(-1, 2)


def interpolate(a, b, num_steps: int = 8) -> np.ndarray:
    """Points on the straight line from ``a`` to ``b``, ends included: ``(num_steps, d)``.

    >>> interpolate([0.0, 0.0], [1.0, 2.0], 3).tolist()
    [[0.0, 0.0], [0.5, 1.0], [1.0, 2.0]]
    """
    t = np.linspace(0.0, 1.0, num_steps)[:, None]
    return (1 - t) * np.asarray(a, dtype=np.float64) + t * np.asarray(b, dtype=np.float64)


def nearest_distance(a, b) -> np.ndarray:
    """Euclidean distance from each row of ``a`` to its nearest row of ``b``: ``(n,)``."""
    from sklearn.neighbors import NearestNeighbors

    dist, _ = NearestNeighbors(n_neighbors=1).fit(np.asarray(b)).kneighbors(np.asarray(a))
    return dist[:, 0]


def structure_scores(embeddings: dict, x_val, y_train, y_val, n_neighbors: int = 5) -> list[dict]:
    """Nearest-neighbour accuracy and trustworthiness of several embeddings of the same data.

    ``embeddings`` maps a name to ``(train, val)`` arrays (e.g. autoencoder codes, PCA
    projections, raw pixels). The classifier is fitted on ``train`` and scored on ``val``;
    trustworthiness (:func:`sklearn.manifold.trustworthiness`) compares the ``n_neighbors``
    nearest neighbours of each validation image in ``x_val`` with those in its embedding:
    1 means no false neighbours were invented. Returns one row per embedding.
    """
    from sklearn.manifold import trustworthiness

    from aecore.experiments import knn_accuracy

    rows = []
    for name, (e_train, e_val) in embeddings.items():
        acc = knn_accuracy(e_train, y_train, e_val, y_val, n_neighbors)
        rows.append({"embedding": name, "dims": int(np.shape(e_val)[1]), "knn_accuracy": acc,
                     "trustworthiness": float(trustworthiness(x_val, e_val, n_neighbors=n_neighbors))})
    return rows
