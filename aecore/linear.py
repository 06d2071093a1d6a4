"""PCA by SVD, the Eckart-Young bound, and a linear autoencoder with hand-written gradients.

NumPy only (Chapter 1 imports no torch). Arrays are ``(n, d)``: one sample per row.
Introduced in Chapter 1, "A linear autoencoder is PCA".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from aecore.data import Split, check_matrix
from aecore.errors import AecoreError


def mse(x, x_hat) -> float:
    """Mean squared error over samples *and* features: ``mean((x - x_hat)**2)``.

    >>> mse(np.zeros((2, 2)), np.ones((2, 2)))
    1.0
    """
    return float(np.mean((np.asarray(x) - np.asarray(x_hat)) ** 2))


def check_latent_dim(latent_dim, n_features: int) -> int:
    """Return ``latent_dim`` if ``1 <= latent_dim < n_features``, else raise :class:`~aecore.errors.AecoreError`."""
    if not isinstance(latent_dim, (int, np.integer)) or isinstance(latent_dim, bool):
        raise AecoreError(f"latent_dim must be an integer; got {latent_dim!r}")
    if latent_dim < 1:
        raise AecoreError(f"latent_dim must be at least 1; got {latent_dim}")
    if latent_dim >= n_features:
        raise AecoreError(
            f"latent_dim must be smaller than the number of features ({n_features}); got {latent_dim}. "
            "A code as large as the input needs no compression: choose a smaller latent size"
        )
    return int(latent_dim)


@dataclass
class PCA:
    """Principal component analysis by the SVD of the centred data.

    ``mu`` is ``(d,)``; ``components`` is ``(k, d)`` with orthonormal rows (the top right
    singular vectors); ``singular_values`` holds *all* singular values of the centred data.

    >>> x = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    >>> pca = PCA.fit(x, latent_dim=1)
    >>> np.round(np.abs(pca.components), 4)
    array([[0.7071, 0.7071]])
    >>> float(np.round(mse(x, pca.reconstruct(x)), 12))
    0.0
    """

    mu: np.ndarray
    components: np.ndarray
    singular_values: np.ndarray
    n_samples: int

    @classmethod
    def fit(cls, x, latent_dim: int) -> PCA:
        x = check_matrix(x)
        latent_dim = check_latent_dim(latent_dim, x.shape[1] + 1)  # k = d is allowed for PCA
        mu = x.mean(axis=0)  # (d,)
        _, s, vt = np.linalg.svd(x - mu, full_matrices=False)  # s: (min(n, d),), vt: (min(n,d), d)
        return cls(mu, vt[:latent_dim], s, x.shape[0])

    @property
    def latent_dim(self) -> int:
        return self.components.shape[0]

    def encode(self, x) -> np.ndarray:
        return (np.asarray(x) - self.mu) @ self.components.T  # (n, d) @ (d, k) -> (n, k)

    def decode(self, z) -> np.ndarray:
        return np.asarray(z) @ self.components + self.mu  # (n, k) @ (k, d) -> (n, d)

    def reconstruct(self, x) -> np.ndarray:
        return self.decode(self.encode(x))

    def explained_variance_ratio(self) -> np.ndarray:
        """Fraction of the total variance along each principal direction (all of them)."""
        power = self.singular_values**2
        return power / power.sum()


def eckart_young_mse(singular_values, latent_dim: int, n_samples: int, n_features: int) -> float:
    """The smallest MSE any rank-``latent_dim`` reconstruction of the centred data can reach.

    Eckart-Young: ``sum(s[k:]**2) / (n * d)``, the discarded squared singular values, scaled.

    >>> eckart_young_mse(np.array([3.0, 2.0, 1.0]), 1, n_samples=5, n_features=3)
    0.3333333333333333
    """
    s = np.asarray(singular_values, dtype=np.float64)
    return float(np.sum(s[latent_dim:] ** 2) / (n_samples * n_features))


def principal_angles_deg(a, b) -> np.ndarray:
    """Principal angles (degrees, ascending) between the column spaces of ``a`` and ``b``.

    >>> principal_angles_deg(np.eye(3)[:, :2], np.eye(3)[:, [1, 0]])
    array([0., 0.])
    """
    qa, _ = np.linalg.qr(np.asarray(a, dtype=np.float64))  # (d, k) orthonormal basis
    qb, _ = np.linalg.qr(np.asarray(b, dtype=np.float64))
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)  # (k,), descending
    return np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))


@dataclass
class LinearAutoencoder:
    """``z = W_e (x - mu)``, ``x_hat = W_d z + mu``, trained by gradient descent with momentum.

    ``W_e`` is ``(k, d)``, ``W_d`` is ``(d, k)``; ``l2`` is the weight of the penalty
    ``l2 * (||W_e||^2 + ||W_d||^2)`` added to the MSE. ``history`` holds the MSE per step.

    >>> x = np.random.default_rng(0).normal(size=(100, 3)) * [3.0, 1.0, 0.1]  # (100, 3)
    >>> ae = LinearAutoencoder.init(x, latent_dim=2).fit(x, num_epochs=3000)
    >>> ae.encode(x).shape, ae.reconstruct(x).shape
    ((100, 2), (100, 3))
    >>> bound = eckart_young_mse(PCA.fit(x, 2).singular_values, 2, *x.shape)
    >>> bool(abs(ae.history[-1] / bound - 1) < 1e-3)
    True
    """

    W_e: np.ndarray
    W_d: np.ndarray
    mu: np.ndarray
    l2: float = 0.0
    history: list = field(default_factory=list)

    @classmethod
    def init(cls, x, latent_dim: int, l2: float = 0.0, seed: int = 0) -> LinearAutoencoder:
        """Small random weights and the mean of ``x`` (the encoder centres the data)."""
        x = check_matrix(x)
        d = x.shape[1]
        latent_dim = check_latent_dim(latent_dim, d)
        if l2 < 0:
            raise AecoreError(f"l2 must be 0 or more; got {l2}")
        rng = np.random.default_rng(seed)
        W_e = rng.normal(0.0, 1.0 / np.sqrt(d), size=(latent_dim, d))
        W_d = rng.normal(0.0, 1.0 / np.sqrt(latent_dim), size=(d, latent_dim))
        return cls(W_e, W_d, x.mean(axis=0), l2)

    def encode(self, x) -> np.ndarray:
        return (np.asarray(x) - self.mu) @ self.W_e.T  # (n, d) @ (d, k) -> (n, k)

    def decode(self, z) -> np.ndarray:
        return np.asarray(z) @ self.W_d.T + self.mu  # (n, k) @ (k, d) -> (n, d)

    def reconstruct(self, x) -> np.ndarray:
        return self.decode(self.encode(x))

    def loss_and_grads(self, x):
        """The objective (MSE + L2 penalty) and its gradients for ``W_e`` and ``W_d``.

        Returns ``(loss, mse, grad_W_e, grad_W_d)``; the backward pass is written out by hand.
        """
        n, d = x.shape
        xc = x - self.mu  # (n, d)
        z = xc @ self.W_e.T  # (n, d) @ (d, k) -> (n, k)
        r = z @ self.W_d.T - xc  # (n, k) @ (k, d) -> (n, d), the residual x_hat - x
        err = float(np.mean(r**2))
        g = 2.0 * r / (n * d)  # dLoss/dx_hat, (n, d)
        grad_W_d = g.T @ z + 2.0 * self.l2 * self.W_d  # (d, n) @ (n, k) -> (d, k)
        grad_z = g @ self.W_d  # (n, d) @ (d, k) -> (n, k)
        grad_W_e = grad_z.T @ xc + 2.0 * self.l2 * self.W_e  # (k, n) @ (n, d) -> (k, d)
        penalty = self.l2 * float(np.sum(self.W_e**2) + np.sum(self.W_d**2))
        return err + penalty, err, grad_W_e, grad_W_d

    def fit(self, x, num_epochs: int, lr: float | None = None, momentum: float = 0.9) -> LinearAutoencoder:
        """Full-batch gradient descent with heavy-ball momentum; appends the MSE of each step.

        Args:
            x: ``(n, d)`` training data (the mean stored at :meth:`LinearAutoencoder.init` is subtracted).
            num_epochs: number of full-batch steps, 0 or more.
            lr: step size; ``None`` picks :func:`default_lr`, ``0.05 / lambda_max``.
            momentum: heavy-ball coefficient (0 gives plain gradient descent).

        Chapter 1 measures why momentum: on Digits with ``latent_dim=20``, plain descent at this
        step is still tens of degrees from the principal subspace after 6000 steps, and a step
        large enough to help at ``latent_dim=20`` diverges at ``latent_dim=10``.
        Returns ``self``; raises :class:`~aecore.errors.AecoreError` if training diverges.
        """
        x = check_matrix(x)
        if not isinstance(num_epochs, (int, np.integer)) or isinstance(num_epochs, bool) or num_epochs < 0:
            raise AecoreError(f"num_epochs must be an integer, 0 or more; got {num_epochs!r}")
        if lr is None:
            lr = default_lr(x)
        if not lr > 0:
            raise AecoreError(f"lr must be positive; got {lr}")
        with threadpool_limits(1, user_api="blas"):  # tiny matrices: extra BLAS threads only spin
            return self._descend(x, num_epochs, lr, momentum)

    def _descend(self, x, num_epochs: int, lr: float, momentum: float) -> LinearAutoencoder:
        v_e, v_d = np.zeros_like(self.W_e), np.zeros_like(self.W_d)
        for epoch in range(num_epochs):
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
                loss, err, g_e, g_d = self.loss_and_grads(x)
            if not np.isfinite(loss):
                raise AecoreError(f"training diverged at step {epoch} (loss {loss}); use a smaller lr than {lr:.3g}")
            self.history.append(err)
            v_e = momentum * v_e - lr * g_e
            v_d = momentum * v_d - lr * g_d
            self.W_e += v_e
            self.W_d += v_d
        return self


def default_lr(x) -> float:
    """``0.05 / lambda_max`` with ``lambda_max = s_max**2 / (n d)``, from the centred data's top singular value.

    ``lambda_max`` sets the curvature of the MSE; 0.05 leaves room for random initial weights,
    whose size multiplies it. Raises :class:`~aecore.errors.AecoreError` for data too large to square.

    >>> round(default_lr(np.array([[0.0, 0.0], [2.0, 0.0]])), 9)  # s_max = sqrt(2), n d = 4
    0.1
    """
    x = np.asarray(x)
    with np.errstate(over="ignore", invalid="ignore"):
        power = np.linalg.norm(x - x.mean(axis=0), ord=2) ** 2  # s_max ** 2
    if not np.isfinite(power):
        raise AecoreError(f"data values are too large to train on (largest |x| is {np.abs(x).max():.3g}); "
                          "rescale them first, e.g. divide by their largest absolute value")
    return float(0.05 * x.size / max(power, 1e-300))


DEFAULT_NUM_EPOCHS = 6000  # full-batch steps; enough for a < 1 degree subspace angle on Digits, k <= 20


def run_linear_experiment(split: Split, latent_dim: int, num_epochs: int | None = None, seed: int = 0) -> dict:
    """Train the linear autoencoder on ``split`` and compare it with PCA and Eckart-Young.

    The function behind ``aecore linear`` and Chapter 1's table.

    Args:
        split: training and validation data (see :func:`aecore.data.load_data`).
        latent_dim: code size ``k``, ``1 <= k < n_features``.
        num_epochs: full-batch steps; ``None`` uses ``DEFAULT_NUM_EPOCHS``.
        seed: seed of the initial weights.

    Returns:
        dict: plain numbers, ready for JSON, under the keys ``latent_dim``, ``n_train``, ``n_val``, ``epochs``,
        ``train_mse``, ``eckart_young_mse`` (training split), ``ratio_to_bound``, ``val_mse``,
        ``pca_val_mse``, ``subspace_angle_deg`` (largest principal angle between the decoder's
        columns and the top-k principal directions) and ``seconds``.

    >>> from aecore.data import load_digits
    >>> r = run_linear_experiment(load_digits(), latent_dim=2)
    >>> round(r["ratio_to_bound"], 3), r["subspace_angle_deg"] < 1.0
    (1.0, True)
    """
    return train_and_compare(split, latent_dim, num_epochs, seed)[1]


def train_and_compare(split: Split, latent_dim: int, num_epochs: int | None = None,
                      seed: int = 0) -> tuple[LinearAutoencoder, dict]:
    """Like :func:`run_linear_experiment`, but also returns the trained autoencoder."""
    latent_dim = check_latent_dim(latent_dim, split.n_features)
    num_epochs = DEFAULT_NUM_EPOCHS if num_epochs is None else num_epochs
    start = time.perf_counter()
    pca = PCA.fit(split.x_train, latent_dim)
    ae = LinearAutoencoder.init(split.x_train, latent_dim, seed=seed).fit(split.x_train, num_epochs)
    n, d = split.x_train.shape
    bound = eckart_young_mse(pca.singular_values, latent_dim, n, d)
    train_mse = mse(split.x_train, ae.reconstruct(split.x_train))
    return ae, {
        "latent_dim": latent_dim,
        "n_train": n,
        "n_val": split.x_val.shape[0],
        "epochs": num_epochs,
        "train_mse": train_mse,
        "eckart_young_mse": bound,
        "ratio_to_bound": train_mse / bound if bound > 0 else None,
        "val_mse": mse(split.x_val, ae.reconstruct(split.x_val)),
        "pca_val_mse": mse(split.x_val, pca.reconstruct(split.x_val)),
        "subspace_angle_deg": float(principal_angles_deg(ae.W_d, pca.components.T).max()),
        "seconds": time.perf_counter() - start,
    }
