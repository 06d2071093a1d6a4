"""Train a :class:`~aecore.conv.ConvAutoencoder` on images and compare it with PCA, fairly.

The one code path behind Chapter 5 and ``aecore train --model conv``: load and split the
images by species, optionally add mirror images of the *training* species, train through
:func:`aecore.train.fit`, and fit PCA on exactly the images the autoencoder saw. Validation
species are never seen by either. Introduced in Chapter 5, "A convolutional autoencoder on Pokemon".
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from aecore.conv import ConvAutoencoder, principal_directions
from aecore.errors import AecoreError
from aecore.images import ImageSplit, load_images, split_by_species
from aecore.train import FitConfig, evaluate, fit, get_device, load_checkpoint, save_checkpoint, set_seed


@dataclass(frozen=True)
class ConvSettings:
    """Everything that decides a run: data, model, training. One place for chapter and CLI."""

    data: str = "pokemon"
    size: int = 64
    latent_dim: int = 64
    widths: tuple = (16, 32, 64, 64)
    norm: str = "batch"
    linear_path: bool = True  # a fixed PCA path beside the convolutions (see ConvAutoencoder)
    flip: bool = True  # add the mirror image of every training image (training species only)
    num_epochs: int = 2
    lr: float = 3e-3
    batch_size: int = 16
    weight_decay: float = 0.0
    schedule: str = "onecycle"
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"

    def model(self) -> ConvAutoencoder:
        return ConvAutoencoder(latent_dim=self.latent_dim, widths=tuple(self.widths), size=self.size, norm=self.norm,
                               linear_path=self.linear_path)

    def fit_config(self, progress: bool = True) -> FitConfig:
        return FitConfig(num_epochs=self.num_epochs, batch_size=self.batch_size, lr=self.lr,
                         weight_decay=self.weight_decay, schedule=self.schedule, seed=self.seed,
                         device=self.device, progress=progress)


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB for pixels in [0, 1]: ``10 log10(1 / mse)``.

    >>> psnr(0.01)
    20.0
    """
    return 10.0 * math.log10(1.0 / mse)


def with_mirrors(x: np.ndarray) -> np.ndarray:
    """``x (N, C, H, W)`` followed by its left-right mirror images: ``(2N, C, H, W)``."""
    return np.concatenate([x, x[..., ::-1]])


def pca_val_mse(x_train: np.ndarray, x_val: np.ndarray, latent_dims) -> dict:
    """Validation MSE of PCA fitted on ``x_train`` for each latent size, from one decomposition."""
    a = x_train.reshape(len(x_train), -1).astype(np.float64)  # (n, d)
    b = x_val.reshape(len(x_val), -1).astype(np.float64) - a.mean(axis=0)  # centred by the training mean
    v = principal_directions(a, max(latent_dims))  # (k_max, d), orthonormal rows
    z = b @ v.T  # (n_val, k_max): coordinates of every validation image
    out, total = {}, (b**2).sum(axis=1)  # residual = total energy minus the captured part
    for k in latent_dims:
        out[k] = float(np.mean(total - (z[:, :k] ** 2).sum(axis=1)) / b.shape[1])
    return out


def training_images(split: ImageSplit, settings: ConvSettings) -> np.ndarray:
    """The images the autoencoder (and PCA) learn from: the training species, mirrored if asked."""
    return with_mirrors(split.x_train) if settings.flip else split.x_train


def train_conv(settings: ConvSettings, split: ImageSplit, progress: bool = True):
    """Build, train and return ``(model, history)``; the model's mean is the training mean."""
    x_seen = training_images(split, settings)
    set_seed(settings.seed)
    model = settings.model().init_from_data(x_seen)
    history = fit(model, x_seen, split.x_val, settings.fit_config(progress))
    return model, history


@torch.no_grad()
def reconstruct(model: ConvAutoencoder, x: np.ndarray) -> np.ndarray:
    """``x_hat`` for images ``x (N, C, H, W)`` in eval mode, as a NumPy array."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(torch.as_tensor(x[i:i + 256], device=device)).float().cpu()
                      for i in range(0, len(x), 256)]).numpy()


def evaluate_conv(model: ConvAutoencoder, split: ImageSplit, settings: ConvSettings, seconds: float = 0.0,
                  epochs: int | None = None) -> dict:
    """The run's numbers (JSON-ready), with PCA fitted on the same training images."""
    x_seen = training_images(split, settings)
    device = next(model.parameters()).device
    val_mse = evaluate(model, torch.as_tensor(split.x_val, device=device))
    train_mse = evaluate(model, torch.as_tensor(x_seen, device=device))
    pca = pca_val_mse(x_seen, split.x_val, [settings.latent_dim])[settings.latent_dim]
    return {"model": "conv", "data": settings.data, "size": settings.size, "latent_dim": settings.latent_dim,
            "n_train": len(split.x_train), "n_train_seen": len(x_seen), "n_val": len(split.x_val),
            "epochs": settings.num_epochs if epochs is None else epochs,
            "train_mse": train_mse, "val_mse": val_mse, "val_psnr": psnr(val_mse),
            "pca_val_mse": pca, "pca_val_psnr": psnr(pca), "ratio_to_pca": val_mse / pca, "beats_pca": val_mse < pca,
            "seconds": seconds, "device": str(device)}


def run_conv_experiment(settings: ConvSettings = ConvSettings(), save: str | Path | None = None,
                        command: str = "", progress: bool = True) -> dict:
    """Load, split, train and compare with PCA; optionally save a checkpoint with a record beside it."""
    split = split_by_species(load_images(settings.data, settings.size), settings.val_fraction, settings.seed)
    start = time.perf_counter()
    model, history = train_conv(settings, split, progress)
    result = evaluate_conv(model, split, settings, time.perf_counter() - start, len(history.train_loss))
    result["history"] = {"train_loss": history.train_loss, "val_loss": history.val_loss}
    if save is not None:
        save_conv_checkpoint(save, model, settings, result, command)
    return result


def save_conv_checkpoint(path, model: ConvAutoencoder, settings: ConvSettings, metrics: dict, command: str = ""):
    """Write the checkpoint and ``<path>.json`` (command, settings, metrics, loss history, sha256 of the file)."""
    path = Path(path)
    history = metrics.get("history")
    metrics = {k: v for k, v in metrics.items() if k != "history"}
    save_checkpoint(path, model, config={"model": model.config(), "settings": asdict(settings)},
                    epoch=metrics.get("epochs"), metrics=metrics)
    record = {"command": command, "settings": asdict(settings), "metrics": metrics,
              "directions_sum": _directions_sum(model),
              "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size,
              "torch": torch.__version__, "history": history}
    Path(f"{path}.json").write_text(json.dumps(record, indent=2) + "\n")
    return path


def _directions_sum(model: ConvAutoencoder):
    return None if model.linear is None else float(model.linear.directions.double().sum())


def load_conv_checkpoint(path, x_train=None, device: str = "cpu"):
    """``(model, settings, record)`` from a checkpoint whose sha256 matches its ``.json`` record.

    A model with ``linear_path`` recomputes its PCA directions from ``x_train``: pass the same
    training images it saw (``training_images(split, settings)``).
    """
    path = Path(path)
    record_path = Path(f"{path}.json")
    if not path.is_file() or not record_path.is_file():
        raise AecoreError(f"checkpoint {path} or its record {record_path.name} is missing; "
                          "train one with `aecore train --model conv ... --save PATH`")
    record = json.loads(record_path.read_text())
    if hashlib.sha256(path.read_bytes()).hexdigest() != record.get("sha256"):
        raise AecoreError(f"{path} does not match the sha256 in {record_path.name}; it is damaged or was "
                          "replaced: train it again")
    known = {f.name for f in fields(ConvSettings)}
    settings = replace(ConvSettings(), **{k: v for k, v in record["settings"].items() if k in known})
    settings = replace(settings, widths=tuple(settings.widths))
    model = settings.model()
    if settings.linear_path:
        if x_train is None:
            raise AecoreError(f"{path} has a PCA path: pass the training images it saw (x_train=...)")
        model.init_from_data(x_train)
        if not math.isclose(_directions_sum(model), record["directions_sum"], rel_tol=1e-4, abs_tol=1e-6):
            raise AecoreError(f"the PCA directions from these images differ from the ones {path} was trained "
                              "with: load it with the same data, size and split")
    load_checkpoint(path, model)
    return model.to(get_device(device)).eval(), settings, record


def load_or_train(path, settings: ConvSettings, split: ImageSplit, progress: bool = True):
    """The checkpoint at ``path`` if it is intact and was trained on this split; else train ``settings``.

    Returns ``(model, settings_used, source)`` where ``source`` says which happened.
    """
    try:
        model, saved, record = load_conv_checkpoint(path, training_images(split, settings))
    except AecoreError as exc:
        model, _ = train_conv(settings, split, progress)
        return model, settings, f"trained here ({exc})"
    same = ("data", "size", "val_fraction", "seed")
    if any(getattr(saved, k) != getattr(settings, k) for k in same):
        raise AecoreError(f"{path} was trained on another split ({', '.join(same)} differ); it cannot be "
                          "compared on this one")
    return model, saved, f"loaded {Path(path).name} ({record['metrics']['epochs']} epochs)"
