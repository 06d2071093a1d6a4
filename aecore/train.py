"""The training core every chapter uses: ``set_seed``, ``get_device``, ``fit`` and checkpoints.

Introduced in Chapter 2, where the same loop is first written by hand. ``fit`` trains an
autoencoder to reconstruct its input; data that fits in memory is moved to the device once
and batched by indexing (no per-sample DataLoader collate). On CUDA it also uses mixed
precision, channels-last for images and cuDNN autotuning; elsewhere those are switched off
and the very same code runs.
"""

from __future__ import annotations

import copy
import os
import random
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

import aecore
from aecore.errors import AecoreError

SCHEDULES = ("onecycle", "cosine", "constant")
CHECKPOINT_FORMAT = "aecore-checkpoint-1"


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device) at once."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA (and MPS) devices
    torch.cuda.manual_seed_all(seed)


def get_device(name: str = "auto") -> torch.device:
    """The device to train on: ``auto`` picks ``cuda``, then ``mps``, then ``cpu``.

    >>> get_device("cpu")
    device(type='cpu')
    """
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise AecoreError(f"unknown device '{name}'; choose auto, cpu, cuda or mps")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise AecoreError(f"device '{name}' is not available on this machine (torch {torch.__version__}); "
                          "use 'auto' or 'cpu'")
    return torch.device(name)


@dataclass
class FitConfig:
    """Settings of one :func:`fit` run. Invalid values raise :class:`~aecore.errors.AecoreError`.

    ``schedule`` is ``onecycle`` (warm up for the fraction ``warmup`` of all steps, then anneal),
    ``cosine`` or ``constant``;
    ``patience`` (epochs without a better validation loss) turns on early stopping, which
    restores the best weights; ``amp`` enables mixed precision, on CUDA only; ``num_threads``
    sets torch's CPU threads during the run (small models train faster on one thread, and
    far faster when other programs share the cores), ``None`` leaves them as they are;
    ``fused`` uses PyTorch's fused AdamW kernel on CPU and CUDA: the same update rule in one
    kernel per parameter tensor instead of a dozen small ones (about 3x faster optimizer steps
    for Chapter 2's model), rounded differently, so it is off by default and a hand-written
    ``torch.optim.Adam`` loop reproduces ``fit`` exactly.

    >>> FitConfig(num_epochs=5, lr=1e-3).batch_size
    128
    """

    num_epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.0
    schedule: str = "onecycle"
    warmup: float = 0.3
    patience: int | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    num_threads: int | None = None
    fused: bool = False
    progress: bool = True

    def __post_init__(self):
        for name in ("num_epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise AecoreError(f"{name} must be a positive integer; got {value!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and np.isfinite(self.lr)):
            raise AecoreError(f"lr must be a positive number; got {self.lr!r} (try 1e-3)")
        if not self.weight_decay >= 0:
            raise AecoreError(f"weight_decay must be 0 or more; got {self.weight_decay!r}")
        if self.schedule not in SCHEDULES:
            raise AecoreError(f"unknown schedule '{self.schedule}'; choose one of {', '.join(SCHEDULES)}")
        if not (isinstance(self.warmup, (int, float)) and 0 < self.warmup < 1):
            raise AecoreError(f"warmup is the fraction of steps spent warming up, between 0 and 1 (e.g. 0.3); "
                              f"got {self.warmup!r}")
        for name in ("patience", "num_threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise AecoreError(f"{name} must be None or a positive integer; got {value!r}")


@dataclass
class History:
    """What :func:`fit` measured: one entry per epoch (``val_loss`` is empty without validation)."""

    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def seconds(self) -> float:
        return float(sum(self.epoch_seconds))


def as_tensor(x, device, name: str = "x") -> torch.Tensor:
    """``x`` (NumPy or torch) as a finite float32 tensor on ``device``, at least 2-D."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.from_numpy(np.asarray(x, dtype=np.float32))
        except (TypeError, ValueError) as exc:
            raise AecoreError(f"{name} must be a numeric array: {exc}") from None
    if x.ndim < 2 or len(x) < 1:
        raise AecoreError(f"{name} must hold at least one sample, shape (n_samples, ...); got {tuple(x.shape)}")
    x = x.to(device=device, dtype=torch.float32)
    if not torch.isfinite(x).all():
        raise AecoreError(f"{name} contains NaN or infinite values; remove or impute them before training")
    return x


def _check_model_takes(model: nn.Module, x: torch.Tensor, name: str) -> None:
    """Run one sample through ``model`` so a shape mismatch is a clear error, not a torch one."""
    try:
        with torch.no_grad():
            out = model(x[:1])
    except RuntimeError as exc:
        raise AecoreError(f"the model cannot take {name} of shape {tuple(x.shape)} ({_first_line(exc)}); "
                          "build the model for this data's number of features") from None
    if out.shape != x[:1].shape:
        raise AecoreError(f"the model maps {name} of shape {tuple(x[:1].shape)} to {tuple(out.shape)}; "
                          "an autoencoder must return its input's shape")


@contextmanager
def _cpu_threads(num_threads: int | None):
    """Use ``num_threads`` torch CPU threads inside the block, then restore the previous number."""
    before = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _first_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("Error(s)")]
    return lines[0][:200] if lines else type(exc).__name__


def _scheduler(optimizer, config: FitConfig, steps_per_epoch: int):
    total = config.num_epochs * steps_per_epoch
    if config.schedule == "onecycle":
        max_lr = [group["lr"] for group in optimizer.param_groups]  # one peak per group (model.optimizer_groups)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total,
                                                   pct_start=config.warmup)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


@torch.no_grad()
def evaluate(model: nn.Module, x, batch_size: int = 4096, loss_fn=nn.functional.mse_loss, target=None) -> float:
    """Mean loss of ``model`` reconstructing ``x`` (array or tensor, moved to the model's device), in eval mode.

    With ``target`` (same shape as ``x``) the loss compares ``model(x)`` with ``target``
    instead of ``x``: a denoiser is scored on noisy inputs against the clean images.
    """
    x = as_tensor(x, next(model.parameters()).device)
    target = x if target is None else as_tensor(target, x.device, "target")
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        total += loss_fn(model(batch), target[start:start + batch_size]).item() * len(batch)
    model.train(was_training)
    return total / len(x)


def fit(model: nn.Module, x_train, x_val=None, config: FitConfig | None = None,
        loss_fn=nn.functional.mse_loss, callbacks=(), corrupt=None, raw_output: bool = False) -> History:
    """Train ``model`` to reconstruct ``x_train`` with Adam(W); returns a :class:`History`.

    Each epoch shuffles the rows with a generator seeded by ``config.seed`` (so the same seed
    and the same initial weights give the same losses), steps the optimizer and the schedule
    once per batch, then evaluates ``x_val``. One tqdm bar per run shows the losses.
    A model with an ``optimizer_groups()`` method (a list of ``{"params": ..., "lr_scale": ...}``)
    gets one learning rate per group, ``lr * lr_scale``, each following the schedule.
    ``callbacks`` are called as ``cb(epoch, history, model)`` after each epoch; one that
    returns ``True`` stops training.
    ``corrupt``, if given, is a function ``corrupt(x, generator) -> x_noisy`` (see
    :mod:`aecore.denoising`) applied to every training batch, with fresh randomness from a CPU
    generator seeded by ``config.seed + 1``; the clean batch stays the target, so the model learns
    to denoise. The validation inputs are corrupted once, with a generator seeded by
    ``config.seed + 2``, and scored against the clean ``x_val``.
    With ``raw_output=True`` the model may return anything (a VAE returns its code's mean and
    variance too) and ``loss_fn(output, x)`` receives it as it is; the shape check is skipped
    (see :mod:`aecore.vae`).

    Args:
        model: maps a batch ``x`` to ``x_hat`` of the same shape; moved to the device.
        x_train, x_val: arrays or tensors, one sample per row (``x_val`` may be ``None``).
        config: a :class:`FitConfig` (defaults if ``None``).
    """
    config = config or FitConfig()
    device = get_device(config.device)
    cuda = device.type == "cuda"
    model.to(device)
    x_train = as_tensor(x_train, device, "x_train")
    x_val = None if x_val is None else as_tensor(x_val, device, "x_val")
    if not raw_output:
        _check_model_takes(model, x_train, "x_train")
    if x_val is not None and x_val.shape[1:] != x_train.shape[1:]:
        raise AecoreError(f"x_val rows have shape {tuple(x_val.shape[1:])} but x_train rows "
                          f"{tuple(x_train.shape[1:])}; both must come from the same data")
    if cuda:  # GPU-only speed-ups; on CPU/MPS the same code runs with them switched off
        torch.backends.cudnn.benchmark = True
        if x_train.ndim == 4:  # images (B, C, H, W): channels-last suits tensor cores
            model.to(memory_format=torch.channels_last)
            x_train = x_train.contiguous(memory_format=torch.channels_last)
    use_amp = cuda and config.amp
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    n = len(x_train)
    batch_size = min(config.batch_size, n)  # a batch larger than the data is the whole data
    steps_per_epoch = -(-n // batch_size)
    fused = config.fused and device.type in ("cpu", "cuda")  # the devices with a fused AdamW kernel
    groups = model.optimizer_groups() if hasattr(model, "optimizer_groups") else [{"params": model.parameters()}]
    groups = [{"params": g["params"], "lr": config.lr * g.get("lr_scale", 1.0)} for g in groups]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay, fused=fused or None)
    scheduler = _scheduler(optimizer, config, steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)  # shuffling only; on CPU for reproducibility
    noise = torch.Generator().manual_seed(config.seed + 1)  # fresh corruption for every batch
    val_input = x_val
    if corrupt is not None and x_val is not None:  # fixed corrupted validation inputs, clean targets
        val_input = corrupt(x_val, torch.Generator().manual_seed(config.seed + 2))
    history, best_state, best_val = History(), None, float("inf")
    with _cpu_threads(config.num_threads), tqdm(range(config.num_epochs), desc="fit", unit="epoch",
                                                 mininterval=0.5, disable=not config.progress) as bar:
        model.train()
        for epoch in bar:
            start = time.perf_counter()
            history.lr.append(optimizer.param_groups[0]["lr"])
            order = torch.randperm(n, generator=generator).to(device)
            losses, sizes = [], []  # batch losses stay on the device: one sync per epoch
            for i in range(0, n, batch_size):
                x = x_train[order[i:i + batch_size]]  # (B, ...) rows picked on the device
                x_in = x if corrupt is None else corrupt(x, noise)  # the clean x stays the target
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    x_hat = model(x_in)
                    loss = loss_fn(x_hat if raw_output else x_hat.float(), x)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                losses.append(loss.detach())
                sizes.append(len(x))
            train_loss = sum(v * b for v, b in zip(torch.stack(losses).tolist(), sizes)) / n  # in float64
            if not np.isfinite(train_loss):
                raise AecoreError(f"the training loss became {train_loss} in epoch {epoch + 1}; the learning "
                                  f"rate {config.lr:g} is too high for this model: try {min(config.lr / 10, 1e-3):g} "
                                  "or lower")
            history.train_loss.append(train_loss)
            if x_val is not None:
                history.val_loss.append(evaluate(model, val_input, loss_fn=loss_fn, target=x_val))
            history.epoch_seconds.append(time.perf_counter() - start)
            monitored = history.val_loss[-1] if x_val is not None else train_loss
            # refresh=False: the bar redraws at most every 0.5 s, not every epoch; in Jupyter each redraw
            # sends several widget messages, and a cell of many short trainings sent over a thousand
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{monitored:.4f}" if x_val is not None else "-",
                            refresh=False)
            if monitored < best_val:
                best_val, history.best_epoch = monitored, epoch + 1
                if config.patience is not None:
                    best_state = copy.deepcopy(model.state_dict())
            asked_to_stop = [callback(epoch + 1, history, model) for callback in callbacks]
            patience_out = config.patience is not None and epoch + 1 - history.best_epoch >= config.patience
            if any(asked_to_stop) or patience_out:
                history.stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)  # early stopping keeps the best epoch's weights
    return history


def save_checkpoint(path, model: nn.Module, config: dict | None = None, epoch: int | None = None,
                    metrics: dict | None = None) -> Path:
    """Save weights plus ``config``, ``epoch``, ``metrics`` and the ``aecore`` version, atomically.

    The file is written to a temporary name in the same folder, then renamed, so an
    interrupted save never leaves a half-written checkpoint behind.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise AecoreError(f"cannot save {path}: folder {path.parent} does not exist")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": CHECKPOINT_FORMAT, "aecore_version": aecore.__version__, "model": type(model).__name__,
               "state_dict": state, "config": _plain(config or {}), "epoch": epoch, "metrics": _plain(metrics or {})}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _plain(value):
    """Dataclasses and tuples as plain dicts/lists, so ``weights_only=True`` can load them."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, (np.generic, torch.Tensor)) else value


def load_checkpoint(path, model: nn.Module | None = None) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; if ``model`` is given, load its weights.

    Uses ``torch.load(..., weights_only=True)`` (no arbitrary code runs). A missing,
    corrupt or foreign file, or weights that do not fit ``model``, raise
    :class:`~aecore.errors.AecoreError`. Returns the whole checkpoint dict.
    """
    path = Path(path)
    if not path.is_file():
        raise AecoreError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file; all mean the same here
        raise AecoreError(f"{path} is not a readable checkpoint ({type(exc).__name__}); "
                          "it may be truncated or corrupt: save it again") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise AecoreError(f"{path} is not an aecore checkpoint (expected format '{CHECKPOINT_FORMAT}')")
    if model is not None:
        if payload["model"] != type(model).__name__:
            raise AecoreError(f"{path} holds a {payload['model']}, not a {type(model).__name__}")
        try:
            model.load_state_dict(payload["state_dict"])
        except RuntimeError as exc:
            raise AecoreError(f"{path} does not match this model's layers ({_first_line(exc)}); "
                              f"it was saved with config {payload['config']}") from None
    return payload
