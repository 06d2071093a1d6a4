"""Chapter 2's experiments, shared by the chapter and ``aecore train``: one code path, one set of defaults.

``MLPConfig`` holds the chapter's settings (the tuned defaults), :func:`train_mlp_on` trains
one MLP autoencoder and compares it with PCA at the same ``latent_dim``, :func:`rate_distortion`
sweeps ``latent_dim``, and :func:`knn_accuracy` scores how well codes keep digits apart.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from aecore.data import Split
from aecore.errors import AecoreError
from aecore.linear import PCA, check_latent_dim, mse
from aecore.models import MLPAutoencoder
from aecore.train import FitConfig, History, fit, get_device, save_checkpoint, set_seed

MODELS = ("mlp",)
RATE_DISTORTION_DIMS = (1, 2, 4, 8, 16, 32)


def _chapter_fit() -> FitConfig:
    # Tuned on Digits (see benchmarks/README.md): a wide net, a high peak rate reached after a
    # short warm-up (10% of a 30-epoch one-cycle schedule), small batches, one CPU thread
    # (faster for matrices this small, and much faster when other programs share the cores),
    # the fused AdamW kernel. About 1 s on a 2-core CPU.
    return FitConfig(num_epochs=30, batch_size=64, lr=1e-2, schedule="onecycle", warmup=0.1, num_threads=1,
                     fused=True)


@dataclass
class MLPConfig:
    """The settings of Chapter 2's MLP autoencoder: architecture plus a :class:`~aecore.train.FitConfig`.

    >>> MLPConfig().hidden, MLPConfig().fit.lr
    ((256, 128), 0.01)
    """

    hidden: tuple = (256, 128)
    activation: str = "relu"
    init_output_bias: bool = True  # start the decoder at the mean training image
    fit: FitConfig = field(default_factory=_chapter_fit)

    def with_fit(self, **changes) -> MLPConfig:
        """A copy with some fit settings changed, e.g. ``MLPConfig().with_fit(progress=False)``."""
        return replace(self, fit=replace(self.fit, **changes))


def build_mlp(x_train, latent_dim: int, config: MLPConfig | None = None) -> MLPAutoencoder:
    """Seed with ``config.fit.seed`` and build the MLP of ``config`` for rows like ``x_train``.

    With ``config.init_output_bias`` the decoder starts at the mean training image (see
    :meth:`~aecore.models.MLPAutoencoder.init_output_bias`). The one place that turns an
    :class:`MLPConfig` into a model: the chapters, the sweeps and ``aecore train`` all use it.
    """
    config = config or MLPConfig()
    set_seed(config.fit.seed)
    model = MLPAutoencoder(np.shape(x_train)[1], latent_dim, config.hidden, config.activation)
    return model.init_output_bias(x_train) if config.init_output_bias else model


@dataclass
class MLPRun:
    """One trained model with its history, the PCA it is compared with, and JSON-ready ``metrics``."""

    model: MLPAutoencoder
    history: History
    pca: PCA
    metrics: dict


def to_numpy(model: torch.nn.Module, x, part: str = "forward") -> np.ndarray:
    """Run ``model`` (``part``: ``forward``, ``encoder`` or ``decoder``) on an array, in eval mode, as float64.

    >>> model = MLPAutoencoder(64, 2, hidden=(8,))
    >>> to_numpy(model, np.zeros((3, 64)), "encoder").shape
    (3, 2)
    """
    fn = model if part == "forward" else getattr(model, part)
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = fn(torch.as_tensor(np.asarray(x), dtype=torch.float32, device=param.device))
    model.train(was_training)
    return out.cpu().numpy().astype(np.float64)


def train_mlp_on(split: Split, latent_dim: int, config: MLPConfig | None = None) -> MLPRun:
    """Train an :class:`~aecore.models.MLPAutoencoder` on ``split`` and compare it with PCA.

    Seeds everything with ``config.fit.seed`` before building the model, so a run is
    reproducible. ``metrics`` holds ``latent_dim``, ``model``, ``n_train``, ``n_val``,
    ``epochs``, ``train_mse``, ``val_mse``, ``pca_val_mse``, ``ratio_to_pca``, ``seconds``
    and ``device``: what ``aecore train --json`` prints.
    """
    config = config or MLPConfig()
    n_train, n_features = split.x_train.shape
    latent_dim = check_latent_dim(latent_dim, n_features)
    device = get_device(config.fit.device)
    start = time.perf_counter()
    model = build_mlp(split.x_train, latent_dim, config)
    history = fit(model, split.x_train, split.x_val, config.fit)
    seconds = time.perf_counter() - start
    pca = PCA.fit(split.x_train, latent_dim)
    val_mse = mse(split.x_val, to_numpy(model, split.x_val))
    pca_val_mse = mse(split.x_val, pca.reconstruct(split.x_val))
    metrics = {
        "latent_dim": latent_dim,
        "model": "mlp",
        "n_train": n_train,
        "n_val": split.x_val.shape[0],
        "epochs": len(history.train_loss),
        "train_mse": mse(split.x_train, to_numpy(model, split.x_train)),
        "val_mse": val_mse,
        "pca_val_mse": pca_val_mse,
        "ratio_to_pca": val_mse / pca_val_mse if pca_val_mse > 0 else None,
        "seconds": seconds,
        "device": str(device),
    }
    return MLPRun(model, history, pca, metrics)


def save_run(path, run: MLPRun, config: MLPConfig, data: str) -> None:
    """Save a run's model with everything needed to rebuild it (see :func:`aecore.train.load_checkpoint`)."""
    settings = {"model": run.model.config(), "hidden": list(config.hidden), "activation": config.activation,
                "init_output_bias": config.init_output_bias, "fit": asdict(config.fit), "data": data}
    save_checkpoint(path, run.model, config=settings, epoch=run.metrics["epochs"], metrics=run.metrics)


def rate_distortion(split: Split, latent_dims=RATE_DISTORTION_DIMS, config: MLPConfig | None = None) -> list[dict]:
    """Validation MSE of PCA and of the MLP autoencoder for each ``latent_dim``: one metrics dict per size."""
    config = config or MLPConfig()
    if not latent_dims:
        raise AecoreError("latent_dims is empty; pass sizes such as (1, 2, 4, 8)")
    return [train_mlp_on(split, k, config).metrics for k in latent_dims]


def knn_accuracy(z_train, y_train, z_val, y_val, n_neighbors: int = 5) -> float:
    """Accuracy of an ``n_neighbors``-nearest-neighbour classifier fitted on codes ``z_train``, scored on ``z_val``.

    A number for "structure": how well nearby codes share a label.

    >>> z = np.array([[0.0], [0.1], [1.0], [1.1]]); y = np.array([0, 0, 1, 1])
    >>> knn_accuracy(z, y, z, y, n_neighbors=1)
    1.0
    """
    from sklearn.neighbors import KNeighborsClassifier

    if y_train is None or y_val is None:
        raise AecoreError("nearest-neighbour accuracy needs labels; this data set has none")
    classifier = KNeighborsClassifier(n_neighbors=min(n_neighbors, len(z_train))).fit(z_train, y_train)
    return float(classifier.score(z_val, y_val))
